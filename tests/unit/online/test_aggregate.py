"""The aggregate handler's logic: from Flink's messages, each card's newest 10-minute record written, in parallel up
to a bound, never over a newer one, never from a late transaction."""

from __future__ import annotations

import json

import pytest

from fraudstream import contract as c
from fraudstream.online import telemetry as t
from fraudstream.online.aggregate import handle_aggregate_event, newest_per_card, write_aggregates
from fraudstream.online.messages import parse_event, parse_transaction_features
from fraudstream.online.settings import aggregate_settings
from fraudstream.online.stores import StoreError
from tests.support.doubles import RecordingStore
from tests.support.events import features_message, msk_event

CARD, OTHER = 4111111111111111, 4000123456789010
T = 1_700_000_000.0
STREAM = c.STREAMING_FEATURE_GROUP
FEATURES = c.TRANSACTION_FEATURES_TOPIC
AGGREGATE = aggregate_settings({"MAX_CONCURRENCY": "4"})


@pytest.fixture
def store(tmp_path):
    return RecordingStore(tmp_path / "store.sqlite")


def _event(messages):
    return msk_event(messages, topic=FEATURES)


def _parsed(messages):
    valid, invalid = parse_event(_event(messages), parse_transaction_features)
    assert invalid == []
    return valid


def test_only_the_newest_message_of_each_card_is_written_as_its_10_minute_record(store):
    messages = [features_message(CARD, T + 60, 20.0, offset=2, count_10m=2, sum_10m=30.5, prev_ts=T),
                features_message(CARD, T, 10.5, offset=1),
                features_message(OTHER, T, 7.0, offset=3)]
    summary = handle_aggregate_event(_event(messages), store, AGGREGATE)
    assert summary == {"written": 2, "skipped_stale": 1, "invalid": 0}
    stored = store.inner.get_records({STREAM: [CARD, OTHER]})[STREAM]
    assert stored[CARD] == {c.CC_NUM: CARD, c.NUM_TRANS_LAST_10M: 2, c.AVG_AMT_LAST_10M: 15.25,
                            c.TRANS_TIME: T + 60, c.PREV_TRANS_TIME: T}
    assert stored[OTHER] == {c.CC_NUM: OTHER, c.NUM_TRANS_LAST_10M: 1, c.AVG_AMT_LAST_10M: 7.0, c.TRANS_TIME: T,
                             c.PREV_TRANS_TIME: None}


def test_of_transactions_of_one_millisecond_the_later_place_is_the_newest():
    first = features_message(CARD, T, 1.0, offset=10)
    second = features_message(CARD, T, 2.0, offset=11, count_10m=2, sum_10m=3.0, prev_ts=T, today=(2, 3.0))
    for delivered in ([first, second], [second, first]):
        [newest] = newest_per_card(_parsed(delivered))
        assert newest.num_trans_last_10m == 2


def test_a_late_transaction_is_never_written_it_carries_features_of_itself_alone(store):
    # Given the card's on-time message and a late one with a newer event time (a clock ahead of the others)
    messages = [features_message(CARD, T, 10.0, offset=1, count_10m=3, sum_10m=30.0, prev_ts=T - 5),
                features_message(CARD, T + 30, 99.0, offset=2, late=True),
                features_message(OTHER, T, 5.0, offset=3, late=True)]
    # When they are handled
    summary = handle_aggregate_event(_event(messages), store, AGGREGATE)
    # Then the card keeps its on-time record and a card seen only late gets none
    assert summary == {"written": 1, "skipped_stale": 2, "invalid": 0}
    stored = store.inner.get_records({STREAM: [CARD, OTHER]})[STREAM]
    assert stored[CARD][c.NUM_TRANS_LAST_10M] == 3 and stored[OTHER] is None


def test_writes_for_distinct_cards_run_in_parallel_up_to_the_bound(store):
    messages = [features_message(CARD + i, T, 1.0, offset=i) for i in range(20)]
    write_aggregates(_parsed(messages), store, STREAM, max_concurrency=4)
    assert store.writes == 20
    assert 1 < store.peak <= 4


def test_an_older_message_never_overwrites_a_newer_record(store):
    write_aggregates(_parsed([features_message(CARD, T + 60, 15.0, offset=2, count_10m=2, sum_10m=30.0, prev_ts=T)]),
                     store, STREAM, 4)
    write_aggregates(_parsed([features_message(CARD, T, 10.0, offset=1)]), store, STREAM, 4)
    assert store.inner.get_records({STREAM: [CARD]})[STREAM][CARD][c.TRANS_TIME] == T + 60


def test_replaying_a_batch_leaves_the_store_identical(store):
    event = _event([features_message(CARD + i % 5, T + i, 10.0 + i, offset=i, count_10m=1 + i // 5,
                                     sum_10m=(1 + i // 5) * (10.0 + i)) for i in range(25)])
    handle_aggregate_event(event, store, AGGREGATE)
    first = store.inner.get_records({STREAM: [CARD + i for i in range(5)]})
    handle_aggregate_event(event, store, AGGREGATE)
    assert store.inner.get_records({STREAM: [CARD + i for i in range(5)]}) == first
    assert first[STREAM][CARD][c.TRANS_TIME] == T + 20


def test_a_failed_write_fails_the_batch_so_it_is_retried(tmp_path):
    class Failing(RecordingStore):
        def put_record(self, group, record):
            raise OSError("disk full")

    with pytest.raises(StoreError, match="1 of 1 aggregate writes failed"):
        handle_aggregate_event(_event([features_message(CARD, T, 1.0)]), Failing(tmp_path / "s.sqlite"), AGGREGATE)


def test_the_aggregate_lag_is_that_of_the_oldest_record_written(store, capsys, logs):
    # Given messages of two cards, CARD's first superseded in the batch and a late one left out
    messages = [features_message(CARD, T, 10.0, offset=1),
                features_message(CARD, T + 8, 10.0, offset=2, count_10m=2, sum_10m=20.0, prev_ts=T),
                features_message(OTHER, T + 3, 5.0, offset=3),
                features_message(OTHER, T - 100, 5.0, offset=4, late=True)]
    # When they are written at T + 10
    handle_aggregate_event(_event(messages), store, AGGREGATE, now=lambda: T + 10)
    # Then the lag is that of the oldest record written (OTHER's, 7 s), not of one skipped (10 s, 110 s)
    t.metrics.flush_metrics()
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert emf[t.AGGREGATE_LAG] in (7.0, [7.0])
    assert {m["Name"]: m["Unit"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}[t.AGGREGATE_LAG] == "Seconds"
