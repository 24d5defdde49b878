"""Build the configured backends: the only place that chooses between AWS and local."""

from __future__ import annotations

from fraudstream.online import aws
from fraudstream.online.scorers import EndpointScorer, InProcessScorer, Scorer
from fraudstream.online.settings import (
    ConfigurationError,
    PredictSettings,
    StoreSettings,
)
from fraudstream.online.stores import (
    EmbeddedOnlineStore,
    FeatureStoreOnlineStore,
    OnlineStore,
)
from fraudstream.online.verdict_topic import KafkaPartitionLog, VerdictWriter


def build_store(settings: StoreSettings) -> OnlineStore:
    if settings.backend == "embedded":
        return EmbeddedOnlineStore(settings.embedded_path, ttl_seconds=settings.ttl_seconds)
    return FeatureStoreOnlineStore(aws.client("sagemaker-featurestore-runtime"))


def bulk_feature_store(region: str | None = None) -> FeatureStoreOnlineStore:
    """Feature Store with more attempts and connections than a Lambda: for a job that writes every card at once."""
    config = aws.client_config("sagemaker-featurestore-runtime", attempts=8, max_pool_connections=64)
    return FeatureStoreOnlineStore(aws.new_client("sagemaker-featurestore-runtime", config=config, region_name=region))


def build_scorer(settings: PredictSettings) -> Scorer:
    """The model backend, after checking it expects the configured feature set."""
    if settings.model_backend == "local":
        scorer: Scorer = InProcessScorer(settings.model_path)
    else:
        scorer = EndpointScorer(aws.client("sagemaker-runtime"), settings.endpoint_name, settings.model_feature_set)
    check_model(settings, scorer)
    return scorer


def build_verdict_writer(settings: PredictSettings) -> VerdictWriter | None:
    """The verdicts topic's writer, when one is configured (it connects on its first write)."""
    topic = settings.verdicts
    if topic is None:
        return None
    return VerdictWriter(KafkaPartitionLog(topic.brokers, topic.topic, topic.security, topic.region), topic.model_version)


def check_model(settings: PredictSettings, scorer: Scorer) -> None:
    """Refuse to start when the model was trained on another feature set than the one configured."""
    trained_on = scorer.feature_set or settings.model_feature_set
    if trained_on is not None and trained_on != settings.feature_set:
        raise ConfigurationError(
            f"FEATURE_SET={settings.feature_set} but the model expects feature set {trained_on}; "
            "set FEATURE_SET to match the model, or deploy a model trained on it"
        )
