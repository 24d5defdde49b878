"""The Lambda assets: each handler with the whole online room, importable without numpy or xgboost, and
the Powertools layer from the locked release."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys

import pytest

from fraudstream.packaging import lambda_assets
from fraudstream.paths import LAMBDAS, PACKAGE


def test_each_asset_is_its_handler_the_online_room_and_the_root_modules_it_imports():
    files = {path.relative_to(PACKAGE).as_posix() for path in lambda_assets.runtime_files()}
    assert {f"online/{p.name}" for p in (PACKAGE / "online").glob("*.py")} <= files
    assert {"__init__.py", "contract.py", "checks.py"} <= files
    # Nothing of the batch side, the local runtime or the CLI ships to Lambda.
    assert not [f for f in files if f.split("/")[0] in ("offline", "local", "operate", "packaging", "cli")]
    assert "files.py" not in files  # pyarrow: the online room does not need it


# None of it may load with the AWS backends, where each costs cold-start time for nothing: what the in-process model
# pulls in (xgboost imports scikit-learn, scipy and pandas when installed), boto3 (botocore clients suffice), and
# Powertools' event classes (importing one loads them all, ~0.1 s; the handlers read the MSK event's shape themselves).
NOT_AT_COLD_START = ("numpy", "xgboost", "sklearn", "scipy", "pandas", "pyarrow", "boto3", "s3transfer",
                     "aws_lambda_powertools.utilities.data_classes")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return lambda_assets.build(tmp_path_factory.mktemp("lambda"))


def test_each_asset_holds_its_handler_and_the_shared_contract_and_imports_without_numpy(assets, tmp_path):
    for name in lambda_assets.HANDLERS:
        path = assets[name]
        assert (path / "handler.py").read_text() == (LAMBDAS / name / "handler.py").read_text()
        assert (path / "fraudstream" / "contract.py").read_bytes() == (PACKAGE / "contract.py").read_bytes()
        probe = (
            "import sys, json; sys.path.insert(0, sys.argv[1]); import handler, fraudstream; "
            f"print(json.dumps([fraudstream.__file__, [m for m in {NOT_AT_COLD_START!r} if m in sys.modules]]))"
        )
        env = {**os.environ, "FEATURE_STORE_BACKEND": "sagemaker", "MODEL_BACKEND": "endpoint", "ENDPOINT_NAME": "fraud",
               "PRODUCER_BOOTSTRAP_SERVERS": "b-1:9098", "AWS_REGION": "us-east-1"}
        out = subprocess.run([sys.executable, "-c", probe, str(path)], env=env, capture_output=True, text=True, check=True,
                             cwd=tmp_path)
        location, loaded = json.loads(out.stdout.splitlines()[-1])
        assert location.startswith(str(path))
        assert loaded == [], f"{name} loads {loaded} at its cold start with the AWS backends"


def test_the_custom_resources_asset_carries_the_modules_it_shares_with_cleanup_and_the_online_store(assets, tmp_path):
    # The stack's custom resources and `fraudstream cleanup` empty buckets with one function (fraudstream/buckets.py);
    # the 1-week records loaded at deploy are written as the online store writes them (fraudstream/feature_puts.py);
    # the Flink application starts as the stack's update restarts it (fraudstream/flink_properties.py)
    path = assets[lambda_assets.CUSTOM_RESOURCES]
    shipped = sorted(p.relative_to(path).as_posix() for p in path.rglob("*.py"))
    assert shipped == ["fraudstream/__init__.py", "fraudstream/buckets.py", "fraudstream/contract.py",
                       "fraudstream/feature_puts.py", "fraudstream/flink_properties.py", "handler.py"]
    # and the handler loads from the asset alone, as Lambda loads it
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import handler; "
             "print(handler.empty_bucket.__module__, handler.put_concurrently.__module__, handler.__file__)")
    out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True, cwd=tmp_path)
    emptier, writer, location = out.stdout.split()
    assert (emptier, writer) == ("fraudstream.buckets", "fraudstream.feature_puts") and location.startswith(str(path))


def test_powertools_layer_holds_the_locked_release_and_imports_on_its_own(tmp_path):
    # Given the layer built from the installed distributions
    layer = lambda_assets.build(tmp_path)[lambda_assets.LAYER] / "python"
    # When Python imports what the handlers use from it alone (-S: no site-packages, as in a bare runtime)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); "
             "from aws_lambda_powertools import Logger, Metrics; "
             "from aws_lambda_powertools.utilities.typing import LambdaContext; "
             "import aws_lambda_powertools, importlib.metadata as m; "
             "print(aws_lambda_powertools.__file__); print(m.version('aws-lambda-powertools'))")
    out = subprocess.run([sys.executable, "-S", "-c", probe, str(layer)], capture_output=True, text=True, check=True)
    location, version = out.stdout.split()
    # Then it loads from the layer, at the version the tests ran
    assert location.startswith(str(layer))
    assert version == importlib.metadata.version("aws-lambda-powertools")
    assert not list(layer.rglob("__pycache__"))


def test_the_layer_carries_the_kafka_client_the_predict_function_writes_verdicts_with(assets):
    # The verdicts topic (fraudstream/online/verdict_topic.py): kafka-python, and AWS's signer for IAM auth, which
    # uses the runtime's boto3 (here: this environment's, after the layer)
    layer = assets[lambda_assets.LAYER] / "python"
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import kafka, aws_msk_iam_sasl_signer, importlib.metadata as m; "
             "from kafka import KafkaConsumer, KafkaProducer; "
             "from aws_msk_iam_sasl_signer import MSKAuthTokenProvider; "
             "print(kafka.__file__, aws_msk_iam_sasl_signer.__file__, m.version('kafka-python'))")
    out = subprocess.run([sys.executable, "-c", probe, str(layer)], capture_output=True, text=True, check=True)
    kafka_file, signer_file, version = out.stdout.split()
    assert kafka_file.startswith(str(layer)) and signer_file.startswith(str(layer))
    assert version == importlib.metadata.version("kafka-python")


def test_the_layer_carries_orjson_built_for_the_functions_runtime(tmp_path):
    layer = lambda_assets.build(tmp_path)[lambda_assets.LAYER] / "python"
    [wheel] = layer.glob("orjson-*.dist-info/WHEEL")
    tags = [line.split(": ")[1] for line in wheel.read_text().splitlines() if line.startswith("Tag: ")]
    python = "cp" + lambda_assets.PYTHON_VERSION.replace(".", "")
    assert tags and all(tag.startswith(f"{python}-{python}-manylinux") and tag.endswith("_aarch64") for tag in tags)
    assert wheel.parent.name == f"orjson-{importlib.metadata.version('orjson')}.dist-info"
    [library] = (layer / "orjson").glob("*.so")
    assert f"cpython-{python[2:]}-aarch64-linux-gnu" in library.name
