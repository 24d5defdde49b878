"""Build the Lambda code assets: each handler with the whole `online` room and the root modules it imports, and
the stack's custom resources (lambdas/stack_resources/handler.py) with the root modules it imports.

What ships is computed, not listed: `online` is everything a Lambda runs (docs/development.md: "Layout"), and the
root modules come from reading its imports (packaging/modules.py). The in-process scorer's lazy import
of the model artifact format (xgboost) is not followed: on AWS the model is the endpoint. boto3 comes
with the Lambda runtime.

Powertools goes into a layer built from this environment's installed, locked distributions
(pure Python, so no Docker and no platform question): the functions run the exact release the
tests ran, not a public layer version that nothing here can check. orjson is compiled: the layer
gets the wheel of the locked release built for the functions' runtime and architecture (below),
fetched by uv from PyPI and kept in uv's cache.

    python -m fraudstream.packaging.lambda_assets build/lambda
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

from fraudstream.packaging.modules import Import, closure
from fraudstream.paths import BUILD, LAMBDAS, PACKAGE, REPO

HANDLERS = ("aggregate_to_feature_store", "predict_from_features", "produce_transactions")
CUSTOM_RESOURCES = "stack_resources"
ROOM = PACKAGE / "online"
# Distributions in the layer: Powertools and what it imports that the runtime lacks; kafka-python and AWS's IAM
# token signer, with which the predict function writes the verdicts topic (online/verdict_topic.py).
LAYER_DISTRIBUTIONS = ("aws-lambda-powertools", "typing-extensions", "jmespath", "kafka-python",
                       "aws-msk-iam-sasl-signer-python")
LAYER = "powertools_layer"
# The functions' runtime (stacks/pipeline_stack.py and stacks/handlers.py take it from here) and the
# wheels of the compiled distributions for it.
PYTHON_VERSION = "3.14"
ARCHITECTURE = "arm64"
WHEEL_PLATFORM = "aarch64-manylinux_2_28"  # Lambda's arm64 runtimes: Amazon Linux 2023, glibc 2.34
COMPILED_DISTRIBUTIONS = ("orjson",)


def _root(found: Import) -> bool:
    parts = found.module.split(".")
    return len(parts) == 2 and (PACKAGE / f"{parts[1]}.py").is_file()


def _root_or_online(found: Import) -> bool:
    return _root(found) or found.module.startswith("fraudstream.online")


def runtime_files() -> list[Path]:
    """The fraudstream files both assets carry: the online room and the root modules it imports."""
    room = sorted(ROOM.glob("*.py"))
    return sorted(set(room) | closure(room, follow=_root_or_online) | {PACKAGE / "__init__.py"})


def custom_resource_files() -> list[Path]:
    """The fraudstream files the custom resources' asset carries: the root modules its handler imports."""
    return sorted(closure([LAMBDAS / CUSTOM_RESOURCES / "handler.py"], follow=_root) | {PACKAGE / "__init__.py"})


def _write_asset(target: Path, handler: Path, files: list[Path]) -> Path:
    """target/handler.py and ``files`` at their places under the repository, replacing what was there."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(handler, target / "handler.py")
    for file in files:
        destination = target / file.relative_to(REPO)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, destination)
    return target


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
    install_compiled(site)
    return target


def install_compiled(site: Path) -> None:
    """Install the Lambda platform's wheel of each compiled distribution, at the version installed here."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is not installed (make install puts it in .venv): it fetches the layer's compiled wheels")
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in COMPILED_DISTRIBUTIONS]
    subprocess.run([uv, "pip", "install", "--quiet", "--target", str(site), "--python-platform", WHEEL_PLATFORM,
                    "--python-version", PYTHON_VERSION, "--only-binary", ":all:", "--no-deps", *pins], check=True)


def build(out_dir: str | Path) -> dict[str, Path]:
    """Write out_dir/<handler>/ for each handler, the custom resources' asset and the layer; returns the asset
    directories by name."""
    files = runtime_files()
    assets = {name: _write_asset(Path(out_dir) / name, LAMBDAS / name / "handler.py", files) for name in HANDLERS}
    assets[CUSTOM_RESOURCES] = _write_asset(Path(out_dir) / CUSTOM_RESOURCES,
                                            LAMBDAS / CUSTOM_RESOURCES / "handler.py", custom_resource_files())
    assets[LAYER] = build_layer(out_dir)
    return assets


if __name__ == "__main__":
    for name, path in build(sys.argv[1] if len(sys.argv) > 1 else BUILD / "lambda").items():
        print(f"{name}: {path}")
