"""The two online feature groups, with schemas generated from fraudstream.contract (never retyped).

Online store only: the batch job writes the 1-week group from its own table, so no offline copy
(and no S3 bucket or Glue table) is needed. Encrypted with the stack's customer-managed key.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from fraudstream import contract as c
from stacks.config import PipelineConfig


def feature_definitions(group: str) -> list[sagemaker.CfnFeatureGroup.FeatureDefinitionProperty]:
    return [sagemaker.CfnFeatureGroup.FeatureDefinitionProperty(feature_name=name, feature_type=kind)
            for name, kind in c.FEATURE_GROUP_SCHEMAS[group]]


class FeatureStore(Construct):
    def __init__(self, scope: Construct, id: str, *, config: PipelineConfig, key: kms.IKey) -> None:
        super().__init__(scope, id)
        names = {c.STREAMING_FEATURE_GROUP: config.streaming_feature_group,
                 c.BATCH_FEATURE_GROUP: config.batch_feature_group}
        descriptions = {c.STREAMING_FEATURE_GROUP: "Per card, last 10 minutes: count and average amount (Flink)",
                        c.BATCH_FEATURE_GROUP: "Per card, last week: count and average amount (nightly batch)"}
        self.groups: dict[str, sagemaker.CfnFeatureGroup] = {}
        for contract_name, name in names.items():
            group = sagemaker.CfnFeatureGroup(
                self,
                contract_name,
                feature_group_name=name,
                description=descriptions[contract_name],
                record_identifier_feature_name=c.RECORD_IDENTIFIER,
                event_time_feature_name=c.EVENT_TIME_FEATURE,
                feature_definitions=feature_definitions(contract_name),
                # Typed as plain JSON by CDK: CloudFormation's own (Pascal case) keys.
                online_store_config={"EnableOnlineStore": True, "SecurityConfig": {"KmsKeyId": key.key_arn}},
            )
            group.apply_removal_policy(RemovalPolicy.DESTROY)
            self.groups[contract_name] = group
        self.streaming_name = names[c.STREAMING_FEATURE_GROUP]
        self.batch_name = names[c.BATCH_FEATURE_GROUP]

    def arn(self, contract_name: str) -> str:
        name = self.groups[contract_name].feature_group_name
        return Stack.of(self).format_arn(service="sagemaker", resource="feature-group", resource_name=name)
