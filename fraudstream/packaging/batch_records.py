"""The cards' 1-week records as the stack loads them into the batch feature group at deploy: JSON lines,
one record per line, which the custom resource (lambdas/stack_resources/handler.py) reads with the standard
library (no pyarrow in its function). Byte-identical for identical rows, so the CDK asset changes only when
the data does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_NAME = "batch_records.jsonl"


@dataclass(frozen=True)
class BatchRecords:
    path: Path
    count: int


def write_batch_records(rows: Sequence[Mapping[str, Any]], out_dir: str | Path) -> BatchRecords:
    """``rows`` (offline.features.read_batch_aggregates) as out_dir/batch_records.jsonl."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FILE_NAME
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(dict(row), separators=(",", ":")) + "\n")
    return BatchRecords(path, len(rows))
