"""The two Lambda entry points, loaded as Lambda loads them and configured by their environment."""

from __future__ import annotations

import pytest

from fraudstream import contract as c
from fraudstream.local.lambda_runtime import LambdaContext, load_handler
from fraudstream.online.settings import ConfigurationError
from tests.support.events import aggregate, documented_example, msk_event, transaction
from tests.support.models import write_model

CARD = 4111111111111111
T = 1_700_000_000.0


def Context() -> LambdaContext:  # noqa: N802 - reads like the class it stands for
    return LambdaContext(function_name="predict", aws_request_id="req-1")


def _load_handler(name, env, _monkeypatch):
    return load_handler(name, env)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return {fs: str(write_model(tmp_path_factory.mktemp(fs) / "model.tar.gz", fs)) for fs in ("v1", "v2")}


def test_both_handlers_run_end_to_end_locally_through_their_environment(tmp_path, artifact, monkeypatch, logs):
    env = {"FEATURE_STORE_BACKEND": "embedded", "EMBEDDED_STORE_PATH": str(tmp_path / "store.sqlite"),
           "MODEL_BACKEND": "local", "MODEL_PATH": artifact["v2"]}
    aggregate_handler = _load_handler("aggregate_to_feature_store", env, monkeypatch)
    predict_handler = _load_handler("predict_from_features", env, monkeypatch)
    aggregates = msk_event([aggregate(CARD, T, 1, 10.0, None)], topic=c.AGGREGATES_TOPIC)
    assert aggregate_handler.lambda_handler(aggregates, Context()) == {"written": 1, "skipped_stale": 0, "invalid": 0}
    summary = predict_handler.lambda_handler(msk_event([transaction(CARD, T + 30, 12.0)]), Context())
    assert summary["transactions"] == 1 and summary["invalid"] == 0
    [verdict] = [r for r in logs.records() if r["message"].startswith("Prediction:")]
    assert "num last 10m: 2" in verdict["message"] and verdict["function_request_id"] == "req-1"


def test_a_card_number_too_large_for_the_store_is_skipped_not_fatal(tmp_path, artifact, monkeypatch, logs):
    env = {"FEATURE_STORE_BACKEND": "embedded", "EMBEDDED_STORE_PATH": str(tmp_path / "s.sqlite"),
           "MODEL_BACKEND": "local", "MODEL_PATH": artifact["v2"]}
    handler = _load_handler("aggregate_to_feature_store", env, monkeypatch)
    event = msk_event([aggregate(CARD, T, 1, 10.0, None), aggregate(9999999999999999999, T, 1, 10.0, None)],
                      topic=c.AGGREGATES_TOPIC)
    assert handler.lambda_handler(event, Context()) == {"written": 1, "skipped_stale": 0, "invalid": 1}


def test_the_documented_aws_event_is_handled_without_error(tmp_path, artifact, monkeypatch, logs):
    env = {"FEATURE_STORE_BACKEND": "embedded", "EMBEDDED_STORE_PATH": str(tmp_path / "s.sqlite"),
           "MODEL_BACKEND": "local", "MODEL_PATH": artifact["v2"]}
    handler = _load_handler("predict_from_features", env, monkeypatch)
    assert handler.lambda_handler(documented_example(), Context()) == {"transactions": 0, "fraud": 0, "invalid": 1,
                                                                   "duplicates": 0}
    assert [r["offset"] for r in logs.records() if r["level"] == "ERROR"] == [15]


def test_the_predict_function_refuses_to_start_with_a_model_of_another_feature_set(tmp_path, artifact, monkeypatch):
    env = {"FEATURE_STORE_BACKEND": "embedded", "EMBEDDED_STORE_PATH": str(tmp_path / "s.sqlite"),
           "MODEL_BACKEND": "local", "MODEL_PATH": artifact["v1"], "FEATURE_SET": "v2"}
    with pytest.raises(ConfigurationError, match="expects feature set v1"):
        _load_handler("predict_from_features", env, monkeypatch)


@pytest.mark.parametrize(
    ("env", "message"),
    [({"MODEL_BACKEND": "endpoint"}, "ENDPOINT_NAME is required"),
     ({"MODEL_BACKEND": "gpu"}, "MODEL_BACKEND='gpu'"),
     ({"MODEL_BACKEND": "endpoint", "ENDPOINT_NAME": "e", "FRAUD_THRESHOLD": "high"}, "FRAUD_THRESHOLD"),
     ({"MODEL_BACKEND": "endpoint", "ENDPOINT_NAME": "e", "FRAUD_THRESHOLD": "nan"}, "finite"),
     ({"MODEL_BACKEND": "endpoint", "ENDPOINT_NAME": "e", "EMBEDDED_STORE_TTL_SECONDS": "nan"}, "finite"),
     ({"MODEL_BACKEND": "endpoint", "ENDPOINT_NAME": "e", "MODEL_FEATURE_SET": "v1"}, "expects feature set v1")],
)
def test_a_missing_or_invalid_variable_fails_the_cold_start_with_its_name(env, message, monkeypatch):
    monkeypatch.delenv("MODEL_PATH", raising=False)
    with pytest.raises(ConfigurationError, match=message):
        _load_handler("predict_from_features", env, monkeypatch)
