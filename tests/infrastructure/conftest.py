"""Synthesize the CDK app once per session, as `python app.py` with CDK_CONTEXT_JSON and CDK_OUTDIR.

The two built artifacts are stand-ins made here: a small model.tar.gz written by the project's own
`save_artifact`, and a zip in place of the Flink package (the real one needs Maven Central, which
this machine cannot reach). Synthesis runs cdk-nag; no AWS credentials, no Docker.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from tests.support.batch_aggregates import write_aggregates
from tests.support.flink_package import stand_in_package
from tests.support.models import write_model
from tests.support.synth import BATCH_CARDS, CONTEXT, FEATURE_SET, run_app

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_DEPRECATED", "quiet")

@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("artifacts")
    return {"modelArtifact": str(write_model(root / "model.tar.gz", FEATURE_SET, rows=40, rounds=2)),
            "flinkPackage": str(stand_in_package(root, name="flink-app.zip")),
            "batchFeatures": str(write_aggregates(root / "batch_aggregates.parquet", BATCH_CARDS))}


def synthesize(artifacts: dict, outdir: Path) -> Path:
    result = run_app({**CONTEXT, **artifacts}, outdir)
    assert result.returncode == 0, result.stderr[-4000:]
    return outdir


@pytest.fixture(scope="session")
def assembly(artifacts, tmp_path_factory, worker_id) -> Path:
    """The synthesized app, once per test run: with pytest-xdist the first worker synthesizes (a minute of cdk-nag)
    under a lock in the run's shared temporary directory, and the others read its cloud assembly."""
    if worker_id == "master":  # one process: nothing to share
        return synthesize(artifacts, tmp_path_factory.mktemp("cdk.out"))
    shared = tmp_path_factory.getbasetemp().parent  # this run's directory, above each worker's own
    outdir, done = shared / "cdk.out", shared / "cdk.out.done"
    with open(shared / "cdk.out.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when this process dies
        if not done.exists():
            synthesize(artifacts, outdir)
            done.touch()
    return outdir


@pytest.fixture(scope="session")
def template_json(assembly) -> dict:
    return json.loads((assembly / f"{CONTEXT['stackName']}.template.json").read_text())


@pytest.fixture(scope="session")
def template(template_json):
    from aws_cdk.assertions import Template

    return Template.from_json(template_json)


@pytest.fixture(scope="session")
def resources(template_json) -> dict:
    return template_json["Resources"]
