"""The feature contract: one ratio rule in Python and SQL, feature sets in model order, masking."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream import contract as c

finite = st.one_of(st.just(0.0), st.floats(min_value=0.01, max_value=1e6))  # amounts and averages
counts = st.integers(min_value=0, max_value=10_000)


def test_safe_divide_is_zero_only_when_the_denominator_is_zero():
    assert c.safe_divide(3.0, 2.0) == 1.5
    assert c.safe_divide(0.0, 2.0) == 0.0
    assert c.safe_divide(3.0, 0.0) == 0.0
    assert c.safe_divide(3, 0) == 0.0
    np.testing.assert_array_equal(c.safe_divide(np.array([3.0, 1.0, 0.0]), np.array([2.0, 0.0, 4.0])), [1.5, 0.0, 0.0])


@settings(deadline=None)  # the first DuckDB query of a process takes a while
@given(st.lists(st.tuples(finite, finite, finite, counts, counts), min_size=1, max_size=50))
def test_the_sql_rendering_of_the_ratios_equals_the_python_rule(rows):
    names = (c.AMOUNT, c.AVG_AMT_LAST_10M, c.AVG_AMT_LAST_1W, c.NUM_TRANS_LAST_10M, c.NUM_TRANS_LAST_1W)
    columns = {name: np.array([row[i] for row in rows]) for i, name in enumerate(names)}
    con = duckdb.connect()
    con.register("t", pa.table(columns))
    sql = con.sql(f"SELECT {c.ratio_columns_sql()} FROM t").fetchnumpy()
    python = c.add_ratio_features(dict(columns))
    for ratio in c.RATIOS:
        np.testing.assert_allclose(sql[ratio.name], python[ratio.name], rtol=1e-12)


def test_add_ratio_features_works_on_one_transactions_plain_numbers():
    row = {c.AMOUNT: 12.0, c.AVG_AMT_LAST_10M: 6.0, c.AVG_AMT_LAST_1W: 4.0, c.NUM_TRANS_LAST_10M: 2, c.NUM_TRANS_LAST_1W: 8}
    c.add_ratio_features(row)
    assert (row[c.AMT_RATIO1], row[c.AMT_RATIO2], row[c.COUNT_RATIO]) == (1.5, 3.0, 0.25)


def test_feature_sets_are_the_design_columns_in_model_order():
    assert c.feature_names("v1") == ("amount", "amt_ratio1", "amt_ratio2", "count_ratio")
    assert c.feature_names("v2") == c.feature_names("v1") + ("num_trans_last_10m", "secs_since_prev_tx")
    assert c.DEFAULT_FEATURE_SET == "v2"
    assert set(c.ALL_FEATURES) == set(c.feature_names("v2"))


def test_an_unknown_feature_set_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown feature set 'v9' .known: v1, v2"):
        c.feature_names("v9")


def test_card_numbers_are_masked_to_first_six_and_last_four():
    assert c.mask_card(4111111111111111) == "411111******1111"
    assert c.mask_card("4000123456789010") == "400012******9010"
    assert "123456" not in c.mask_card(123456)


def test_the_contract_module_does_not_import_numpy():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(c))
    top_level_imports = {
        alias.name for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names
    } | {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert "numpy" not in top_level_imports  # it ships in Lambda assets without numpy


def _streaming(ts, count, average, prev):
    return {c.TRANS_TIME: ts, c.NUM_TRANS_LAST_10M: count, c.AVG_AMT_LAST_10M: average, c.PREV_TRANS_TIME: prev}


def _batch(ts, count, average):
    return {c.TRANS_TIME: ts, c.NUM_TRANS_LAST_1W: count, c.AVG_AMT_LAST_1W: average}


def test_online_features_do_not_count_twice_a_transaction_the_record_already_includes():
    f = c.online_features(1000.0, 30.0, _streaming(1000.0, 3, 20.0, 900.0), _batch(900.0, 5, 10.0))
    assert (f[c.NUM_TRANS_LAST_10M], f[c.AVG_AMT_LAST_10M]) == (3, 20.0)
    assert (f[c.NUM_TRANS_LAST_1W], f[c.AVG_AMT_LAST_1W]) == (6, 80.0 / 6)
    assert f[c.SECS_SINCE_PREV_TX] == 100.0  # from the record's prev_trans_time


def test_online_features_fold_the_current_transaction_into_a_record_that_stops_before_it():
    f = c.online_features(1000.0, 30.0, _streaming(900.0, 2, 15.0, 850.0), None)
    assert (f[c.NUM_TRANS_LAST_10M], f[c.AVG_AMT_LAST_10M]) == (3, 20.0)
    assert (f[c.NUM_TRANS_LAST_1W], f[c.AVG_AMT_LAST_1W]) == (1, 30.0)  # no batch record: from nothing
    assert f[c.SECS_SINCE_PREV_TX] == 100.0


def test_online_features_start_the_10_minute_window_from_nothing_when_the_record_is_stale():
    f = c.online_features(2000.0, 30.0, _streaming(1399.0, 4, 50.0, 1300.0), _batch(1399.0, 10, 40.0))
    assert (f[c.NUM_TRANS_LAST_10M], f[c.AVG_AMT_LAST_10M]) == (1, 30.0)
    assert f[c.SECS_SINCE_PREV_TX] == 601.0
    assert f[c.COUNT_RATIO] == pytest.approx(1 / 11)


def test_online_features_fold_in_earlier_transactions_of_the_same_batch_newer_than_the_record():
    f = c.online_features(1000.0, 40.0, _streaming(800.0, 1, 10.0, None), _batch(800.0, 1, 10.0),
                          earlier=[(700.0, 99.0), (850.0, 20.0), (900.0, 30.0)])
    # 700 is older than the record (already in it, or out of the window): not folded again.
    assert (f[c.NUM_TRANS_LAST_10M], f[c.AVG_AMT_LAST_10M]) == (4, 25.0)
    assert (f[c.NUM_TRANS_LAST_1W], f[c.AVG_AMT_LAST_1W]) == (4, 25.0)
    assert f[c.SECS_SINCE_PREV_TX] == 100.0


def test_a_record_scored_late_never_makes_the_gap_negative_or_zero_by_itself():
    # The predict path is behind: the record already holds a newer transaction of the card.
    f = c.online_features(1000.0, 30.0, _streaming(1100.0, 3, 20.0, 1000.0), _batch(500.0, 2, 10.0))
    assert f[c.SECS_SINCE_PREV_TX] == 500.0  # from the batch record, the latest known before
