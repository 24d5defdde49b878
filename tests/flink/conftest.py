"""Real Apache Flink 1.20 (PyFlink mini-cluster) from its own environment, .venv-flink."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fraudstream.paths import FLINK_MAIN as MAIN
from fraudstream.paths import FLINK_PYTHON


def flink_command(*args: str) -> list[str]:
    if not FLINK_PYTHON.exists():
        pytest.fail(f"{FLINK_PYTHON} is missing: `make test` builds it (make .venv-flink/.installed)")
    return [str(FLINK_PYTHON), str(MAIN), *args]


def run_local_job(transactions_dir: Path, aggregates_dir: Path, mode: str = "event") -> list[dict]:
    """Run the aggregation once over a directory of transaction files; return the aggregate messages."""
    result = subprocess.run(
        flink_command("--local", "--transactions", str(transactions_dir), "--aggregates", str(aggregates_dir),
                      "--time-mode", mode),
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return read_messages(aggregates_dir)


def read_messages(directory: Path) -> list[dict]:
    """Every committed aggregate (Flink writes in-progress files under hidden names)."""
    if not directory.exists():
        return []
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
    return [json.loads(line) for path in files for line in path.read_text().splitlines() if line.strip()]
