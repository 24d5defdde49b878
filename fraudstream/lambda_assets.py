"""Build the two Lambda code assets: each handler plus the fraudstream modules it imports.

The shared contract is copied by this build, never by hand, so both functions always ship the
same definitions as training. Modules that need numpy or xgboost (training, the in-process model)
stay out: on AWS the model is the endpoint. boto3 comes with the Lambda runtime.

Powertools goes into a layer built from this environment's installed, locked distributions
(pure Python, so no Docker and no platform question): the functions run the exact release the
tests ran, not a public layer version that nothing here can check.

    python -m fraudstream.lambda_assets build/lambda
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HANDLERS = ("aggregate_to_feature_store", "predict_from_features")
# What the handlers import at run time on AWS (tests/unit/test_lambda_assets.py checks the list).
RUNTIME_MODULES = (
    "__init__.py",
    "aws.py",
    "backends.py",
    "contract.py",
    "messages.py",
    "online.py",
    "scorers.py",
    "settings.py",
    "stores.py",
    "telemetry.py",
)


# Distributions in the Powertools layer: Powertools and what it imports that the runtime lacks.
LAYER_DISTRIBUTIONS = ("aws-lambda-powertools", "typing-extensions", "jmespath")
LAYER = "powertools_layer"


def build_layer(out_dir: str | Path) -> Path:
    """Write out_dir/powertools_layer/python/... from the installed distributions; returns the directory."""
    target = Path(out_dir) / LAYER
    if target.exists():
        shutil.rmtree(target)
    site = target / "python"
    for name in LAYER_DISTRIBUTIONS:
        dist = importlib.metadata.distribution(name)
        for file in dist.files or ():
            if "__pycache__" in file.parts or file.parts[0] == ".." or file.suffix == ".pyc":
                continue  # bytecode is compiled by the runtime; '..' entries are scripts outside site-packages
            source = Path(dist.locate_file(file))
            destination = site / file
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    return target


def build(out_dir: str | Path) -> dict[str, Path]:
    """Write out_dir/<handler>/ for each handler; returns the asset directories."""
    assets = {}
    for name in HANDLERS:
        target = Path(out_dir) / name
        if target.exists():
            shutil.rmtree(target)
        (target / "fraudstream").mkdir(parents=True)
        shutil.copy2(REPO / "lambdas" / name / "handler.py", target / "handler.py")
        for module in RUNTIME_MODULES:
            shutil.copy2(REPO / "fraudstream" / module, target / "fraudstream" / module)
        assets[name] = target
    assets[LAYER] = build_layer(out_dir)
    return assets


if __name__ == "__main__":
    for name, path in build(sys.argv[1] if len(sys.argv) > 1 else REPO / "build" / "lambda").items():
        print(f"{name}: {path}")
