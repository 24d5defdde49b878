"""The two Lambda entry points, as AWS loads them: from their assets, configured by environment."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import xgboost as xgb

from fraudstream import contract as c
from fraudstream import lambda_assets, model
from fraudstream.settings import ConfigurationError
from tests.events import aggregate, documented_example, msk_event, transaction

CARD = 4111111111111111
T = 1_700_000_000.0


@dataclass
class Context:
    function_name: str = "predict"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:predict"
    aws_request_id: str = "req-1"


def _load_handler(name, env, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(f"handler_{name}", f"lambdas/{name}/handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    def make(feature_set):
        names = list(c.feature_names(feature_set))
        rows = np.random.default_rng(0).random((300, len(names)))
        booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(rows, label=rows[:, 0] > 0.5, feature_names=names), 5)
        path = tmp_path_factory.mktemp(feature_set) / "model.tar.gz"
        model.save_artifact(booster, feature_set, path)
        return str(path)

    return {"v1": make("v1"), "v2": make("v2")}


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
    assert handler.lambda_handler(documented_example(), Context()) == {"transactions": 0, "fraud": 0, "invalid": 1}
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


def test_each_asset_holds_its_handler_and_the_shared_contract_and_imports_without_numpy(tmp_path):
    assets = lambda_assets.build(tmp_path)
    for name in lambda_assets.HANDLERS:
        path = assets[name]
        assert (path / "handler.py").read_text() == open(f"lambdas/{name}/handler.py").read()
        assert (path / "fraudstream" / "contract.py").read_bytes() == open("fraudstream/contract.py", "rb").read()
        probe = (
            "import sys, json; sys.path.insert(0, sys.argv[1]); import handler, fraudstream; "
            "print(json.dumps([fraudstream.__file__, 'numpy' in sys.modules, 'xgboost' in sys.modules]))"
        )
        env = {**os.environ, "FEATURE_STORE_BACKEND": "sagemaker", "MODEL_BACKEND": "endpoint", "ENDPOINT_NAME": "fraud"}
        out = subprocess.run([sys.executable, "-c", probe, str(path)], env=env, capture_output=True, text=True, check=True,
                             cwd=tmp_path)
        location, numpy_loaded, xgboost_loaded = json.loads(out.stdout.splitlines()[-1])
        assert location.startswith(str(path))
        assert not numpy_loaded and not xgboost_loaded


def test_powertools_layer_holds_the_locked_release_and_imports_on_its_own(tmp_path):
    # Given the layer built from the installed distributions
    layer = lambda_assets.build(tmp_path)[lambda_assets.LAYER] / "python"
    # When Python imports what the handlers use from it alone (-S: no site-packages, as in a bare runtime)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); "
             "from aws_lambda_powertools import Logger, Metrics; "
             "from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEvent; "
             "import aws_lambda_powertools, importlib.metadata as m; "
             "print(aws_lambda_powertools.__file__); print(m.version('aws-lambda-powertools'))")
    out = subprocess.run([sys.executable, "-S", "-c", probe, str(layer)], capture_output=True, text=True, check=True)
    location, version = out.stdout.split()
    # Then it loads from the layer, at the version the tests ran
    assert location.startswith(str(layer))
    assert version == importlib.metadata.version("aws-lambda-powertools")
    assert not list(layer.rglob("__pycache__"))
