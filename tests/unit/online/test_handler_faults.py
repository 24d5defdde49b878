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
from tests.support.events import aggregate, msk_event, transaction
from tests.support.fakes import THROTTLED, answer_with, http_response

CARD = 4111111111111111
T = 1_700_000_000.0
PREDICT = predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": "unused"})
AGGREGATE = aggregate_settings({})

BAD_VALUES = [
    b"{not json",
    b"\xff\xfe invalid utf-8",
    {"amount": 1.0, "trans_ts": T},  # no cc_num
    transaction("four-one-one", T, 1.0),
    transaction(CARD, T, "12.00 EUR"),
    transaction(CARD, T, -3.0),
    b'{"cc_num": 4111111111111111, "amount": NaN, "trans_ts": 1700000000}',
    transaction(CARD, T, 1e308),
    b"x" * (1024 * 1024),
    transaction(9999999999999999999, T, 1.0),  # 19 digits but beyond a signed 64-bit integer
    b'{"cc_num": 4111111111111111, "trans_ts": 1700000000, "amount": 1' + b"0" * 400 + b"}",
    b'{"x": ' + b"[" * 20000 + b"]" * 20000 + b"}",
]


def test_every_bad_record_is_logged_with_its_place_and_counted_and_the_rest_is_scored(logs, capsys):
    good = [transaction(CARD + i, T + i, 10.0) for i in range(3)]
    values = [good[0], *BAD_VALUES, good[1], good[2]]
    event = msk_event(values, partition=5, first_offset=100)
    event["records"][f"{c.TRANSACTIONS_TOPIC}-5"][4]["value"] = "***not base64***"  # replaces a bad one
    summary = predict.handle_predict_event(event, MemoryStore(), ConstantScorer(), PREDICT)
    assert summary == {"transactions": 3, "fraud": 0, "invalid": len(BAD_VALUES), "duplicates": 0}
    errors = [r for r in logs.records() if r["level"] == "ERROR"]
    assert sorted(r["offset"] for r in errors) == list(range(101, 101 + len(BAD_VALUES)))
    assert all(r["topic"] == c.TRANSACTIONS_TOPIC and r["partition"] == 5 and r["reason"] for r in errors)
    assert str(CARD) not in logs.text
    t.metrics.flush_metrics()
    emf = json.loads([line for line in capsys.readouterr().out.splitlines() if "_aws" in line][-1])
    assert emf["InvalidRecords"] in (len(BAD_VALUES), [len(BAD_VALUES)])


def test_an_empty_batch_returns_normally():
    assert predict.handle_predict_event(msk_event([]), MemoryStore(), ConstantScorer(), PREDICT) == {
        "transactions": 0, "fraud": 0, "invalid": 0, "duplicates": 0}
    assert handle_aggregate_event(msk_event([], topic=c.AGGREGATES_TOPIC), MemoryStore(), AGGREGATE) == {
        "written": 0, "skipped_stale": 0, "invalid": 0}


def test_bad_aggregates_are_skipped_and_the_rest_written(logs):
    store = MemoryStore()
    event = msk_event([aggregate(CARD, T, 1, 5.0, None), *BAD_VALUES, aggregate(CARD + 1, T, 2, 6.0, T - 9)],
                      topic=c.AGGREGATES_TOPIC)
    summary = handle_aggregate_event(event, store, AGGREGATE)
    assert summary == {"written": 2, "skipped_stale": 0, "invalid": len(BAD_VALUES)}
    assert len([r for r in logs.records() if r["level"] == "ERROR"]) == len(BAD_VALUES)


# --- property: any event, no unhandled exception, one verdict per valid transaction -------------

valid_transactions = st.builds(
    transaction,
    cc_num=st.integers(min_value=4 * 10**15, max_value=5 * 10**15 - 1),
    trans_ts=st.floats(min_value=1.6e9, max_value=1.8e9),
    amount=st.floats(min_value=0, max_value=1e6),
)
NOT_AMOUNTS = ["12.00 EUR", "NaN", None, -0.01, 1e308, True, [1], {"v": 1}]
NOT_CARDS = [None, True, 1.5, "4111-1111", [], -4, 10**25, "", {"n": 1}]
junk = st.one_of(
    st.binary(max_size=32).filter(lambda b: not b.lstrip().startswith(b"{")),  # never a JSON object
    st.sampled_from([b"[]", b'"text"', b"42", b"null", b"NaN", b"{", b'{"cc_num": 1,}']),
    st.builds(lambda tx, bad: {**tx, c.AMOUNT: bad}, valid_transactions, st.sampled_from(NOT_AMOUNTS)),
    st.builds(lambda tx, bad: {**tx, c.CC_NUM: bad}, valid_transactions, st.sampled_from(NOT_CARDS)),
    st.builds(lambda tx, key: {k: v for k, v in tx.items() if k != key}, valid_transactions,
              st.sampled_from([c.CC_NUM, c.AMOUNT, c.TRANS_TS])),
)
records = st.lists(st.one_of(valid_transactions.map(lambda tx: (True, tx)), junk.map(lambda bad: (False, bad))), max_size=10)


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(records)
def test_any_event_gives_exactly_one_verdict_per_valid_transaction_and_never_raises(choices):
    values = [value for _, value in choices]
    valid_offsets = [i for i, (is_valid, _) in enumerate(choices) if is_valid]
    batch = predict.predict(
        messages.parse_event(msk_event(values), messages.parse_transaction)[0], MemoryStore(), ConstantScorer(), PREDICT
    )
    assert [p.offset for p in batch.verdicts] == valid_offsets
    assert all(p.message().startswith("Prediction: NOT FRAUD") for p in batch.verdicts)


# --- faults at the AWS boundary (real botocore retries; answers injected below them) ------------


def _records_body(card):
    return {"Records": [{"FeatureGroupName": c.BATCH_FEATURE_GROUP, "RecordIdentifierValueAsString": str(card), "Record": [
        {"FeatureName": c.CC_NUM, "ValueAsString": str(card)}, {"FeatureName": c.NUM_TRANS_LAST_1W, "ValueAsString": "3"},
        {"FeatureName": c.AVG_AMT_LAST_1W, "ValueAsString": "20.0"}, {"FeatureName": c.TRANS_TIME, "ValueAsString": "1.0"}]}],
        "Errors": [], "UnprocessedIdentifiers": []}


def test_a_throttled_feature_store_read_succeeds_on_retry():
    client = aws.new_client("sagemaker-featurestore-runtime")
    calls = answer_with(client, "BatchGetRecord", [THROTTLED, http_response(200, _records_body(CARD))])
    found = FeatureStoreOnlineStore(client).get_records({c.BATCH_FEATURE_GROUP: [CARD]})
    assert len(calls) == 2
    assert found[c.BATCH_FEATURE_GROUP][CARD][c.NUM_TRANS_LAST_1W] == 3


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
        predict.handle_predict_event(msk_event([transaction(CARD, T, 10.0)]), MemoryStore(), EndpointScorer(client, "fraud"), PREDICT)
    assert len(calls) == aws.RETRY_ATTEMPTS
    assert "Prediction:" not in logs.text  # no verdict was claimed for the failed batch
