"""1-week records of the batch group, as `fraudstream features` writes them to batch_aggregates.parquet."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fraudstream import contract as c


def aggregates(cards: int) -> list[dict]:
    """``cards`` records, each card's values different from the others'."""
    return [{c.CC_NUM: 4000_0000_0000_0000 + i, c.TRANS_TIME: 1_652_572_800.0, c.LAST_TRANS_TIME: 1_652_572_000.0 + i,
             **{name: i % 7 + 1 for name in c.DAY_COUNTS}, **{name: 10.5 + i for name in c.DAY_SUMS}}
            for i in range(cards)]


def write_aggregates(path: Path, cards: int) -> Path:
    pq.write_table(pa.Table.from_pylist(aggregates(cards)), path)
    return path
