"""A history of transactions moved to the present, so that a replay's 1-week features are real numbers.

`make demo` replays the AWS sample's scenario now, on cards of a generated history that ended months ago: their
1-week features would be empty. Here the history moves by whole days (so every UTC day keeps its transactions)
to end at today's 00:00 UTC, and the nightly job's 1-week records are computed from it with today as cutoff, as
a nightly run at midnight would have left them (fraudstream/offline/sql/batch_aggregates.sql).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from fraudstream import contract as c
from fraudstream.files import atomic_path, check_parquet
from fraudstream.offline import features

HISTORY_FILE = "history.parquet"


def shift_days(last: datetime, now: datetime) -> int:
    """Whole days that move a history whose newest transaction is ``last`` (UTC, naive) to end before today."""
    return (now.date() - last.date()).days - 1


def present_history(transactions: str | os.PathLike, out_dir: Path, now: datetime | None = None,
                    progress=None) -> dict[str, Path]:
    """The history moved to end at today's 00:00 UTC (out_dir/history.parquet), with its features and 1-week
    records (features.parquet, batch_aggregates.parquet beside it)."""
    step = progress or (lambda _message: None)
    now = now or datetime.now(timezone.utc)
    check_parquet(transactions, features.TRANSACTIONS_SCHEMA)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = features.connect()
    source = f"read_parquet('{features.sql_string(transactions)}')"
    [(last,)] = con.execute(f"SELECT max({c.DATETIME}) FROM {source}").fetchall()
    if last is None:
        raise ValueError(f"{transactions}: no transactions")
    days = shift_days(last, now)
    path = out_dir / HISTORY_FILE
    step(f"moving the history {days:,} days forward, to end at {now:%Y-%m-%d} 00:00 UTC -> {path}")
    with atomic_path(path) as tmp:
        con.execute(f"COPY (SELECT * REPLACE ({c.DATETIME} + INTERVAL ({days}) DAY AS {c.DATETIME}) FROM {source}) "
                    f"TO '{features.sql_string(tmp)}' (FORMAT parquet, COMPRESSION zstd)")
    return {"history": path, **features.run(path, out_dir, progress)}
