"""Build the configured backends: the only place that chooses between AWS and local."""

from __future__ import annotations

from fraudstream import aws
from fraudstream.online import check_model
from fraudstream.scorers import EndpointScorer, InProcessScorer, Scorer
from fraudstream.settings import PredictSettings, StoreSettings
from fraudstream.stores import EmbeddedOnlineStore, FeatureStoreOnlineStore, OnlineStore


def build_store(settings: StoreSettings) -> OnlineStore:
    if settings.backend == "embedded":
        return EmbeddedOnlineStore(settings.embedded_path, ttl_seconds=settings.ttl_seconds)
    return FeatureStoreOnlineStore(aws.client("sagemaker-featurestore-runtime"))


def build_scorer(settings: PredictSettings) -> Scorer:
    """The model backend, after checking it expects the configured feature set."""
    if settings.model_backend == "local":
        scorer: Scorer = InProcessScorer(settings.model_path)
    else:
        scorer = EndpointScorer(aws.client("sagemaker-runtime"), settings.endpoint_name, settings.model_feature_set)
    check_model(settings, scorer)
    return scorer
