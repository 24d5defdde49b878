"""Every log group of the stack: its retention, deleted with the stack, encrypted with the stack's key.

The key's policy lets CloudWatch Logs use it for this account's and region's log groups only
(FraudPipelineStack._build_key); each group is created here, so none is left unencrypted.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct


def log_group(scope: Construct, id: str, *, key: kms.IKey, retention: logs.RetentionDays,
              name: str | None = None) -> logs.LogGroup:
    return logs.LogGroup(scope, id, log_group_name=name, retention=retention, encryption_key=key,
                         removal_policy=RemovalPolicy.DESTROY)
