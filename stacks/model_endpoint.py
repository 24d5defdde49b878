"""The XGBoost model on a SageMaker real-time endpoint, from the locally trained model.tar.gz.

The image is the built-in XGBoost 3.0-5 container of the stack's region, looked up in a mapping
generated from the SageMaker SDK's own image table at synth time (no AWS call, no hand-typed
account IDs). Train with xgboost 3.0.5 so the saved model loads there (pyproject.toml pins it).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.images import container_statements, image_in_region
from stacks.log_groups import log_group
from stacks.shared import Shared

VARIANT = "AllTraffic"


class ModelEndpoint(Construct):
    def __init__(self, scope: Construct, id: str, *, shared: Shared, artifact: Path, bucket: s3.IBucket) -> None:
        super().__init__(scope, id)
        config, key, retention, resources = shared.config, shared.key, shared.retention, shared.resources
        stack = Stack.of(self)
        self.endpoint_name = f"{stack.stack_name}-xgboost"
        image = image_in_region(self, "xgboost")

        asset = s3_assets.Asset(self, "ModelArtifact", path=str(artifact))
        # The asset's key ends in ".gz" (CDK keeps one extension); ModelDataUrl must name a .tar.gz archive,
        # so the model reads a copy in the data bucket, one per artifact content (its hash).
        model_key = f"models/{asset.asset_hash}/model.tar.gz"
        self.model_version = asset.asset_hash  # named in every verdict on the verdicts topic
        copy = resources.copied_object(self, "ModelData", source_bucket=asset.bucket, source_key=asset.s3_object_key,
                                       bucket=bucket, key=model_key)
        self.model_data_url = copy.get_att_string("Url")
        # The endpoint writes to /aws/sagemaker/Endpoints/<name>; creating the group here gives it
        # a retention and lets `cdk destroy` remove it.
        self.log_group = log_group(self, "Logs", name=f"/aws/sagemaker/Endpoints/{self.endpoint_name}", key=key,
                                   retention=retention)

        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
        for statement in (
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(model_key)]),
            iam.PolicyStatement(actions=["kms:Decrypt"], resources=[key.key_arn]),
            *container_statements(image),
            iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                                resources=[self.log_group.log_group_arn]),
        ):
            self.role.add_to_policy(statement)

        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image, model_data_url=self.model_data_url
            ),
            # The built-in XGBoost container needs no network: SageMaker fetches the model data for it.
            enable_network_isolation=True,
        )
        model.node.add_dependency(self.role)
        endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            kms_key_id=key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=model.attr_model_name,
                    initial_instance_count=config.endpoint_instance_count,
                    instance_type=config.endpoint_instance_type,
                    initial_variant_weight=1.0,
                )
            ],
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self, "Endpoint", endpoint_name=self.endpoint_name, endpoint_config_name=endpoint_config.attr_endpoint_config_name
        )
        self.endpoint.node.add_dependency(self.log_group)
        self.endpoint.apply_removal_policy(RemovalPolicy.DESTROY)
        self.endpoint_arn = stack.format_arn(service="sagemaker", resource="endpoint",
                                             resource_name=self.endpoint_name.lower())
