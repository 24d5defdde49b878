"""The handlers' log records: what Powertools would write with its own JSON module and reserved-name tuple, written
faster."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import sys

import pytest
from aws_lambda_powertools.logging import formatter as powertools_formatter

from fraudstream import contract as c
from fraudstream.online.features import card_features
from fraudstream.online.messages import RecordRef, parse_transaction
from fraudstream.online.scorers import ModelOutputError
from fraudstream.online.telemetry import logger
from fraudstream.online.verdict import Verdict


@pytest.mark.parametrize("message, logged", [
    ('{"card": 1}', {"card": 1}),
    (' [1, 2]', [1, 2]),
    ("42", 42),
    ("true", True),
    ("null", None),
    ("Prediction: NOT FRAUD (0.001000)", "Prediction: NOT FRAUD (0.001000)"),
    ("{not json", "{not json"),
    ("", ""),
])
def test_a_message_that_is_json_text_is_logged_as_its_value_and_any_other_as_it_is(logs, message, logged):
    logger.info(message)
    record = logs.records()[-1]
    # Powertools drops keys whose value is None, the message included, as its json module path does.
    assert record.get("message") == logged


def test_values_json_cannot_encode_are_written_as_their_text(logs):
    logger.info("with a date", extra={"when": dt.date(2022, 3, 1), "score": 0.25})
    record = logs.records()[-1]
    assert record["when"] == "2022-03-01" and record["score"] == 0.25 and record["level"] == "INFO"


def _verdict_log_records() -> list[logging.LogRecord]:
    """A verdict record as the predict handler logs it, and an error record with an exception."""
    tx = parse_transaction(RecordRef(c.TRANSACTIONS_TOPIC, 3, 41), {c.CC_NUM: 4 * 10**15 + 7, c.AMOUNT: 12.5,
                                                                    c.TRANS_TS: 1.7e9, c.TID: "t-1"})
    verdict = Verdict.of(tx, card_features([(1.7e9, 12.5)], None, None)[0], 0.4, 0.25, None, 86_400.0, (40, 41))
    stdlib = logging.getLogger(logger.service)
    records = [stdlib.makeRecord(stdlib.name, logging.INFO, __file__, 10, verdict.message(), (), None, "predict",
                                 extra=verdict.log_fields())]
    try:
        raise ModelOutputError("2 scores for 3 rows")
    except ModelOutputError:
        records.append(stdlib.makeRecord(stdlib.name, logging.ERROR, __file__, 20, "model output refused", (),
                                         sys.exc_info(), "handle", extra={"reason": "2 scores for 3 rows"}))
    return records


def _powertools_own_reserved_names() -> tuple[str, ...]:
    """RESERVED_LOG_ATTRS as Powertools defines it: its formatter module run afresh, apart from the one in use."""
    spec = importlib.util.find_spec(powertools_formatter.__name__)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    return fresh.RESERVED_LOG_ATTRS


def test_records_are_those_powertools_writes_with_its_reserved_names_in_a_tuple(monkeypatch):
    # Given the handlers' Logger, with the Lambda context keys the handler decorator adds
    assert isinstance(powertools_formatter.RESERVED_LOG_ATTRS, frozenset), "Powertools no longer keeps its reserved names there"
    logger.append_keys(function_name="predict_from_features", cold_start=True)
    try:
        records = _verdict_log_records()
        formatter = logger.registered_formatter
        # When the same records are formatted with the names as a set and as Powertools' own tuple
        with_set = [formatter.format(record) for record in records]
        monkeypatch.setattr(powertools_formatter, "RESERVED_LOG_ATTRS", _powertools_own_reserved_names())
        with_tuple = [formatter.format(record) for record in records]
    finally:
        logger.remove_keys(["function_name", "cold_start"])
    # Then the lines are the same, byte for byte (keys in the same order), and carry the verdict's fields
    assert with_set == with_tuple
    verdict_line = json.loads(with_set[0])
    assert verdict_line["verdict"] == c.FRAUD and verdict_line["offset"] == 41 and verdict_line["card"] == "400000******0007"
    assert verdict_line["location"] == "predict:10" and verdict_line["function_name"] == "predict_from_features"
    assert json.loads(with_set[1])["exception_name"] == "ModelOutputError"
