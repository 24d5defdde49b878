"""The Lambda assets: each handler with the whole online room, importable without numpy or xgboost, and
the Powertools layer from the locked release."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys

from fraudstream.packaging import lambda_assets
from fraudstream.paths import LAMBDAS, PACKAGE


def test_each_asset_is_its_handler_the_online_room_and_the_root_modules_it_imports():
    files = {path.relative_to(PACKAGE).as_posix() for path in lambda_assets.runtime_files()}
    assert {f"online/{p.name}" for p in (PACKAGE / "online").glob("*.py")} <= files
    assert {"__init__.py", "contract.py", "checks.py"} <= files
    # Nothing of the batch side, the local runtime or the CLI ships to Lambda.
    assert not [f for f in files if f.split("/")[0] in ("offline", "local", "operate", "packaging", "cli")]
    assert "files.py" not in files  # pyarrow: the online room does not need it


def test_each_asset_holds_its_handler_and_the_shared_contract_and_imports_without_numpy(tmp_path):
    assets = lambda_assets.build(tmp_path)
    for name in lambda_assets.HANDLERS:
        path = assets[name]
        assert (path / "handler.py").read_text() == (LAMBDAS / name / "handler.py").read_text()
        assert (path / "fraudstream" / "contract.py").read_bytes() == (PACKAGE / "contract.py").read_bytes()
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
