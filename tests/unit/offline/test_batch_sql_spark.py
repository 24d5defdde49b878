"""The batch SQL text runs unchanged on Spark SQL (SageMaker Processing) and agrees with DuckDB."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from fraudstream import contract as c
from fraudstream.files import write_parquet
from fraudstream.offline import features
from fraudstream.offline import spark as spark_sql
from fraudstream.offline.generate import generate
from fraudstream.offline.generate_config import GeneratorConfig

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """20,000 transactions on 50 cards, fraud chains included, plus a few equal timestamps."""
    table = generate(GeneratorConfig(cards=50, transactions=20_000, fraud_ratio=0.01, seed=21))
    path = tmp_path_factory.mktemp("spark") / "transactions.parquet"
    write_parquet(table, path)
    return path


def test_spark_and_duckdb_compute_the_same_value_in_every_column(spark, sample, tmp_path):
    expected = features.compute_features(features.connect(), sample).to_pandas()
    spark_features = spark_sql.compute_features(spark, spark.read.parquet(str(sample)))
    spark_features.write.parquet(str(tmp_path / "features"))
    actual = pq.read_table(tmp_path / "features").to_pandas()

    assert sorted(actual.columns) == sorted(expected.columns)
    assert len(actual) == len(expected) == 20_000
    actual = actual.sort_values(c.TID).reset_index(drop=True)
    expected = expected.sort_values(c.TID).reset_index(drop=True)
    for column in expected.columns:
        if np.issubdtype(expected[column].dtype, np.floating):
            np.testing.assert_allclose(actual[column], expected[column], rtol=1e-9, err_msg=column)
        else:
            assert (actual[column].to_numpy() == expected[column].to_numpy()).all(), column


@pytest.mark.parametrize("cutoff_day", [None, "last"], ids=["the day after the newest", "the newest day"])
def test_spark_and_duckdb_compute_the_same_batch_aggregates(spark, sample, tmp_path, cutoff_day):
    con = features.connect()
    duck_features = features.compute_features(con, sample)
    if cutoff_day == "last":  # an explicit cutoff, as the nightly job passes: the newest day's transactions left out
        cutoff_day = int(max(duck_features.column(c.TRANS_TS).to_pylist()) // 86_400)
    expected = features.compute_batch_aggregates(con, duck_features, cutoff_day).to_pandas()
    spark_features = spark_sql.compute_features(spark, spark.read.parquet(str(sample)))
    spark_sql.compute_batch_aggregates(spark, spark_features, cutoff_day).write.parquet(str(tmp_path / "aggregates"))
    actual = pq.read_table(tmp_path / "aggregates").to_pandas().sort_values(c.CC_NUM).reset_index(drop=True)

    assert list(actual.columns) == list(c.BATCH_FEATURE_GROUP_COLUMNS)
    for name in c.BATCH_FEATURE_GROUP_COLUMNS:  # counts, cent sums and times: equal, not close
        assert (actual[name].to_numpy() == expected[name].to_numpy()).all(), name
