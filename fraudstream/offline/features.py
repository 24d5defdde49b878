"""Batch features: the SQL in fraudstream/sql, run by DuckDB, ratio rule from the contract.

The same SQL text runs on Spark SQL for SageMaker Processing (offline/spark.py;
tests/unit/offline/test_batch_sql_spark.py proves both engines agree). Engines differ only in how they read the input and derive
``trans_ts`` from ``datetime``, which is each caller's job.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from fraudstream import contract as c
from fraudstream.files import atomic_path, check_parquet
from fraudstream.offline.batch_sql import render_sql

FEATURES_FILE = "features.parquet"
BATCH_AGGREGATES_FILE = "batch_aggregates.parquet"

TRANSACTIONS_SCHEMA = {
    c.TID: "string",
    c.DATETIME: "timestamp",
    c.CC_NUM: "integer",
    c.AMOUNT: "number",
    c.FRAUD_LABEL: "integer",
}


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection; output order is not needed, so let it parallelise freely."""
    con = duckdb.connect(config={"threads": threads or os.cpu_count() or 1})
    con.execute("SET preserve_insertion_order = false")
    return con


def register_transactions(con: duckdb.DuckDBPyConnection, transactions: pa.Table | str | os.PathLike) -> None:
    """Expose ``transactions`` (Arrow table or Parquet path) as the view the batch SQL reads."""
    if isinstance(transactions, pa.Table):
        con.register("transactions_input", transactions)
        source = "transactions_input"
    else:
        source = f"read_parquet('{sql_string(transactions)}')"
    con.execute(f"CREATE OR REPLACE TEMP VIEW transactions AS SELECT *, epoch(datetime) AS trans_ts FROM {source}")


def compute_features(con: duckdb.DuckDBPyConnection, transactions: pa.Table | str | os.PathLike) -> pa.Table:
    """Every transaction with its features, ordered by card, event time and tid (in memory)."""
    register_transactions(con, transactions)
    return con.sql(f"SELECT * FROM ({render_sql('batch_features')}) ORDER BY cc_num, trans_ts, tid").fetch_arrow_table()


def compute_batch_aggregates(con: duckdb.DuckDBPyConnection, features: pa.Table | str | os.PathLike,
                             cutoff_day: int | None = None) -> pa.Table:
    """Each card's 1-week record as of ``cutoff_day`` (days since 1970-01-01 UTC; default the day after the newest
    transaction): the rows of the batch feature group."""
    _register_features(con, features)
    return con.sql(f"SELECT * FROM ({render_sql('batch_aggregates', cutoff_day)}) ORDER BY cc_num").fetch_arrow_table()


def run(transactions_path: str | os.PathLike, out_dir: str | os.PathLike, progress=None) -> dict[str, Path]:
    """``fraudstream features``: stream the features to Parquet, then the batch aggregates.

    Rows of features.parquet come grouped by card in no particular order (a global sort costs
    as much as the query at seed scale); consumers that need an order sort what they read.
    """
    step = progress or (lambda _msg: None)
    check_parquet(transactions_path, TRANSACTIONS_SCHEMA)
    out = Path(out_dir)
    paths = {"features": out / FEATURES_FILE, "batch_aggregates": out / BATCH_AGGREGATES_FILE}
    con = connect()
    register_transactions(con, transactions_path)
    with atomic_path(paths["features"]) as features_tmp, atomic_path(paths["batch_aggregates"]) as aggregates_tmp:
        step(f"computing 10-minute and 1-week aggregates and ratios -> {paths['features']}")
        _copy(con, render_sql("batch_features"), features_tmp)
        step(f"computing each card's latest 1-week aggregates -> {paths['batch_aggregates']}")
        _register_features(con, features_tmp)
        _copy(con, f"SELECT * FROM ({render_sql('batch_aggregates')}) ORDER BY cc_num", aggregates_tmp)
    return paths


def _register_features(con: duckdb.DuckDBPyConnection, features: pa.Table | str | os.PathLike) -> None:
    if isinstance(features, pa.Table):
        con.register("features", features)
    else:
        con.execute(f"CREATE OR REPLACE TEMP VIEW features AS SELECT * FROM read_parquet('{sql_string(features)}')")


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    con.execute(f"COPY ({query}) TO '{sql_string(path)}' (FORMAT parquet, COMPRESSION zstd)")


def sql_string(path: str | os.PathLike) -> str:
    """A path as the body of a DuckDB string literal (quotes doubled)."""
    return str(path).replace("'", "''")


def read_batch_aggregates(path: str | os.PathLike) -> list[dict]:
    """Rows of batch_aggregates.parquet with exactly the batch group's features (what gets loaded into it)."""
    check_parquet(path, {name: "number" for name in c.BATCH_FEATURE_GROUP_COLUMNS})
    return pq.read_table(path, columns=list(c.BATCH_FEATURE_GROUP_COLUMNS)).to_pylist()
