"""The two Lambda handlers on this machine: loaded with the environment they have on AWS (embedded store,
in-process model), their JSON log records routed to the run's files, their verdicts and refusals passed on.

On AWS the records go to CloudWatch; here verdicts go to one file, everything else to another
(fraudstream/local/workdir.py names both), and a collector hands each verdict to the pipeline."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from fraudstream import contract as c
from fraudstream.contract import RecordRef
from fraudstream.local.lambda_runtime import load_handler
from fraudstream.offline.features import read_batch_aggregates
from fraudstream.online import settings
from fraudstream.online.stores import OnlineStore
from fraudstream.online.telemetry import logger
from fraudstream.online.verdict import UnreadableVerdict, Verdict

AGGREGATE_HANDLER, PREDICT_HANDLER = "aggregate_to_feature_store", "predict_from_features"


def carries_verdict(record: logging.LogRecord) -> bool:
    """A predict handler's verdict record (the others: batch summaries, refused records, the aggregate handler's)."""
    return hasattr(record, "verdict")


class VerdictCollector(logging.Handler):
    """Receives the handlers' log records: passes on the verdicts, and the reason each refused transaction got."""

    def __init__(self, on_verdict: Callable[[Verdict], None],
                 on_refusal: Callable[[RecordRef, str], None] = lambda _key, _reason: None) -> None:
        super().__init__(level=logging.INFO)
        self.on_verdict, self.on_refusal = on_verdict, on_refusal

    def emit(self, record: logging.LogRecord) -> None:
        if carries_verdict(record):
            try:
                self.on_verdict(Verdict.from_log(vars(record)))
            except UnreadableVerdict:
                self.handleError(record)
        elif record.levelno >= logging.ERROR and getattr(record, "topic", None) == c.TRANSACTIONS_TOPIC:
            reason = getattr(record, "reason", None)
            self.on_refusal(RecordRef(record.topic, record.partition, record.offset),
                            f"{record.getMessage()}: {reason}" if reason else record.getMessage())


def model_version(model_path: Path) -> str:
    """The model's version as the verdicts topic names it: its artifact's content hash (the stack names the
    deployed artifact by CDK's asset hash)."""
    return hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:16]


def handler_environment(store_path: Path, model_path: Path, feature_set: str,
                        verdict_brokers: str | None = None) -> dict[str, str]:
    """The handlers' environment variables on this machine: embedded store, in-process model, and the local
    broker's verdicts topic (plaintext) when ``verdict_brokers`` is given."""
    env = {
        settings.ENV_STORE_BACKEND: "embedded",
        settings.ENV_EMBEDDED_STORE_PATH: str(store_path),
        settings.ENV_MODEL_BACKEND: "local",
        settings.ENV_MODEL_PATH: str(model_path),
        settings.ENV_FEATURE_SET: feature_set,
    }
    if verdict_brokers:
        env.update({settings.ENV_VERDICTS_BROKERS: verdict_brokers, settings.ENV_KAFKA_SECURITY: "plaintext",
                    settings.ENV_MODEL_VERSION: model_version(model_path)})
    return env


def load_handlers(store_path: Path, model_path: Path, feature_set: str,
                  verdict_brokers: str | None = None) -> dict[str, ModuleType]:
    """Both handler modules, fresh, configured as on AWS but for the store, the model and the broker
    (handler_environment)."""
    env = handler_environment(store_path, model_path, feature_set, verdict_brokers)
    return {name: load_handler(name, env) for name in (AGGREGATE_HANDLER, PREDICT_HANDLER)}


def route_logs(cleanup: contextlib.ExitStack, verdict_log: Path, handler_log: Path, collector: VerdictCollector) -> None:
    """Send the handlers' records to ``verdict_log`` (verdicts) and ``handler_log`` (the rest) and to
    ``collector``, until ``cleanup`` closes, which gives the logger back as it was."""
    handler_file = cleanup.enter_context(open(handler_log, "a", encoding="utf-8"))
    previous = logger.registered_handler.setStream(handler_file)
    cleanup.callback(logger.registered_handler.setStream, previous)

    def others(record: logging.LogRecord) -> bool:
        return not carries_verdict(record)

    logger.registered_handler.addFilter(others)
    cleanup.callback(logger.registered_handler.removeFilter, others)
    verdict_file = logging.StreamHandler(cleanup.enter_context(open(verdict_log, "a", encoding="utf-8")))
    verdict_file.setFormatter(logger.registered_formatter)
    verdict_file.addFilter(carries_verdict)
    for handler in (verdict_file, collector):
        logger.addHandler(handler)
        cleanup.callback(logger.removeHandler, handler)


def load_batch_aggregates(path: Path, store: OnlineStore) -> int:
    """Put batch_aggregates.parquet into the batch feature group of ``store``; returns the card count."""
    rows = read_batch_aggregates(path)
    result = store.put_records(c.BATCH_FEATURE_GROUP, rows, concurrency=1)
    if result.failed:
        raise RuntimeError(f"{path}: {len(result.failed)} of {len(rows)} cards could not be loaded: {result.failed[0][1]}")
    return result.written
