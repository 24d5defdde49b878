"""The predict handler's logic: one store read and one model call per batch, in-batch ordering, logs, metrics."""

from __future__ import annotations

import json

import pytest

from fraudstream import contract as c
from fraudstream.online import backends, predict
from fraudstream.online import telemetry as t
from fraudstream.online.messages import parse_event, parse_transaction
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
