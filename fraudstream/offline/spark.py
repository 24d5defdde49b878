"""The batch SQL on Spark, as SageMaker Processing runs it at scale (pyspark is imported lazily).

Only the input view differs from DuckDB: Spark derives ``trans_ts`` from ``datetime`` its own way.
"""

from __future__ import annotations

from fraudstream.offline.batch_sql import render_sql


def register_transactions(spark, transactions_df) -> None:
    """Expose a transactions DataFrame as the `transactions` view the batch SQL reads.

    The session time zone must be UTC: datetime is stored without a zone and means UTC.
    """
    transactions_df.createOrReplaceTempView("transactions_input")
    spark.sql(
        "CREATE OR REPLACE TEMP VIEW transactions AS "
        "SELECT *, unix_micros(CAST(datetime AS TIMESTAMP)) / 1000000.0D AS trans_ts FROM transactions_input"
    )


def compute_features(spark, transactions_df):
    """The features DataFrame: batch_features.sql on Spark SQL."""
    register_transactions(spark, transactions_df)
    return spark.sql(render_sql("batch_features"))


def compute_batch_aggregates(spark, features_df, cutoff_day: int | None = None):
    """The batch feature group rows: batch_aggregates.sql on Spark SQL."""
    features_df.createOrReplaceTempView("features")
    return spark.sql(render_sql("batch_aggregates", cutoff_day))
