"""The online definition: a transaction's model features from Flink's message and the card's 1-week record, one
case at a time.

tests/unit/online/test_features_match_batch.py checks the same function against the batch SQL over whole
generated histories.
"""

from __future__ import annotations

import pytest

from fraudstream import contract as c
from fraudstream.online.features import Week, feature_vector, model_features, prior_days
from fraudstream.contract import RecordRef
from fraudstream.online.messages import parse_transaction_features
from tests.support.events import features_message

CARD = 4111111111111111
DAY = 19_053  # 2022-03-02, days since 1970-01-01 UTC
NOON = DAY * c.SECONDS_PER_DAY + 12 * 3600.0


def tx(trans_ts=NOON, amount=30.0, **fields):
    message = features_message(CARD, trans_ts, amount, **fields)
    return parse_transaction_features(RecordRef(c.TRANSACTION_FEATURES_TOPIC, 0, 0), message)


def record(cutoff_day, tiles=None, last=None):
    """A cc-agg-batch-fg record with cutoff ``cutoff_day``; ``tiles``: {k: (count, sum)} for the k-th day before it."""
    tiles = tiles or {}
    return {c.CC_NUM: CARD, c.TRANS_TIME: float(cutoff_day * c.SECONDS_PER_DAY),
            c.LAST_TRANS_TIME: cutoff_day * c.SECONDS_PER_DAY - 60.0 if last is None else last,
            **{c.DAY_COUNTS[k - 1]: tiles.get(k, (0, 0.0))[0] for k in range(1, c.WEEK_TILES + 1)},
            **{c.DAY_SUMS[k - 1]: tiles.get(k, (0, 0.0))[1] for k in range(1, c.WEEK_TILES + 1)}}


# One transaction on each of the 8 days before DAY (k = 1..8), 10 * k each: 7 of them are the week before DAY.
EIGHT_DAYS = {k: (1, 10.0 * k) for k in range(1, 9)}


# --- 10 minutes and the previous transaction: Flink's ------------------------------------------------------


def test_the_10_minute_features_are_flinks_count_and_exact_sum_divided_by_it():
    f = model_features(tx(count_10m=3, sum_10m=0.6, prev_ts=NOON - 30), None)
    assert (f[c.NUM_TRANS_LAST_10M], f[c.AVG_AMT_LAST_10M]) == (3, 0.6 / 3)
    assert f[c.SECS_SINCE_PREV_TX] == 30.0


def test_the_previous_transaction_is_flinks_even_when_the_record_knows_a_later_one():
    f = model_features(tx(prev_ts=NOON - 3600), record(DAY, last=NOON - 10))
    assert f[c.SECS_SINCE_PREV_TX] == 3600.0


def test_a_card_flink_has_not_seen_since_it_started_takes_its_previous_transaction_from_the_record():
    f = model_features(tx(prev_ts=None), record(DAY, last=DAY * c.SECONDS_PER_DAY - 90.5))
    assert f[c.SECS_SINCE_PREV_TX] == 12 * 3600 + 90.5


def test_a_record_whose_last_transaction_is_not_before_this_one_gives_no_previous_transaction():
    # A replay of older events: the record (cutoff the day after) already holds later transactions of the card
    f = model_features(tx(prev_ts=None), record(DAY + 1, last=NOON + 5))
    assert f[c.SECS_SINCE_PREV_TX] == c.SECS_SINCE_PREV_TX_CAP


def test_the_gap_is_capped_at_a_week_and_is_the_cap_for_a_cards_first_transaction():
    assert model_features(tx(prev_ts=NOON - 30 * 86_400), None)[c.SECS_SINCE_PREV_TX] == c.SECS_SINCE_PREV_TX_CAP
    assert model_features(tx(prev_ts=None), None)[c.SECS_SINCE_PREV_TX] == c.SECS_SINCE_PREV_TX_CAP


def test_the_gap_is_measured_in_whole_milliseconds_of_event_time():
    # 0.0004 s apart, but both round to the same millisecond: the batch SQL sees a gap of 0
    f = model_features(tx(trans_ts=NOON + 0.0004, prev_ts=NOON), None)
    assert f[c.SECS_SINCE_PREV_TX] == 0.0


# --- 1 week: the 7 full days before, and the day so far --------------------------------------------------


# Flink's totals of the 7 days before DAY (k = 1..7), 100 * k each, never the record's values: each test shows
# which source a day came from.
FLINK_DAYS = {k: (k, 100.0 * k) for k in range(1, 8)}


def test_with_the_nightly_record_of_the_transactions_day_the_week_is_tiles_1_to_7_plus_the_day_so_far():
    f = model_features(tx(today=(2, 50.0), days_before=FLINK_DAYS), record(DAY, EIGHT_DAYS))
    assert f[c.NUM_TRANS_LAST_1W] == 7 + 2
    assert f[c.AVG_AMT_LAST_1W] == (10.0 * (1 + 2 + 3 + 4 + 5 + 6 + 7) + 50.0) / 9  # tile 8 is not the week
    assert prior_days(tx(days_before=FLINK_DAYS), record(DAY, EIGHT_DAYS)) == Week(7, 28_000)


