"""The one place that picks the backends: settings in, the store and the scorer out, the model checked."""

from __future__ import annotations

import pytest

from fraudstream.online import backends
from fraudstream.online.scorers import EndpointScorer, InProcessScorer
from fraudstream.online.settings import (
    ConfigurationError,
    PredictSettings,
    StoreSettings,
)
from fraudstream.online.stores import EmbeddedOnlineStore, FeatureStoreOnlineStore
from tests.support.models import write_model


@pytest.fixture(scope="module")
def v1_model(tmp_path_factory):
    return str(write_model(tmp_path_factory.mktemp("model") / "model.tar.gz", "v1"))


def test_the_store_backend_follows_the_settings(tmp_path):
    embedded = backends.build_store(StoreSettings(backend="embedded", embedded_path=str(tmp_path / "s.sqlite"), ttl_seconds=60))
    assert isinstance(embedded, EmbeddedOnlineStore) and embedded.ttl_seconds == 60
    feature_store = backends.build_store(StoreSettings(backend="sagemaker"))
    assert isinstance(feature_store, FeatureStoreOnlineStore)
    assert feature_store.client.meta.service_model.service_name == "sagemaker-featurestore-runtime"


def test_the_endpoint_scorer_takes_the_endpoint_and_the_feature_set_it_was_deployed_with():
    scorer = backends.build_scorer(PredictSettings(StoreSettings(), endpoint_name="fraud", model_feature_set="v2"))
    assert isinstance(scorer, EndpointScorer) and (scorer.endpoint_name, scorer.feature_set) == ("fraud", "v2")


def test_the_in_process_scorer_reads_the_feature_set_from_the_model(v1_model):
    scorer = backends.build_scorer(PredictSettings(StoreSettings(), model_backend="local", model_path=v1_model,
                                                   feature_set="v1"))
    assert isinstance(scorer, InProcessScorer) and scorer.feature_set == "v1"


def test_a_local_model_of_another_feature_set_is_refused_naming_both(v1_model):
    with pytest.raises(ConfigurationError, match="FEATURE_SET=v2 but the model expects feature set v1"):
        backends.build_scorer(PredictSettings(StoreSettings(), model_backend="local", model_path=v1_model, feature_set="v2"))


def test_an_endpoint_deployed_with_another_feature_set_is_refused_naming_both():
    with pytest.raises(ConfigurationError, match="FEATURE_SET=v2 but the model expects feature set v1"):
        backends.build_scorer(PredictSettings(StoreSettings(), endpoint_name="fraud", model_feature_set="v1", feature_set="v2"))
