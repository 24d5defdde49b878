"""fraudstream features: the batch SQL on DuckDB, checked against hand-computed windows."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from fraudstream import contract as c
from fraudstream.checks import InputError
from fraudstream.offline import features
from tests.support.data import T0, transactions

CAP = c.SECS_SINCE_PREV_TX_CAP
WEEK = c.WINDOW_1W_SECONDS


def _features(rows):
    table = features.compute_features(features.connect(), transactions(rows))
    return {row[c.TID]: row for row in table.to_pylist()}


def test_a_cards_first_transaction_counts_itself_and_has_ratios_of_one():
    row = _features([(1, 0, 40.0)])["t0"]
    assert (row[c.NUM_TRANS_LAST_10M], row[c.AVG_AMT_LAST_10M]) == (1, 40.0)
    assert (row[c.NUM_TRANS_LAST_1W], row[c.AVG_AMT_LAST_1W]) == (1, 40.0)
    assert row[c.SECS_SINCE_PREV_TX] == CAP
    assert (row[c.AMT_RATIO1], row[c.AMT_RATIO2], row[c.COUNT_RATIO]) == (1.0, 1.0, 1.0)


def test_exactly_10_minutes_apart_is_inside_and_10_minutes_1_second_is_outside():
    rows = _features([(1, 0, 10.0), (1, 600, 20.0), (1, 1201, 30.0)])
    # t1 at +600 s sees t0 at exactly 10 minutes.
    assert (rows["t1"][c.NUM_TRANS_LAST_10M], rows["t1"][c.AVG_AMT_LAST_10M]) == (2, 15.0)
    assert rows["t1"][c.SECS_SINCE_PREV_TX] == 600
    # t2 at +1201 s is 10 min 1 s after t1: alone in its 10 minutes, all three in its week.
    assert (rows["t2"][c.NUM_TRANS_LAST_10M], rows["t2"][c.AVG_AMT_LAST_10M]) == (1, 30.0)
    assert (rows["t2"][c.NUM_TRANS_LAST_1W], rows["t2"][c.AVG_AMT_LAST_1W]) == (3, 20.0)
    assert rows["t2"][c.SECS_SINCE_PREV_TX] == 601
    assert rows["t2"][c.AMT_RATIO1] == pytest.approx(30.0 / 20.0)
    assert rows["t2"][c.AMT_RATIO2] == pytest.approx(30.0 / 20.0)
    assert rows["t2"][c.COUNT_RATIO] == pytest.approx(1 / 3)


def test_transactions_with_equal_timestamps_count_one_after_another_in_tid_order():
    # The order Flink serves (fraudstream/contract.py: "Event time and order"): peers are not seen ahead of time.
    rows = _features([(2, 300, 5.0), (2, 300, 7.0), (2, 900, 9.0)])
    assert (rows["t0"][c.NUM_TRANS_LAST_10M], rows["t0"][c.AVG_AMT_LAST_10M]) == (1, 5.0)
    assert (rows["t1"][c.NUM_TRANS_LAST_10M], rows["t1"][c.AVG_AMT_LAST_10M]) == (2, 6.0)
    assert (rows["t0"][c.SECS_SINCE_PREV_TX], rows["t1"][c.SECS_SINCE_PREV_TX]) == (CAP, 0)
    # t2 is exactly 10 minutes after both.
    assert (rows["t2"][c.NUM_TRANS_LAST_10M], rows["t2"][c.AVG_AMT_LAST_10M]) == (3, 7.0)
    assert rows["t2"][c.SECS_SINCE_PREV_TX] == 600


def test_interleaved_cards_are_aggregated_independently():
    rows = _features([(1, 0, 10.0), (2, 10, 100.0), (1, 20, 30.0), (2, 30, 300.0), (1, 40, 50.0)])
    assert [rows[t][c.NUM_TRANS_LAST_10M] for t in ("t0", "t2", "t4")] == [1, 2, 3]
    assert [rows[t][c.AVG_AMT_LAST_10M] for t in ("t0", "t2", "t4")] == [10.0, 20.0, 30.0]
    assert [rows[t][c.NUM_TRANS_LAST_10M] for t in ("t1", "t3")] == [1, 2]
    assert [rows[t][c.AVG_AMT_LAST_10M] for t in ("t1", "t3")] == [100.0, 200.0]
    assert [rows[t][c.SECS_SINCE_PREV_TX] for t in ("t0", "t2", "t4", "t1", "t3")] == [CAP, 20, 20, CAP, 20]


def test_the_1_week_window_is_the_7_utc_days_before_plus_the_day_so_far_and_the_gap_is_capped_at_a_week():
    day = 86_400
    midnight = (int(T0) // day + 1) * day - T0  # offset of the next UTC midnight after T0
    rows = _features([(3, midnight - 1, 10.0), (3, midnight + 7 * day - 1, 20.0), (3, midnight + 7 * day, 60.0),
                      (3, midnight + 8 * day + 10, 30.0)])
    # t1 is on day D+7 (D: t0's day): the 7 days before are D..D+6, t0 included
    assert (rows["t1"][c.NUM_TRANS_LAST_1W], rows["t1"][c.AVG_AMT_LAST_1W]) == (2, 15.0)
    # t2, one second later, is on day D+8: D has left the week; t1's day is in it, with t2's own day so far
    assert (rows["t2"][c.NUM_TRANS_LAST_1W], rows["t2"][c.AVG_AMT_LAST_1W]) == (2, 40.0)
    assert (rows["t3"][c.NUM_TRANS_LAST_1W], rows["t3"][c.AVG_AMT_LAST_1W]) == (3, 110 / 3)
    assert rows["t1"][c.SECS_SINCE_PREV_TX] == CAP  # a week exactly, the cap
    assert rows["t2"][c.SECS_SINCE_PREV_TX] == 1


def test_ratios_are_zero_when_the_weekly_average_is_zero():
    rows = _features([(4, 0, 0.0), (4, 60, 0.0)])
    assert (rows["t1"][c.AMT_RATIO1], rows["t1"][c.AMT_RATIO2]) == (0.0, 0.0)
    assert rows["t1"][c.COUNT_RATIO] == 1.0


def test_features_carry_the_transaction_and_every_feature_of_every_set():
    table = features.compute_features(features.connect(), transactions([(1, 0, 1.0)]))
    assert set(c.TRANSACTION_COLUMNS) | {c.TRANS_TS} | set(c.ALL_FEATURES) <= set(table.column_names)
    assert table.column(c.TRANS_TS)[0].as_py() == T0


def test_batch_aggregates_are_each_cards_day_tiles_as_of_the_cutoff_with_its_last_event_time():
    con = features.connect()
    table = features.compute_features(con, transactions([(1, 0, 10.0), (2, 5, 8.0), (1, 600, 20.0), (1, 1201, 30.05)]))
    aggregates = features.compute_batch_aggregates(con, table).to_pylist()
    cutoff = (int(T0) // 86_400 + 1) * 86_400  # the day after the newest transaction
    zeros = {**dict.fromkeys(c.DAY_COUNTS[1:], 0), **dict.fromkeys(c.DAY_SUMS[1:], 0.0)}
    assert aggregates == [
        {c.CC_NUM: 1, c.TRANS_TIME: cutoff, c.LAST_TRANS_TIME: T0 + 1201.0, **zeros,
         c.DAY_COUNTS[0]: 3, c.DAY_SUMS[0]: 60.05},
        {c.CC_NUM: 2, c.TRANS_TIME: cutoff, c.LAST_TRANS_TIME: T0 + 5.0, **zeros, c.DAY_COUNTS[0]: 1, c.DAY_SUMS[0]: 8.0},
    ]
    assert tuple(aggregates[0]) == c.BATCH_FEATURE_GROUP_COLUMNS


def test_run_writes_both_files_with_one_row_per_transaction_and_per_card(small_transactions_file, small_transactions, tmp_path):
    paths = features.run(small_transactions_file, tmp_path)
    feats, aggs = pq.read_table(paths["features"]), pq.read_table(paths["batch_aggregates"])
    assert feats.num_rows == small_transactions.num_rows
    assert aggs.num_rows == len(set(small_transactions.column(c.CC_NUM).to_pylist()))
    assert sorted(feats.column(c.TID).to_pylist()) == sorted(small_transactions.column(c.TID).to_pylist())
    # The streamed file holds the same rows as the in-memory computation.
    in_memory = features.compute_features(features.connect(), small_transactions_file)
    assert feats.sort_by([(c.TID, "ascending")]).equals(in_memory.sort_by([(c.TID, "ascending")]))


def test_a_failed_run_leaves_no_output_behind(small_transactions_file, tmp_path, monkeypatch):
    calls = []

    def copy_then_fail(con, query, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        original(con, query, path)

    original = features._copy
    monkeypatch.setattr(features, "_copy", copy_then_fail)
    with pytest.raises(OSError, match="disk full"):
        features.run(small_transactions_file, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "tx.parquet"
    pq.write_table(transactions([(1, 0, 1.0)]).drop_columns([c.AMOUNT, c.FRAUD_LABEL]), path)
    with pytest.raises(InputError, match="missing column.*amount, fraud_label"):
        features.run(path, tmp_path / "out")


def test_a_column_of_the_wrong_type_is_named(tmp_path):
    path = tmp_path / "tx.parquet"
    table = transactions([(1, 0, 1.0)])
    pq.write_table(table.set_column(2, c.CC_NUM, table.column(c.CC_NUM).cast("string")), path)
    with pytest.raises(InputError, match="cc_num has type string, expected integer"):
        features.run(path, tmp_path / "out")


def test_the_sql_has_no_unfilled_placeholder():
    for name in ("batch_features", "batch_aggregates"):
        text = features.render_sql(name)
        assert "{" not in text and "}" not in text
