"""Bad input never takes a batch down; AWS faults are retried or raised, never silently lost."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudstream import contract as c
from fraudstream.online import aws, messages, predict
from fraudstream.online import telemetry as t
from fraudstream.online.aggregate import handle_aggregate_event
from fraudstream.online.scorers import EndpointScorer
from fraudstream.online.settings import aggregate_settings, predict_settings
from fraudstream.online.stores import FeatureStoreOnlineStore
from tests.support.doubles import ConstantScorer, MemoryStore
from tests.support.events import features_message, msk_event
from tests.support.fakes import THROTTLED, answer_with, http_response

CARD = 4111111111111111
T = 1_700_000_000.0
FEATURES = c.TRANSACTION_FEATURES_TOPIC
PREDICT = predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": "unused"})
AGGREGATE = aggregate_settings({})


def _with(**changes):
    return {**features_message(CARD, T, 1.0, offset=999), **changes}


def _without(name):
    return {k: v for k, v in features_message(CARD, T, 1.0, offset=999).items() if k != name}


BAD_VALUES = [
    b"{not json",
    b"\xff\xfe invalid utf-8",
    _without(c.CC_NUM),
    _with(cc_num="four-one-one"),
    _with(amount="12.00 EUR"),
    _with(amount=-3.0),
    json.dumps(_with(amount="@")).replace('"@"', "NaN").encode(),
    _with(amount=1e308),
    b"x" * (1024 * 1024),
    _with(cc_num=9999999999999999999),  # 19 digits but beyond a signed 64-bit integer
    json.dumps(_with(amount="@")).replace('"@"', "1" + "0" * 400).encode(),
    b'{"x": ' + b"[" * 20000 + b"]" * 20000 + b"}",
    # Flink's own fields: a message that is not one of its own
    _without(c.EVENT_MS),
    _with(num_trans_last_10m=0),
    _with(late="no"),
    _without(c.OFFSET),
    {c.TICK_MS: 1_700_000_000_000},  # a time tick, on the wrong topic
]


def test_every_bad_record_is_logged_with_its_place_and_counted_and_the_rest_is_scored(logs, capsys):
    good = [features_message(CARD + i, T + i, 10.0, offset=i) for i in range(3)]
    values = [good[0], *BAD_VALUES, good[1], good[2]]
    event = msk_event(values, topic=FEATURES, partition=5, first_offset=100)
    event["records"][f"{FEATURES}-5"][4]["value"] = "***not base64***"  # replaces a bad one
    summary = predict.handle_predict_event(event, MemoryStore(), ConstantScorer(), PREDICT)
    assert summary == {"transactions": 3, "fraud": 0, "late": 0, "invalid": len(BAD_VALUES), "duplicates": 0,
                       "published": 0}
    errors = [r for r in logs.records() if r["level"] == "ERROR"]
    assert sorted(r["offset"] for r in errors) == list(range(101, 101 + len(BAD_VALUES)))
    assert all(r["message"] == "invalid record skipped" and r["topic"] == FEATURES and r["partition"] == 5
               and r["reason"] for r in errors)
    assert str(CARD) not in logs.text
    assert [r["offset"] for r in logs.records() if r["message"].startswith("Prediction:")] == [0, 1, 2]
    t.metrics.flush_metrics()
    emf = json.loads([line for line in capsys.readouterr().out.splitlines() if "_aws" in line][-1])
    assert emf["InvalidRecords"] in (len(BAD_VALUES), [len(BAD_VALUES)])


def test_an_empty_batch_returns_normally():
    assert predict.handle_predict_event(msk_event([], topic=FEATURES), MemoryStore(), ConstantScorer(), PREDICT) == {
        "transactions": 0, "fraud": 0, "late": 0, "invalid": 0, "duplicates": 0, "published": 0}
    assert handle_aggregate_event(msk_event([], topic=FEATURES), MemoryStore(), AGGREGATE) == {
        "written": 0, "skipped_stale": 0, "invalid": 0}


def test_bad_messages_are_skipped_by_the_aggregate_function_and_the_rest_written(logs):
    store = MemoryStore()
    event = msk_event([features_message(CARD, T, 5.0, offset=1), *BAD_VALUES,
                       features_message(CARD + 1, T, 6.0, offset=2, count_10m=2, sum_10m=12.0, prev_ts=T - 9)],
                      topic=FEATURES)
    summary = handle_aggregate_event(event, store, AGGREGATE)
    assert summary == {"written": 2, "skipped_stale": 0, "invalid": len(BAD_VALUES)}
    assert len([r for r in logs.records() if r["level"] == "ERROR"]) == len(BAD_VALUES)


# --- property: any event, no unhandled exception, one verdict per valid transaction -------------

valid_messages = st.builds(
    features_message,
    cc_num=st.integers(min_value=4 * 10**15, max_value=5 * 10**15 - 1),
    trans_ts=st.floats(min_value=1.6e9, max_value=1.8e9),
    amount=st.floats(min_value=0, max_value=1e6),
    late=st.booleans(),
)
NOT_AMOUNTS = ["12.00 EUR", "NaN", None, -0.01, 1e308, True, [1], {"v": 1}]
NOT_CARDS = [None, True, 1.5, "4111-1111", [], -4, 10**25, "", {"n": 1}]
NOT_COUNTS = [0, -1, 2.5, None, "many", True, 10**8]
REQUIRED = [name for name in c.FEATURE_MESSAGE_FIELDS if name not in (c.MERCHANT, c.ZIP_CODE, c.TID, c.PREV_EVENT_MS)]
junk = st.one_of(
    st.binary(max_size=32).filter(lambda b: not b.lstrip().startswith(b"{")),  # never a JSON object
    st.sampled_from([b"[]", b'"text"', b"42", b"null", b"NaN", b"{", b'{"cc_num": 1,}']),
    st.builds(lambda m, bad: {**m, c.AMOUNT: bad}, valid_messages, st.sampled_from(NOT_AMOUNTS)),
    st.builds(lambda m, bad: {**m, c.CC_NUM: bad}, valid_messages, st.sampled_from(NOT_CARDS)),
    st.builds(lambda m, bad: {**m, c.NUM_TRANS_LAST_10M: bad}, valid_messages, st.sampled_from(NOT_COUNTS)),
    st.builds(lambda m, key: {k: v for k, v in m.items() if k != key}, valid_messages, st.sampled_from(REQUIRED)),
)
records = st.lists(st.one_of(valid_messages.map(lambda m: (True, m)), junk.map(lambda bad: (False, bad))), max_size=10)


# 10,000 examples in `make test` (a tenth in make test-fast's profile, tests/conftest.py)
@settings(max_examples=100 * settings.default.max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(records)
def test_any_event_gives_exactly_one_verdict_per_valid_message_and_never_raises(choices):
    # each valid message names its own transaction (offset = its position), so none is a duplicate of another
    values = [{**value, c.OFFSET: i} if is_valid else value for i, (is_valid, value) in enumerate(choices)]
    valid_offsets = [i for i, (is_valid, _) in enumerate(choices) if is_valid]
    batch = predict.predict(
        messages.parse_event(msk_event(values, topic=FEATURES), messages.parse_transaction_features)[0],
        MemoryStore(), ConstantScorer(), PREDICT)
    assert [p.offset for p in batch.verdicts] == valid_offsets
    assert [p.late for p in batch.verdicts] == [value[c.LATE] for is_valid, value in choices if is_valid]
    assert all(p.message().startswith("Prediction: NOT FRAUD") for p in batch.verdicts)


# --- faults at the AWS boundary (real botocore retries; answers injected below them) ------------


def _records_body(card):
    """BatchGetRecord's answer: the card's nightly record, every value as text."""
    values = {c.CC_NUM: str(card), c.TRANS_TIME: "1699920000.0", c.LAST_TRANS_TIME: "1699919000.5",
              **{name: "3" for name in c.DAY_COUNTS}, **{name: "20.05" for name in c.DAY_SUMS}}
    return {"Records": [{"FeatureGroupName": c.BATCH_FEATURE_GROUP, "RecordIdentifierValueAsString": str(card),
                         "Record": [{"FeatureName": k, "ValueAsString": v} for k, v in values.items()]}],
            "Errors": [], "UnprocessedIdentifiers": []}


def test_a_throttled_feature_store_read_succeeds_on_retry_with_the_record_typed_by_its_schema():
    client = aws.new_client("sagemaker-featurestore-runtime")
    calls = answer_with(client, "BatchGetRecord", [THROTTLED, http_response(200, _records_body(CARD))])
    found = FeatureStoreOnlineStore(client).get_records({c.BATCH_FEATURE_GROUP: [CARD]})
    assert len(calls) == 2
    record = found[c.BATCH_FEATURE_GROUP][CARD]
    assert (record[c.DAY_COUNTS[0]], record[c.DAY_SUMS[7]], record[c.TRANS_TIME]) == (3, 20.05, 1699920000.0)
    assert type(record[c.DAY_COUNTS[0]]) is int


def test_a_throttled_endpoint_call_succeeds_on_retry():
    client = aws.new_client("sagemaker-runtime")
    ok = http_response(200, {"predictions": [{"score": 0.7}]})
    calls = answer_with(client, "InvokeEndpoint", [THROTTLED, ok])
    assert EndpointScorer(client, "fraud").score([[1.0, 2.0]]) == [0.7]
    assert len(calls) == 2


def test_a_persistent_endpoint_failure_raises_so_the_trigger_retries_the_batch(logs):
    client = aws.new_client("sagemaker-runtime")
    calls = answer_with(client, "InvokeEndpoint", [http_response(503, {"__type": "ServiceUnavailable", "message": "down"})])
    with pytest.raises(ClientError, match="ServiceUnavailable"):
        predict.handle_predict_event(msk_event([features_message(CARD, T, 10.0)], topic=FEATURES), MemoryStore(),
                                     EndpointScorer(client, "fraud"), PREDICT)
    assert len(calls) == aws.RETRY_ATTEMPTS
    assert "Prediction:" not in logs.text  # no verdict was claimed for the failed batch
