"""The two Lambda functions and their MSK triggers.

Code comes from `fraudstream.packaging.lambda_assets` (each handler plus the modules it imports; Powertools
as a layer built from the locked environment), so synthesis needs no Docker. Each trigger has an
S3 on-failure destination: a batch that keeps failing is written there whole instead of being lost
or stalling its partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from fraudstream import contract as c
from fraudstream.online import settings as env
from fraudstream.online import produce, telemetry
from fraudstream.packaging import lambda_assets
from stacks.config import PipelineConfig
from stacks.feature_store import FeatureStore
from stacks.iam import lambda_role, vpc_access_statements
from stacks.kafka import IAM_PORT, Kafka
from stacks.log_groups import log_group
from stacks.model_endpoint import ModelEndpoint
from stacks.network import Network
from stacks.shared import Shared

TIMEOUT = Duration.minutes(2)
# The producer function sends one invocation's lines with their delays (at most produce.MAX_DELAY_S of them).
PRODUCER_TIMEOUT = Duration.seconds(int(produce.MAX_DELAY_S) + 120)
PRODUCER_MEMORY_MB = 256
HANDLER = "handler.lambda_handler"
Trigger = tuple[lambda_.Function, str, str, int, int]  # function, topic, consumer group, batch size, window (s)


@dataclass(frozen=True)
class FunctionCode:
    """What the functions run: each function's asset directory, the runtime, and the served model's feature set."""

    assets: dict[str, Path]
    runtime: lambda_.Runtime
    feature_set: str


class Handlers(Construct):
    def __init__(self, scope: Construct, id: str, *, shared: Shared, network: Network, code: FunctionCode,
                 kafka: Kafka, feature_store: FeatureStore, endpoint: ModelEndpoint) -> None:
        super().__init__(scope, id)
        config, key, retention, resources = shared.config, shared.key, shared.retention, shared.resources
        vpc, subnets, access_logs = network.vpc, network.subnets, shared.access_logs
        assets, runtime, feature_set = code.assets, code.runtime, code.feature_set
        self.key, self.vpc, self.subnets = key, vpc, subnets
        self.security_group = self._build_security_group(vpc)
        self.kafka_writers = self._build_kafka_writers_group(vpc, kafka)
        self.failed_records = self._build_failed_records_bucket(config, key, access_logs)
        emptied = resources.empty_on_delete(self.failed_records)
        self.powertools = self._build_layer(assets, runtime)
        self.roles: dict[str, iam.Role] = {}  # function name -> its mutable role, filled by _build_function
        # Deleted after the triggers and functions, before their roles, groups and subnets (see _build_function).
        self.interfaces_released = resources.interfaces_released(
            self, "InterfacesReleased",
            security_groups=[kafka.security_group, self.security_group, self.kafka_writers])
        self.interfaces_released.node.add_dependency(*vpc.select_subnets(subnet_type=subnets.subnet_type).subnets)
        environment = self._common_environment(feature_store)
        self.aggregate, self.aggregate_logs = self._build_aggregate_function(
            assets, runtime, config, retention, environment)
        self.predict, self.predict_logs = self._build_predict_function(
            assets, runtime, config, retention, environment, endpoint, feature_set, kafka)
        triggers = self._triggers(config)
        self.mappings = self._build_triggers(triggers, config, kafka, emptied)
        self._build_trigger_grants(triggers, kafka, key)
        self._build_feature_grants(feature_store, endpoint)
        self._build_verdict_grants(kafka)
        self.producer, self.producer_logs = self._build_producer_function(assets, runtime, config, retention, kafka)

    def _build_security_group(self, vpc: ec2.IVpc) -> ec2.SecurityGroup:
        """The functions' group: HTTPS to the VPC's interface endpoints (SageMaker and Feature Store runtime), nothing
        else. Their records come from the trigger, which polls Kafka from its own interfaces."""
        group = ec2.SecurityGroup(self, "FunctionSecurityGroup", vpc=vpc, allow_all_outbound=False,
                                  description="fraudstream handlers: HTTPS to the interface endpoints of the VPC only")
        group.add_egress_rule(ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(443), "interface endpoints")
        return group

    def _build_kafka_writers_group(self, vpc: ec2.IVpc, kafka: Kafka) -> ec2.SecurityGroup:
        """The group of the functions that write to Kafka themselves (the predict function its verdicts, the
        producer function a scenario's transactions): the brokers' IAM port, nothing else."""
        group = ec2.SecurityGroup(self, "KafkaWritersSecurityGroup", vpc=vpc, allow_all_outbound=False,
                                  description="fraudstream functions that write to Kafka: the MSK brokers IAM port only")
        group.add_egress_rule(kafka.security_group, ec2.Port.tcp(IAM_PORT), "MSK brokers")
        kafka.security_group.add_ingress_rule(group, ec2.Port.tcp(IAM_PORT), "functions that write to Kafka")
        return group

    def _build_failed_records_bucket(self, config: PipelineConfig, key: kms.IKey, access_logs: s3.IBucket) -> s3.Bucket:
        """Where a trigger writes a batch it gave up on, so the batch is neither lost nor stalls its partition.

        Versioned (a failed batch is evidence: a delete can be undone), its access logged."""
        return s3.Bucket(
            self,
            "FailedRecords",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(config.failed_records_expiry_days),
                                              noncurrent_version_expiration=Duration.days(config.noncurrent_version_days))],
            versioned=True, server_access_logs_bucket=access_logs, server_access_logs_prefix="failed-records/",
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _build_layer(self, assets: dict[str, Path], runtime: lambda_.Runtime) -> lambda_.LayerVersion:
        """Powertools as one layer built from the locked environment, shared by both functions."""
        return lambda_.LayerVersion(
            self,
            "Powertools",
            code=lambda_.Code.from_asset(str(assets[lambda_assets.LAYER])),
            compatible_runtimes=[runtime],
            description="Powertools for AWS Lambda (Python), the release in requirements.lock",
        )

    @staticmethod
    def _common_environment(feature_store: FeatureStore) -> dict[str, str]:
        """What both handlers read: the feature groups and the Powertools service and metrics namespace."""
        return {
            env.ENV_STORE_BACKEND: "sagemaker",
            env.ENV_STREAMING_GROUP: feature_store.streaming_name,
            env.ENV_BATCH_GROUP: feature_store.batch_name,
            "POWERTOOLS_SERVICE_NAME": telemetry.SERVICE,
            "POWERTOOLS_METRICS_NAMESPACE": telemetry.NAMESPACE,
        }

    def _build_aggregate_function(self, assets: dict[str, Path], runtime: lambda_.Runtime, config: PipelineConfig,
                                  retention: logs.RetentionDays,
                                  environment: dict[str, str]) -> tuple[lambda_.Function, logs.LogGroup]:
        """The function that keeps each card's current 10-minute record in the streaming feature group."""
        return self._build_function(
            "AggregateToFeatureStore", assets["aggregate_to_feature_store"], runtime, config, config.aggregate_memory_mb, retention,
            description=f"{c.TRANSACTION_FEATURES_TOPIC} -> the 10-minute feature group",
            environment=environment,
        )

    def _build_predict_function(self, assets: dict[str, Path], runtime: lambda_.Runtime, config: PipelineConfig,
                                retention: logs.RetentionDays, environment: dict[str, str], endpoint: ModelEndpoint,
                                feature_set: str, kafka: Kafka) -> tuple[lambda_.Function, logs.LogGroup]:
        """The function that scores each transaction (it must read the feature set the model was trained on) and
        writes each verdict once to the verdicts topic."""
        return self._build_function(
            "PredictFromFeatures", assets["predict_from_features"], runtime, config, config.predict_memory_mb, retention,
            description=f"{c.TRANSACTION_FEATURES_TOPIC} + 1-week group -> endpoint -> FRAUD / NOT FRAUD on "
                        f"{c.VERDICTS_TOPIC} and in the log",
            environment={
                **environment,
                env.ENV_MODEL_BACKEND: "endpoint",
                env.ENV_ENDPOINT_NAME: endpoint.endpoint_name,
                env.ENV_FEATURE_SET: feature_set,
                env.ENV_MODEL_FEATURE_SET: feature_set,
                env.ENV_THRESHOLD: str(config.fraud_threshold),
                env.ENV_VERDICTS_BROKERS: kafka.bootstrap_brokers,
                env.ENV_VERDICTS_TOPIC: c.VERDICTS_TOPIC,
                env.ENV_KAFKA_SECURITY: "iam",
                env.ENV_MODEL_VERSION: endpoint.model_version,
            },
            triggers=2,  # the features and the invalid-transaction reports
            groups=[self.security_group, self.kafka_writers],
        )

    def _build_producer_function(self, assets: dict[str, Path], runtime: lambda_.Runtime, config: PipelineConfig,
                                 retention: logs.RetentionDays, kafka: Kafka) -> tuple[lambda_.Function, logs.LogGroup]:
        """The function `fraudstream simulate --stack` invokes to send a scenario from inside the VPC: it reaches the
        brokers only (no AWS endpoint: signing its IAM tokens needs none) and may write the transactions topic only."""
        function, logs_ = self._build_function(
            "ProduceTransactions", assets["produce_transactions"], runtime, config, PRODUCER_MEMORY_MB, retention,
            description=f"fraudstream simulate --stack: a scenario's transactions -> {c.TRANSACTIONS_TOPIC}",
            environment={
                "POWERTOOLS_SERVICE_NAME": telemetry.SERVICE,
                env.ENV_PRODUCER_BROKERS: kafka.bootstrap_brokers,
                env.ENV_TRANSACTIONS_TOPIC: c.TRANSACTIONS_TOPIC,
                env.ENV_KAFKA_SECURITY: "iam",
            },
            groups=[self.kafka_writers], timeout=PRODUCER_TIMEOUT,
        )
        function.node.add_dependency(kafka.topics[c.TRANSACTIONS_TOPIC])
        stack, role = Stack.of(self), self.roles[function.node.id]
        for statement in (
            iam.PolicyStatement(actions=["kafka-cluster:Connect"], resources=[kafka.cluster_arn]),
            iam.PolicyStatement(actions=["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                                resources=[kafka.arns.topic(c.TRANSACTIONS_TOPIC)]),
            # Lambda decrypts the function's environment as its role (environment_encryption: the stack's key).
            iam.PolicyStatement(actions=["kms:Decrypt"], resources=[self.key.key_arn]),
            *vpc_access_statements(stack, function=True),
        ):
            role.add_to_policy(statement)
        return function, logs_

    def _build_function(self, name: str, code: Path, runtime: lambda_.Runtime, config: PipelineConfig, memory_mb: int,
                        retention: logs.RetentionDays, description: str, environment: dict[str, str],
                        triggers: int = 1, groups: list[ec2.ISecurityGroup] | None = None,
                        timeout: Duration = TIMEOUT) -> tuple[lambda_.Function, logs.LogGroup]:
        """One function with its own log group and a role only this construct adds statements to."""
        logs_ = log_group(self, f"{name}Logs", key=self.key, retention=retention)
        role = lambda_role(self, f"{name}Role", logs_)
        function = lambda_.Function(
            self,
            name,
            runtime=runtime,
            architecture=lambda_.Architecture.custom(lambda_assets.ARCHITECTURE),  # the layer's wheels are built for it
            code=lambda_.Code.from_asset(str(code)),
            handler=HANDLER,
            layers=[self.powertools],
            memory_size=memory_mb,
            timeout=timeout,
            role=role.without_policy_updates(),
            log_group=logs_,
            # In the private subnets: the handlers reach AWS through the VPC's interface endpoints only.
            vpc=self.vpc, vpc_subnets=self.subnets, security_groups=groups or [self.security_group],
            environment=environment,
            environment_encryption=self.key,
            # One invocation per partition of each of its triggers at most: what it may need at once.
            reserved_concurrent_executions=config.reserved_concurrency(config.topic_partitions * triggers),
            description=description,
        )
        self.roles[name] = role  # the mutable role, for the statements the grant steps add
        # Lambda checks at creation that the role may create the function's network interfaces. On delete,
        # the function goes first; the wait for its interfaces comes before the role and the network go.
        function.node.add_dependency(role, self.interfaces_released)
        self.interfaces_released.node.add_dependency(role)
        return function, logs_

    def _triggers(self, config: PipelineConfig) -> tuple[Trigger, ...]:
        """Each trigger's function, topic, consumer group and batching, from the context: both functions read
        Flink's transaction features; the predict function also reads Flink's invalid-transaction reports."""
        return (
            (self.aggregate, c.TRANSACTION_FEATURES_TOPIC, config.aggregate_consumer_group, config.aggregate_batch_size,
             config.aggregate_batching_window_seconds),
            (self.predict, c.TRANSACTION_FEATURES_TOPIC, config.predict_consumer_group, config.predict_batch_size,
             config.predict_batching_window_seconds),
            (self.predict, c.INVALID_TRANSACTIONS_TOPIC, config.invalid_consumer_group, env.INVALID_TRIGGER.batch_size,
             int(env.INVALID_TRIGGER.batching_window_s)),
        )

    def _build_triggers(self, triggers: tuple[Trigger, ...], config: PipelineConfig, kafka: Kafka,
                        emptied: CustomResource) -> dict[str, lambda_.EventSourceMapping]:
        """One MSK trigger per function, each its own consumer group, failed batches to the bucket."""
        start = getattr(lambda_.StartingPosition, config.starting_position)
        mappings = {}
        for function, topic, group, batch_size, window in triggers:
            name = f"{function.node.id}Trigger" if topic != c.INVALID_TRANSACTIONS_TOPIC else f"{function.node.id}InvalidTrigger"
            mapping = lambda_.EventSourceMapping(
                self,
                name,
                target=function,
                event_source_arn=kafka.cluster_arn,
                kafka_topic=topic,
                kafka_consumer_group_id=group,
                starting_position=start,
                batch_size=batch_size,
                max_batching_window=Duration.seconds(window),
                on_failure=sources.S3OnFailureDestination(self.failed_records),
                support_s3_on_failure_destination=True,
            )
            # The trigger must not start polling before the topic exists and the role allows it.
            # On delete, the trigger goes first, then the bucket is emptied, then deleted.
            mapping.node.add_dependency(kafka.topics[topic], self.roles[function.node.id], emptied,
                                        self.interfaces_released)
            mappings[name] = mapping
        return mappings

    def _build_trigger_grants(self, triggers: tuple[Trigger, ...], kafka: Kafka, key: kms.IKey) -> None:
        """Each trigger polls with its function's role, so that role gets what the trigger does."""
        stack = Stack.of(self)
        for function, topic, group, _batch_size, _window in triggers:
            self._grant_trigger(stack, self.roles[function.node.id], kafka, topic, group, key)

    def _grant_trigger(self, stack: Stack, role: iam.Role, kafka: Kafka, topic: str, group: str,
                       key: kms.IKey) -> None:
        """What the trigger does as the role: reach the cluster, read one topic as one group, write failed batches."""
        statements = [
            iam.PolicyStatement(actions=["kafka:DescribeClusterV2"], resources=[kafka.cluster_arn]),
            # No resource type in the Service Authorization Reference: a cluster ARN here would deny it.
            iam.PolicyStatement(actions=["kafka:GetBootstrapBrokers"], resources=["*"]),
            iam.PolicyStatement(actions=["kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration"],
                                resources=[kafka.cluster_arn]),
            iam.PolicyStatement(actions=["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                                resources=[kafka.arns.topic(topic)]),
            iam.PolicyStatement(actions=["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
                                resources=[kafka.arns.group(group)]),
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[self.failed_records.arn_for_objects("*")]),
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.failed_records.bucket_arn]),
            # The stack's key: it encrypts the failed-records bucket, and Feature Store's data plane decrypts
            # the online store with it as the caller (both handlers call Feature Store).
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn]),
        ]
        statements += vpc_access_statements(stack, function=True)
        for statement in statements:
            role.add_to_policy(statement)

    def _build_verdict_grants(self, kafka: Kafka) -> None:
        """The predict function writes the verdicts topic, and reads it back to write each verdict once
        (fraudstream/online/verdict_topic.py): no consumer group, so no group permission."""
        role = self.roles[self.predict.node.id]
        self.predict.node.add_dependency(kafka.topics[c.VERDICTS_TOPIC])  # its first write finds the topic
        role.add_to_policy(iam.PolicyStatement(actions=["kafka-cluster:Connect"], resources=[kafka.cluster_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData", "kafka-cluster:ReadData"],
            resources=[kafka.arns.topic(c.VERDICTS_TOPIC)]))

    def _build_feature_grants(self, feature_store: FeatureStore, endpoint: ModelEndpoint) -> None:
        """Each function may touch only the feature groups and endpoint its handler uses."""
        aggregate_role, predict_role = self.roles[self.aggregate.node.id], self.roles[self.predict.node.id]
        aggregate_role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:PutRecord"], resources=[feature_store.arn(c.STREAMING_FEATURE_GROUP)]))
        # The predict function reads only the 1-week group: each message carries its own 10-minute values.
        predict_role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:BatchGetRecord"], resources=[feature_store.arn(c.BATCH_FEATURE_GROUP)]))
        predict_role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:InvokeEndpoint"], resources=[endpoint.endpoint_arn]))
