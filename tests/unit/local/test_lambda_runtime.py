"""What Lambda gives a handler, on one machine: the MSK event, the context, a cold start with its environment."""

from __future__ import annotations

import base64
import json
import os

import pytest

from fraudstream import contract as c
from fraudstream.local.lambda_runtime import (
    LambdaContext,
    environment,
    load_handler,
    msk_event,
    msk_record,
)
from fraudstream.online.messages import parse_event, parse_transaction_features
from fraudstream.online.settings import ConfigurationError
from tests.support.events import features_message


def _value(offset: int) -> bytes:
    return json.dumps(features_message(4111111111111111, 1.7e9, float(offset), offset=offset)).encode()


def test_records_are_grouped_by_topic_partition_in_their_order_and_parse_back():
    topic = c.TRANSACTION_FEATURES_TOPIC
    records = [msk_record(topic, p, o, _value(o), key=b"4111111111111111", timestamp_ms=1_700_000_000_000,
                          headers=[("h", b"v")])
               for p, o in ((0, 5), (2, 9), (0, 6))]
    event = msk_event(records)
    assert list(event["records"]) == [f"{topic}-0", f"{topic}-2"]
    assert [r["offset"] for r in event["records"][f"{topic}-0"]] == [5, 6]
    first = event["records"][f"{topic}-0"][0]
    assert base64.b64decode(first["key"]) == b"4111111111111111" and first["headers"] == [{"h": list(b"v")}]
    # The handlers' parser reads every record back, naming each by topic, partition and offset
    messages, invalid = parse_event(event, parse_transaction_features)
    assert invalid == [] and [(m.features_ref.partition, m.features_ref.offset, m.amount) for m in messages] == [
        (0, 5, 5.0), (0, 6, 6.0), (2, 9, 9.0)]


def test_a_record_without_a_key_leaves_the_key_out_as_lambda_does():
    assert "key" not in msk_record("t", 0, 0, b"{}")


def test_the_environment_is_set_only_inside_the_block(monkeypatch):
    monkeypatch.setenv("FRAUDSTREAM_PROBE_KEPT", "before")
    monkeypatch.delenv("FRAUDSTREAM_PROBE_NEW", raising=False)
    with environment({"FRAUDSTREAM_PROBE_KEPT": "inside", "FRAUDSTREAM_PROBE_NEW": "inside"}):
        assert os.environ["FRAUDSTREAM_PROBE_KEPT"] == os.environ["FRAUDSTREAM_PROBE_NEW"] == "inside"
    assert os.environ["FRAUDSTREAM_PROBE_KEPT"] == "before" and "FRAUDSTREAM_PROBE_NEW" not in os.environ


def test_a_handler_reads_its_environment_at_cold_start_and_leaves_the_process_as_it_was(tmp_path, monkeypatch):
    monkeypatch.delenv("FEATURE_STORE_BACKEND", raising=False)
    handler = load_handler("aggregate_to_feature_store", {"FEATURE_STORE_BACKEND": "embedded",
                                                          "EMBEDDED_STORE_PATH": str(tmp_path / "s.sqlite")})
    assert handler.SETTINGS.store.backend == "embedded"
    assert "FEATURE_STORE_BACKEND" not in os.environ
    with pytest.raises(ConfigurationError, match="FEATURE_STORE_BACKEND"):
        load_handler("aggregate_to_feature_store", {"FEATURE_STORE_BACKEND": "dynamo"})


def test_the_context_carries_what_powertools_reads():
    context = LambdaContext(function_name="predict")
    assert (context.function_name, context.memory_limit_in_mb, context.aws_request_id) == ("predict", 512, "local")
