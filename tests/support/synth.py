"""Synthesizing the CDK app in tests, and reading its template: what the infrastructure tests share."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from fraudstream.paths import REPO

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
    "maxOutOfOrdernessSeconds": 2.5,
    "tickDelayMs": 500,
}
FEATURE_SET = "v1"  # not the default, so the test sees it come from the artifact
BATCH_CARDS = 25  # the 1-week records the synthesized stack loads at deploy


def run_app(context: dict, outdir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(outdir)}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(name, None)  # synthesis must not need credentials
    return subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def run_app_here(context: dict, outdir: Path) -> subprocess.CompletedProcess:
    """app.py's main() in this process, for the refusals: they stop before synthesis, so a new interpreter and
    jsii runtime per case (4-8 s each) would be most of their cost. Same result shape as run_app."""
    import app

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = app.main(context, str(outdir))
    return subprocess.CompletedProcess(["app.py"], code, "", stderr.getvalue())


def of_type(resources: dict, kind: str) -> dict:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def role_of(resources: dict, component: str) -> str:
    """The logical id of the role ``component`` runs as in the template."""
    functions = of_type(resources, "AWS::Lambda::Function")
    prefix = {"predict": "HandlersPredictFromFeatures", "aggregate": "HandlersAggregateToFeatureStore",
              "stack_resources": "StackResourcesHandler"}
    if component == "processing_job":
        [role] = [n for n in of_type(resources, "AWS::IAM::Role") if n.startswith("BatchJobsJobRole")]
        return role
    [function] = [f for n, f in functions.items() if n.startswith(prefix[component]) and "Role" not in n]
    return function["Properties"]["Role"]["Fn::GetAtt"][0]
