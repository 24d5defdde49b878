"""What `make destroy` runs when a stack deletion stopped half way: empty what blocks it, delete again.

CloudFormation leaves a stack DELETE_FAILED when a resource would not go. The stack empties its
buckets and waits for Lambda's network interfaces itself (docs/deploy-reference.md "Security"); what can still be left is
a bucket that received objects after it was emptied (S3 delivers access logs late) or an interface that
outlived the wait. This empties each such bucket, every version of every object, and deletes the stack
again, which resumes where it stopped; a second deletion also waits again for the interfaces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

import boto3
from botocore.exceptions import WaiterError

from fraudstream.buckets import empty_bucket
from fraudstream.operate.deployed import DeploymentError, aws_errors, describe, explain, session_for

DELETE_WAIT_S = 3600  # a deletion that waits for Lambda's interfaces can take most of an hour


def failed_resources(cloudformation, stack: str) -> list[dict]:
    """The stack's resources CloudFormation could not delete."""
    resources = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    return [r for r in resources if r["ResourceStatus"] == "DELETE_FAILED"]


def run(stack: str, region: str | None, out: TextIO, session: boto3.session.Session | None = None,
        wait: Callable[[object, str], None] | None = None) -> int:
    """Finish deleting ``stack``: 0 when it is gone, 1 when it is still there (what is left is printed)."""
    session = session_for(region, session)
    cloudformation = session.client("cloudformation")
    wait = wait or _wait_for_delete
    with aws_errors():
        found = describe(cloudformation, stack)
        status = found and found["StackStatus"]
        if status is None:
            print(f"stack {stack} is gone from {session.region_name}: nothing left to clean up", file=out)
            return 0
        if status != "DELETE_FAILED":
            raise DeploymentError(f"stack {stack} is {status}, not DELETE_FAILED: run `make destroy` first")
        s3 = session.client("s3")
        for resource in failed_resources(cloudformation, stack):
            kind, name = resource["ResourceType"], resource.get("PhysicalResourceId", "")
            reason = resource.get("ResourceStatusReason", "")
            if kind == "AWS::S3::Bucket" and name:
                print(f"{resource['LogicalResourceId']}: emptied {empty_bucket(s3, name)} objects from {name}",
                      file=out)
            else:
                print(f"{resource['LogicalResourceId']} ({kind}) did not delete: {reason}", file=out)
        print(f"deleting stack {stack} again", file=out)
        cloudformation.delete_stack(StackName=stack)
    try:
        wait(cloudformation, stack)
    except WaiterError as error:
        print(f"stack {stack} is still not deleted: {explain(error)}; see its events in the CloudFormation console",
              file=out)
        return 1
    print(f"stack {stack} deleted", file=out)
    return 0


def _wait_for_delete(cloudformation, stack: str) -> None:
    delay = 15
    cloudformation.get_waiter("stack_delete_complete").wait(
        StackName=stack, WaiterConfig={"Delay": delay, "MaxAttempts": DELETE_WAIT_S // delay})
