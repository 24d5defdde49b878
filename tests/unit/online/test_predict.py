"""The predict handler's logic: one store read and one model call per batch, in-batch ordering, logs, metrics."""

from __future__ import annotations

import json

import pytest

from fraudstream import contract as c
from fraudstream.online import backends, predict
from fraudstream.online import telemetry as t
from fraudstream.online.messages import parse_event, parse_transaction
from fraudstream.online.scorers import ModelOutputError
from fraudstream.online.settings import (
    ConfigurationError,
    aggregate_settings,
    predict_settings,
)
from tests.support.doubles import ConstantScorer, RecordingStore
from tests.support.events import msk_event, transaction

CARD, OTHER = 4111111111111111, 4000123456789010
T = 1_700_000_000.0
STREAM, BATCH = c.STREAMING_FEATURE_GROUP, c.BATCH_FEATURE_GROUP
PREDICT = predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": "unused"})
AGGREGATE = aggregate_settings({"MAX_CONCURRENCY": "4"})


@pytest.fixture
def store(tmp_path):
    return RecordingStore(tmp_path / "store.sqlite")










def test_a_batch_costs_one_store_read_and_one_model_call(store):
    scorer = ConstantScorer()
    event = msk_event([transaction(CARD + i, T + i, 10.0) for i in range(100)])
    assert predict.handle_predict_event(event, store, scorer, PREDICT)["transactions"] == 100
    assert (store.reads, scorer.calls, len(scorer.rows)) == (1, 1, 100)


def test_transactions_of_one_card_are_scored_in_event_time_order_each_seeing_the_ones_before(store):
    scorer = ConstantScorer()
    # Delivered out of event-time order.
    event = msk_event([transaction(CARD, T + 20, 30.0), transaction(CARD, T, 10.0), transaction(CARD, T + 10, 20.0)])
    batch = predict.predict(parse_event(event, parse_transaction)[0], store, scorer, PREDICT)
    by_time = sorted(batch.verdicts, key=lambda p: p.trans_ts)
    assert [p.features[c.NUM_TRANS_LAST_10M] for p in by_time] == [1, 2, 3]
    assert [p.features[c.AVG_AMT_LAST_10M] for p in by_time] == [10.0, 15.0, 20.0]
    assert [p.features[c.SECS_SINCE_PREV_TX] for p in by_time] == [c.SECS_SINCE_PREV_TX_CAP, 10.0, 10.0]
    assert [p.offset for p in batch.verdicts] == [0, 1, 2]  # reported in delivery order


def test_cards_unknown_to_both_groups_are_scored_and_counted(store):
    store.inner.put_record(BATCH, {c.CC_NUM: OTHER, c.NUM_TRANS_LAST_1W: 4, c.AVG_AMT_LAST_1W: 50.0, c.TRANS_TIME: T - 3600})
    event = msk_event([transaction(CARD, T, 10.0), transaction(OTHER, T, 100.0)])
    batch = predict.predict(parse_event(event, parse_transaction)[0], store, ConstantScorer(), PREDICT)
    assert batch.cards_missing == {STREAM: 2, BATCH: 1}
    unknown = next(p for p in batch.verdicts if p.card == c.mask_card(CARD))
    assert (unknown.features[c.AMT_RATIO1], unknown.features[c.AMT_RATIO2], unknown.features[c.COUNT_RATIO]) == (1.0, 1.0, 1.0)
    known = next(p for p in batch.verdicts if p.card == c.mask_card(OTHER))
    assert (known.features[c.NUM_TRANS_LAST_1W], known.features[c.AVG_AMT_LAST_1W]) == (5, 60.0)
    assert known.features[c.SECS_SINCE_PREV_TX] == 3600.0


