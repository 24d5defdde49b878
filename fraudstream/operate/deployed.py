"""A deployed stack, found by name: the operating commands read everything they need from its outputs.

Every AWS failure a user can cause or fix (unknown stack, missing output, expired or absent
credentials, no region, no network) becomes one DeploymentError line that says what to do.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    TokenRetrievalError,
)

CREDENTIAL_ERRORS = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId",
                     "UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch"}


class DeploymentError(RuntimeError):
    """The stack, its outputs or the AWS session cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Deployment:
    stack: str
    session: boto3.session.Session
    outputs: dict[str, str]

    @property
    def region(self) -> str:
        return self.session.region_name

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            raise DeploymentError(
                f"stack {self.stack} has no output {key}: it was deployed by an older version; run `make deploy`"
            ) from None

    def client(self, service: str, **kwargs):
        return self.session.client(service, **kwargs)


def explain(error: Exception) -> str:
    """One line for an AWS failure, naming the fix."""
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found: configure them (aws configure, AWS_PROFILE or aws sso login)"
    if isinstance(error, TokenRetrievalError):
        return f"AWS credentials could not be refreshed ({error}): log in again (aws sso login)"
    if isinstance(error, NoRegionError):
        return "no AWS region: pass --region, or set AWS_REGION (or AWS_DEFAULT_REGION, or a region in your AWS profile)"
    if isinstance(error, EndpointConnectionError):
        return f"cannot reach AWS ({error.kwargs.get('endpoint_url', 'endpoint')}): check the network and the region"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", str(error))
        if code in CREDENTIAL_ERRORS:
            return f"AWS credentials expired or invalid ({code}): refresh them and retry"
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return f"access denied: {message}"
        return f"{code}: {message}"
    return str(error)


@contextlib.contextmanager
def aws_errors():
    """Turn AWS SDK exceptions raised inside the block into DeploymentError lines."""
    try:
        yield
    except DeploymentError:
        raise
    except (ClientError, BotoCoreError) as error:
        raise DeploymentError(explain(error)) from None


def session_for(region: str | None, session: boto3.session.Session | None = None) -> boto3.session.Session:
    """``session``, or one for ``region``; DeploymentError without a region.

    The region's default is the AWS CLI's: AWS_REGION, then AWS_DEFAULT_REGION, then the profile's (botocore
    reads only the last two)."""
    session = session or boto3.session.Session(region_name=region or os.environ.get("AWS_REGION") or None)
    if session.region_name is None:
        raise DeploymentError(explain(NoRegionError()))
    return session


def environment(region: str | None = None, session: boto3.session.Session | None = None) -> str:
    """aws://ACCOUNT/REGION of the credentials (one STS call): what `make deploy` and `make bootstrap` check before
    synthesis, so missing credentials, region or network are one line, not a failure minutes into a deploy."""
    session = session_for(region, session)
    with aws_errors():
        account = session.client("sts").get_caller_identity()["Account"]
    return f"aws://{account}/{session.region_name}"


def describe(cloudformation, stack: str) -> dict | None:
    """The stack's CloudFormation description, or None when there is no such stack."""
    try:
        (found,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        if "does not exist" in error.response.get("Error", {}).get("Message", ""):
            return None
        raise
    return found


def find(stack: str, region: str | None = None, session: boto3.session.Session | None = None) -> Deployment:
    """The stack's outputs, from CloudFormation. Raises DeploymentError with the reason and the fix."""
    session = session_for(region, session)
    with aws_errors():
        found = describe(session.client("cloudformation"), stack)
    if found is None:
        raise DeploymentError(f"stack {stack} not found in {session.region_name}: deploy it (make deploy) "
                              f"or pass --stack NAME / --region REGION")
    status = found["StackStatus"]
    if status.endswith("_IN_PROGRESS") and "COMPLETE" not in status:
        raise DeploymentError(f"stack {stack} is {status}: wait until it finishes")
    if status.endswith("FAILED") or status in ("ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"):
        raise DeploymentError(f"stack {stack} is {status}: see its events in the CloudFormation console, "
                              f"fix the cause and deploy again")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    return Deployment(stack=stack, session=session, outputs=outputs)
