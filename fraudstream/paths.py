"""Where things are in this repository: the one definition of every path the code reads or writes."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "fraudstream"
LAMBDAS = REPO / "lambdas"
FLINK_SQL = REPO / "flink_sql"
FLINK_MAIN = FLINK_SQL / "main.py"
TRAINING = REPO / "training"
PROCESSING_JOB = TRAINING / "processing_job.py"
BUILD = REPO / "build"
# Apache Flink 1.20 pins old numpy/pyarrow/Beam, so it has its own environment (the Makefile builds it).
FLINK_PYTHON = REPO / ".venv-flink" / "bin" / "python"