def test_with_the_record_of_the_day_before_the_day_before_comes_from_flink():
    # The nightly run for DAY has not run yet: the newest record is the one with cutoff DAY - 1
    f = model_features(tx(today=(2, 50.0), days_before=FLINK_DAYS), record(DAY - 1, EIGHT_DAYS))
    # days DAY-2 .. DAY-7 are tiles 1..6 of that record; DAY-1 is Flink's (1 transaction, 100.0)
    assert f[c.NUM_TRANS_LAST_1W] == 6 + 1 + 2
    assert f[c.AVG_AMT_LAST_1W] == (10.0 * (1 + 2 + 3 + 4 + 5 + 6) + 100.0 + 50.0) / 9


def test_with_the_record_of_the_day_after_the_week_is_tiles_2_to_8():
    # A replay of older events, scored after the nightly run covered their day
    f = model_features(tx(today=(1, 30.0), days_before=FLINK_DAYS), record(DAY + 1, EIGHT_DAYS))
    assert f[c.NUM_TRANS_LAST_1W] == 7 + 1
    assert f[c.AVG_AMT_LAST_1W] == (10.0 * (2 + 3 + 4 + 5 + 6 + 7 + 8) + 30.0) / 8


def test_days_the_nightly_run_has_not_covered_come_from_flink_however_late_it_is():
    # A backlog, or a nightly run that stopped: the record is 3 days old
    week = prior_days(tx(days_before=FLINK_DAYS), record(DAY - 3, EIGHT_DAYS))
    # DAY-1 .. DAY-3 from Flink (k = 1, 2, 3), DAY-4 .. DAY-7 from tiles 1..4
    assert week == Week(1 + 2 + 3 + 4, 10_000 * (1 + 2 + 3) + 1_000 * (1 + 2 + 3 + 4))
    # a record older than the week: all of it from Flink
    assert prior_days(tx(days_before=FLINK_DAYS), record(DAY - 9, EIGHT_DAYS)) == Week(28, 280_000)


def test_days_older_than_the_records_tiles_come_from_flink():
    # A replay scored after two more nightly runs: DAY-7 would be tile 9 of the record with cutoff DAY + 2
    assert prior_days(tx(days_before=FLINK_DAYS), record(DAY + 2, EIGHT_DAYS)) == Week(6 + 7, 1_000 * (3 + 4 + 5 + 6 + 7 + 8) + 70_000)


def test_a_card_without_a_record_takes_the_whole_week_from_flink():
    # No record: no transaction before the newest cutoff, or no nightly run yet since the job started
    assert prior_days(tx(days_before={1: (3, 99.0), 7: (1, 0.5)}), None) == Week(4, 9_950)
    assert prior_days(tx(), None) == Week(0, 0)
    f = model_features(tx(amount=30.0, today=(2, 45.0)), None)
    assert (f[c.NUM_TRANS_LAST_1W], f[c.AVG_AMT_LAST_1W]) == (2, 22.5)


def test_a_late_transaction_is_scored_on_itself_and_the_records_week():
    late = tx(amount=30.0, late=True)  # Flink's late message: the features of itself alone, no days before
    f = model_features(late, record(DAY, EIGHT_DAYS))
    assert (f[c.NUM_TRANS_LAST_10M], f[c.NUM_TRANS_LAST_1W]) == (1, 8)


def test_week_sums_are_added_in_whole_cents_as_the_batch_sql_adds_its_decimals():
    tiles = {1: (1, 0.1), 2: (1, 0.2)}
    f = model_features(tx(amount=0.3, today=(1, 0.3)), record(DAY, tiles))
    assert f[c.AVG_AMT_LAST_1W] == 0.6 / 3  # the decimal 0.60 as a double, divided
    assert f[c.AVG_AMT_LAST_1W] != (0.1 + 0.2 + 0.3) / 3  # what adding the doubles would give


def test_the_ratios_follow_the_contract():
    f = model_features(tx(amount=40.0, count_10m=2, sum_10m=60.0, today=(2, 60.0)), record(DAY, {1: (2, 20.0)}))
    assert (f[c.NUM_TRANS_LAST_1W], f[c.AVG_AMT_LAST_1W]) == (4, 20.0)
    assert (f[c.AMT_RATIO1], f[c.AMT_RATIO2], f[c.COUNT_RATIO]) == (30.0 / 20.0, 40.0 / 20.0, 2 / 4)


def test_a_zero_week_average_gives_zero_ratios_not_an_error():
    f = model_features(tx(amount=0.0, sum_10m=0.0, today=(1, 0.0)), None)
    assert (f[c.AMT_RATIO1], f[c.AMT_RATIO2], f[c.COUNT_RATIO]) == (0.0, 0.0, 1.0)


@pytest.mark.parametrize("feature_set, vector", [
    ("v1", [30.0, 1.0, 1.0, 1.0]),
    ("v2", [30.0, 1.0, 1.0, 1.0, 1.0, float(c.SECS_SINCE_PREV_TX_CAP)]),
])
def test_the_feature_vector_follows_the_feature_sets_model_order(feature_set, vector):
    assert feature_vector(model_features(tx(amount=30.0), None), feature_set) == vector


def test_an_unknown_feature_set_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown feature set 'v9'"):
        feature_vector(model_features(tx(), None), "v9")
