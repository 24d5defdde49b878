"""Freshness metrics: how old the 10-minute record a verdict used was, and how late verdicts and aggregates come.

Read from the handlers' own EMF output (Powertools), as CloudWatch reads it."""

from __future__ import annotations

import json

import pytest

from fraudstream import contract as c
from fraudstream.online import aggregate, predict
from fraudstream.online import telemetry as t
from fraudstream.online.settings import aggregate_settings, predict_settings
from fraudstream.online.verdict import Verdict
from tests.support.doubles import ConstantScorer, RecordingStore
from tests.support.events import aggregate as aggregate_message
from tests.support.events import msk_event, transaction

CARD, OTHER = 4111111111111111, 4000123456789010
T = 1_700_000_000.0
PREDICT = predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": "unused"})
AGGREGATE = aggregate_settings({"MAX_CONCURRENCY": "4"})


@pytest.fixture
def store(tmp_path):
    return RecordingStore(tmp_path / "store.sqlite")


def emf(capsys) -> dict:
    t.metrics.flush_metrics()
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    freshness = {t.STREAMING_RECORD_AGE, t.END_TO_END_LAG, t.AGGREGATE_LAG}
    for name in freshness & set(record):  # one value per batch, whatever its size
        (record[name],) = record[name] if isinstance(record[name], list) else [record[name]]
    return record


def test_predict_emits_the_batchs_oldest_record_age_and_largest_lag(store, capsys, logs):
    # Given CARD's 10-minute record from T - 30 (OTHER has none), and transactions at T and T + 5
    store.put_record(c.STREAMING_FEATURE_GROUP, {c.CC_NUM: CARD, c.NUM_TRANS_LAST_10M: 1, c.AVG_AMT_LAST_10M: 10.0,
                                                 c.TRANS_TIME: T - 30, c.PREV_TRANS_TIME: None})
    event = msk_event([transaction(CARD, T, 12.0), transaction(CARD, T + 5, 3.0), transaction(OTHER, T + 1, 5.0)])
    # When the batch is handled at T + 12
    predict.handle_predict_event(event, store, ConstantScorer(), PREDICT, now=lambda: T + 12)
    # Then: the oldest record age is CARD's at T + 5 (35 s), the largest lag the transaction at T (12 s)
    metrics = emf(capsys)
    assert (metrics[t.STREAMING_RECORD_AGE], metrics[t.END_TO_END_LAG]) == (35.0, 12.0)
    units = {m["Name"]: m["Unit"] for m in metrics["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units[t.STREAMING_RECORD_AGE] == units[t.END_TO_END_LAG] == "Seconds"
    # and each verdict line says how old its record was (OTHER has none: Powertools leaves the key out)
    ages = {r["offset"]: r.get("streaming_record_age_s") for r in logs.records() if r["message"].startswith("Prediction:")}
    assert ages == {0: 30.0, 1: 35.0, 2: None}


def test_a_batch_of_cards_without_records_reports_lag_but_no_record_age(store, capsys, logs):
    predict.handle_predict_event(msk_event([transaction(OTHER, T, 5.0)]), store, ConstantScorer(), PREDICT,
                                 now=lambda: T + 2.5)
    metrics = emf(capsys)
    assert t.STREAMING_RECORD_AGE not in metrics and metrics[t.END_TO_END_LAG] == 2.5


def test_the_record_age_survives_the_log_round_trip(store, logs):
    store.put_record(c.STREAMING_FEATURE_GROUP, {c.CC_NUM: CARD, c.NUM_TRANS_LAST_10M: 1, c.AVG_AMT_LAST_10M: 10.0,
                                                 c.TRANS_TIME: T - 4, c.PREV_TRANS_TIME: None})
    predict.handle_predict_event(msk_event([transaction(CARD, T, 12.0)]), store, ConstantScorer(), PREDICT)
    [record] = [r for r in logs.records() if r["message"].startswith("Prediction:")]
    assert Verdict.from_log(record).streaming_record_age_s == 4.0


def test_each_verdict_names_its_records_and_its_batch_for_the_consistency_check(store, logs):
    # Given CARD's 1-week record from a day before and its 10-minute record from T - 4; OTHER has neither
    store.put_record(c.BATCH_FEATURE_GROUP, {c.CC_NUM: CARD, c.NUM_TRANS_LAST_1W: 3, c.AVG_AMT_LAST_1W: 20.0,
                                             c.TRANS_TIME: T - 86_400})
    store.put_record(c.STREAMING_FEATURE_GROUP, {c.CC_NUM: CARD, c.NUM_TRANS_LAST_10M: 1, c.AVG_AMT_LAST_10M: 10.0,
                                                 c.TRANS_TIME: T - 4, c.PREV_TRANS_TIME: None})
    # When a batch of offsets 40-42 of partition 2 is handled
    event = msk_event([transaction(CARD, T, 12.0), transaction(OTHER, T, 5.0), transaction(CARD, T + 1, 1.0)],
                      partition=2, first_offset=40)
    predict.handle_predict_event(event, store, ConstantScorer(), PREDICT)
    # Then every verdict line carries both ages and its batch's offsets, and reads back with them
    verdicts = [Verdict.from_log(r) for r in logs.records() if r["message"].startswith("Prediction:")]
    assert [(v.offset, v.streaming_record_age_s, v.batch_record_age_s, v.batch_offsets) for v in verdicts] == [
        (40, 4.0, 86_400.0, (40, 42)), (41, None, None, (40, 42)), (42, 5.0, 86_401.0, (40, 42))]


def test_aggregate_emits_the_largest_lag_of_what_it_writes(store, capsys, logs):
    # Given aggregates of two cards, CARD's older one superseded in the batch
    event = msk_event([aggregate_message(CARD, T, 1, 10.0, None), aggregate_message(CARD, T + 8, 2, 10.0, T),
                       aggregate_message(OTHER, T + 3, 1, 5.0, None)], topic=c.AGGREGATES_TOPIC)
    # When they are written at T + 10
    aggregate.handle_aggregate_event(event, store, AGGREGATE, now=lambda: T + 10)
    # Then the lag is that of the oldest aggregate written (OTHER's, 7 s), not of the one skipped (10 s)
    assert emf(capsys)[t.AGGREGATE_LAG] == 7.0
