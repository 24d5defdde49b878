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
