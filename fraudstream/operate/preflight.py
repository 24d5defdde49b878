"""What `make deploy` checks before CloudFormation starts: the environment of the credentials, then whether the
account's Lambda concurrency can take what the synthesized template reserves.

Lambda keeps at least 100 concurrent executions unreserved in every account and region, and new accounts start
with a limit of 10, so a stack that reserves concurrency fails there minutes into the deploy, on the first
function. Reading the limit first (Lambda GetAccountSettings) turns that into one line naming the fix.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3

from fraudstream.operate.deployed import DeploymentError, aws_errors, describe, environment, session_for

UNRESERVED_MINIMUM = 100  # executions Lambda keeps unreserved in an account (Lambda quotas)
FUNCTION = "AWS::Lambda::Function"


def reserved_by(assembly: Path) -> dict[str, int]:
    """Stack name -> the concurrent executions its template reserves (every function's ReservedConcurrentExecutions),
    for each stack of a cloud assembly (cdk.out)."""
    manifest_path = assembly / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as error:
        raise DeploymentError(f"{manifest_path}: not a synthesized cloud assembly ({error}); run `make synth`") from None
    stacks = {}
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        properties = artifact.get("properties", {})
        template = json.loads((assembly / properties["templateFile"]).read_text())
        stacks[properties.get("stackName", artifact_id)] = sum(
            int(resource.get("Properties", {}).get("ReservedConcurrentExecutions", 0))
            for resource in template.get("Resources", {}).values() if resource.get("Type") == FUNCTION)
    return stacks


@dataclass(frozen=True)
class Concurrency:
    """The account's Lambda concurrency against what a deploy of one stack would reserve."""

    limit: int  # the account's concurrent executions in the region
    unreserved: int  # of which no function has reserved
    reserved_now: int  # reserved today by the functions of the stack being updated (0 for a new stack)
    to_reserve: int  # reserved by the template about to be deployed

    @property
    def unreserved_after(self) -> int:
        return self.unreserved + self.reserved_now - self.to_reserve

    def problem(self) -> str | None:
        """None when the deploy fits, else the line saying why it would fail and what to do."""
        if self.to_reserve == 0 or self.unreserved_after >= UNRESERVED_MINIMUM:
            return None
        reserved_by_others = self.limit - self.unreserved - self.reserved_now
        return (f"the stack reserves {self.to_reserve} concurrent Lambda executions, but this account's limit is "
                f"{self.limit}, {reserved_by_others} of them reserved by other functions, and Lambda keeps "
                f"{UNRESERVED_MINIMUM} unreserved: deploy with `make deploy CONTEXT=reserveConcurrency=false` "
                f"(cdk: -c reserveConcurrency=false), or ask for a 'Concurrent executions' quota of at least "
                f"{reserved_by_others + self.to_reserve + UNRESERVED_MINIMUM} (Service Quotas, AWS Lambda)")


def reserved_now(session: boto3.session.Session, stack: str) -> int:
    """What the deployed stack's functions reserve today (0 when there is no such stack): an update hands it back."""
    cloudformation = session.client("cloudformation")
    if describe(cloudformation, stack) is None:
        return 0
    client = session.client("lambda")
    total = 0
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        for resource in page["StackResourceSummaries"]:
            if resource["ResourceType"] == FUNCTION and resource.get("PhysicalResourceId"):
                try:
                    found = client.get_function_concurrency(FunctionName=resource["PhysicalResourceId"])
                except client.exceptions.ResourceNotFoundException:
                    continue  # deleted outside CloudFormation: it reserves nothing
                total += found.get("ReservedConcurrentExecutions", 0)
    return total


def concurrency(session: boto3.session.Session, stack: str, to_reserve: int) -> Concurrency:
    with aws_errors():
        limits = session.client("lambda").get_account_settings()["AccountLimit"]
        return Concurrency(limit=limits["ConcurrentExecutions"], unreserved=limits["UnreservedConcurrentExecutions"],
                           reserved_now=reserved_now(session, stack) if to_reserve else 0, to_reserve=to_reserve)


def check_assembly(assembly: Path, session: boto3.session.Session) -> list[str]:
    """One line per stack of the assembly: what it reserves and what stays unreserved. DeploymentError if one
    does not fit."""
    lines = []
    for stack, to_reserve in reserved_by(assembly).items():
        found = concurrency(session, stack, to_reserve)
        if (problem := found.problem()) is not None:
            raise DeploymentError(f"{stack}: {problem}")
        lines.append(f"{stack}: reserves {to_reserve} concurrent executions; {found.unreserved_after} of "
                     f"{found.limit} stay unreserved")
    return lines


def main(argv: list[str] | None = None) -> int:
    """`python -m fraudstream.operate.preflight environment|concurrency`: the Makefile's checks before bootstrap and
    deploy; each prints what it found, or one error line and exits 1."""
    parser = argparse.ArgumentParser(prog="python -m fraudstream.operate.preflight",
                                     description="the checks `make bootstrap` and `make deploy` run before the CDK")
    commands = parser.add_subparsers(dest="command", required=True)
    env = commands.add_parser("environment", help="print aws://ACCOUNT/REGION of your credentials (one STS call)")
    quota = commands.add_parser("concurrency", help="check that the account's Lambda concurrency can take what the "
                                "synthesized stack reserves (Lambda GetAccountSettings)")
    quota.add_argument("assembly", type=Path, nargs="?", default=Path("cdk.out"),
                       help="the synthesized cloud assembly (default: cdk.out, as `cdk synth` writes it)")
    for command in (env, quota):
        command.add_argument("--region", help="default: AWS_REGION, AWS_DEFAULT_REGION or your AWS profile's")
    args = parser.parse_args(argv)
    try:
        if args.command == "environment":
            print(environment(args.region))
        else:
            print("\n".join(check_assembly(args.assembly, session_for(args.region))))
    except DeploymentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
