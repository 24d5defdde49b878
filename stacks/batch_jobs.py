"""Batch work on SageMaker, and the nightly refresh of the 1-week feature group.

- A data bucket: Flink archives every transaction under transactions/dt=YYYY-MM-DD/ (kept a few
  days: the job needs one week plus margin); the CLI's uploads, features and models go there too.
- The SageMaker job role the processing and training jobs run as.
- The job code (training/processing_job.py and the fraudstream zip) as assets.
- An EventBridge Scheduler schedule that starts the processing job every night over the archive;
  the job loads the 1-week aggregates into the batch feature group. The request is built by
  fraudstream.offline.sagemaker_jobs, the same function the CLI uses.

Why not Amazon Data Firehose with MSK as source: it needs MSK multi-VPC private connectivity, which
kafka.t3.small brokers do not support; the Flink job already reads the topic, so it writes the archive.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from fraudstream import archive
from fraudstream import contract as c
from fraudstream.offline import sagemaker_jobs
from stacks.config import PipelineConfig
from stacks.feature_store import FeatureStore
from stacks.images import container_statements, image_in_region
from stacks.shared import Shared

ARCHIVE_PREFIX = archive.S3_PREFIX
NIGHTLY_JOB_PREFIX = "fraudstream-nightly"


class BatchJobs(Construct):
    def __init__(self, scope: Construct, id: str, *, shared: Shared, feature_store: FeatureStore,
                 job_code: tuple[Path, Path]) -> None:
        super().__init__(scope, id)
        config, key, resources, access_logs = shared.config, shared.key, shared.resources, shared.access_logs
        self.bucket = self._build_bucket(config, key, access_logs)
        self.emptied = resources.empty_on_delete(self.bucket)
        # Spark on SageMaker reads s3:// (S3A underneath); Flink writes through its S3A filesystem.
        self.archive_uri = f"s3://{self.bucket.bucket_name}/{ARCHIVE_PREFIX.rstrip('/')}"
        self.flink_archive_uri = f"s3a://{self.bucket.bucket_name}/{ARCHIVE_PREFIX.rstrip('/')}"
        self.entry, self.deps = self._build_job_code(job_code)
        spark_image = image_in_region(self, "spark")
        xgboost_image = image_in_region(self, "xgboost")
        self.role = self._build_job_role(key, feature_store, spark_image, xgboost_image)
        scheduler_role = self._build_scheduler_role()
        request = self._nightly_request(config, key, feature_store, spark_image, job_code)
        self.schedule = self._build_schedule(config, scheduler_role, request)

    def _build_bucket(self, config: PipelineConfig, key: kms.IKey, access_logs: s3.IBucket) -> s3.Bucket:
        """The stack's data bucket; the archive expires once the nightly job's week (plus margin) has passed.

        Versioned (models and features are what the pipeline is built from: an overwrite or a delete can be
        undone for a while), with its access logged to the stack's log bucket."""
        return s3.Bucket(
            self, "Data", encryption=s3.BucketEncryption.KMS, encryption_key=key, bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True, removal_policy=RemovalPolicy.DESTROY,
            versioned=True, server_access_logs_bucket=access_logs, server_access_logs_prefix="data/",
            lifecycle_rules=[
                s3.LifecycleRule(prefix=ARCHIVE_PREFIX, expiration=Duration.days(config.archive_retention_days)),
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(1),
                                 noncurrent_version_expiration=Duration.days(config.noncurrent_version_days)),
            ],
        )

    def _build_job_code(self, job_code: tuple[Path, Path]) -> tuple[s3_assets.Asset, s3_assets.Asset]:
        """The processing job's entry script and the fraudstream zip, uploaded as assets for the jobs to read."""
        entry, deps = job_code
        return s3_assets.Asset(self, "JobEntry", path=str(entry)), s3_assets.Asset(self, "JobDeps", path=str(deps))

    def _build_job_role(self, key: kms.IKey, feature_store: FeatureStore, spark_image: str,
                        xgboost_image: str) -> iam.Role:
        """The role SageMaker processing and training jobs run as: the data bucket, their code, logs and images."""
        stack = Stack.of(self)
        role = iam.Role(self, "JobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                        description="SageMaker processing and training jobs of fraudstream")
        job_logs = [stack.format_arn(service="logs", resource="log-group", arn_format=ArnFormat.COLON_RESOURCE_NAME,
                                     resource_name=f"/aws/sagemaker/{kind}Jobs:*") for kind in ("Processing", "Training")]
        for statement in (
            iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                                resources=[self.bucket.arn_for_objects("*")]),
            iam.PolicyStatement(actions=["s3:ListBucket", "s3:GetBucketLocation"], resources=[self.bucket.bucket_arn]),
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[
                self.entry.bucket.arn_for_objects(self.entry.s3_object_key),
                self.deps.bucket.arn_for_objects(self.deps.s3_object_key)]),
            # A processing input is an S3 prefix: SageMaker lists it before downloading, even for one file.
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.entry.bucket.bucket_arn],
                                conditions={"StringLike": {"s3:prefix": [self.entry.s3_object_key,
                                                                          self.deps.s3_object_key]}}),
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn]),
            # SageMaker creates grants on the key for the jobs' volumes; nobody else may get one.
            iam.PolicyStatement(actions=["kms:CreateGrant"], resources=[key.key_arn],
                                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
            *container_statements(spark_image, xgboost_image),
            iam.PolicyStatement(actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                                         "logs:DescribeLogStreams"], resources=job_logs),
            iam.PolicyStatement(actions=["sagemaker:PutRecord"], resources=[feature_store.arn(c.BATCH_FEATURE_GROUP)]),
        ):
            role.add_to_policy(statement)
        return role

    def _build_scheduler_role(self) -> iam.Role:
        """What the schedule may do: create only the nightly jobs, and pass only the job role to them."""
        stack = Stack.of(self)
        role = iam.Role(self, "SchedulerRole", assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}))
        role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:CreateProcessingJob"],
            resources=[stack.format_arn(service="sagemaker", resource="processing-job",
                                        resource_name=f"{NIGHTLY_JOB_PREFIX}-*")]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
        return role

    def _nightly_request(self, config: PipelineConfig, key: kms.IKey, feature_store: FeatureStore, spark_image: str,
                         job_code: tuple[Path, Path]) -> dict:
        """The nightly job's CreateProcessingJob request, built by the same function the CLI uses."""
        # The archive of the last days -> 1-week aggregates -> the batch feature group.
        entry, deps = job_code
        return sagemaker_jobs.processing_request(
            f"{NIGHTLY_JOB_PREFIX}-<aws.scheduler.execution-id>", self.role.role_arn, spark_image,
            self.entry.s3_object_url, self.deps.s3_object_url,
            sagemaker_jobs.features_job_args(f"{self.archive_uri}/", f"s3://{self.bucket.bucket_name}/nightly/latest",
                                             "json", feature_group=feature_store.batch_name, region=Aws.REGION),
            instance_type=config.processing_instance_type, instance_count=config.processing_instance_count,
            volume_kms_key=key.key_arn,
            # File assets keep their content hash and extension as the object name.
            entry_name=f"{self.entry.asset_hash}{entry.suffix}", deps_name=f"{self.deps.asset_hash}{deps.suffix}",
        )

    def _build_schedule(self, config: PipelineConfig, scheduler_role: iam.Role, request: dict) -> scheduler.CfnSchedule:
        """EventBridge Scheduler calls SageMaker's API itself, so the nightly refresh needs no function of ours."""
        schedule = scheduler.CfnSchedule(
            self, "NightlyRefresh",
            description="Nightly: 1-week aggregates from the archived transactions into the batch feature group",
            schedule_expression=config.nightly_refresh_schedule,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=f"arn:{Aws.PARTITION}:scheduler:::aws-sdk:sagemaker:createProcessingJob",
                role_arn=scheduler_role.role_arn,
                input=Stack.of(self).to_json_string(request),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=2,
                                                                      maximum_event_age_in_seconds=3600),
            ),
        )
        # Created after its role's policy, so the first run may already start the job.
        schedule.node.add_dependency(scheduler_role)
        return schedule

    def grant_archive_writes(self, role: iam.Role, key: kms.IKey) -> None:
        """What Flink's filesystem sink does under the archive prefix (multipart uploads included)."""
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                     "s3:ListMultipartUploadParts"],
            resources=[self.bucket.arn_for_objects(f"{ARCHIVE_PREFIX}*")]))
        role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                                               resources=[self.bucket.bucket_arn]))
        role.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn]))