def test_each_verdict_is_one_seed_format_line_in_a_structured_record_with_a_masked_card(store, logs):
    event = msk_event([transaction(CARD, T, 12.0), transaction(CARD, T + 5, 13.0)], partition=2, first_offset=40)
    predict.handle_predict_event(event, store, ConstantScorer(score=0.981234), PREDICT)
    out = logs.text
    records = logs.records()
    verdicts = [r for r in records if r["message"].startswith("Prediction:")]
    assert verdicts[1]["message"] == ("Prediction: FRAUD (0.981234), num last 10m: 2, avg amt last 10m: 12.50, "
                                      "card num: 411111******1111, amount: 13.00")
    assert (verdicts[1]["topic"], verdicts[1]["partition"], verdicts[1]["offset"]) == (c.TRANSACTIONS_TOPIC, 2, 41)
    assert verdicts[1]["verdict"] == "FRAUD" and verdicts[1]["score"] == 0.981234
    assert set(c.ALL_FEATURES) <= set(verdicts[1]["features"])
    assert str(CARD) not in out


def test_emf_metrics_count_transactions_verdicts_invalid_records_and_missing_cards(store, capsys, logs):
    event = msk_event([transaction(CARD, T, 12.0), b"garbage", transaction(OTHER, T, 5.0)])
    predict.handle_predict_event(event, store, ConstantScorer(score=0.9), PREDICT)
    t.metrics.flush_metrics()
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line][-1]
    emf = {k: sum(v) if isinstance(v, list) else v for k, v in emf.items()}  # EMF may carry value lists
    assert (emf["Transactions"], emf["FraudVerdicts"], emf["InvalidRecords"]) == (2.0, 2.0, 1.0)
    assert (emf["CardsMissingStreamingGroup"], emf["CardsMissingBatchGroup"]) == (2.0, 2.0)
    assert "EndpointLatency" in emf
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == t.NAMESPACE


def test_the_predict_path_refuses_a_model_trained_on_another_feature_set():
    scorer = ConstantScorer()
    scorer.feature_set = "v1"
    with pytest.raises(ConfigurationError, match="FEATURE_SET=v2 but the model expects feature set v1"):
        backends.check_model(PREDICT, scorer)
    backends.check_model(predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": "x", "FEATURE_SET": "v1"}), scorer)


# --- Fail closed: a model answer that is not one probability per row fails the batch ----------------------


class AnswersWith:
    feature_set = "v2"

    def __init__(self, answer):
        self.answer = answer

    def score(self, rows):
        return self.answer(len(rows))


@pytest.mark.parametrize("answer, reason", [
    (lambda n: [float("nan")] * n, "not probabilities"),
    (lambda n: [7.5] * n, "not probabilities"),
    (lambda n: [-3.0] * n, "not probabilities"),
    (lambda n: [0.5] * (n - 1), "returned 1 scores for 2 rows"),
    (lambda n: [None] * n, "not probabilities"),
])
def test_a_score_that_is_not_a_probability_fails_the_batch_and_is_never_a_verdict(store, logs, capsys, answer, reason):
    event = msk_event([transaction(CARD, T, 12.0), transaction(OTHER, T, 5.0)])
    with pytest.raises(ModelOutputError, match=reason):
        predict.handle_predict_event(event, store, AnswersWith(answer), PREDICT)
    assert not [r for r in logs.records() if "verdict" in r]
    assert [r["reason"] for r in logs.records() if r["level"] == "ERROR"] and reason in logs.text
    t.metrics.flush_metrics()
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line][-1]
    assert emf["InvalidModelOutput"] in (1.0, [1.0])  # EMF may carry value lists


# --- Each transaction counted once ---------------------------------------------------------------------------


def test_the_same_record_twice_in_a_batch_is_scored_once(store, logs):
    event = msk_event([transaction(CARD, T, 12.0)], first_offset=7)
    event["records"][f"{c.TRANSACTIONS_TOPIC}-0"] *= 2  # delivered twice in one batch
    summary = predict.handle_predict_event(event, store, ConstantScorer(), PREDICT)
    verdicts = [r for r in logs.records() if "verdict" in r]
    assert summary["transactions"] == 1 and summary["duplicates"] == 1
    assert [v["features"][c.NUM_TRANS_LAST_10M] for v in verdicts] == [1]
    (skipped,) = [r for r in logs.records() if r["message"] == "duplicate transaction skipped"]
    assert (skipped["offset"], skipped["duplicate_of"]["offset"]) == (7, 7)


