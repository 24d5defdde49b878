"""The aggregate handler's logic: each card's newest aggregate written, in parallel up to a bound, never over a newer one."""

from __future__ import annotations

import pytest

from fraudstream import contract as c
from fraudstream.online.aggregate import handle_aggregate_event, write_aggregates
from fraudstream.online.messages import parse_aggregate, parse_event
from fraudstream.online.settings import aggregate_settings
from tests.support.doubles import RecordingStore
from tests.support.events import aggregate, msk_event

CARD, OTHER = 4111111111111111, 4000123456789010
T = 1_700_000_000.0
STREAM = c.STREAMING_FEATURE_GROUP
AGGREGATE = aggregate_settings({"MAX_CONCURRENCY": "4"})


@pytest.fixture
def store(tmp_path):
    return RecordingStore(tmp_path / "store.sqlite")


def _aggregates(messages):
    return parse_event(msk_event(messages, topic=c.AGGREGATES_TOPIC), parse_aggregate)[0]

def test_only_the_newest_aggregate_of_each_card_is_written(store):
    messages = [aggregate(CARD, T + 60, 2, 15.0, T), aggregate(CARD, T, 1, 10.0, None), aggregate(OTHER, T, 1, 7.0, None)]
    summary = handle_aggregate_event(msk_event(messages, topic=c.AGGREGATES_TOPIC), store, AGGREGATE)
    assert summary == {"written": 2, "skipped_stale": 1, "invalid": 0}
    stored = store.inner.get_records({STREAM: [CARD, OTHER]})[STREAM]
    assert stored[CARD] == {c.CC_NUM: CARD, c.NUM_TRANS_LAST_10M: 2, c.AVG_AMT_LAST_10M: 15.0,
                            c.TRANS_TIME: T + 60, c.PREV_TRANS_TIME: T}

def test_writes_for_distinct_cards_run_in_parallel_up_to_the_bound(store):
    messages = [aggregate(CARD + i, T, 1, 1.0, None) for i in range(20)]
    write_aggregates(_aggregates(messages), store, STREAM, max_concurrency=4)
    assert store.writes == 20
    assert 1 < store.peak <= 4

def test_a_late_aggregate_never_overwrites_a_newer_one(store):
    write_aggregates(_aggregates([aggregate(CARD, T + 60, 2, 15.0, T)]), store, STREAM, 4)
    write_aggregates(_aggregates([aggregate(CARD, T, 1, 10.0, None)]), store, STREAM, 4)
    assert store.inner.get_records({STREAM: [CARD]})[STREAM][CARD][c.TRANS_TIME] == T + 60

def test_replaying_an_aggregate_batch_leaves_the_store_identical(store, tmp_path):
    event = msk_event([aggregate(CARD + i % 5, T + i, 1 + i // 5, 10.0 + i, None) for i in range(25)], topic=c.AGGREGATES_TOPIC)
    handle_aggregate_event(event, store, AGGREGATE)
    first = (tmp_path / "store.sqlite").read_bytes(), store.inner.get_records({STREAM: [CARD + i for i in range(5)]})
    handle_aggregate_event(event, store, AGGREGATE)
    assert store.inner.get_records({STREAM: [CARD + i for i in range(5)]}) == first[1]
