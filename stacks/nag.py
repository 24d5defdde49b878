"""cdk-nag AwsSolutions acknowledgments and checkov skips, each on the construct it concerns, with its reason.

cdk-nag 3 is a policy-validation plugin: findings fail synthesis unless acknowledged here. IDs
carry the pack prefix (`AwsSolutions::`), without which an acknowledgment silently matches nothing.
checkov reads a skip from the resource's template metadata (`Metadata.checkov.skip`: id and comment);
tests/infrastructure/test_checks.py runs it and requires 0 failed.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, CfnResource, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def enable_checks(app: App) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks())


def ack(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))


def skip_checkov(construct: IConstruct, check: str, reason: str) -> None:
    """A checkov check that does not apply to ``construct``'s template resource, with why (kept beside any other)."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    skips = (resource.get_metadata("checkov") or {}).get("skip", [])
    resource.add_metadata("checkov", {"skip": [*skips, {"id": check, "comment": reason}]})


def skip_checkov_findings(stack: Stack) -> None:
    """Every checkov check this stack does not meet by design, with why."""
    for function in (stack.handlers.aggregate, stack.handlers.predict):
        skip_checkov(function, "CKV_AWS_116",
                     "Invoked only by its MSK triggers, synchronously: a dead-letter queue serves asynchronous "
                     "invocations only. A batch that keeps failing goes whole to the failed-records bucket, the "
                     "triggers' on-failure destination.")
    skip_checkov(stack.handlers.producer, "CKV_AWS_116",
                 "Invoked only by `fraudstream simulate --stack`, synchronously: the command gets the function's answer "
                 "for every line or its error, and reports each line not delivered; a dead-letter queue serves "
                 "asynchronous invocations only.")
    for function in (stack.resources.handler, stack.resources.framework_function):
        skip_checkov(function, "CKV_AWS_116",
                     "A custom-resource function: CloudFormation's request fails with the function's reason (the "
                     "Provider framework reports FAILED) and the function logs it; a queued request could not be "
                     "replayed, its response URL being single-use.")
        skip_checkov(function, "CKV_AWS_117",
                     "A custom-resource function calls only AWS APIs (MSK, Flink, S3, EC2, Lambda) and on destroy waits "
                     "until Lambda has released the network interfaces in the VPC's subnets: inside the VPC it would "
                     "hold interfaces in those subnets itself, and need interface endpoints for each API.")
    skip_checkov(stack.access_logs, "CKV_AWS_18",
                 "This is the access-log bucket of the data and failed-records buckets; logging its own access would "
                 "need another bucket, whose logs would need another.")


