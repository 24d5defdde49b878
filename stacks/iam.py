"""Roles the stack creates itself, so every permission is a statement written here.

Constructs get `role.without_policy_updates()`: CDK's grant helpers would otherwise add wildcard
actions (s3:GetObject*, s3:List*) and managed policies behind our back. tests/infrastructure
walks every policy in the template to hold this.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
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


def vpc_access_statements(stack: Stack, vpc: ec2.IVpc, subnets: ec2.SubnetSelection,
                          security_groups: list[ec2.ISecurityGroup], *,
                          flink: bool = False, function: bool = False) -> list[iam.PolicyStatement]:
    """What a service needs to place its network interfaces in our subnets, and no other.

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
        iam.PolicyStatement(
            actions=["ec2:CreateNetworkInterface"],
            resources=[ec2_arn("network-interface", "*")]
            + [ec2_arn("subnet", subnet_id) for subnet_id in vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids]
            + [ec2_arn("security-group", sg.security_group_id) for sg in security_groups],
        ),
        iam.PolicyStatement(actions=(["ec2:CreateNetworkInterfacePermission"] if flink else [])
                            + (["ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"] if function else [])
                            + ["ec2:DeleteNetworkInterface"], resources=[ec2_arn("network-interface", "*")]),
    ]
