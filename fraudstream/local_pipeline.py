"""The whole online path on one machine: local topics, real Flink, the two Lambda handlers.

    transactions topic (directory) --Flink (.venv-flink, flink_sql/main.py --local)--> aggregates topic
          |                                                                                |
          predict_from_features handler  <-- embedded store (SQLite) <-- aggregate_to_feature_store handler

The handlers are the Lambda modules themselves, configured through the same environment
variables as on AWS (embedded store, in-process model), and called with MSK-shaped events built
from what each topic received since the last poll, as the MSK trigger batches records.
"""

from __future__ import annotations

import base64
import importlib.util
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudstream import contract as c
from fraudstream.local_topic import LocalConsumer, LocalTopic

REPO = Path(__file__).resolve().parent.parent
FLINK_PYTHON = REPO / ".venv-flink" / "bin" / "python"
FLINK_MAIN = REPO / "flink_sql" / "main.py"
POLL_SECONDS = 0.05


def msk_event(topic: str, records: list[tuple[int, str]], partition: int = 0) -> dict:
    """An MSK trigger event for (offset, JSON line) records of one topic partition."""
    now_ms = int(time.time() * 1000)
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:local:000000000000:cluster/local/00000000-0000-0000-0000-000000000000-1",
        "records": {
            f"{topic}-{partition}": [
                {"topic": topic, "partition": partition, "offset": offset, "timestamp": now_ms,
                 "timestampType": "CREATE_TIME", "value": base64.b64encode(line.encode()).decode(), "headers": []}
                for offset, line in records
            ]
        },
    }


@dataclass
class Verdict:
    """One prediction as the predict handler logged it."""

    offset: int
    message: str
    fields: dict[str, Any]


class _VerdictCollector(logging.Handler):
    """Receives the predict handler's log records and keeps the verdicts (they carry `verdict`)."""

    def __init__(self, on_verdict: Callable[[Verdict], None]) -> None:
        super().__init__(level=logging.INFO)
        self.on_verdict = on_verdict

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "verdict"):
            fields = {k: getattr(record, k) for k in ("card", "amount", "score", "verdict", "features", "trans_ts")}
            self.on_verdict(Verdict(int(record.offset), record.getMessage(), fields))


