"""Build the two Lambda code assets: each handler plus the fraudstream modules it imports.

The shared contract is copied by this build, never by hand, so both functions always ship the
same definitions as training. Modules that need numpy or xgboost (training, the in-process model)
stay out: on AWS the model is the endpoint. boto3 comes with the Lambda runtime and Powertools
from its public layer, so the assets are a few dozen kilobytes.

    python -m fraudstream.lambda_assets build/lambda
"""

from __future__ import annotations

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
    return assets


if __name__ == "__main__":
    for name, path in build(sys.argv[1] if len(sys.argv) > 1 else REPO / "build" / "lambda").items():
        print(f"{name}: {path}")
