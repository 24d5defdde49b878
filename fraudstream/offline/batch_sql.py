"""The batch SQL text with its placeholders filled from the contract: pure Python, no engine.

Kept apart from features.py (DuckDB) so the Spark job on SageMaker Processing imports it without
DuckDB or pyarrow (training/processing_job.py).
"""

from __future__ import annotations

from importlib import resources

from fraudstream import contract as c


def render_sql(name: str) -> str:
    """The text of ``fraudstream/offline/sql/<name>.sql`` with its placeholders filled from the contract."""
    text = resources.files("fraudstream.offline").joinpath(f"sql/{name}.sql").read_text(encoding="utf-8")
    return text.format(
        num_trans_last_10m=c.NUM_TRANS_LAST_10M,
        avg_amt_last_10m=c.AVG_AMT_LAST_10M,
        num_trans_last_1w=c.NUM_TRANS_LAST_1W,
        avg_amt_last_1w=c.AVG_AMT_LAST_1W,
        secs_since_prev_tx=c.SECS_SINCE_PREV_TX,
        trans_time=c.TRANS_TIME,
        secs_cap=f"{float(c.SECS_SINCE_PREV_TX_CAP)!r}",
        window_10m=c.WINDOW_10M_SECONDS,
        window_1w=c.WINDOW_1W_SECONDS,
        ratio_columns=c.ratio_columns_sql(),
    )
