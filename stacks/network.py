"""VPC over two zones with private subnets only: no internet gateway, no NAT.

What reaches AWS services from inside goes through VPC endpoints: Lambda's MSK trigger pollers
need Lambda and STS, and write failed batches to S3; the handler functions call SageMaker runtime
(the model endpoint) and Feature Store runtime. Flow logs record every connection.

Nothing leaves for anywhere else: HTTPS goes to the interface endpoints' security groups and to the S3
prefix list only, and the S3 gateway endpoint's policy admits the stack's own buckets only (no path to
another bucket in the region, whoever's credentials are used).
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import PipelineConfig
from stacks.custom_resources import StackResources
from stacks.log_groups import log_group

INTERFACE_ENDPOINTS = (
    ("Lambda", ec2.InterfaceVpcEndpointAwsService.LAMBDA_),
    ("Sts", ec2.InterfaceVpcEndpointAwsService.STS),
    ("SageMakerRuntime", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME),
    ("FeatureStoreRuntime", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_FEATURESTORE_RUNTIME),
)


# What S3 clients in the VPC do: Flink's archive (S3A: objects, listings, multipart uploads), the MSK trigger
# pollers' failed batches (PutObject).
S3_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
              "s3:ListMultipartUploadParts", "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:GetBucketLocation"]


class Network(Construct):
    def __init__(self, scope: Construct, id: str, *, config: PipelineConfig, retention: logs.RetentionDays,
                 key: kms.IKey, resources: StackResources) -> None:
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

        # Interface endpoints accept HTTPS from inside the VPC only (CDK's default ingress rule on their groups).
        self.interface_endpoints = {
            name: self.vpc.add_interface_endpoint(name, service=service, subnets=self.subnets, private_dns_enabled=True,
                                                  security_groups=[self._endpoint_group(name)])
            for name, service in INTERFACE_ENDPOINTS}
        self.s3_endpoint = self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3,
                                                         subnets=[self.subnets])
        # The region's S3 address ranges, which the gateway endpoint routes: security groups name this list.
        self.s3_prefix_list = resources.managed_prefix_list(self, "S3PrefixList", f"com.amazonaws.{Aws.REGION}.s3")

    def _endpoint_group(self, name: str) -> ec2.SecurityGroup:
        """An interface endpoint's group: HTTPS in from the VPC (the endpoint's default rule), nothing out (an
        endpoint only answers; CDK's own group would allow all outbound)."""
        return ec2.SecurityGroup(self, f"{name}EndpointSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
                                 description=f"{name} interface endpoint: HTTPS from the VPC")

    def allow_s3_bucket(self, bucket: s3.IBucket) -> None:
        """Admit ``bucket`` through the S3 gateway endpoint. The first call replaces the endpoint's default
        policy (any bucket, any action), so only the buckets named here are reachable from the VPC."""
        self.s3_endpoint.add_to_policy(iam.PolicyStatement(
            principals=[iam.AnyPrincipal()], actions=S3_ACTIONS,
            resources=[bucket.bucket_arn, bucket.arn_for_objects("*")]))

    def allow_https(self, group: ec2.SecurityGroup, *, endpoints: tuple[str, ...] = (), s3_gateway: bool = False,
                    why: str) -> None:
        """Egress on 443 from ``group`` to the named interface endpoints' security groups and, with s3_gateway,
        to the region's S3 prefix list: nothing else (the subnets have no other route out, and no rule names one)."""
        for name in endpoints:
            for endpoint_group in self.interface_endpoints[name].connections.security_groups:
                group.add_egress_rule(endpoint_group, ec2.Port.tcp(443), f"{why}: {name} endpoint")
        if s3_gateway:
            group.add_egress_rule(ec2.Peer.prefix_list(self.s3_prefix_list), ec2.Port.tcp(443),
                                  f"{why}: S3 through the gateway endpoint")
