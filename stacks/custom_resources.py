"""One custom-resource provider for what CloudFormation cannot do alone.

`Custom::MskBootstrapBrokers` reads the cluster's IAM bootstrap brokers; `Custom::FlinkApplicationRun`
starts the Flink application and waits until it runs, and stops it before it is deleted;
`Custom::EmptyBucketOnDelete` empties a bucket so `cdk destroy` can delete it. The
logic is lambdas/stack_resources/handler.py; CDK's Provider framework relays CloudFormation's
requests to it. Both functions get their own role, scoped by the resources that use them.
"""

from __future__ import annotations

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct

from fraudstream.paths import LAMBDAS
from stacks.iam import lambda_role

HANDLER_TIMEOUT = Duration.minutes(14)


class StackResources(Construct):
    BOOTSTRAP_BROKERS = "Custom::MskBootstrapBrokers"
    FLINK_RUN = "Custom::FlinkApplicationRun"
    EMPTY_BUCKET = "Custom::EmptyBucketOnDelete"

    def __init__(self, scope: Construct, id: str, *, runtime: lambda_.Runtime, retention: logs.RetentionDays) -> None:
        super().__init__(scope, id)
        handler_logs = logs.LogGroup(self, "HandlerLogs", retention=retention, removal_policy=RemovalPolicy.DESTROY)
        self.role = lambda_role(self, "HandlerRole", handler_logs)
        self.handler = lambda_.Function(
            self,
            "Handler",
            runtime=runtime,
            architecture=lambda_.Architecture.ARM_64,
            code=lambda_.Code.from_asset(str(LAMBDAS / "stack_resources")),
            handler="handler.on_event",
            timeout=HANDLER_TIMEOUT,  # a Flink application takes a few minutes to start or stop
            role=self.role.without_policy_updates(),
            log_group=handler_logs,
            description="Custom resources: MSK bootstrap brokers; start and stop the Flink application",
        )
        framework_logs = logs.LogGroup(self, "ProviderLogs", retention=retention, removal_policy=RemovalPolicy.DESTROY)
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
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.handler,
            framework_on_event_role=framework_role.without_policy_updates(),
            log_group=framework_logs,
        )
        self.framework_function = provider.node.find_child("framework-onEvent")
        self.service_token = provider.service_token

    def allow_bootstrap_brokers(self, cluster_arn: str) -> None:
        self.role.add_to_policy(iam.PolicyStatement(actions=["kafka:GetBootstrapBrokers"], resources=[cluster_arn]))

    def empty_on_delete(self, bucket: s3.IBucket) -> CustomResource:
        """Empty ``bucket`` when the stack is deleted; resources that write to it should depend on the result."""
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn]))
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:DeleteObject"], resources=[bucket.arn_for_objects("*")]))
        if bucket.encryption_key is not None:
            self.role.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[bucket.encryption_key.key_arn]))
        return CustomResource(bucket, "EmptyOnDelete", service_token=self.service_token,
                              resource_type=self.EMPTY_BUCKET, properties={"BucketName": bucket.bucket_name})

    def allow_flink_control(self, application_name: str) -> None:
        arn = Stack.of(self).format_arn(service="kinesisanalytics", resource="application", resource_name=application_name)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kinesisanalytics:DescribeApplication", "kinesisanalytics:StartApplication",
                         "kinesisanalytics:StopApplication"],
                resources=[arn],
            )
        )
