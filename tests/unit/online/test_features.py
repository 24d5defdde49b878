"""The online definition: a transaction's features rebuilt from stored records, one case at a time.

tests/unit/online/test_features_match_batch.py checks the same function against the batch SQL over
whole generated histories.
"""

from __future__ import annotations

import pytest

from fraudstream import contract as c
from fraudstream.online.features import feature_vector, online_features


def _streaming(ts, count, average, prev):
    return {c.TRANS_TIME: ts, c.NUM_TRANS_LAST_10M: count, c.AVG_AMT_LAST_10M: average, c.PREV_TRANS_TIME: prev}


def _batch(ts, count, average):
    return {c.TRANS_TIME: ts, c.NUM_TRANS_LAST_1W: count, c.AVG_AMT_LAST_1W: average}


def test_online_features_do_not_count_twice_a_transaction_the_record_already_includes():
    f = online_features(1000.0, 30.0, _streaming(1000.0, 3, 20.0, 900.0), _batch(900.0, 5, 10.0))
    assert (f[c.NUM_TRANS_LAST_10M], f[c.AVG_AMT_LAST_10M]) == (3, 20.0)
    assert (f[c.NUM_TRANS_LAST_1W], f[c.AVG_AMT_LAST_1W]) == (6, 80.0 / 6)
    assert f[c.SECS_SINCE_PREV_TX] == 100.0  # from the record's prev_trans_time


def test_online_features_fold_the_current_transaction_into_a_record_that_stops_before_it():
    f = online_features(1000.0, 30.0, _streaming(900.0, 2, 15.0, 850.0), None)
    assert (f[c.NUM_TRANS_LAST_10M], f[c.AVG_AMT_LAST_10M]) == (3, 20.0)
    assert (f[c.NUM_TRANS_LAST_1W], f[c.AVG_AMT_LAST_1W]) == (1, 30.0)  # no batch record: from nothing
    assert f[c.SECS_SINCE_PREV_TX] == 100.0


def test_online_features_start_the_10_minute_window_from_nothing_when_the_record_is_stale():
    f = online_features(2000.0, 30.0, _streaming(1399.0, 4, 50.0, 1300.0), _batch(1399.0, 10, 40.0))
    assert (f[c.NUM_TRANS_LAST_10M], f[c.AVG_AMT_LAST_10M]) == (1, 30.0)
    assert f[c.SECS_SINCE_PREV_TX] == 601.0
    assert f[c.COUNT_RATIO] == pytest.approx(1 / 11)


def test_online_features_fold_in_earlier_transactions_of_the_same_batch_newer_than_the_record():
    f = online_features(1000.0, 40.0, _streaming(800.0, 1, 10.0, None), _batch(800.0, 1, 10.0),
                          earlier=[(700.0, 99.0), (850.0, 20.0), (900.0, 30.0)])
    # 700 is older than the record (already in it, or out of the window): not folded again.
    assert (f[c.NUM_TRANS_LAST_10M], f[c.AVG_AMT_LAST_10M]) == (4, 25.0)
    assert (f[c.NUM_TRANS_LAST_1W], f[c.AVG_AMT_LAST_1W]) == (4, 25.0)
    assert f[c.SECS_SINCE_PREV_TX] == 100.0


def test_a_record_scored_late_never_makes_the_gap_negative_or_zero_by_itself():
    # The predict path is behind: the record already holds a newer transaction of the card.
    f = online_features(1000.0, 30.0, _streaming(1100.0, 3, 20.0, 1000.0), _batch(500.0, 2, 10.0))
    assert f[c.SECS_SINCE_PREV_TX] == 500.0  # from the batch record, the latest known before


def test_the_feature_vector_follows_the_feature_sets_model_order():
    f = online_features(1000.0, 30.0, None, None)
    assert feature_vector(f, "v1") == [30.0, 1.0, 1.0, 1.0]
    assert feature_vector(f, "v2") == [30.0, 1.0, 1.0, 1.0, 1.0, float(c.SECS_SINCE_PREV_TX_CAP)]