def test_one_transaction_id_at_three_offsets_counts_once_and_is_not_made_fraud_by_itself(store, logs):
    event = msk_event([transaction(CARD, T + i * 0.001, 12.0, tid="tx-1") for i in range(3)])
    threshold = predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": "x", "FRAUD_THRESHOLD": "0.5"})
    batch = predict.predict(parse_event(event, parse_transaction)[0], store, CountScorer(), threshold)
    assert [v.features[c.NUM_TRANS_LAST_10M] for v in batch.verdicts] == [1]
    assert [v.verdict for v in batch.verdicts] == [c.NOT_FRAUD] and len(batch.duplicates) == 2


class CountScorer:
    """FRAUD from the third transaction in ten minutes on: the v2 row's num_trans_last_10m is column 4."""

    feature_set = "v2"

    def score(self, rows):
        return [0.9 if row[4] >= 3 else 0.1 for row in rows]


def test_a_batch_delivered_again_after_flink_aggregated_it_gets_the_same_verdicts(store):
    # Given the card's record as Flink left it before the batch, and a batch of one card's three transactions
    store.inner.put_record(STREAM, {c.CC_NUM: CARD, c.NUM_TRANS_LAST_10M: 2, c.AVG_AMT_LAST_10M: 20.0,
                                    c.TRANS_TIME: T - 60, c.PREV_TRANS_TIME: T - 120})
    event = msk_event([transaction(CARD, T + i, 10.0 * (i + 1)) for i in range(3)] + [transaction(OTHER, T, 7.0)])
    first = predict.predict(parse_event(event, parse_transaction)[0], store, CountScorer(), PREDICT).verdicts
    # When Flink aggregates the batch (the store now holds the newest aggregate of each card) and the same batch
    # is delivered again (the trigger is at-least-once)
    store.inner.put_record(STREAM, {c.CC_NUM: CARD, c.NUM_TRANS_LAST_10M: 5, c.AVG_AMT_LAST_10M: 20.0,
                                    c.TRANS_TIME: T + 2, c.PREV_TRANS_TIME: T + 1})
    store.inner.put_record(STREAM, {c.CC_NUM: OTHER, c.NUM_TRANS_LAST_10M: 1, c.AVG_AMT_LAST_10M: 7.0,
                                    c.TRANS_TIME: T, c.PREV_TRANS_TIME: None})
    again = predict.predict(parse_event(event, parse_transaction)[0], store, CountScorer(), PREDICT).verdicts
    # Then every verdict is the same, with the same counts and averages (no count went up)
    assert [v.verdict for v in again] == [v.verdict for v in first]
    for name in (c.NUM_TRANS_LAST_10M, c.AVG_AMT_LAST_10M, c.NUM_TRANS_LAST_1W, c.AVG_AMT_LAST_1W):
        assert [v.features[name] for v in again] == pytest.approx([v.features[name] for v in first]), name
    # The card alone in its batch gets every feature the same; a card's first of several may see a later gap
    # (the stored record no longer holds the transaction before the batch: docs/online-path.md "redelivery")
    assert again[3].features == first[3].features
    assert [v.features[c.SECS_SINCE_PREV_TX] for v in again[1:3]] == [v.features[c.SECS_SINCE_PREV_TX] for v in first[1:3]]


def test_ten_thousand_records_of_one_card_in_one_batch_are_all_scored_with_their_window(store):
    transactions = [transaction(CARD, T + i, 1.0) for i in range(10_000)]  # one a second
    batch = predict.predict(parse_event(msk_event(transactions), parse_transaction)[0], store, ConstantScorer(), PREDICT)
    counts = [v.features[c.NUM_TRANS_LAST_10M] for v in batch.verdicts]
    assert len(counts) == 10_000
    assert counts[:3] == [1, 2, 3] and counts[599:602] == [600, 601, 601] and counts[-1] == 601
    assert batch.verdicts[-1].features[c.NUM_TRANS_LAST_1W] == 10_000
