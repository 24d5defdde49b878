"""The Flink job on one machine: flink_sql/main.py in a local mini-cluster, in its own environment.

It runs in .venv-flink (Apache Flink 1.20 pins old numpy and pyarrow), in its own process group, so
stopping it stops the JVM it starts too. Its output goes to a log file; readiness is the line main.py
prints once the job is submitted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from fraudstream.packaging.flink_app import entry_point
from fraudstream.paths import FLINK_MAIN, FLINK_PYTHON

WATCH_SECONDS = 0.1  # how often the job looks for new transaction files


class FlinkJob:
    def __init__(self, transactions_dir: Path, aggregates_dir: Path, log_path: Path, time_mode: str,
                 log: Callable[[str], None] = lambda _m: None) -> None:
        self.transactions_dir, self.aggregates_dir = transactions_dir, aggregates_dir
        self.log_path, self.time_mode, self.log = log_path, time_mode, log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float) -> None:
        """Start the job and wait until it is submitted; a clear error if it exits or takes too long."""
        if not FLINK_PYTHON.exists():
            raise RuntimeError(f"{FLINK_PYTHON} is missing: run `make install` to build the Flink environment")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [str(FLINK_PYTHON), str(FLINK_MAIN), "--local", "--transactions", str(self.transactions_dir),
                 "--aggregates", str(self.aggregates_dir), "--time-mode", self.time_mode, "--watch", str(WATCH_SECONDS)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.log(f"starting Flink (local mini-cluster, {self.time_mode} time); log: {self.log_path}")
        deadline = time.monotonic() + timeout
        while entry_point().READY_MARKER not in self.log_path.read_text(encoding="utf-8", errors="replace"):
            self.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"Flink did not start within {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.2)
        time.sleep(1.0)  # the source lists the directory right after submission

    def check(self) -> None:
        """Raise if the job has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the Flink job exited with code {self.process.returncode}; see {self.log_path}")

    def stop(self, grace: float = 20) -> None:
        """Stop the job's whole process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
