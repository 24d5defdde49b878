"""Handler configuration from environment variables, validated at cold start.

The same variables select the backends on AWS and locally (docs/online-path.md: "Configuration").
The CDK app sets them on the functions (stacks/handlers.py) and checks them with these functions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from fraudstream import contract as c
from fraudstream.checks import CheckError, finite_number

# Variable names: the CDK app sets them on the functions (stacks/handlers.py).
ENV_STORE_BACKEND = "FEATURE_STORE_BACKEND"
ENV_EMBEDDED_STORE_PATH = "EMBEDDED_STORE_PATH"
ENV_EMBEDDED_STORE_TTL = "EMBEDDED_STORE_TTL_SECONDS"
ENV_STREAMING_GROUP = "STREAMING_FEATURE_GROUP"
ENV_BATCH_GROUP = "BATCH_FEATURE_GROUP"
ENV_MAX_CONCURRENCY = "MAX_CONCURRENCY"
ENV_MODEL_BACKEND = "MODEL_BACKEND"
ENV_ENDPOINT_NAME = "ENDPOINT_NAME"
ENV_MODEL_PATH = "MODEL_PATH"
ENV_FEATURE_SET = "FEATURE_SET"
ENV_MODEL_FEATURE_SET = "MODEL_FEATURE_SET"
ENV_THRESHOLD = "FRAUD_THRESHOLD"
ENV_VERDICTS_BROKERS = "VERDICTS_BOOTSTRAP_SERVERS"  # unset: verdicts are only logged (unit tests, benchmarks)
ENV_VERDICTS_TOPIC = "VERDICTS_TOPIC"
ENV_KAFKA_SECURITY = "KAFKA_SECURITY"  # iam on MSK, plaintext on the local broker
ENV_MODEL_VERSION = "MODEL_VERSION"  # named in every verdict on the verdicts topic
ENV_REGION = "AWS_REGION"  # set by Lambda; signs the IAM tokens
ENV_PRODUCER_BROKERS = "PRODUCER_BOOTSTRAP_SERVERS"  # the producer function's brokers
ENV_TRANSACTIONS_TOPIC = "TRANSACTIONS_TOPIC"

STORE_BACKENDS = ("sagemaker", "embedded")
MODEL_BACKENDS = ("endpoint", "local")
DEFAULT_EMBEDDED_STORE = "data/online_store.sqlite"
DEFAULT_MAX_CONCURRENCY = 8


class ConfigurationError(RuntimeError):
    """A missing or invalid environment variable: the function refuses to start."""


@dataclass(frozen=True)
class StoreSettings:
    backend: str = "sagemaker"
    embedded_path: str = DEFAULT_EMBEDDED_STORE
    ttl_seconds: float | None = None
    streaming_group: str = c.STREAMING_FEATURE_GROUP
    batch_group: str = c.BATCH_FEATURE_GROUP


@dataclass(frozen=True)
class AggregateSettings:
    store: StoreSettings
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY


@dataclass(frozen=True)
class PredictSettings:
    store: StoreSettings
    model_backend: str = "endpoint"
    endpoint_name: str | None = None
    model_path: str | None = None
    feature_set: str = c.DEFAULT_FEATURE_SET
    model_feature_set: str | None = None
    threshold: float = c.DEFAULT_THRESHOLD
    verdicts: VerdictTopicSettings | None = None  # None: no verdicts topic


@dataclass(frozen=True)
class KafkaTopic:
    """A topic a function writes to and how it reaches the brokers: IAM on MSK (``region`` signs the tokens),
    plaintext on the local broker. The producer function sends to one (fraudstream/online/produce.py)."""

    brokers: str
    topic: str = c.TRANSACTIONS_TOPIC
    security: str = "iam"
    region: str | None = None


@dataclass(frozen=True)
class VerdictTopicSettings(KafkaTopic):
    """Where the predict function writes its verdicts (fraudstream/online/verdict_topic.py), and the model they
    name."""

    topic: str = c.VERDICTS_TOPIC
    model_version: str = "unversioned"


@dataclass(frozen=True)
class TriggerSettings:
    """How the MSK trigger feeds a function: the stack sets these on its event source mappings
    (stacks/config.py takes its defaults from here) and the local trigger (local/trigger.py) does the same."""

    topic: str
    consumer_group: str
    batch_size: int = 100  # records per invocation (Lambda: 1-10,000)
    batching_window_s: float = 0.0  # wait up to this long to fill a batch (Lambda: 0-300)
    # A failing batch is retried this often, then written whole to the on-failure destination
    # (Lambda caps infinite retries at 10 when a destination is set).
    retry_attempts: int = 10


# Both functions read Flink's output; the predict function also reads Flink's reports of refused records.
AGGREGATE_TRIGGER = TriggerSettings(c.TRANSACTION_FEATURES_TOPIC, "fraudstream-aggregate-to-feature-store")
PREDICT_TRIGGER = TriggerSettings(c.TRANSACTION_FEATURES_TOPIC, "fraudstream-predict")
INVALID_TRIGGER = TriggerSettings(c.INVALID_TRANSACTIONS_TOPIC, "fraudstream-invalid-transactions")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name, default)
    if value not in choices:
        raise ConfigurationError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _env_number(env: Mapping[str, str], name: str, default, kind=float, low=-math.inf, high=math.inf):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r}: expected a {kind.__name__}") from None
    try:
        finite_number(value, low, high)
    except CheckError:
        raise ConfigurationError(f"{name}={raw!r}: expected a finite number in [{low:g}, {high:g}]") from None
    return value


def store_settings(env: Mapping[str, str] = os.environ) -> StoreSettings:
    return StoreSettings(
        backend=_choice(env, ENV_STORE_BACKEND, STORE_BACKENDS, "sagemaker"),
        embedded_path=env.get(ENV_EMBEDDED_STORE_PATH) or DEFAULT_EMBEDDED_STORE,
        ttl_seconds=_env_number(env, ENV_EMBEDDED_STORE_TTL, None, float, low=0),
        streaming_group=env.get(ENV_STREAMING_GROUP) or c.STREAMING_FEATURE_GROUP,
        batch_group=env.get(ENV_BATCH_GROUP) or c.BATCH_FEATURE_GROUP,
    )


def aggregate_settings(env: Mapping[str, str] = os.environ) -> AggregateSettings:
    return AggregateSettings(
        store=store_settings(env),
        max_concurrency=_env_number(env, ENV_MAX_CONCURRENCY, DEFAULT_MAX_CONCURRENCY, int, low=1, high=64),
    )


def predict_settings(env: Mapping[str, str] = os.environ) -> PredictSettings:
    backend = _choice(env, ENV_MODEL_BACKEND, MODEL_BACKENDS, "endpoint")
    settings = PredictSettings(
        store=store_settings(env),
        model_backend=backend,
        endpoint_name=env.get(ENV_ENDPOINT_NAME) or None,
        model_path=env.get(ENV_MODEL_PATH) or None,
        feature_set=_choice(env, ENV_FEATURE_SET, tuple(c.FEATURE_SETS), c.DEFAULT_FEATURE_SET),
        model_feature_set=env.get(ENV_MODEL_FEATURE_SET) or None,
        threshold=_env_number(env, ENV_THRESHOLD, c.DEFAULT_THRESHOLD, float, low=0, high=1),
        verdicts=verdict_topic_settings(env),
    )
    if backend == "endpoint" and not settings.endpoint_name:
        raise ConfigurationError("ENDPOINT_NAME is required when MODEL_BACKEND=endpoint")
    if backend == "local" and not settings.model_path:
        raise ConfigurationError("MODEL_PATH is required when MODEL_BACKEND=local")
    return settings


def _kafka_topic(env: Mapping[str, str], brokers_variable: str, topic_variable: str, default_topic: str) -> dict:
    """The fields of a KafkaTopic from the environment; an IAM client needs the region that signs its tokens."""
    security = _choice(env, ENV_KAFKA_SECURITY, ("iam", "plaintext"), "iam")
    if security == "iam" and not env.get(ENV_REGION):
        raise ConfigurationError(f"{ENV_REGION} is required when {ENV_KAFKA_SECURITY}=iam (it signs the IAM tokens)")
    return {"brokers": env[brokers_variable], "topic": env.get(topic_variable) or default_topic,
            "security": security, "region": env.get(ENV_REGION) or None}


def verdict_topic_settings(env: Mapping[str, str] = os.environ) -> VerdictTopicSettings | None:
    if not env.get(ENV_VERDICTS_BROKERS):
        return None
    return VerdictTopicSettings(**_kafka_topic(env, ENV_VERDICTS_BROKERS, ENV_VERDICTS_TOPIC, c.VERDICTS_TOPIC),
                                model_version=env.get(ENV_MODEL_VERSION) or "unversioned")


def producer_settings(env: Mapping[str, str] = os.environ) -> KafkaTopic:
    if not env.get(ENV_PRODUCER_BROKERS):
        raise ConfigurationError(f"{ENV_PRODUCER_BROKERS} is required: the brokers to send to")
    return KafkaTopic(**_kafka_topic(env, ENV_PRODUCER_BROKERS, ENV_TRANSACTIONS_TOPIC, c.TRANSACTIONS_TOPIC))
