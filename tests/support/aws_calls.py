"""Every AWS API call a component makes, recorded in its tests, and the IAM grants each one needs.

Recording: tests marked ``@pytest.mark.aws_component("predict")`` (tests/conftest.py) hook every botocore
client created while they run (the ``before-parameter-build`` event: the call's API parameters, before
Stubber or moto answer it) and append each call to the file named by
FRAUDSTREAM_RECORD_AWS_CALLS. tests/infrastructure/test_calls_granted.py runs those tests with that
variable set, then checks each recorded call against the synthesized template with ``missing_grants``.

Template side: a role's statements are evaluated with fake pseudo parameters; what a reference
resolves to only at deploy time (a bucket's generated name, a cluster's uuid) becomes ``*``, so a
grant is matched on everything the template does fix: service, resource type, literal names.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

RECORD_ENV = "FRAUDSTREAM_RECORD_AWS_CALLS"
PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"


@dataclass(frozen=True)
class Call:
    component: str
    service: str  # botocore's service name: sagemaker-featurestore-runtime, s3, ...
    operation: str
    params: dict


@dataclass(frozen=True)
class Need:
    """One IAM action on one resource ARN, as a call needs it."""

    action: str
    resource: str


# --- Recording ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def recording(component: str, sink: Path) -> Iterator[None]:
    """Record the calls of every botocore client created inside the block (Stubber'd and moto ones too)."""
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        service = client.meta.service_model.service_name

        def before_parameter_build(model, params, **_):
            if _made_by_the_test():
                return  # the test's own setup (creating a bucket, seeding objects), not the component
            call = {"component": component, "service": service, "operation": model.name, "params": params}
            with sink.open("a", encoding="utf-8") as out:
                out.write(json.dumps(call, default=str) + "\n")

        client.meta.events.register(f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}",
                                    before_parameter_build)
        return client

    botocore.session.Session.create_client = create_client
    try:
        yield
    finally:
        botocore.session.Session.create_client = original


def _made_by_the_test() -> bool:
    """Whether the nearest frame of this repository's code (libraries skipped) is a test file's.

    A call from a worker thread (boto3's managed copy) has no such frame: it is the component's."""
    import sys

    from fraudstream.paths import REPO

    tests, frame = str(REPO / "tests"), sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(str(REPO)) and "site-packages" not in name and not name.endswith("aws_calls.py"):
            return name.startswith(tests)
        frame = frame.f_back
    return False


