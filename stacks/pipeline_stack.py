"""The whole pipeline in one stack: one construct per concern, wired here and nowhere else."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from fraudstream import contract as c
from fraudstream import stack_outputs as out
from fraudstream.packaging.batch_records import BatchRecords
from fraudstream.packaging.lambda_assets import CUSTOM_RESOURCES, PYTHON_VERSION
from stacks.batch_jobs import NIGHTLY_JOB_PREFIX, BatchJobs
from stacks.config import ConfigError, PipelineConfig
from stacks.custom_resources import StackResources
from stacks.feature_store import FeatureStore
from stacks.handlers import FunctionCode, Handlers
from stacks.images import require_supported_region
from stacks.kafka import Kafka
from stacks.model_endpoint import ModelEndpoint
from stacks.nag import acknowledge_findings
from stacks.network import Network
from stacks.observability import Observability
from stacks.shared import Shared
from stacks.streaming import StreamingAggregation

RUNTIME = lambda_.Runtime(f"python{PYTHON_VERSION}", lambda_.RuntimeFamily.PYTHON)


class FraudPipelineStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: PipelineConfig, model_artifact: Path,
                 flink_package: Path, feature_set: str, lambda_assets: dict[str, Path], job_code: tuple[Path, Path],
                 batch_records: BatchRecords | None = None, **kwargs) -> None:
        super().__init__(scope, id, description="Streaming fraud detection: MSK, Flink, Feature Store, "
                                                "SageMaker endpoint, Lambda (fraudstream)", **kwargs)
        retention = _retention(config.log_retention_days)
        require_supported_region(self)
        self.key = self._build_key()
        self.resources = StackResources(self, "StackResources", code=lambda_assets[CUSTOM_RESOURCES], runtime=RUNTIME,
                                        retention=retention, key=self.key,
                                        reserved_concurrency=config.reserved_concurrency(2))
        self.network = Network(self, "Network", config=config, retention=retention, key=self.key,
                               resources=self.resources)
        self.access_logs = self._build_access_logs(config)
        shared = Shared(config=config, key=self.key, retention=retention, resources=self.resources,
                        access_logs=self.access_logs)
        self.kafka = Kafka(self, "Kafka", shared=shared, network=self.network)
        self.feature_store = FeatureStore(self, "FeatureStore", config=config, key=self.key)
        if batch_records is not None:  # a fresh stack scores with real 1-week features (context batchFeatures)
            self.resources.batch_features_loaded(
                self.feature_store, "BatchFeaturesLoaded", group=self.feature_store.groups[c.BATCH_FEATURE_GROUP],
                group_arn=self.feature_store.arn(c.BATCH_FEATURE_GROUP), records=batch_records.path,
                count=batch_records.count)
        self.batch = BatchJobs(self, "BatchJobs", shared=shared, feature_store=self.feature_store, job_code=job_code)
        self.streaming = StreamingAggregation(self, "StreamingAggregation", shared=shared, network=self.network,
                                              package=flink_package, kafka=self.kafka, batch=self.batch)
        self.model = ModelEndpoint(self, "ModelEndpoint", shared=shared, artifact=model_artifact,
                                   bucket=self.batch.bucket)
        self.handlers = Handlers(self, "Handlers", shared=shared, network=self.network,
                                 code=FunctionCode(assets=lambda_assets, runtime=RUNTIME, feature_set=feature_set),
                                 kafka=self.kafka, feature_store=self.feature_store, endpoint=self.model)
        # Only the stack's buckets are reachable through the VPC's S3 gateway endpoint.
        for bucket in (self.batch.bucket, self.handlers.failed_records):
            self.network.allow_s3_bucket(bucket)
        self.observability = Observability(self, "Observability", config=config, key=self.key,
                                           aggregate=self.handlers.aggregate, predict=self.handlers.predict,
                                           flink_application=self.streaming.application_name,
                                           endpoint_name=self.model.endpoint_name,
                                           nightly_job_prefix=NIGHTLY_JOB_PREFIX)
        self._build_outputs()
        acknowledge_findings(self)

    def _build_key(self) -> kms.Key:
        """One customer-managed key for the stack's data at rest, which the alarm publishers may use too."""
        key = kms.Key(self, "DataKey", enable_key_rotation=True, removal_policy=RemovalPolicy.DESTROY,
                      pending_window=Duration.days(7),
                      description="fraudstream data at rest: MSK volumes, feature groups, failed records, alarms")
        # CloudWatch alarms and the EventBridge rule publish to the encrypted alarm topic.
        key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com"), iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=["*"]))
        # CloudWatch Logs encrypts the stack's log groups with it (stacks/log_groups.py): only for log groups of
        # this account and region, as the Logs guide's key policy has it (the encryption-context condition).
        key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
            actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": self.format_arn(
                service="logs", resource="log-group", resource_name="*", arn_format=ArnFormat.COLON_RESOURCE_NAME)}}))
        return key

    def _build_access_logs(self, config: PipelineConfig) -> s3.Bucket:
        """S3 server access logs of the data and failed-records buckets.

        S3 delivers access logs only to a bucket under SSE-S3 (not a KMS key); its own access is not logged
        (a log of the log bucket would need a third bucket, and so on). Emptied on delete like the others; S3
        delivers access logs late (minutes to hours), so a log written after that can keep the bucket: docs/deploy-reference.md
        ("Security") says how `make destroy` deals with it."""
        bucket = s3.Bucket(self, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
                           block_public_access=s3.BlockPublicAccess.BLOCK_ALL, removal_policy=RemovalPolicy.DESTROY,
                           object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                           # Versioned, as the other buckets: a log overwritten or deleted stays recoverable.
                           versioned=True,
                           lifecycle_rules=[s3.LifecycleRule(
                               expiration=Duration.days(config.log_retention_days),
                               noncurrent_version_expiration=Duration.days(config.noncurrent_version_days))])
        self.resources.empty_on_delete(bucket)
        return bucket

    def _build_outputs(self) -> None:
        """Every stack output the operating commands read (fraudstream.stack_outputs names them)."""
        values = {
            out.BOOTSTRAP_BROKERS: (self.kafka.bootstrap_brokers, "Kafka bootstrap brokers, IAM auth over TLS (9098)"),
            out.CLUSTER_ARN: (self.kafka.cluster_arn, "MSK cluster"),
            out.TRANSACTIONS_TOPIC: (c.TRANSACTIONS_TOPIC, "Topic the simulator writes transactions to"),
            out.FEATURES_TOPIC: (c.TRANSACTION_FEATURES_TOPIC, "Topic Flink writes each transaction with its features to"),
            out.INVALID_TOPIC: (c.INVALID_TRANSACTIONS_TOPIC, "Topic Flink reports refused records on"),
            out.VERDICTS_TOPIC: (c.VERDICTS_TOPIC, "Topic the predict function writes each verdict to, once, keyed by card"),
            out.FLINK_APPLICATION: (self.streaming.application_name, "Managed Flink application"),
            out.FLINK_LOG_GROUP: (self.streaming.log_group.log_group_name, "Flink application logs"),
            out.STREAMING_FEATURE_GROUP: (self.feature_store.streaming_name, "10-minute feature group"),
            out.BATCH_FEATURE_GROUP: (self.feature_store.batch_name, "1-week feature group"),
            out.ENDPOINT_NAME: (self.model.endpoint_name, "SageMaker endpoint"),
            out.AGGREGATE_FUNCTION: (self.handlers.aggregate.function_name, "Aggregate -> feature store function"),
            out.AGGREGATE_LOG_GROUP: (self.handlers.aggregate_logs.log_group_name, "Its logs"),
            out.PREDICT_FUNCTION: (self.handlers.predict.function_name, "Predict function"),
            out.PRODUCER_FUNCTION: (self.handlers.producer.function_name,
                                    "Function fraudstream simulate --stack invokes to send a scenario from inside the VPC"),
            out.PREDICT_LOG_GROUP: (self.handlers.predict_logs.log_group_name, "Prediction log lines"),
            out.FAILED_RECORDS_BUCKET: (self.handlers.failed_records.bucket_name, "Batches the triggers gave up on"),
            out.ALARM_TOPIC: (self.observability.alarm_topic.topic_arn, "Alarm notifications"),
            out.DASHBOARD: (self.observability.dashboard.dashboard_name, "CloudWatch dashboard"),
            out.REGION: (self.region, "Region of the stack"),
            out.DATA_BUCKET: (self.batch.bucket.bucket_name, "Transactions archive, uploads, features and models"),
            out.DATA_KEY_ARN: (self.key.key_arn, "KMS key of the stack's data (SageMaker job volumes too)"),
            out.JOB_ROLE_ARN: (self.batch.role.role_arn, "Role of the SageMaker processing and training jobs"),
            out.JOB_ENTRY_URI: (self.batch.entry.s3_object_url, "Processing job entry script"),
            out.JOB_DEPS_URI: (self.batch.deps.s3_object_url, "Processing job code (fraudstream zip)"),
            out.NIGHTLY_SCHEDULE: (self.batch.schedule.ref, "EventBridge Scheduler schedule of the nightly refresh"),
            out.CLIENT_SECURITY_GROUP: (self.kafka.client_security_group.security_group_id,
                                        "Security group for Kafka clients in the VPC (fraudstream simulate)"),
        }
        assert set(values) == set(out.ALL), "every output key in fraudstream.stack_outputs is written"
        for key, (value, description) in values.items():
            CfnOutput(self, key, value=value, description=description)


def _retention(days: int) -> logs.RetentionDays:
    """CloudWatch Logs accepts only some retention periods; name them by their day count."""
    by_days = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
               60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
               365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS",
               1827: "FIVE_YEARS", 3653: "TEN_YEARS"}
    if days not in by_days:
        raise ConfigError(f"context logRetentionDays={days}: expected one of {sorted(by_days)}")
    return getattr(logs.RetentionDays, by_days[days])
