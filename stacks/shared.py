"""What every construct of the stack builds on, passed as one value instead of five parameters each."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3

from stacks.config import PipelineConfig
from stacks.custom_resources import StackResources


@dataclass(frozen=True)
class Shared:
    """The stack's settings, its data key, the log retention, the custom resources that empty and release what
    CloudFormation cannot delete by itself, and the bucket that receives the access logs."""

    config: PipelineConfig
    key: kms.IKey
    retention: logs.RetentionDays
    resources: StackResources
    access_logs: s3.IBucket
