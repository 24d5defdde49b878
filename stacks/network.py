"""VPC over two zones with private subnets only: no internet gateway, no NAT.

What reaches AWS services from inside goes through VPC endpoints: Lambda's MSK trigger pollers
need Lambda and STS, and write failed batches to S3; the handler functions call SageMaker runtime
(the model endpoint) and Feature Store runtime. Flow logs record every connection.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import PipelineConfig
from stacks.log_groups import log_group

INTERFACE_ENDPOINTS = (
    ("Lambda", ec2.InterfaceVpcEndpointAwsService.LAMBDA_),
    ("Sts", ec2.InterfaceVpcEndpointAwsService.STS),
    ("SageMakerRuntime", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME),
    ("FeatureStoreRuntime", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_FEATURESTORE_RUNTIME),
)


class Network(Construct):
    def __init__(self, scope: Construct, id: str, *, config: PipelineConfig, retention: logs.RetentionDays,
                 key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=config.max_azs,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22)
            ],
        )
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        flow_logs = log_group(self, "FlowLogs", key=key, retention=retention)
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))

        # Interface endpoints accept HTTPS from inside the VPC only (CDK's default security group rule).
        self.interface_endpoints = {
            name: self.vpc.add_interface_endpoint(name, service=service, subnets=self.subnets, private_dns_enabled=True)
            for name, service in INTERFACE_ENDPOINTS}
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.subnets])
