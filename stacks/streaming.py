"""The streaming features on Managed Service for Apache Flink (runtime 1.20), inside the VPC.

The application zip is `make flink-package`'s output; its runtime properties carry the bootstrap
brokers and topic names (flink_sql/main.py reads them). A custom resource starts it, so the deploy
ends with the job RUNNING, and stops it before CloudFormation deletes it.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Aws, CustomResource, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisanalytics_flink_alpha as flink
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from fraudstream import contract as c
from fraudstream import flink_properties
from fraudstream.packaging import flink_app
from stacks.batch_jobs import BatchJobs
from stacks.config import PipelineConfig
from stacks.custom_resources import StackResources
from stacks.iam import vpc_access_statements
from stacks.kafka import IAM_PORT, Kafka
from stacks.log_groups import log_group
from stacks.network import Network
from stacks.shared import Shared


class StreamingAggregation(Construct):
    def __init__(self, scope: Construct, id: str, *, shared: Shared, network: Network, package: Path, kafka: Kafka,
                 batch: BatchJobs) -> None:
        super().__init__(scope, id)
        config, key, retention, resources = shared.config, shared.key, shared.retention, shared.resources
        vpc, subnets = network.vpc, network.subnets
        self.application_name = f"{Stack.of(self).stack_name}-aggregation"
        self.security_group = self._build_security_group(network, kafka)
        self.log_group = log_group(self, "Logs", key=key, retention=retention)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("kinesisanalytics.amazonaws.com"))
        self.code = s3_assets.Asset(self, "Package", path=str(package))
        self.application = self._build_application(config, vpc, subnets, kafka, batch)
        # An update of the running application restores all of its latest snapshot, or fails (flink_properties.py).
        self.application.node.default_child.add_property_override("RunConfiguration",
                                                                  flink_properties.RUN_CONFIGURATION)
        self._build_grants(config, kafka)
        batch.grant_archive_writes(self.role, key)
        self._build_run(resources, kafka, batch)

    def _build_security_group(self, network: Network, kafka: Kafka) -> ec2.SecurityGroup:
        """The application's group: out to the brokers and to S3 only, and admitted by the brokers' group."""
        group = ec2.SecurityGroup(self, "SecurityGroup", vpc=network.vpc, allow_all_outbound=False,
                                  description="Flink application: to the MSK brokers only")
        group.add_egress_rule(kafka.security_group, ec2.Port.tcp(IAM_PORT), "MSK brokers (IAM/TLS)")
        network.allow_https(group, s3_gateway=True, why="the transactions archive")
        kafka.security_group.add_ingress_rule(group, ec2.Port.tcp(IAM_PORT), "Flink application")
        return group

    def _build_application(self, config: PipelineConfig, vpc: ec2.IVpc, subnets: ec2.SubnetSelection, kafka: Kafka,
                           batch: BatchJobs) -> flink.Application:
        """The Flink 1.20 application in the VPC; its runtime properties tell flink_sql/main.py where everything is."""
        return flink.Application(
            self,
            "Application",
            application_name=self.application_name,
            code=flink.ApplicationCode.from_bucket(self.code.bucket, self.code.s3_object_key),
            runtime=flink.Runtime.FLINK_1_20,
            role=self.role.without_policy_updates(),
            property_groups={
                flink_app.RUN_OPTIONS_GROUP: flink_app.RUN_OPTIONS,
                flink_properties.PROPERTY_GROUP: flink_properties.runtime_properties(
                    bootstrap_servers=kafka.bootstrap_brokers,
                    transactions_topic=c.TRANSACTIONS_TOPIC,
                    features_topic=c.TRANSACTION_FEATURES_TOPIC,
                    invalid_topic=c.INVALID_TRANSACTIONS_TOPIC,
                    ticks_keys=flink_app.tick_keys(config.topic_partitions),
                    consumer_group=config.flink_consumer_group,
                    event_time=config.event_time,
                    archive_path=batch.flink_archive_uri if config.archive_transactions else None,
                    # The archive bucket is in the stack's region, reached through the VPC's S3 gateway endpoint,
                    # which serves that region's endpoint only.
                    s3_region=Aws.REGION,
                    s3_endpoint=f"s3.{Aws.REGION}.{Aws.URL_SUFFIX}",
                ),
            },
            parallelism=config.flink_parallelism,
            checkpointing_enabled=True,
            # A restart (update, scaling) resumes from the last snapshot: window state, Kafka offsets and the
            # archive's open files stay consistent, so no transaction is counted twice or lost.
            snapshots_enabled=True,
            log_group=self.log_group,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _build_grants(self, config: PipelineConfig, kafka: Kafka) -> None:
        """The role gets only what the job does: its code, its logs, its topics and consumer group, the VPC."""
        stack = Stack.of(self)
        log_stream = self.application.node.find_child("LogStream")
        statements = [
            # Read its own code object.
            iam.PolicyStatement(actions=["s3:GetObject", "s3:GetObjectVersion"],
                                resources=[self.code.bucket.arn_for_objects(self.code.s3_object_key)]),
            # Managed Flink checks its logging option with DescribeLogGroups, which has no resource type.
            iam.PolicyStatement(actions=["logs:DescribeLogGroups"], resources=["*"]),
            iam.PolicyStatement(actions=["logs:DescribeLogStreams"], resources=[self.log_group.log_group_arn]),
            iam.PolicyStatement(
                actions=["logs:PutLogEvents"],
                resources=[stack.format_arn(service="logs", resource="log-group",
                                            resource_name=f"{self.log_group.log_group_name}:log-stream:"
                                                          f"{log_stream.log_stream_name}",
                                            arn_format=ArnFormat.COLON_RESOURCE_NAME)],
            ),
            # CloudWatch has no resource-level permission for PutMetricData (docs/deploy-reference.md: IAM).
            iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                                conditions={"StringEquals": {"cloudwatch:namespace": "AWS/KinesisAnalytics"}}),
            # Kafka data plane, by name: read transactions (and write its time ticks there: flink_sql/ticks.sql),
            # write the features and the invalid-transaction reports, its own consumer groups.
            iam.PolicyStatement(actions=["kafka-cluster:Connect", "kafka-cluster:DescribeCluster",
                                         "kafka-cluster:WriteDataIdempotently"],
                                resources=[kafka.cluster_arn]),
            iam.PolicyStatement(actions=["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                                resources=[kafka.arns.topic(c.TRANSACTIONS_TOPIC)]),
            iam.PolicyStatement(actions=["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                                resources=[kafka.arns.topic(name) for name in (
                                    c.TRANSACTIONS_TOPIC, c.TRANSACTION_FEATURES_TOPIC, c.INVALID_TRANSACTIONS_TOPIC)]),
            iam.PolicyStatement(actions=["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
                                resources=[kafka.arns.group(group) for group in self.consumer_groups(config)]),
        ]
        statements += vpc_access_statements(stack, flink=True)
        for statement in statements:
            self.role.add_to_policy(statement)

    @staticmethod
    def consumer_groups(config: PipelineConfig) -> list[str]:
        """The job's consumer groups: the features', the unparsed records', and the archive's own when it archives."""
        return flink_properties.consumer_groups(config.flink_consumer_group, config.archive_transactions)

    def _build_run(self, resources: StackResources, kafka: Kafka, batch: BatchJobs) -> CustomResource:
        """Start the application on deploy, so the deploy ends with the job RUNNING; stop it before deletion."""
        run = CustomResource(
            self,
            "Run",
            service_token=resources.service_token,
            resource_type=resources.FLINK_RUN,
            properties={"ApplicationName": self.application.application_name},
        )
        # The job reads and writes its three topics from its first second; on delete it stops before they go.
        flink_topics = (c.TRANSACTIONS_TOPIC, c.TRANSACTION_FEATURES_TOPIC, c.INVALID_TRANSACTIONS_TOPIC)
        run.node.add_dependency(self.application, self.role, *(kafka.topics[t] for t in flink_topics), batch.emptied)
        resources.allow_flink_control(self.application_name)
        return run
