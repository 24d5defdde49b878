"""A local run's verdict log (fraudstream/local/workdir.py: WorkDir.verdict_log) read as CloudWatch events, so
that `fraudstream logs --local` shows it as it shows a deployed stack's log group."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from fraudstream import contract as c

# Powertools' record time: "2026-12-02 15:55:46,447+0000".
POWERTOOLS_TIME_FORMAT = "%Y-%m-%d %H:%M:%S,%f%z"


def local_events(path: Path, start_ms: int | None = None, end_ms: int | None = None) -> Iterator[dict[str, Any]]:
    """The lines of a local run's verdict log as CloudWatch events (message, timestamp when logged, eventId the
    line number), those logged in [start_ms, end_ms] when given; a line whose time cannot be read is kept only
    without a range (the viewer then counts it as malformed or shows it by its transaction time)."""
    if not path.is_file():
        return
    ranged = start_ms is not None or end_ms is not None
    with open(path, encoding="utf-8", errors="replace") as log:
        for number, line in enumerate(log, start=1):
            if not line.strip():
                continue
            logged = _logged_ms(line) if ranged else None  # the whole log: no line is parsed twice
            if ranged and (logged is None or (start_ms is not None and logged < start_ms)
                           or (end_ms is not None and logged > end_ms)):
                continue
            yield {"message": line, "timestamp": logged if logged is not None else 0, "eventId": str(number)}


def _logged_ms(line: str) -> int | None:
    try:
        record = json.loads(line)
        return c.event_ms(datetime.strptime(record["timestamp"], POWERTOOLS_TIME_FORMAT).timestamp())
    except (ValueError, KeyError, TypeError):
        return None
