"""The whole online path on one machine: local topics, real Flink, the two Lambda handlers.

    transactions topic (directory) --Flink (.venv-flink, flink_sql/main.py --local)--> aggregates topic
          |                                                                                |
          predict_from_features handler  <-- embedded store (SQLite) <-- aggregate_to_feature_store handler

The handlers are the Lambda modules themselves (local/lambda_runtime.py), configured through the same
environment variables as on AWS (embedded store, in-process model), and called with MSK-shaped events
built from what each topic received since the last poll, as the MSK trigger batches records.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from fraudstream import contract as c
from fraudstream.local.flink import FlinkJob
from fraudstream.local.lambda_runtime import (
    LambdaContext,
    environment,
    load_handler,
    msk_event,
    msk_record,
)
from fraudstream.local.topics import LocalConsumer, LocalTopic
from fraudstream.offline import model_artifact
from fraudstream.offline.features import read_batch_aggregates
from fraudstream.online import settings
from fraudstream.online.stores import OnlineStore
from fraudstream.online.telemetry import logger
from fraudstream.online.verdict import UnreadableVerdict, Verdict

POLL_SECONDS = 0.05
AGGREGATE_HANDLER, PREDICT_HANDLER = "aggregate_to_feature_store", "predict_from_features"
# EMF metrics are for CloudWatch; locally they would flood stdout. Set while the pipeline runs.
PIPELINE_ENVIRONMENT = {"POWERTOOLS_METRICS_DISABLED": "true"}


class VerdictCollector(logging.Handler):
    """Receives the predict handler's log records and passes on the verdicts (the records that carry one)."""

    def __init__(self, on_verdict: Callable[[Verdict], None]) -> None:
        super().__init__(level=logging.INFO)
        self.on_verdict = on_verdict

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "verdict"):
            try:
                self.on_verdict(Verdict.from_log(vars(record)))
            except UnreadableVerdict:
                self.handleError(record)


def handler_environment(store_path: Path, model_path: Path, feature_set: str) -> dict[str, str]:
    """The handlers' environment variables on this machine: embedded store, in-process model."""
    return {
        settings.ENV_STORE_BACKEND: "embedded",
        settings.ENV_EMBEDDED_STORE_PATH: str(store_path),
        settings.ENV_MODEL_BACKEND: "local",
        settings.ENV_MODEL_PATH: str(model_path),
        settings.ENV_FEATURE_SET: feature_set,
    }


def load_batch_aggregates(path: Path, store: OnlineStore) -> int:
    """Put batch_aggregates.parquet into the batch feature group of ``store``; returns the card count."""
    rows = read_batch_aggregates(path)
    for row in rows:
        store.put_record(c.BATCH_FEATURE_GROUP, row)
    return len(rows)


class LocalPipeline:
    """Start with start(), send transactions with send(), stop with stop() (also on Ctrl-C)."""

    def __init__(self, workdir: Path, model_path: Path, time_mode: str = "processing",
                 on_verdict: Callable[[Verdict], None] = lambda _v: None, log: Callable[[str], None] = lambda _m: None):
        self.workdir, self.model_path, self.time_mode = Path(workdir), Path(model_path), time_mode
        self.on_verdict, self.log = on_verdict, log
        self.transactions = LocalTopic(self.workdir / "topics" / c.TRANSACTIONS_TOPIC, c.TRANSACTIONS_TOPIC)
        self.aggregates = LocalTopic(self.workdir / "topics" / c.AGGREGATES_TOPIC, c.AGGREGATES_TOPIC)
        self.store_path = self.workdir / "online_store.sqlite"
        self.log_path = self.workdir / "logs" / "predict_from_features.jsonl"
        self.flink = FlinkJob(self.transactions.directory, self.aggregates.directory,
                              self.workdir / "logs" / "flink.log", time_mode, log)
        self.verdicts: dict[int, Verdict] = {}  # offset -> verdict
        self.arrival: dict[int, float] = {}  # offset -> time.monotonic() of the verdict
        self.sent = 0
        self.aggregates_consumed = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._cleanup = contextlib.ExitStack()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, batch_aggregates: Path | None = None, flink_timeout: float = 180) -> None:
        self._reset_workdir()
        self._cleanup.enter_context(environment(PIPELINE_ENVIRONMENT))
        handlers = self._load_handlers()
        if batch_aggregates is not None:
            count = load_batch_aggregates(batch_aggregates, handlers[AGGREGATE_HANDLER].STORE)
            self.log(f"loaded {count:,} cards' 1-week aggregates into {c.BATCH_FEATURE_GROUP}")
        self.flink.start(flink_timeout)
        for topic, handler, counted in ((self.aggregates, handlers[AGGREGATE_HANDLER], True),
                                        (self.transactions, handlers[PREDICT_HANDLER], False)):
            thread = threading.Thread(target=self._trigger, args=(topic, handler, counted),
                                      name=f"trigger-{topic.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.flink.stop()
        self._cleanup.close()

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
            self.flink.check()
            with self._lock:
                if len(self.verdicts) >= count:
                    return True
            time.sleep(POLL_SECONDS)
        return False

    # --- internals ------------------------------------------------------------------------------

    def _reset_workdir(self) -> None:
        for directory in (self.transactions.directory, self.aggregates.directory):
            for stale in directory.iterdir():
                stale.unlink()
        self.store_path.unlink(missing_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

    def _load_handlers(self) -> dict[str, ModuleType]:
        feature_set = model_artifact.feature_set_of(model_artifact.load_artifact(self.model_path))
        env = handler_environment(self.store_path, self.model_path, feature_set)
        handlers = {name: load_handler(name, env) for name in (AGGREGATE_HANDLER, PREDICT_HANDLER)}
        # JSON log records go to a file (the local CloudWatch log group); verdicts also come here.
        log_file = self._cleanup.enter_context(open(self.log_path, "a", encoding="utf-8"))
        previous = logger.registered_handler.setStream(log_file)
        self._cleanup.callback(logger.registered_handler.setStream, previous)
        collector = VerdictCollector(self._record_verdict)
        logger.addHandler(collector)
        self._cleanup.callback(logger.removeHandler, collector)
        return handlers

    def _record_verdict(self, verdict: Verdict) -> None:
        with self._lock:
            self.verdicts[verdict.offset] = verdict
            self.arrival[verdict.offset] = time.monotonic()
        self.on_verdict(verdict)

    def _trigger(self, topic: LocalTopic, handler: ModuleType, counted: bool) -> None:
        """What the MSK trigger does: poll the topic, hand each batch to the handler as an MSK event."""
        consumer = LocalConsumer(topic)
        context = LambdaContext(function_name=topic.name)
        try:
            while not self._stop.is_set():
                records = consumer.poll()
                if not records:
                    time.sleep(POLL_SECONDS)
                    continue
                now_ms = int(time.time() * 1000)
                event = msk_event(msk_record(topic.name, 0, offset, line.encode(), timestamp_ms=now_ms)
                                  for offset, line in records)
                handler.lambda_handler(event, context)
                if counted:
                    self.aggregates_consumed += len(records)
        except BaseException as exc:  # surfaced by wait_for_verdicts
            self.errors.append(exc)
