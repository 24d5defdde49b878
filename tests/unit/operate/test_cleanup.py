"""`fraudstream cleanup`: finishing a stack deletion that stopped (make destroy runs it after `cdk destroy`).

CloudFormation's side is botocore's Stubber (moto cannot leave a stack DELETE_FAILED); S3 is moto's."""

from __future__ import annotations

import io
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import WaiterError
from botocore.stub import Stubber
from moto import mock_aws

from fraudstream import cli
from fraudstream.operate import cleanup
from fraudstream.operate.deployed import DeploymentError

STACK = "FraudStream"


@pytest.fixture
def aws():
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        s3 = boto3.resource("s3", region_name="us-east-1")
        with Stubber(cloudformation) as stubber:
            clients = {"cloudformation": cloudformation, "s3": boto3.client("s3", region_name="us-east-1")}
            session = SimpleNamespace(region_name="us-east-1", client=clients.__getitem__)
            yield SimpleNamespace(session=session, stubber=stubber, s3=s3)
            stubber.assert_no_pending_responses()


def status(stubber, value: str | None) -> None:
    if value is None:
        stubber.add_client_error("describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist")
    else:
        stubber.add_response("describe_stacks", {"Stacks": [
            {"StackName": STACK, "StackStatus": value, "CreationTime": "2026-12-01T00:00:00Z"}]},
            {"StackName": STACK})


def failed(stubber, *resources: tuple[str, str, str]) -> None:
    stubber.add_response("describe_stack_resources", {"StackResources": [
        {"LogicalResourceId": logical, "PhysicalResourceId": physical, "ResourceType": kind,
         "ResourceStatus": "DELETE_FAILED", "ResourceStatusReason": "The bucket you tried to delete is not empty",
         "Timestamp": "2026-12-01T00:00:00Z"} for logical, kind, physical in resources]
        + [{"LogicalResourceId": "Gone", "ResourceType": "AWS::SNS::Topic", "ResourceStatus": "DELETE_COMPLETE",
            "Timestamp": "2026-12-01T00:00:00Z"}]}, {"StackName": STACK})


def run(aws, wait=lambda cloudformation, stack: None) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.operate.cmd_cleanup(SimpleNamespace(stack=STACK, region=None), stdout=out, session=aws.session,
                                   wait=wait)
    return code, out.getvalue()


def test_a_stack_already_gone_needs_nothing(aws):
    status(aws.stubber, None)
    assert run(aws) == (0, f"stack {STACK} is gone from us-east-1: nothing left to clean up\n")


def test_a_bucket_that_filled_again_is_emptied_of_every_version_and_the_stack_deleted_again(aws):
    # Given a log bucket that received late access logs (two versions of one key, and a delete marker)
    bucket = aws.s3.create_bucket(Bucket="fraudstream-accesslogs")
    bucket.Versioning().enable()
    for body in (b"1", b"2"):
        bucket.put_object(Key="data/2026-12-01-log", Body=body)
    bucket.Object("gone").put(Body=b"x")
    bucket.Object("gone").delete()
    status(aws.stubber, "DELETE_FAILED")
    failed(aws.stubber, ("AccessLogs8B620ECA", "AWS::S3::Bucket", "fraudstream-accesslogs"),
           ("HandlersFunctionSecurityGroup", "AWS::EC2::SecurityGroup", "sg-0123"))
    aws.stubber.add_response("delete_stack", {}, {"StackName": STACK})
    waited = []
    # When cleanup runs
    code, out = run(aws, wait=lambda cloudformation, stack: waited.append(stack))
    # Then the bucket is empty, the other failure is named with its reason, and the deletion was resumed
    assert code == 0 and waited == [STACK]
    assert not list(bucket.object_versions.all())
    assert "AccessLogs8B620ECA: emptied 4 objects from fraudstream-accesslogs" in out
    assert "HandlersFunctionSecurityGroup (AWS::EC2::SecurityGroup) did not delete:" in out
    assert out.rstrip().endswith(f"stack {STACK} deleted")


def test_a_stack_that_still_does_not_delete_exits_1_saying_so(aws):
    status(aws.stubber, "DELETE_FAILED")
    failed(aws.stubber)
    aws.stubber.add_response("delete_stack", {}, {"StackName": STACK})

    def wait(cloudformation, stack):
        raise WaiterError("StackDeleteComplete", "Waiter encountered a terminal failure state", {})

    code, out = run(aws, wait=wait)
    assert code == 1 and "is still not deleted" in out


def test_a_stack_that_was_not_being_deleted_is_left_alone(aws):
    status(aws.stubber, "CREATE_COMPLETE")
    with pytest.raises(DeploymentError, match="is CREATE_COMPLETE, not DELETE_FAILED: run `make destroy` first"):
        run(aws)


def test_a_bucket_already_gone_counts_as_empty():
    with mock_aws():
        assert cleanup.empty_bucket(boto3.client("s3", region_name="us-east-1"), "no-such-bucket") == 0


def test_cleanup_is_a_command_with_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["cleanup", "--help"])
    assert exit_.value.code == 0 and "DELETE_FAILED" in capsys.readouterr().out
