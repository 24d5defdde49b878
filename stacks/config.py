"""Every size and name of the stack, read from CDK context (cdk.json, or `-c key=value`).

The defaults here are the documented ones (docs/deploy-reference.md: "Context keys"); cdk.json repeats only the
artifact paths so a user sees where they come from. A wrong type or value stops synthesis with
one line naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fraudstream import contract as c
from fraudstream import flink_properties as flink
from fraudstream.offline.sagemaker_jobs import PROCESSING_INSTANCE
from fraudstream.online.settings import AGGREGATE_TRIGGER, INVALID_TRIGGER, PREDICT_TRIGGER
from fraudstream.paths import REPO



class ConfigError(ValueError):
    """Bad context or a missing build artifact: synthesis stops with this message."""


@dataclass(frozen=True)
class PipelineConfig:
    # Built artifacts (README.md: "Deploy to AWS").
    model_artifact: str = "data/model.tar.gz"
    flink_package: str = "build/flink-app.zip"
    # The cards' 1-week records loaded into the batch group at deploy (`fraudstream features` writes the file
    # beside the data it trained on); "none": the group stays empty until the first nightly run.
    batch_features: str = "data/batch_aggregates.parquet"
    # Network.
    max_azs: int = 2
    # Kafka.
    kafka_version: str = "3.8.x"
    broker_instance_type: str = "kafka.t3.small"
    broker_count: int = 2
    broker_volume_gib: int = 10
    topic_partitions: int = c.TOPIC_PARTITIONS
    topic_replication_factor: int = 2
    # Streaming aggregation.
    flink_parallelism: int = 1
    flink_consumer_group: str = flink.DEFAULTS[flink.CONSUMER_GROUP]
    # Event time (docs/streaming.md): how far behind the newest transaction one may be stamped and still be on
    # time (producers whose clocks disagree), and how far apart a burst may land on its partitions.
    max_out_of_orderness_seconds: float = float(flink.DEFAULTS[flink.MAX_OUT_OF_ORDERNESS])
    tick_delay_ms: int = int(flink.DEFAULTS[flink.TICK_DELAY])
    # Feature store.
    streaming_feature_group: str = c.STREAMING_FEATURE_GROUP
    batch_feature_group: str = c.BATCH_FEATURE_GROUP
    # Model endpoint.
    endpoint_instance_type: str = "ml.t2.medium"
    endpoint_instance_count: int = 1
    # Handlers.
    aggregate_batch_size: int = AGGREGATE_TRIGGER.batch_size
    aggregate_batching_window_seconds: int = int(AGGREGATE_TRIGGER.batching_window_s)
    predict_batch_size: int = PREDICT_TRIGGER.batch_size
    predict_batching_window_seconds: int = int(PREDICT_TRIGGER.batching_window_s)
    starting_position: str = "TRIM_HORIZON"  # with a consumer group: only where it has no offsets yet
    fraud_threshold: float = c.DEFAULT_THRESHOLD
    aggregate_consumer_group: str = AGGREGATE_TRIGGER.consumer_group
    predict_consumer_group: str = PREDICT_TRIGGER.consumer_group
    invalid_consumer_group: str = INVALID_TRIGGER.consumer_group
    # Memory sizes (docs/lambda.md: "Handler speed"): each handler peaks at about 46 MB (benchmarks/handlers.py), so
    # memory buys CPU: Lambda gives one full vCPU at 1,769 MB. Predict is CPU-bound (parse, features, a log
    # record per verdict) and gets one vCPU; aggregate mostly waits on its PutRecord calls.
    aggregate_memory_mb: int = 512
    predict_memory_mb: int = 1769
    # Reserve concurrency for every function (handlers and the producer: one per topic partition of each of their
    # triggers, 3 for aggregate, 6 for predict, 3 for the producer by default; the custom resources' two functions:
    # 2 each). Lambda keeps 100 unreserved, so an account whose quota is below 116 (new accounts start at 10) must
    # pass -c reserveConcurrency=false; `make deploy` checks first (fraudstream/operate/preflight.py).
    reserve_concurrency: bool = True
    # Batch jobs and the nightly refresh.
    archive_transactions: bool = True  # false: Flink aggregates only (no nightly input; docs/nightly-refresh.md)
    archive_retention_days: int = 8
    processing_instance_type: str = PROCESSING_INSTANCE
    processing_instance_count: int = 2
    nightly_refresh_schedule: str = "cron(0 2 * * ? *)"
    # Operations.
    log_retention_days: int = 30
    failed_records_expiry_days: int = 30
    noncurrent_version_days: int = 30  # how long an overwritten or deleted object stays recoverable
    offset_lag_alarm_threshold: int = 1000
    freshness_alarm_seconds: int = 60  # p99 of the end-to-end lag (transaction to verdict) that alarms after 5 minutes
    alarm_email: str = ""

    @classmethod
    def from_context(cls, get) -> "PipelineConfig":
        """Read each field from context key camelCase(field); `get` is node.try_get_context."""
        values = {}
        for field in dataclasses.fields(cls):
            key = context_key(field.name)
            raw = get(key)
            if raw is None:
                continue
            values[field.name] = _coerce(key, raw, type(field.default))
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        def check(ok: bool, field: str, expected: str) -> None:
            if not ok:
                raise ConfigError(f"context {context_key(field)}={getattr(self, field)!r}: expected {expected}")

        check(self.max_azs >= 2, "max_azs", "2 or more (MSK needs a broker subnet in each of 2+ zones)")
        check(self.broker_count >= 2 and self.broker_count % self.max_azs == 0, "broker_count",
              f"a multiple of maxAzs={self.max_azs}")
        check(1 <= self.topic_replication_factor <= self.broker_count, "topic_replication_factor",
              f"1 to brokerCount={self.broker_count}")
        check(self.topic_partitions >= 1, "topic_partitions", "1 or more")
        check(self.broker_volume_gib >= 1, "broker_volume_gib", "1 or more")
        check(self.flink_parallelism >= 1, "flink_parallelism", "1 or more")
        check(flink.out_of_orderness_ok(self.max_out_of_orderness_seconds), "max_out_of_orderness_seconds",
              flink.OUT_OF_ORDERNESS_EXPECTED)
        check(flink.tick_delay_ok(self.tick_delay_ms), "tick_delay_ms", flink.TICK_DELAY_EXPECTED)
        check(self.endpoint_instance_count >= 1, "endpoint_instance_count", "1 or more")
        for field in ("aggregate_batch_size", "predict_batch_size"):
            check(1 <= getattr(self, field) <= 10_000, field, "1 to 10000 (Lambda's MSK trigger limit)")
        for field in ("aggregate_batching_window_seconds", "predict_batching_window_seconds"):
            check(0 <= getattr(self, field) <= 300, field, "0 to 300 seconds")
        check(self.starting_position in ("LATEST", "TRIM_HORIZON"), "starting_position", "LATEST or TRIM_HORIZON")
        check(0 <= self.fraud_threshold <= 1, "fraud_threshold", "a number in [0, 1]")
        for name in ("aggregate_memory_mb", "predict_memory_mb"):
            check(128 <= getattr(self, name) <= 10_240, name, "128 to 10240")
        check(self.failed_records_expiry_days >= 1, "failed_records_expiry_days", "1 or more")
        check(self.archive_retention_days >= 8, "archive_retention_days", "8 or more (the job needs one week)")
        check(self.processing_instance_count >= 1, "processing_instance_count", "1 or more")
        check(self.nightly_refresh_schedule.startswith(("cron(", "rate(")), "nightly_refresh_schedule",
              "an EventBridge Scheduler expression such as cron(0 2 * * ? *)")
        check(self.offset_lag_alarm_threshold >= 1, "offset_lag_alarm_threshold", "1 or more")
        check(self.freshness_alarm_seconds >= 1, "freshness_alarm_seconds", "1 or more seconds")
        check(self.streaming_feature_group != self.batch_feature_group, "batch_feature_group",
              "a name other than streamingFeatureGroup")

    @property
    def event_time(self) -> flink.EventTime:
        return flink.EventTime(self.max_out_of_orderness_seconds, self.tick_delay_ms)

    def reserved_concurrency(self, executions: int) -> int | None:
        """``executions`` when concurrency is reserved, else None (the function shares the account's)."""
        return executions if self.reserve_concurrency else None

    def artifact(self, field: str, how_to_build: str) -> Path:
        """The path of a built artifact, relative to the repository; a clear error if it is missing."""
        path = Path(getattr(self, field))
        path = path if path.is_absolute() else REPO / path
        if not path.is_file():
            raise ConfigError(
                f"{context_key(field)}: {path} does not exist. {how_to_build} "
                f"or pass -c {context_key(field)}=PATH."
            )
        return path


# Context keys of this app outside PipelineConfig (app.py reads it).
STACK_NAME_KEY = "stackName"
# Our keys are camelCase words. The CDK's own are kebab-case (cli-telemetry), namespaced (aws:cdk:...) or feature
# flags (@aws-cdk/...); a user's ~/.cdk.json may carry keys of other apps.
_OUR_KIND_OF_KEY = re.compile(r"[a-z][a-zA-Z0-9]*")


def _shape(key: str) -> str:
    return re.sub(r"[-_]", "", key).lower()


def check_context_keys(context: Mapping[str, object]) -> list[str]:
    """A misspelt key would be ignored and its default deployed (reserveConcurency=false reserving all the same):
    refuse a key that is one of ours spelt another way (reserve-concurrency, ReserveConcurrency) or nearly
    (reserveConcurency), naming ours. Returns the other camelCase keys, which are ignored (the caller warns)."""
    known = {context_key(field.name) for field in dataclasses.fields(PipelineConfig)} | {STACK_NAME_KEY}
    by_shape = {_shape(key): key for key in known}
    ignored = []
    for key in sorted(context):
        if key in known or ":" in key or key.startswith("@"):
            continue
        close = by_shape.get(_shape(key)) or next(iter(difflib.get_close_matches(key, known, n=1, cutoff=0.85)), None)
        if close:
            raise ConfigError(f"context {key}: not a key of this stack; did you mean {close}? "
                              "(docs/deploy-reference.md lists them)")
        if _OUR_KIND_OF_KEY.fullmatch(key):
            ignored.append(key)
    return ignored


def context_key(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _coerce(key: str, raw, kind: type):
    """Context from `-c key=value` arrives as a string; from cdk.json as JSON. Accept both."""
    try:
        if kind is bool:
            return raw if isinstance(raw, bool) else {"true": True, "false": False}[str(raw).lower()]
        if kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if not isinstance(raw, str):
            raise ValueError
        return raw
    except (KeyError, ValueError):
        raise ConfigError(f"context {key}={raw!r}: expected {kind.__name__}") from None