def read_calls(path: Path) -> list[Call]:
    return [Call(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def sink_from_environment() -> Path | None:
    value = os.environ.get(RECORD_ENV)
    return Path(value) if value else None


# --- Calls -> IAM actions ----------------------------------------------------------------------------


def _arn(service: str, resource: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def _object(bucket: str, key: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}/{key}"


def _bucket(bucket: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}"


def _delete(bucket: str, item: dict) -> list[Need]:
    needs = [Need("s3:DeleteObject", _object(bucket, item["Key"]))]
    if item.get("VersionId"):
        needs.append(Need("s3:DeleteObjectVersion", _object(bucket, item["Key"])))
    return needs


def _copy_source(params: dict) -> list[Need]:
    source = params["CopySource"]
    if isinstance(source, str):
        bucket, _, key = source.lstrip("/").partition("/")
    else:
        bucket, key = source["Bucket"], source["Key"]
    return [Need("s3:GetObject", _object(bucket, key))]


def _group(action: str) -> Callable[[dict], list[Need]]:
    return lambda p: [Need(action, _arn("sagemaker", f"feature-group/{p['FeatureGroupName']}"))]


def _flink(action: str) -> Callable[[dict], list[Need]]:
    return lambda p: [Need(action, _arn("kinesisanalytics", f"application/{p['ApplicationName']}"))]


# (service, operation) -> the IAM actions and resources it needs (Service Authorization Reference).
# A call missing here fails the check: whoever adds a call adds its permission here and in the stack.
ACTIONS: dict[tuple[str, str], Callable[[dict], list[Need]]] = {
    ("sagemaker-featurestore-runtime", "BatchGetRecord"): lambda p: [
        Need("sagemaker:BatchGetRecord", _arn("sagemaker", f"feature-group/{i['FeatureGroupName']}"))
        for i in p["Identifiers"]],
    ("sagemaker-featurestore-runtime", "GetRecord"): _group("sagemaker:GetRecord"),
    ("sagemaker-featurestore-runtime", "PutRecord"): _group("sagemaker:PutRecord"),
    ("sagemaker-runtime", "InvokeEndpoint"): lambda p: [
        Need("sagemaker:InvokeEndpoint", _arn("sagemaker", f"endpoint/{p['EndpointName'].lower()}"))],
    # No resource type in the Service Authorization Reference: only "*" grants it.
    ("kafka", "GetBootstrapBrokers"): lambda p: [Need("kafka:GetBootstrapBrokers", "*")],
    ("ec2", "DescribeNetworkInterfaces"): lambda p: [Need("ec2:DescribeNetworkInterfaces", "*")],
    ("ec2", "DescribeManagedPrefixLists"): lambda p: [Need("ec2:DescribeManagedPrefixLists", "*")],
    ("kinesisanalyticsv2", "DescribeApplication"): _flink("kinesisanalytics:DescribeApplication"),
    ("kinesisanalyticsv2", "StartApplication"): _flink("kinesisanalytics:StartApplication"),
    ("kinesisanalyticsv2", "StopApplication"): _flink("kinesisanalytics:StopApplication"),
    ("s3", "ListObjectsV2"): lambda p: [Need("s3:ListBucket", _bucket(p["Bucket"]))],
    ("s3", "ListObjectVersions"): lambda p: [Need("s3:ListBucketVersions", _bucket(p["Bucket"]))],
    ("s3", "DeleteObjects"): lambda p: [n for item in p["Delete"]["Objects"] for n in _delete(p["Bucket"], item)],
    ("s3", "DeleteObject"): lambda p: _delete(p["Bucket"], p),
    ("s3", "HeadObject"): lambda p: [Need("s3:GetObject", _object(p["Bucket"], p["Key"]))],
    ("s3", "GetObject"): lambda p: [Need("s3:GetObject", _object(p["Bucket"], p["Key"]))],
    ("s3", "PutObject"): lambda p: [Need("s3:PutObject", _object(p["Bucket"], p["Key"]))],
    ("s3", "CopyObject"): lambda p: _copy_source(p) + [Need("s3:PutObject", _object(p["Bucket"], p["Key"]))],
    ("s3", "CreateMultipartUpload"): lambda p: [Need("s3:PutObject", _object(p["Bucket"], p["Key"]))],
    ("s3", "UploadPartCopy"): lambda p: _copy_source(p) + [Need("s3:PutObject", _object(p["Bucket"], p["Key"]))],
    ("s3", "CompleteMultipartUpload"): lambda p: [Need("s3:PutObject", _object(p["Bucket"], p["Key"]))],
}


def needs_of(call: Call, names: dict[str, str]) -> list[Need]:
    """The grants ``call`` needs, with the test's resource names replaced by the stack's (``names``)."""
    try:
        mapping = ACTIONS[(call.service, call.operation)]
    except KeyError:
        raise KeyError(f"{call.component} calls {call.service}:{call.operation}, which tests/support/aws_calls.py "
                       "does not map to IAM actions: add it there (and grant it in stacks/)") from None
    params = json.loads(json.dumps(call.params))
    for test_name, stack_name in names.items():
        params = json.loads(json.dumps(params).replace(json.dumps(test_name)[1:-1], stack_name))
    return mapping(params)


# --- The template's grants ---------------------------------------------------------------------------

PSEUDO = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": "amazonaws.com"}
# What GetAtt <resource>.Arn is, by type, with the parts only a deploy knows as "*".
ARN_OF = {"AWS::S3::Bucket": "arn:aws:s3:::*", "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*",
          "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:*:*",
          "AWS::MSK::Cluster": f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/*",
          "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:*",
          "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/*", "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:*"}
NAME_PROPERTY = {"AWS::SageMaker::FeatureGroup": "FeatureGroupName", "AWS::SageMaker::Endpoint": "EndpointName",
                 "AWS::KinesisAnalyticsV2::Application": "ApplicationName"}


def evaluate(value, resources: dict) -> str:
    """A template value as a string; what only a deploy resolves (a generated name, an id) becomes ``*``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), = value.items()
        if function == "Ref":
            if argument in PSEUDO:
                return PSEUDO[argument]
            resource = resources.get(argument, {})
            name = resource.get("Properties", {}).get(NAME_PROPERTY.get(resource.get("Type"), ""))
            return name if isinstance(name, str) else "*"
        if function == "Fn::GetAtt" and argument[1] == "Arn":
            return ARN_OF.get(resources.get(argument[0], {}).get("Type"), "*")
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(evaluate(part, resources) for part in parts)
        if function == "Fn::Sub" and isinstance(argument, str):
            import re

            return re.sub(r"\$\{([^}]+)\}", lambda m: PSEUDO.get(m.group(1), "*"), argument)
    return "*"


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def role_statements(resources: dict, role: str) -> list[dict]:
    """Every Allow statement of the identity policies attached to ``role`` (a logical id)."""
    statements = []
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in props.get("Roles", []):
            statements += props["PolicyDocument"]["Statement"]
    statements += [s for p in resources[role]["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    return [s for s in statements if s.get("Effect") == "Allow"]


def granted(statements: list[dict], need: Need, resources: dict) -> bool:
    for statement in statements:
        if not any(fnmatch.fnmatchcase(need.action, a) for a in as_list(statement["Action"])):
            continue
        patterns = [evaluate(r, resources) for r in as_list(statement.get("Resource", []))]
        if any(fnmatch.fnmatch(need.resource.lower(), p.lower()) for p in patterns):
            return True
    return False


def missing_grants(resources: dict, role: str, calls: list[Call], names: dict[str, str]) -> list[str]:
    """Each needed grant the role lacks, as 'action on resource (from service:Operation)'."""
    statements = role_statements(resources, role)
    missing = []
    for call in calls:
        for need in needs_of(call, names):
            if not granted(statements, need, resources):
                missing.append(f"{need.action} on {need.resource} (from {call.service}:{call.operation})")
    return sorted(set(missing))
