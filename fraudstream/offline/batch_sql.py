"""The batch SQL text with its placeholders filled from the contract: pure Python, no engine.

Kept apart from features.py (DuckDB) so the Spark job on SageMaker Processing imports it without
DuckDB or pyarrow (training/processing_job.py).
"""

from __future__ import annotations

from importlib import resources

from fraudstream import contract as c


def render_sql(name: str, cutoff_day: int | None = None) -> str:
    """The text of ``fraudstream/offline/sql/<name>.sql`` with its placeholders filled from the contract
    (``cutoff_day``: batch_aggregates' cutoff, days since 1970-01-01 UTC; default the day after the newest)."""
    text = resources.files("fraudstream.offline").joinpath(f"sql/{name}.sql").read_text(encoding="utf-8")
    return text.format(
        cutoff="SELECT MAX(dated.day) + 1 AS day FROM dated" if cutoff_day is None
        else f"SELECT CAST({int(cutoff_day)} AS BIGINT) AS day",
        seconds_per_day=c.SECONDS_PER_DAY,
        last_trans_time=c.LAST_TRANS_TIME,
        day_tiles=",\n    ".join(
            [f"CAST(SUM(CASE WHEN dated.day = cutoff.day - {k} THEN 1 ELSE 0 END) AS BIGINT) AS {name}"
             for k, name in enumerate(c.DAY_COUNTS, start=1)]
            + [f"CAST(SUM(CASE WHEN dated.day = cutoff.day - {k} THEN dated.cents ELSE 0 END) AS DOUBLE) AS {name}"
               for k, name in enumerate(c.DAY_SUMS, start=1)]),
        num_trans_last_10m=c.NUM_TRANS_LAST_10M,
        avg_amt_last_10m=c.AVG_AMT_LAST_10M,
        num_trans_last_1w=c.NUM_TRANS_LAST_1W,
        avg_amt_last_1w=c.AVG_AMT_LAST_1W,
        secs_since_prev_tx=c.SECS_SINCE_PREV_TX,
        trans_time=c.TRANS_TIME,
        secs_cap=f"{float(c.SECS_SINCE_PREV_TX_CAP)!r}",
        window_10m_ms=c.WINDOW_10M_SECONDS * 1000,
        ms=c.event_ms_sql("transactions.trans_ts"),
        day=f"CAST(FLOOR({c.event_ms_sql('transactions.trans_ts')} / {c.MS_PER_DAY}) AS BIGINT)",
        cents="CAST(transactions.amount AS DECIMAL(12, 2))",
        window_1w=c.WINDOW_1W_SECONDS,
        ratio_columns=c.ratio_columns_sql(),
    )
