"""The handlers' logic: batched I/O, newest aggregate per card, in-batch ordering, logs and metrics."""

from __future__ import annotations

import json
import threading
import time

import pytest

from fraudstream import contract as c
from fraudstream import online
from fraudstream.messages import parse_aggregate, parse_event, parse_transaction
from fraudstream.settings import ConfigurationError, aggregate_settings, predict_settings
from fraudstream.stores import EmbeddedOnlineStore
from tests.events import aggregate, msk_event, transaction

CARD, OTHER = 4111111111111111, 4000123456789010
T = 1_700_000_000.0
STREAM, BATCH = c.STREAMING_FEATURE_GROUP, c.BATCH_FEATURE_GROUP
PREDICT = predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": "unused"})
AGGREGATE = aggregate_settings({"MAX_CONCURRENCY": "4"})


class RecordingStore:
    """An embedded store that counts reads and the peak number of concurrent writes."""

    def __init__(self, path):
        self.inner = EmbeddedOnlineStore(path)
        self.reads, self.writes, self.active, self.peak = 0, 0, 0, 0
        self.lock = threading.Lock()

    def get_records(self, requests):
        self.reads += 1
        return self.inner.get_records(requests)

    def put_record(self, group, record):
        with self.lock:
            self.writes += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.01)
        self.inner.put_record(group, record)
        with self.lock:
            self.active -= 1


class RecordingScorer:
    feature_set = "v2"

    def __init__(self, score=0.1):
        self.calls, self.rows, self.fixed = 0, [], score

    def score(self, rows):
        self.calls += 1
        self.rows.extend(rows)
        return [self.fixed] * len(rows)


@pytest.fixture
def store(tmp_path):
    return RecordingStore(tmp_path / "store.sqlite")


def _aggregates(messages):
    return parse_event(msk_event(messages, topic=c.AGGREGATES_TOPIC), parse_aggregate)[0]


def test_only_the_newest_aggregate_of_each_card_is_written(store):
    messages = [aggregate(CARD, T + 60, 2, 15.0, T), aggregate(CARD, T, 1, 10.0, None), aggregate(OTHER, T, 1, 7.0, None)]
    summary = online.handle_aggregate_event(msk_event(messages, topic=c.AGGREGATES_TOPIC), store, AGGREGATE)
    assert summary == {"written": 2, "skipped_stale": 1, "invalid": 0}
    stored = store.inner.get_records({STREAM: [CARD, OTHER]})[STREAM]
    assert stored[CARD] == {c.CC_NUM: CARD, c.NUM_TRANS_LAST_10M: 2, c.AVG_AMT_LAST_10M: 15.0,
                            c.TRANS_TIME: T + 60, c.PREV_TRANS_TIME: T}


def test_writes_for_distinct_cards_run_in_parallel_up_to_the_bound(store):
    messages = [aggregate(CARD + i, T, 1, 1.0, None) for i in range(20)]
    online.write_aggregates(_aggregates(messages), store, STREAM, max_concurrency=4)
    assert store.writes == 20
    assert 1 < store.peak <= 4


def test_a_late_aggregate_never_overwrites_a_newer_one(store):
    online.write_aggregates(_aggregates([aggregate(CARD, T + 60, 2, 15.0, T)]), store, STREAM, 4)
    online.write_aggregates(_aggregates([aggregate(CARD, T, 1, 10.0, None)]), store, STREAM, 4)
    assert store.inner.get_records({STREAM: [CARD]})[STREAM][CARD][c.TRANS_TIME] == T + 60


