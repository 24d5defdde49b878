"""Every AWS call each component makes is granted to that component's role, on the resource it names.

The calls come from the components' own tests (marked aws_component; tests/support/aws_calls.py records
them), run here in a child pytest so this module needs nothing run before it. Each call is mapped to its
IAM actions and resources and looked up in the synthesized template's policies for the role the component
runs as. The operating commands (simulate, logs, load-batch-features, the SageMaker jobs' launchers) run
with the operator's own credentials, not a role of the stack: docs/deploy-reference.md "Security" lists what they need.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from fraudstream import contract as c
from fraudstream.paths import REPO
from tests.support import aws_calls
from tests.support.components import APP, ENDPOINT, batch_features_event, copy_event
from tests.support.synth import of_type, role_of

RECORDING_TESTS = ["tests/unit/online/test_stores.py", "tests/unit/online/test_scorers.py",
                   "tests/unit/lambdas/test_stack_resources.py", "tests/unit/offline/test_processing_job_store.py"]
COMPONENTS = ("predict", "aggregate", "stack_resources", "processing_job")
# One pytest-xdist worker runs this module (make test: --dist loadgroup), so the child pytest runs once.
pytestmark = pytest.mark.xdist_group("recorded_calls")


@pytest.fixture(scope="module")
def calls(tmp_path_factory) -> dict[str, list[aws_calls.Call]]:
    sink = tmp_path_factory.mktemp("calls") / "calls.jsonl"
    sink.touch()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "aws_component", *RECORDING_TESTS],
        cwd=REPO, env={**os.environ, aws_calls.RECORD_ENV: str(sink)}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    by_component: dict[str, list[aws_calls.Call]] = {}
    for call in aws_calls.read_calls(sink):
        by_component.setdefault(call.component, []).append(call)
    return by_component


@pytest.fixture(scope="module")
def names(resources) -> dict[str, str]:
    """The tests' resource names -> the stack's: the same kind of resource, named as the template names it."""
    [(_, endpoint)] = of_type(resources, "AWS::SageMaker::Endpoint").items()
    [(_, application)] = of_type(resources, "AWS::KinesisAnalyticsV2::Application").items()
    names = {ENDPOINT: endpoint["Properties"]["EndpointName"], APP: application["Properties"]["ApplicationName"]}
    # The model copy: the test's asset bucket and keys -> the CDK asset and the key the stack gives the copy.
    [(_, copied)] = of_type(resources, "Custom::CopiedObject").items()
    tested = copy_event("Create")["ResourceProperties"]
    names.update({tested[key]: aws_calls.evaluate(copied["Properties"][key], resources)
                  for key in ("SourceBucket", "SourceKey", "Key")})
    # The 1-week records loaded at deploy: the test's asset key -> the CDK asset's.
    [(_, loaded)] = of_type(resources, "Custom::BatchFeaturesLoaded").items()
    names[batch_features_event("Create", 0)["ResourceProperties"]["Key"]] = loaded["Properties"]["Key"]
    return names


def test_each_component_makes_the_calls_its_tests_exercise(calls):
    # The recording itself works: every component was seen calling AWS, with the operations we expect.
    operations = {component: {f"{c.service}:{c.operation}" for c in found} for component, found in calls.items()}
    assert set(operations) == set(COMPONENTS)
    assert "sagemaker-featurestore-runtime:BatchGetRecord" in operations["predict"]
    assert "sagemaker-runtime:InvokeEndpoint" in operations["predict"]
    # The predict function reads only the 1-week group, in batches: no GetRecord, no 10-minute group.
    assert "sagemaker-featurestore-runtime:GetRecord" not in operations["predict"]
    read = {identifier["FeatureGroupName"] for call in calls["predict"] if call.operation == "BatchGetRecord"
            for identifier in call.params["Identifiers"]}
    assert read == {c.BATCH_FEATURE_GROUP}
    assert operations["aggregate"] == {"sagemaker-featurestore-runtime:PutRecord"}
    assert operations["processing_job"] == {"sagemaker-featurestore-runtime:PutRecord"}
    assert {"kafka:GetBootstrapBrokers", "kinesisanalyticsv2:StartApplication", "s3:DeleteObjects",
            "s3:CopyObject", "s3:GetObject", "sagemaker-featurestore-runtime:PutRecord"} <= operations["stack_resources"]


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_call_of_the_component_is_granted_to_its_role(component, calls, resources, names):
    assert aws_calls.missing_grants(resources, role_of(resources, component), calls[component], names) == []


def _without(resources: dict, role: str, action: str) -> dict:
    """The template with ``action`` taken out of every statement of ``role``'s policies."""
    planted = copy.deepcopy(resources)
    for statement in aws_calls.role_statements(planted, role):
        actions = aws_calls.as_list(statement["Action"])
        statement["Action"] = [a for a in actions if a != action] or ["none:Nothing"]
    return planted


@pytest.mark.parametrize("component, action", [
    ("predict", "sagemaker:InvokeEndpoint"),
    ("predict", "sagemaker:BatchGetRecord"),
    ("aggregate", "sagemaker:PutRecord"),
    ("stack_resources", "kafka:GetBootstrapBrokers"),
    ("stack_resources", "s3:DeleteObjectVersion"),
    ("stack_resources", "sagemaker:PutRecord"),
    ("processing_job", "sagemaker:PutRecord"),
])
def test_a_planted_missing_permission_is_reported(component, action, calls, resources, names):
    # Given the template with one permission the component needs taken away
    role = role_of(resources, component)
    planted = _without(resources, role, action)
    # When the calls are checked / Then that permission is reported, naming the call it came from
    missing = aws_calls.missing_grants(planted, role, calls[component], names)
    assert missing and all(line.startswith(f"{action} on ") for line in missing)


def test_a_grant_on_another_feature_group_does_not_count(calls, resources, names):
    # Given the aggregate role's PutRecord scoped to the 1-week group instead of the 10-minute one
    role = role_of(resources, "aggregate")
    planted = copy.deepcopy(resources)
    for statement in aws_calls.role_statements(planted, role):
        if "sagemaker:PutRecord" in aws_calls.as_list(statement["Action"]):
            statement["Resource"] = json.loads(json.dumps(statement["Resource"]).replace("cc-agg-fg", "cc-agg-batch-fg"))
    # Then the write to the 10-minute group is reported missing
    assert aws_calls.missing_grants(planted, role, calls["aggregate"], names)


def test_a_predict_grant_on_the_10_minute_group_does_not_count(calls, resources, names):
    # Given the predict role's BatchGetRecord scoped to the 10-minute group instead of the 1-week one
    role = role_of(resources, "predict")
    planted = copy.deepcopy(resources)
    for statement in aws_calls.role_statements(planted, role):
        if "sagemaker:BatchGetRecord" in aws_calls.as_list(statement["Action"]):
            statement["Resource"] = json.loads(json.dumps(statement["Resource"]).replace(
                c.BATCH_FEATURE_GROUP, c.STREAMING_FEATURE_GROUP))
    # Then its reads of the 1-week group are reported missing
    missing = aws_calls.missing_grants(planted, role, calls["predict"], names)
    assert missing and all(line.startswith("sagemaker:BatchGetRecord on ") for line in missing)


def test_a_call_without_an_iam_mapping_fails_loudly(resources, names):
    call = aws_calls.Call("predict", "sagemaker-runtime", "InvokeEndpointAsync", {"EndpointName": ENDPOINT})
    with pytest.raises(KeyError, match="does not map to IAM actions"):
        aws_calls.missing_grants(resources, role_of(resources, "predict"), [call], names)