@dataclass
class LocalPipeline:
    """Start with start(), send transactions with send(), stop with stop() (also on Ctrl-C)."""

    workdir: Path
    model_path: Path
    time_mode: str = "processing"
    on_verdict: Callable[[Verdict], None] = lambda _v: None
    log: Callable[[str], None] = lambda _m: None
    verdicts: dict[int, Verdict] = field(default_factory=dict)
    arrival: dict[int, float] = field(default_factory=dict)  # offset -> time.monotonic() of the verdict

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.transactions = LocalTopic(self.workdir / "topics" / c.TRANSACTIONS_TOPIC, c.TRANSACTIONS_TOPIC)
        self.aggregates = LocalTopic(self.workdir / "topics" / c.AGGREGATES_TOPIC, c.AGGREGATES_TOPIC)
        self.store_path = self.workdir / "online_store.sqlite"
        self.log_path = self.workdir / "logs" / "predict_from_features.jsonl"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._flink: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.aggregates_consumed = 0
        self.errors: list[BaseException] = []

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, batch_aggregates: Path | None = None, flink_timeout: float = 180) -> None:
        for directory in (self.transactions.directory, self.aggregates.directory):
            for stale in directory.iterdir():
                stale.unlink()
        self.store_path.unlink(missing_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._configure_handlers()
        if batch_aggregates is not None:
            count = load_batch_aggregates(batch_aggregates, self._aggregate_handler.STORE)
            self.log(f"loaded {count:,} cards' 1-week aggregates into {c.BATCH_FEATURE_GROUP}")
        self._start_flink(flink_timeout)
        triggers = {
            c.AGGREGATES_TOPIC: self._trigger(self.aggregates, self._aggregate_handler, self._count_aggregates),
            c.TRANSACTIONS_TOPIC: self._trigger(self.transactions, self._predict_handler),
        }
        for name, target in triggers.items():
            thread = threading.Thread(target=target, name=f"trigger-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._flink is not None and self._flink.poll() is None:
            os.killpg(self._flink.pid, signal.SIGTERM)
            try:
                self._flink.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self._flink.pid, signal.SIGKILL)
                self._flink.wait()

    def __enter__(self) -> LocalPipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- sending and waiting ----------------------------------------------------------------------

    def send(self, message: dict) -> int:
        """Send one transaction message; returns its offset."""
        self.transactions.send([message])
        offset, self.sent = self.sent, self.sent + 1
        return offset

    def send_many(self, messages: list[dict]) -> None:
        self.transactions.send(messages)
        self.sent += len(messages)

    def wait_for_verdicts(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.errors:
                raise RuntimeError("a local consumer failed") from self.errors[0]
            if self._flink is not None and self._flink.poll() is not None:
                raise RuntimeError(f"the Flink job exited with code {self._flink.returncode}; see {self._flink_log}")
            with self._lock:
                if len(self.verdicts) >= count:
                    return True
            time.sleep(POLL_SECONDS)
        return False

    # --- internals ------------------------------------------------------------------------------

    def _configure_handlers(self) -> None:
        os.environ.update(
            FEATURE_STORE_BACKEND="embedded",
            EMBEDDED_STORE_PATH=str(self.store_path),
            MODEL_BACKEND="local",
            MODEL_PATH=str(self.model_path),
            POWERTOOLS_METRICS_DISABLED="true",  # EMF is for CloudWatch; locally it would flood stdout
        )
        from fraudstream import model
        from fraudstream.telemetry import logger

        os.environ["FEATURE_SET"] = model.feature_set_of(model.load_artifact(self.model_path))
        self._aggregate_handler = _load_module(REPO / "lambdas" / "aggregate_to_feature_store" / "handler.py")
        self._predict_handler = _load_module(REPO / "lambdas" / "predict_from_features" / "handler.py")
        # JSON log records go to a file (the local CloudWatch log group); verdicts also come here.
        logger.registered_handler.setStream(open(self.log_path, "a", encoding="utf-8"))  # noqa: SIM115
        logger.addHandler(_VerdictCollector(self._record_verdict))

    def _record_verdict(self, verdict: Verdict) -> None:
        with self._lock:
            self.verdicts[verdict.offset] = verdict
            self.arrival[verdict.offset] = time.monotonic()
        self.on_verdict(verdict)

    def _start_flink(self, timeout: float) -> None:
        if not FLINK_PYTHON.exists():
            raise RuntimeError(f"{FLINK_PYTHON} is missing: run `make install` to build the Flink environment")
        self._flink_log = self.workdir / "logs" / "flink.log"
        log = open(self._flink_log, "w", encoding="utf-8")  # noqa: SIM115
        self._flink = subprocess.Popen(
            [str(FLINK_PYTHON), str(FLINK_MAIN), "--local", "--transactions", str(self.transactions.directory),
             "--aggregates", str(self.aggregates.directory), "--time-mode", self.time_mode, "--watch", "0.1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.log(f"starting Flink (local mini-cluster, {self.time_mode} time); log: {self._flink_log}")
        deadline = time.monotonic() + timeout
        ready = _load_module(FLINK_MAIN).READY_MARKER  # main.py imports pyflink only when it runs
        while ready not in self._flink_log.read_text(encoding="utf-8", errors="replace"):
            if self._flink.poll() is not None:
                raise RuntimeError(f"Flink exited with code {self._flink.returncode}; see {self._flink_log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Flink did not start within {timeout:.0f} s; see {self._flink_log}")
            time.sleep(0.2)
        time.sleep(1.0)  # the source lists the directory right after submission

    def _trigger(self, topic: LocalTopic, handler, on_batch: Callable[[int], None] = lambda _n: None):
        """What the MSK trigger does: poll the topic, hand each batch to the handler as an MSK event."""

        def run() -> None:
            consumer = LocalConsumer(topic)
            try:
                while not self._stop.is_set():
                    records = consumer.poll()
                    if not records:
                        time.sleep(POLL_SECONDS)
                        continue
                    handler.lambda_handler(msk_event(topic.name, records), _Context(topic.name))
                    on_batch(len(records))
            except BaseException as exc:  # surfaced by wait_for_verdicts
                self.errors.append(exc)

        return run

    def _count_aggregates(self, count: int) -> None:
        self.aggregates_consumed += count


@dataclass
class _Context:
    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:local"
    aws_request_id: str = "local"


def _load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"lambda_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_batch_aggregates(path: Path, store) -> int:
    """Put batch_aggregates.parquet into the batch feature group of ``store``; returns the card count."""
    from fraudstream.batch_loader import read_aggregates

    rows = read_aggregates(path)
    for row in rows:
        store.put_record(c.BATCH_FEATURE_GROUP, row)
    return len(rows)


def true_10m_counts(sent: list[dict]) -> list[int]:
    """The batch definition's 10-minute count of each sent transaction (what the online path aims at)."""
    counts = []
    for i, tx in enumerate(sent):
        counts.append(sum(1 for other in sent[: i + 1] if other[c.CC_NUM] == tx[c.CC_NUM]
                          and tx[c.TRANS_TS] - c.WINDOW_10M_SECONDS <= other[c.TRANS_TS] <= tx[c.TRANS_TS]))
    return counts