def test_replaying_an_aggregate_batch_leaves_the_store_identical(store, tmp_path):
    event = msk_event([aggregate(CARD + i % 5, T + i, 1 + i // 5, 10.0 + i, None) for i in range(25)], topic=c.AGGREGATES_TOPIC)
    online.handle_aggregate_event(event, store, AGGREGATE)
    first = (tmp_path / "store.sqlite").read_bytes(), store.inner.get_records({STREAM: [CARD + i for i in range(5)]})
    online.handle_aggregate_event(event, store, AGGREGATE)
    assert store.inner.get_records({STREAM: [CARD + i for i in range(5)]}) == first[1]


def test_a_batch_costs_one_store_read_and_one_model_call(store):
    scorer = RecordingScorer()
    event = msk_event([transaction(CARD + i, T + i, 10.0) for i in range(100)])
    assert online.handle_predict_event(event, store, scorer, PREDICT)["transactions"] == 100
    assert (store.reads, scorer.calls, len(scorer.rows)) == (1, 1, 100)


def test_transactions_of_one_card_are_scored_in_event_time_order_each_seeing_the_ones_before(store):
    scorer = RecordingScorer()
    # Delivered out of event-time order.
    event = msk_event([transaction(CARD, T + 20, 30.0), transaction(CARD, T, 10.0), transaction(CARD, T + 10, 20.0)])
    batch = online.predict(parse_event(event, parse_transaction)[0], store, scorer, PREDICT)
    by_time = sorted(batch.predictions, key=lambda p: p.transaction.trans_ts)
    assert [p.features[c.NUM_TRANS_LAST_10M] for p in by_time] == [1, 2, 3]
    assert [p.features[c.AVG_AMT_LAST_10M] for p in by_time] == [10.0, 15.0, 20.0]
    assert [p.features[c.SECS_SINCE_PREV_TX] for p in by_time] == [c.SECS_SINCE_PREV_TX_CAP, 10.0, 10.0]
    assert [p.transaction.ref.offset for p in batch.predictions] == [0, 1, 2]  # reported in delivery order


def test_cards_unknown_to_both_groups_are_scored_and_counted(store):
    store.inner.put_record(BATCH, {c.CC_NUM: OTHER, c.NUM_TRANS_LAST_1W: 4, c.AVG_AMT_LAST_1W: 50.0, c.TRANS_TIME: T - 3600})
    event = msk_event([transaction(CARD, T, 10.0), transaction(OTHER, T, 100.0)])
    batch = online.predict(parse_event(event, parse_transaction)[0], store, RecordingScorer(), PREDICT)
    assert batch.cards_missing == {STREAM: 2, BATCH: 1}
    unknown = next(p for p in batch.predictions if p.transaction.cc_num == CARD)
    assert (unknown.features[c.AMT_RATIO1], unknown.features[c.AMT_RATIO2], unknown.features[c.COUNT_RATIO]) == (1.0, 1.0, 1.0)
    known = next(p for p in batch.predictions if p.transaction.cc_num == OTHER)
    assert (known.features[c.NUM_TRANS_LAST_1W], known.features[c.AVG_AMT_LAST_1W]) == (5, 60.0)
    assert known.features[c.SECS_SINCE_PREV_TX] == 3600.0


def test_each_verdict_is_one_seed_format_line_in_a_structured_record_with_a_masked_card(store, logs):
    event = msk_event([transaction(CARD, T, 12.0), transaction(CARD, T + 5, 13.0)], partition=2, first_offset=40)
    online.handle_predict_event(event, store, RecordingScorer(score=0.981234), PREDICT)
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
    online.handle_predict_event(event, store, RecordingScorer(score=0.9), PREDICT)
    online.t.metrics.flush_metrics()
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line][-1]
    emf = {k: sum(v) if isinstance(v, list) else v for k, v in emf.items()}  # EMF may carry value lists
    assert (emf["Transactions"], emf["FraudVerdicts"], emf["InvalidRecords"]) == (2.0, 2.0, 1.0)
    assert (emf["CardsMissingStreamingGroup"], emf["CardsMissingBatchGroup"]) == (2.0, 2.0)
    assert "EndpointLatency" in emf
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == online.t.NAMESPACE


def test_the_predict_path_refuses_a_model_trained_on_another_feature_set():
    scorer = RecordingScorer()
    scorer.feature_set = "v1"
    with pytest.raises(ConfigurationError, match="FEATURE_SET=v2 but the model expects feature set v1"):
        online.check_model(PREDICT, scorer)
    online.check_model(predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": "x", "FEATURE_SET": "v1"}), scorer)
