"""The one Logger and Metrics of the handlers (Powertools): JSON logs and CloudWatch EMF metrics.

POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE override the defaults below. The Logger's
formatter (JsonFormatter, below) writes Powertools' lines with orjson and builds the common record in one
pass: the predict handler logs one record per transaction, and that record cost more than the prediction
(docs/lambda.md: "Handler speed").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import RESERVED_LOG_ATTRS, LambdaPowertoolsFormatter

from fraudstream.online.messages import InvalidRecord

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "fraudstream")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "FraudStream")


def to_json(log: dict[str, Any]) -> str:
    """A log record as one JSON line; what orjson cannot encode is written as str(), as Powertools' default does."""
    return orjson.dumps(log, default=str).decode()


# The characters a JSON text can start with (RFC 8259: whitespace, then a value).
_JSON_STARTS = frozenset(' \t\n\r{["-0123456789tfn')


def from_json(message: str) -> Any:
    """A message that is JSON text as its value, any other message as it is.

    Powertools hands every str message to the deserializer and catches the decode error when it is not
    JSON; the verdict message never is, and raising that error cost more than the rest of the record's
    formatting. A message that could be JSON is still decoded, so the logged value is the same."""
    return orjson.loads(message) if message[:1] in _JSON_STARTS else message


# The record attributes Powertools keeps out of a log line (or renders through its templates), as a set.
_RESERVED = frozenset(RESERVED_LOG_ATTRS)


class JsonFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, with its common record built in one pass: the same keys, order, timestamp and
    dropped None values, serialized with orjson.

    The predict handler logs one record per transaction. Powertools' format searches its reserved names (a tuple
    of 24) for every attribute of every record and copies the line three times on the way; here a plain
    record (a text message that cannot be JSON, no %-arguments, no exception, no thread-local keys) is built
    once, testing names against a set. Any other record is Powertools' own format. A custom formatter is the
    extension Powertools documents ("Bring your own formatter"); tests/unit/online/test_telemetry.py requires
    byte-equal lines from both paths for every kind of record the handlers write.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(json_serializer=to_json, json_deserializer=from_json, **options)

    def format(self, record: logging.LogRecord) -> str:  # noqa: A003 (the logging API's name)
        message = record.msg
        if (record.args or record.exc_info or type(message) is not str or message[:1] in _JSON_STARTS
                or self.thread_safe_get_current_keys()):
            return super().format(record)
        fields = record.__dict__.copy()
        fields["asctime"] = self.formatTime(record)
        log: dict[str, Any] = {}
        for key, value in self.get_current_keys().items():  # the line's keys, in order: templates and constants
            if value and key in _RESERVED:
                if type(value) is not str:
                    return super().format(record)  # Powertools refuses a template that is not text
                value = value % fields
            log[key] = value
        for key, value in fields.items():  # then the record's extra fields
            if key not in _RESERVED:
                log[key] = value
        log["message"] = message
        log["xray_trace_id"] = self._get_latest_trace_id()
        if self.serialize_stacktrace:  # Powertools writes its stack trace there, None without an exception
            log.pop("stack_trace", None)
        return self.serialize({key: value for key, value in log.items() if value is not None})


logger = Logger(service=SERVICE, logger_formatter=JsonFormatter())


def skip_unlogged_lookups() -> None:
    """No record shows a thread, process or asyncio task name (Powertools' keys do not include them), so the
    standard library need not look them up for every record: its documented switches (the logging HOWTO,
    "Optimization"; logAsyncioTasks exists from Python 3.12, as on Lambda's runtime, and is a plain attribute
    before). Process-wide, so called where a handler's process starts, not on import."""
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = logging.logAsyncioTasks = False


metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# Metric names (the CDK dashboard and alarms read these).
TRANSACTIONS = "Transactions"
FRAUD_VERDICTS = "FraudVerdicts"
INVALID_RECORDS = "InvalidRecords"
DUPLICATE_TRANSACTIONS = "DuplicateTransactions"
INVALID_MODEL_OUTPUT = "InvalidModelOutput"
LATE_TRANSACTIONS = "LateTransactions"  # scored on themselves alone: they came behind Flink's watermark
CARDS_MISSING_BATCH = "CardsMissingBatchGroup"
ENDPOINT_LATENCY = "EndpointLatency"
AGGREGATES_WRITTEN = "AggregatesWritten"
AGGREGATES_SKIPPED_STALE = "AggregatesSkippedStale"
# Freshness, in seconds, one value per batch (its largest): how long a transaction took to its verdict (now
# minus transaction time), and how long a card's 10-minute record took to the store (the same for it).
END_TO_END_LAG = "EndToEndLag"
AGGREGATE_LAG = "AggregateLag"


def add_largest(name: str, values: Sequence[float]) -> None:
    """The batch's largest value of a freshness metric (nothing when the batch has none)."""
    if values:
        metrics.add_metric(name=name, unit="Seconds", value=max(values))


def report_invalid(invalid: Sequence[InvalidRecord]) -> None:
    """One structured error per unusable record, naming where it is; never its content."""
    for record in invalid:
        logger.error("invalid record skipped", extra={**record.ref.as_log(), "reason": record.reason})
    metrics.add_metric(name=INVALID_RECORDS, unit="Count", value=len(invalid))
