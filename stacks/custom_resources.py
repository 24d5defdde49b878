"""One custom-resource provider for what CloudFormation cannot do alone.

`Custom::MskBootstrapBrokers` reads the cluster's IAM bootstrap brokers; `Custom::FlinkApplicationRun`
starts the Flink application and waits until it runs, and stops it before it is deleted;
`Custom::EmptyBucketOnDelete` empties a bucket so `cdk destroy` can delete it; `Custom::CopiedObject`
copies an object to a key we name (the model artifact, whose asset key lacks `.tar.gz`);
`Custom::BatchFeaturesLoaded` writes the cards' 1-week records to the batch group at deploy;
`Custom::ManagedPrefixList` finds the region's S3 prefix list for the security groups. The
logic is lambdas/stack_resources/handler.py; CDK's Provider framework relays CloudFormation's
requests to it. Both functions get their own role, scoped by the resources that use them.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnResource, CustomResource, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.iam import lambda_role
from stacks.log_groups import log_group

HANDLER_TIMEOUT = Duration.minutes(14)


class StackResources(Construct):
    BOOTSTRAP_BROKERS = "Custom::MskBootstrapBrokers"
    FLINK_RUN = "Custom::FlinkApplicationRun"
    EMPTY_BUCKET = "Custom::EmptyBucketOnDelete"
    COPIED_OBJECT = "Custom::CopiedObject"
    INTERFACES_RELEASED = "Custom::NetworkInterfacesReleased"
    BATCH_FEATURES_LOADED = "Custom::BatchFeaturesLoaded"
    PREFIX_LIST = "Custom::ManagedPrefixList"

    def __init__(self, scope: Construct, id: str, *, code: Path, runtime: lambda_.Runtime,
                 retention: logs.RetentionDays, key: kms.IKey, reserved_concurrency: int | None) -> None:
        super().__init__(scope, id)
        handler_logs = log_group(self, "HandlerLogs", key=key, retention=retention)
        self.role = lambda_role(self, "HandlerRole", handler_logs)
        self.handler = lambda_.Function(
            self,
            "Handler",
            runtime=runtime,
            architecture=lambda_.Architecture.ARM_64,
            code=lambda_.Code.from_asset(str(code)),  # lambda_assets.build: the handler and fraudstream/buckets.py
            handler="handler.on_event",
            timeout=HANDLER_TIMEOUT,  # a Flink application takes a few minutes to start or stop
            role=self.role.without_policy_updates(),
            log_group=handler_logs,
            environment_encryption=key,
            reserved_concurrent_executions=reserved_concurrency,
            description="Custom resources: MSK bootstrap brokers; start and stop the Flink application",
        )
        framework_logs = log_group(self, "ProviderLogs", key=key, retention=retention)
        framework_role = lambda_role(self, "ProviderRole", framework_logs)
        # What CDK's Provider would grant itself: invoke the handler, and read it to wait until it
        # is active when an invocation fails (its fallback on throttling or a cold handler).
        framework_role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[self.handler.function_arn, f"{self.handler.function_arn}:*"],
            )
        )
        framework_role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:GetFunction"], resources=[self.handler.function_arn]))
        # Both functions' environment variables are encrypted with the stack's key; Lambda decrypts them as
        # the function's role.
        for role in (self.role, framework_role):
            role.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[key.key_arn]))
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.handler,
            framework_on_event_role=framework_role.without_policy_updates(),
            log_group=framework_logs,
            provider_function_env_encryption=key,
        )
        self.framework_function = provider.node.find_child("framework-onEvent")
        # CDK's Provider takes no concurrency setting: set it on its function's template resource.
        if reserved_concurrency is not None:
            self.framework_function.node.default_child.add_property_override(
                "ReservedConcurrentExecutions", reserved_concurrency)
        self.service_token = provider.service_token

    def allow_bootstrap_brokers(self, cluster_arn: str) -> None:
        # GetBootstrapBrokers has no resource type in the Service Authorization Reference: IAM evaluates it
        # against "*" only, so a statement naming the cluster would never match (docs/deploy-reference.md: Security).
        self.role.add_to_policy(iam.PolicyStatement(actions=["kafka:GetBootstrapBrokers"], resources=["*"]))

    def empty_on_delete(self, bucket: s3.IBucket) -> CustomResource:
        """Empty ``bucket`` when the stack is deleted; resources that write to it should depend on the result."""
        # Every version and delete marker goes (ListObjectVersions, DeleteObjects with version ids).
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucketVersions"], resources=[bucket.bucket_arn]))
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                                                    resources=[bucket.arn_for_objects("*")]))
        if bucket.encryption_key is not None:
            self.role.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[bucket.encryption_key.key_arn]))
        return CustomResource(bucket, "EmptyOnDelete", service_token=self.service_token,
                              resource_type=self.EMPTY_BUCKET, properties={"BucketName": bucket.bucket_name})

    def copied_object(self, scope: Construct, id: str, *, source_bucket: s3.IBucket, source_key: str,
                      bucket: s3.IBucket, key: str) -> CustomResource:
        """A copy of ``source_bucket/source_key`` at ``bucket/key``, deleted with the resource."""
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"],
                                                    resources=[source_bucket.arn_for_objects(source_key)]))
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject", "s3:DeleteObject"],
                                                    resources=[bucket.arn_for_objects(key)]))
        if bucket.encryption_key is not None:
            self.role.add_to_policy(iam.PolicyStatement(actions=["kms:GenerateDataKey"],
                                                        resources=[bucket.encryption_key.key_arn]))
        return CustomResource(scope, id, service_token=self.service_token, resource_type=self.COPIED_OBJECT,
                              properties={"SourceBucket": source_bucket.bucket_name, "SourceKey": source_key,
                                          "Bucket": bucket.bucket_name, "Key": key})

    def batch_features_loaded(self, scope: Construct, id: str, *, group: CfnResource, group_arn: str,
                              records: Path, count: int) -> CustomResource:
        """The ``count`` records of the JSON lines file ``records`` written to the feature group ``group`` on
        create and update (a new file is a new asset key, so an update loads again)."""
        asset = s3_assets.Asset(scope, f"{id}Records", path=str(records))
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"],
                                                    resources=[asset.bucket.arn_for_objects(asset.s3_object_key)]))
        self.role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:PutRecord"], resources=[group_arn]))
        resource = CustomResource(scope, id, service_token=self.service_token, resource_type=self.BATCH_FEATURES_LOADED,
                                  properties={"Bucket": asset.s3_bucket_name, "Key": asset.s3_object_key,
                                              "FeatureGroupName": group.ref, "Records": count})
        resource.node.add_dependency(group)  # its online store exists before the first write
        return resource

    def managed_prefix_list(self, scope: Construct, id: str, name: str) -> str:
        """The id of the AWS-managed prefix list ``name`` (com.amazonaws.<region>.s3: its id differs per region
        and CloudFormation exposes it nowhere)."""
        # DescribeManagedPrefixLists has no resource-level permission (docs/deploy-reference.md: IAM).
        self.role.add_to_policy(iam.PolicyStatement(actions=["ec2:DescribeManagedPrefixLists"], resources=["*"]))
        found = CustomResource(scope, id, service_token=self.service_token, resource_type=self.PREFIX_LIST,
                               properties={"PrefixListName": name})
        return found.get_att_string("PrefixListId")

    def interfaces_released(self, scope: Construct, id: str, *,
                            security_groups: list[ec2.ISecurityGroup]) -> CustomResource:
        """A resource whose deletion waits until Lambda released its network interfaces in ``security_groups``.

        Whatever makes such interfaces (a trigger, a function in the VPC) should depend on it, and it on what
        they need while Lambda deletes them (the roles, the groups, the subnets)."""
        # DescribeNetworkInterfaces has no resource-level permission (docs/deploy-reference.md: IAM).
        self.role.add_to_policy(iam.PolicyStatement(actions=["ec2:DescribeNetworkInterfaces"], resources=["*"]))
        return CustomResource(scope, id, service_token=self.service_token, resource_type=self.INTERFACES_RELEASED,
                              properties={"SecurityGroupIds": [g.security_group_id for g in security_groups]})

    def allow_flink_control(self, application_name: str) -> None:
        arn = Stack.of(self).format_arn(service="kinesisanalytics", resource="application", resource_name=application_name)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kinesisanalytics:DescribeApplication", "kinesisanalytics:StartApplication",
                         "kinesisanalytics:StopApplication"],
                resources=[arn],
            )
        )
