"""The one place that picks the backends: settings in, the store and the scorer out, the model checked."""

from __future__ import annotations

import pytest

from fraudstream.online import backends
from fraudstream.online.scorers import EndpointScorer, InProcessScorer
from fraudstream import contract as c
from fraudstream.online.settings import (
    ConfigurationError,
    PredictSettings,
    StoreSettings,
    VerdictTopicSettings,
    predict_settings,
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


def test_the_verdicts_topic_follows_the_environment_and_iam_needs_a_region():
    # No brokers: the function only logs its verdicts (no writer)
    assert predict_settings({"ENDPOINT_NAME": "fraud"}).verdicts is None
    assert backends.build_verdict_writer(predict_settings({"ENDPOINT_NAME": "fraud"})) is None
    # The stack's variables: IAM on the MSK brokers, the region signing the tokens, the model named in each verdict
    env = {"ENDPOINT_NAME": "fraud", "VERDICTS_BOOTSTRAP_SERVERS": "b-1:9098,b-2:9098", "AWS_REGION": "eu-west-1",
           "MODEL_VERSION": "abc123"}
    settings = predict_settings(env)
    assert settings.verdicts == VerdictTopicSettings("b-1:9098,b-2:9098", c.VERDICTS_TOPIC, "iam", "eu-west-1", "abc123")
    writer = backends.build_verdict_writer(settings)
    assert (writer.log.brokers, writer.log.topic, writer.log.security, writer.model_version) == (
        "b-1:9098,b-2:9098", c.VERDICTS_TOPIC, "iam", "abc123")
    # A cold start without a region, or with an unknown security mode, refuses to start naming the variable
    with pytest.raises(ConfigurationError, match="AWS_REGION is required when KAFKA_SECURITY=iam"):
        predict_settings({k: v for k, v in env.items() if k != "AWS_REGION"})
    with pytest.raises(ConfigurationError, match="KAFKA_SECURITY='sasl'"):
        predict_settings({**env, "KAFKA_SECURITY": "sasl"})
