"""Roles the stack creates itself, so every permission is a statement written here.

Constructs get `role.without_policy_updates()`: CDK's grant helpers would otherwise add wildcard
actions (s3:GetObject*, s3:List*) and managed policies behind our back. tests/infrastructure
walks every policy in the template to hold this.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct


def lambda_role(scope: Construct, id: str, log_group: logs.ILogGroup) -> iam.Role:
    """A function's role: it may write to its own log group and nothing else yet."""
    role = iam.Role(scope, id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],  # the ARN ends in ":*": every stream of this group
        )
    )
    return role


def vpc_access_statements(stack: Stack, *, flink: bool = False, function: bool = False) -> list[iam.PolicyStatement]:
    """What a service needs to place its network interfaces in our subnets (the subnets and security groups are
    the service's configuration; the role cannot be held to them, see CreateNetworkInterface below).

    Lambda's MSK trigger needs the six actions its guide lists (with-msk-permissions); a function in the
    VPC also assigns and releases private addresses on its interfaces (``function``: Lambda's VPC guide);
    Managed Flink also reads the VPC's DHCP options and grants itself permission on the interfaces it
    creates (``flink``).
    """
    ec2_arn = lambda kind, name: stack.format_arn(service="ec2", resource=kind, resource_name=name)  # noqa: E731
    describe = ["ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces"]
    return [
        # EC2 Describe* calls have no resource-level permission (docs/deploy-reference.md: Security).
        iam.PolicyStatement(actions=describe + (["ec2:DescribeDhcpOptions"] if flink else []), resources=["*"]),
        # Every EC2 resource of this account and region (the form Lambda's VPC guide gives for the interface
        # actions), as wide as AWS's managed policies for these services within them: EC2 honours subnet and
        # security-group ARNs, but no AWS document says that Lambda's and Flink's checks before they create
        # interfaces accept them, and a refusal would come 30 minutes into a deploy (docs/deploy-reference.md: IAM).
        iam.PolicyStatement(actions=["ec2:CreateNetworkInterface"], resources=[ec2_arn("*", "*")]),
        iam.PolicyStatement(actions=(["ec2:CreateNetworkInterfacePermission"] if flink else [])
                            + (["ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"] if function else [])
                            + ["ec2:DeleteNetworkInterface"], resources=[ec2_arn("network-interface", "*")]),
    ]
