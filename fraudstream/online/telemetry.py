"""The one Logger and Metrics of the handlers (Powertools): JSON logs and CloudWatch EMF metrics.

POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE override the defaults below. The Logger
serializes with orjson through its json_serializer/json_deserializer options, and its formatter tests
record keys against its reserved names held as a set (below): the predict handler logs one record per
transaction, and that record cost more than the prediction (docs/lambda.md: "Handler speed").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import formatter as powertools_formatter

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


def reserved_names_as_set() -> None:
    """Powertools' reserved log-record names as a frozenset of the same names.

    Its formatter asks of every key of every record whether it is one of these names (`name in
    RESERVED_LOG_ATTRS`), and keeps them in a tuple of 24: a verdict record's 13 fields, which are not among
    them, each compare with all 24, about 30% of the record's cost. A set answers the same question at once;
    the formatter only ever tests membership, so every record is unchanged (tests/unit/online/test_telemetry.py
    compares ours with the tuple's, key for key). Anything but a tuple (a Powertools release that changed it)
    is left alone."""
    names = getattr(powertools_formatter, "RESERVED_LOG_ATTRS", None)
    if isinstance(names, tuple):
        powertools_formatter.RESERVED_LOG_ATTRS = frozenset(names)


reserved_names_as_set()
logger = Logger(service=SERVICE, json_serializer=to_json, json_deserializer=from_json)
# No record shows a thread, process or asyncio task name (Powertools' keys do not include them), so the standard
# library need not look them up for every record: its documented switches (the logging HOWTO, "Optimization";
# logAsyncioTasks exists from Python 3.12, as on Lambda's runtime, and is a plain attribute before).
logging.logThreads = logging.logProcesses = logging.logMultiprocessing = logging.logAsyncioTasks = False
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# Metric names (the CDK dashboard and alarms read these).
TRANSACTIONS = "Transactions"
FRAUD_VERDICTS = "FraudVerdicts"
INVALID_RECORDS = "InvalidRecords"
DUPLICATE_TRANSACTIONS = "DuplicateTransactions"
INVALID_MODEL_OUTPUT = "InvalidModelOutput"
CARDS_MISSING_STREAMING = "CardsMissingStreamingGroup"
CARDS_MISSING_BATCH = "CardsMissingBatchGroup"
ENDPOINT_LATENCY = "EndpointLatency"
AGGREGATES_WRITTEN = "AggregatesWritten"
AGGREGATES_SKIPPED_STALE = "AggregatesSkippedStale"
# Freshness, in seconds, one value per batch (its largest): how old the 10-minute record a verdict used was
# (transaction time minus the record's), how long a transaction took to its verdict (now minus transaction
# time), and how long an aggregate took to the store (now minus its transaction's time).
STREAMING_RECORD_AGE = "StreamingRecordAge"
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