def acknowledge_findings(stack: Stack) -> None:
    """Every finding this stack is known to raise, with why it is acceptable."""
    skip_checkov_findings(stack)
    for endpoint in stack.network.interface_endpoints.values():
        ack(endpoint.connections.security_groups[0], "AwsSolutions-EC23",
            "The interface endpoint admits HTTPS only from the VPC's own CIDR; the rule cannot read the CIDR "
            "because it is an intrinsic (Fn::GetAtt), not 0.0.0.0/0.")
    handler = stack.get_logical_id(stack.resources.handler.node.default_child)
    ack(stack.resources.node.find_child("ProviderRole"), f"AwsSolutions-IAM5[Resource::<{handler}.Arn>:*]",
        "CDK's Provider framework invokes the one custom-resource handler; ':*' only adds its versions and aliases.")

    bucket = stack.get_logical_id(stack.handlers.failed_records.node.default_child)
    ack(stack.resources.role, f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/*]",
        "On stack deletion the custom-resource handler deletes every object of the failed-records bucket, "
        "so CloudFormation can delete it; the objects' names are not known in advance.")

    no_resource_level = ("Resource::*", "The only '*' resources are actions without resource-level permissions, each "
                         "listed in docs/deploy-reference.md (EC2 Describe*, ecr:GetAuthorizationToken, kafka:GetBootstrapBrokers, "
                         "logs:DescribeLogGroups, cloudwatch:PutMetricData limited by namespace).")
    ack(stack.resources.role, f"AwsSolutions-IAM5[{no_resource_level[0]}]", no_resource_level[1])
    new_interfaces = ("Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*",
                      "The service deletes (and assigns addresses on) network interfaces whose IDs nobody knows "
                      "before; limited to interfaces, in this account and region.")
    interface_creation = ("Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:*/*",
                          "ec2:CreateNetworkInterface only, on this account's and region's EC2 resources: AWS's managed "
                          "policies for Lambda in a VPC and Managed Flink grant it on '*', and no AWS document says the "
                          "services' checks before they create interfaces accept subnet and security-group ARNs "
                          "(docs/deploy-reference.md: IAM). The stack's VPC configuration places the interfaces.")
    for role, findings in (
        (stack.streaming.role, (no_resource_level, new_interfaces, interface_creation)),
        (stack.model.role, (no_resource_level,)),
        *((role, (no_resource_level, new_interfaces, interface_creation,
                  (f"Resource::<{bucket}.Arn>/*",
                   "Lambda's trigger names each failed-batch object itself; the role may only put objects in "
                   "this one bucket."))) for role in stack.handlers.roles.values()),
    ):
        for finding, reason in findings:
            ack(role, f"AwsSolutions-IAM5[{finding}]", reason)

    ack(stack.handlers.failed_records, "AwsSolutions-S1",
        "Holds only batches the triggers gave up on, written by two roles and read by operators; access is "
        "audited by CloudTrail data events where the account enables them. A log bucket would need the same "
        "acknowledgment in turn.")

    access_logs = stack.get_logical_id(stack.access_logs.node.default_child)
    ack(stack.resources.role, f"AwsSolutions-IAM5[Resource::<{access_logs}.Arn>/*]",
        "On stack deletion the custom-resource handler deletes every access log object so CloudFormation can "
        "delete the log bucket; S3 names the log objects itself.")
    ack(stack.access_logs, "AwsSolutions-S1",
        "This is the access-log bucket of the data and failed-records buckets; logging its own access would need "
        "another bucket, whose logs would need another.")

    data = stack.get_logical_id(stack.batch.bucket.node.default_child)
    ack(stack.resources.role, f"AwsSolutions-IAM5[Resource::<{data}.Arn>/*]",
        "On stack deletion the custom-resource handler deletes every object of the data bucket, so "
        "CloudFormation can delete it; the objects' names are not known in advance.")
    ack(stack.batch.role, f"AwsSolutions-IAM5[Resource::<{data}.Arn>/*]",
        "The SageMaker jobs read the archive and uploads and write features and models in the stack's own data "
        "bucket, under names made per job run.")
    ack(stack.batch.role, "AwsSolutions-IAM5[Resource::*]", no_resource_level[1])
    for kind in ("Processing", "Training"):
        ack(stack.batch.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
            f"/aws/sagemaker/{kind}Jobs:*]",
            f"SageMaker writes each {kind.lower()} job's logs to streams it names per job in this one log group.")
    ack(stack.batch.node.find_child("SchedulerRole"),
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:processing-job/"
        "fraudstream-nightly-*]",
        "Each night's processing job gets a new name (the schedule's execution id); the schedule may create only "
        "jobs with this prefix.")
    ack(stack.streaming.role, f"AwsSolutions-IAM5[Resource::<{data}.Arn>/transactions/*]",
        "Flink's filesystem sink writes the archive under day partitions and part-file names it makes itself; "
        "it may write only under the transactions/ prefix.")
    ack(stack.batch.bucket, "AwsSolutions-S1",
        "Written by the stack's Flink application and SageMaker jobs and read by operators through IAM; access is "
        "audited by CloudTrail data events where the account enables them. A log bucket would need the same "
        "acknowledgment in turn.")
