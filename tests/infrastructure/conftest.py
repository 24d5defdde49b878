"""Synthesize the CDK app once per session, as `python app.py` with CDK_CONTEXT_JSON and CDK_OUTDIR.

The two built artifacts are stand-ins made here: a small model.tar.gz written by the project's own
`save_artifact`, and a zip in place of the Flink package (the real one needs Maven Central, which
this machine cannot reach). Synthesis runs cdk-nag; no AWS credentials, no Docker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fraudstream.paths import REPO
from tests.support.flink_package import stand_in_package
from tests.support.models import write_model

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_DEPRECATED", "quiet")

# Context that differs from every default, so assertions prove the value travels into the template.
CONTEXT = {
    "stackName": "FraudTest",
    "brokerCount": 4,
    "topicPartitions": 6,
    "topicReplicationFactor": 3,
    "endpointInstanceType": "ml.m5.large",
    "aggregateBatchSize": 250,
    "aggregateBatchingWindowSeconds": 2,
    "predictBatchSize": 50,
    "predictBatchingWindowSeconds": 1,
    "fraudThreshold": 0.4,
    "logRetentionDays": 14,
    "alarmEmail": "oncall@example.com",
}
FEATURE_SET = "v1"  # not the default, so the test sees it come from the artifact


def run_app(context: dict, outdir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(outdir)}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(name, None)  # synthesis must not need credentials
    return subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("artifacts")
    return {"modelArtifact": str(write_model(root / "model.tar.gz", FEATURE_SET, rows=40, rounds=2)),
            "flinkPackage": str(stand_in_package(root, name="flink-app.zip"))}


@pytest.fixture(scope="session")
def assembly(artifacts, tmp_path_factory) -> Path:
    outdir = tmp_path_factory.mktemp("cdk.out")
    result = run_app({**CONTEXT, **artifacts}, outdir)
    assert result.returncode == 0, result.stderr[-4000:]
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


def of_type(resources: dict, kind: str) -> dict:
    return {name: r for name, r in resources.items() if r["Type"] == kind}
