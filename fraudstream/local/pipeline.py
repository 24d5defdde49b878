"""The whole online path on one machine: a real Kafka broker, real Flink, the two Lambda handlers.

    producer --> cc-transactions --(Flink, the application zip)--> cc-transaction-features --> trigger --> aggregate
                                                           |                         |                    handler
                                                           v                         v                       |
                                              cc-invalid-transactions --trigger--> predict handler <-- 1-week  v
                                                                                   (verdicts)     records  embedded
                                                                                                           store

The broker (local/broker.py) runs in the work directory with the stack's partition count; the handlers are
the Lambda modules themselves (local/lambda_runtime.py) configured by the same environment variables as
on AWS (embedded store, in-process model) and fed by local/trigger.py as the MSK trigger feeds them. One
pipeline per work directory: a second one on the same directory stops at once. Everything it starts
stops with it, also on Ctrl-C, SIGTERM, a closed terminal, or if this process dies (local/processes.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from fraudstream import archive
from fraudstream import contract as c
from fraudstream.contract import RecordRef
from fraudstream.flink_properties import EventTime
from fraudstream.local.broker import KafkaBroker
from fraudstream.local.flink import FlinkJob
from fraudstream.local.handlers import (
    AGGREGATE_HANDLER,
    PREDICT_HANDLER,
    VerdictCollector,
    load_batch_aggregates,
    load_handlers,
    route_logs,
)
from fraudstream.local.lambda_runtime import environment, invoker
from fraudstream.local.trigger import Trigger
from fraudstream.local.workdir import RunRecord, WorkDir
from fraudstream.offline import model_artifact
from fraudstream.online import settings
from fraudstream.online.verdict import Verdict

POLL_SECONDS = 0.05
# The MSK triggers, as the stack has them (stacks/handlers.py): name -> the handler it feeds, and its settings.
AGGREGATE_TRIGGER, PREDICT_TRIGGER, INVALID_TRIGGER = "aggregate", "predict", "invalid"
TRIGGERS = {AGGREGATE_TRIGGER: AGGREGATE_HANDLER, PREDICT_TRIGGER: PREDICT_HANDLER, INVALID_TRIGGER: PREDICT_HANDLER}
DEFAULT_TRIGGERS = {AGGREGATE_TRIGGER: settings.AGGREGATE_TRIGGER, PREDICT_TRIGGER: settings.PREDICT_TRIGGER,
                    INVALID_TRIGGER: settings.INVALID_TRIGGER}
# EMF metrics are for CloudWatch; locally they would flood stdout. Set while the pipeline runs.
PIPELINE_ENVIRONMENT = {"POWERTOOLS_METRICS_DISABLED": "true"}
# Clients of kafka.t3.small MSK brokers should back off reconnects (docs/deploy-reference.md: brokerInstanceType); the same here.
PRODUCER_OPTIONS = {"acks": "all", "retries": 10, "linger_ms": 5, "reconnect_backoff_ms": 100,
                    "reconnect_backoff_max_ms": 2000, "max_in_flight_requests_per_connection": 1}


@dataclass(frozen=True)
class PipelineOptions:
    """How a local run differs from the stack's defaults; the defaults are the stack's."""

    triggers: dict[str, settings.TriggerSettings] | None = None  # trigger name (TRIGGERS) -> settings replacing its own
    flink_hung_seconds: float | None = None  # Flink's watchdog limit (None: local/flink.py's default)
    archive_transactions: bool = True  # keep every transaction Flink read, as the stack does on S3
    history: Path | None = None  # the transactions before the run, recorded for `fraudstream consistency`
    event_time: EventTime = EventTime()  # the job's out-of-orderness and tick delay, as the stack's context sets them
    feature_set: str | None = None  # the model's, when the caller has checked it already (else read at start)


class Collected(NamedTuple):
    """A copy of what the pipeline collected, taken under its lock."""

    verdicts: dict[RecordRef, Verdict]
    arrival: dict[RecordRef, float]  # time.monotonic() of each transaction's first verdict
    refusals: dict[RecordRef, str]  # why the predict handler gave a transaction no verdict


class LocalPipeline:
    """Start with start(), send transactions with send(), stop with stop() (also on Ctrl-C)."""

    def __init__(self, workdir: Path, model_path: Path, options: PipelineOptions = PipelineOptions(),
                 on_verdict: Callable[[Verdict], None] = lambda _v: None, log: Callable[[str], None] = lambda _m: None):
        self.files = WorkDir(workdir)
        self.feature_set = options.feature_set
        self.workdir, self.model_path = self.files.root, Path(model_path).resolve()
        self.on_verdict, self.log = on_verdict, log
        # Trigger name -> its settings; TRIGGERS says which handler each feeds (``options.triggers`` replaces some).
        self.trigger_settings = {**DEFAULT_TRIGGERS, **(options.triggers or {})}
        self.store_path, self.logs, self.failure_dir = self.files.store, self.files.logs, self.files.failed
        self.verdict_log, self.handler_log = self.files.verdict_log, self.files.handler_log
        self.archive_dir = self.files.archive if options.archive_transactions else None
        self.history = Path(options.history).resolve() if options.history else None
        self.broker = KafkaBroker(self.files.kafka, self.logs, partitions=c.TOPIC_PARTITIONS, log=log)
        self.flink = FlinkJob(self.files.flink, self.logs / "flink.log", self.broker.bootstrap, log,
                              archive_dir=self.archive_dir, event_time=options.event_time,
                              **({"hung_seconds": options.flink_hung_seconds} if options.flink_hung_seconds else {}))
        self.verdicts: dict[RecordRef, Verdict] = {}
        self.arrival: dict[RecordRef, float] = {}  # key -> time.monotonic() of its first verdict
        self.refusals: dict[RecordRef, str] = {}  # why the predict handler gave a transaction no verdict
        self.duplicates = 0  # verdicts for a transaction that already had one (the trigger is at-least-once)
        self.triggers: dict[str, Trigger] = {}
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._cleanup = contextlib.ExitStack()
        self._producer: KafkaProducer | None = None
        self._raw_producer: KafkaProducer | None = None
        self._handlers: dict[str, ModuleType] = {}
        self._archived_files: dict[Path, set[RecordRef]] = {}  # committed archive files read, and what they hold
        self.batch_loads: list[str] = []  # the copies of the 1-week records loaded, in order (the run record lists them)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, batch_aggregates: Path | None = None, flink_timeout: float = 180) -> None:
        """Start the broker, the triggers and Flink; on any failure, stop what already started."""
        self._cleanup.enter_context(self.files.held())
        try:
            self._start(batch_aggregates, flink_timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, batch_aggregates: Path | None, flink_timeout: float) -> None:
        self._reset_workdir()
        self._cleanup.enter_context(environment(PIPELINE_ENVIRONMENT))
        # Both functions share this process's one Metrics object (on Lambda each has its own process), so one
        # may find the set the other just published empty; Powertools warns about that, which means nothing here.
        self._cleanup.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
        self.broker.start()
        self.broker.create_topics([c.TRANSACTIONS_TOPIC, c.TRANSACTION_FEATURES_TOPIC, c.INVALID_TRANSACTIONS_TOPIC,
                                   c.VERDICTS_TOPIC])
        self._handlers = self._load_handlers()  # the predict handler writes to the broker's verdicts topic
        self._write_run_file()
        if batch_aggregates is not None:
            self.load_batch(batch_aggregates)
        self._producer = KafkaProducer(bootstrap_servers=self.broker.bootstrap, client_id="fraudstream-local",
                                       key_serializer=lambda card: str(card).encode(),
                                       value_serializer=lambda m: json.dumps(m, separators=(",", ":")).encode(),
                                       **PRODUCER_OPTIONS)
        for name, trigger_settings in self.trigger_settings.items():
            trigger = Trigger(TRIGGERS[name], invoker(self._handlers[TRIGGERS[name]]), trigger_settings,
                              self.broker.bootstrap, self.failure_dir)
            self.triggers[name] = trigger
            thread = threading.Thread(target=self._run_trigger, args=(trigger,), name=f"trigger-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.flink.start(flink_timeout)
        for trigger in self.triggers.values():
            if not trigger.ready.wait(60):
                raise RuntimeError(f"the {trigger.function_name} trigger got no partitions of {trigger.settings.topic} "
                                   f"within 60 s; see {self.logs}")

    def stop(self) -> None:
        """Stop the processes and triggers first, then give back the logger, environment and work directory."""
        self._stop_everything()
        self._cleanup.close()

    def __enter__(self) -> LocalPipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- sending and waiting ----------------------------------------------------------------------

    def send(self, message: dict, timeout: float = 30) -> RecordRef:
        """Send one transaction message, keyed by its card; returns its place once delivered."""
        metadata = self._producer.send(c.TRANSACTIONS_TOPIC, key=message[c.CC_NUM], value=message).get(timeout=timeout)
        return RecordRef(metadata.topic, metadata.partition, metadata.offset)

    def send_raw(self, value: bytes | None, key: bytes = b"0", timeout: float = 30) -> RecordRef:
        """Send a record as it is (any bytes, or none): how tests and benchmarks send what nobody can score."""
        if self._raw_producer is None:
            self._raw_producer = KafkaProducer(bootstrap_servers=self.broker.bootstrap, client_id="fraudstream-local-raw",
                                               **PRODUCER_OPTIONS)
        metadata = self._raw_producer.send(c.TRANSACTIONS_TOPIC, key=key, value=value).get(timeout=timeout)
        return RecordRef(metadata.topic, metadata.partition, metadata.offset)

    def send_many(self, messages: list[dict], timeout: float = 120) -> list[RecordRef]:
        futures = [self._producer.send(c.TRANSACTIONS_TOPIC, key=m[c.CC_NUM], value=m) for m in messages]
        self._producer.flush(timeout=timeout)
        return [RecordRef(meta.topic, meta.partition, meta.offset) for meta in (f.get(timeout=timeout) for f in futures)]

    def results(self) -> Collected:
        """What the handlers gave so far, consistent (their threads add to it while the pipeline runs)."""
        with self._lock:
            return Collected(dict(self.verdicts), dict(self.arrival), dict(self.refusals))

    def wait_for_verdicts(self, count: int, timeout: float) -> bool:
        """Until ``count`` transactions have a verdict; raises when a part of the pipeline failed for good."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            with self._lock:
                if len(self.verdicts) >= count:
                    return True
            time.sleep(POLL_SECONDS)
        return False

    def check(self) -> None:
        if self.errors:
            raise RuntimeError("a local trigger failed") from self.errors[0]
        self.flink.check()
        if not self.broker.running:
            raise RuntimeError(f"the Kafka broker stopped; see {self.logs / 'kafka.log'}")

    def load_batch(self, path: Path) -> int:
        """Load 1-week records into the batch feature group, as the nightly run does on AWS (at start, or while
        running); a copy stays in the work directory for `fraudstream consistency`. Returns the card count."""
        count = load_batch_aggregates(path, self._handlers[AGGREGATE_HANDLER].STORE)
        copy = self.files.loaded_batch(len(self.batch_loads) + 1)
        shutil.copyfile(path, copy)
        self.batch_loads.append(copy.name)
        self._write_run_file()
        self.log(f"loaded {count:,} cards' 1-week aggregates into {c.BATCH_FEATURE_GROUP}")
        return count

    def archived(self) -> set[RecordRef]:
        """The places of the transactions in committed archive files. A committed file never changes,
        so each is read once."""
        for path in archive.data_files(self.archive_dir) if self.archive_dir else ():
            if path not in self._archived_files:
                rows, _ = archive.parse_lines(path.read_text(encoding="utf-8").splitlines(), str(path))
                self._archived_files[path] = {r.key for r in rows if r.topic == c.TRANSACTIONS_TOPIC}
        return set().union(*self._archived_files.values())

    def wait_for_archive(self, keys: list[RecordRef], timeout: float) -> int:
        """Until every transaction of ``keys`` is in a committed archive file (Flink commits each second locally);
        returns how many are not. Valid transactions only reach the archive: pass those."""
        deadline, wanted = time.monotonic() + timeout, set(keys)
        while True:
            self.check()
            missing = len(wanted - self.archived())
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.5)

    def verdicts_on_topic(self) -> int:
        """How many records the verdicts topic holds: one per transaction the predict handler scored."""
        consumer = KafkaConsumer(bootstrap_servers=self.broker.bootstrap, client_id="fraudstream-local-count",
                                 enable_auto_commit=False)
        try:
            partitions = [TopicPartition(c.VERDICTS_TOPIC, p) for p in consumer.partitions_for_topic(c.VERDICTS_TOPIC) or ()]
            return sum(consumer.end_offsets(partitions).values())
        finally:
            consumer.close()

    @property
    def aggregates_consumed(self) -> int:
        """Features messages the aggregate handler has taken (one per transaction Flink emitted)."""
        trigger = self.triggers.get(AGGREGATE_TRIGGER)
        return trigger.records if trigger else 0

    # --- internals ------------------------------------------------------------------------------

    def _reset_workdir(self) -> None:
        """A fresh run: the previous run's topics, store, checkpoints, failed batches and logs go."""
        self.files.clear_run()
        handler = logging.FileHandler(self.files.trigger_log, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        trigger_log = logging.getLogger("fraudstream.local.trigger")
        trigger_log.addHandler(handler)
        trigger_log.propagate = False
        self._cleanup.callback(trigger_log.removeHandler, handler)
        self._cleanup.callback(handler.close)

    def _load_handlers(self) -> dict[str, ModuleType]:
        feature_set = self.feature_set or model_artifact.feature_set_of(model_artifact.load_artifact(self.model_path))
        handlers = load_handlers(self.store_path, self.model_path, feature_set, self.broker.bootstrap)
        route_logs(self._cleanup, self.verdict_log, self.handler_log,
                   VerdictCollector(self._record_verdict, self._record_refusal))
        return handlers

    @property
    def predict_settings(self) -> settings.PredictSettings:
        """The settings the predict handler runs with (feature set and threshold from the model and environment)."""
        return self._handlers[PREDICT_HANDLER].SETTINGS

    def _write_run_file(self) -> None:
        predict_settings = self.predict_settings
        self.files.write_run(RunRecord(model=self.model_path, feature_set=predict_settings.feature_set,
                                       threshold=predict_settings.threshold, batch_aggregates=tuple(self.batch_loads),
                                       archived=self.archive_dir is not None, history=self.history))

    def _record_verdict(self, verdict: Verdict) -> None:
        key = verdict.place()
        with self._lock:
            if key in self.verdicts:
                self.duplicates += 1
                return
            self.verdicts[key] = verdict
            self.arrival[key] = time.monotonic()
        self.on_verdict(verdict)

    def _record_refusal(self, key: RecordRef, reason: str) -> None:
        with self._lock:
            self.refusals.setdefault(key, reason)

    def _run_trigger(self, trigger: Trigger) -> None:
        try:
            trigger.run()
        except BaseException as exc:  # surfaced by check()
            self.errors.append(exc)

    def _stop_everything(self) -> None:
        for trigger in self.triggers.values():
            trigger.stop()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()
        for producer in (self._producer, self._raw_producer):
            if producer is not None:
                producer.close(timeout=10)
        writer = getattr(self._handlers.get(PREDICT_HANDLER), "WRITER", None)
        if writer is not None:
            writer.close()
        self._producer = self._raw_producer = None
        self.flink.stop()
        self.broker.stop()
