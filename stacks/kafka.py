"""MSK provisioned cluster: IAM client authentication, TLS everywhere, encrypted volumes, broker logs.

The four topics are `AWS::MSK::Topic` resources (no Kafka CLI on anyone's laptop), and the IAM
bootstrap brokers, which CloudFormation does not expose, come from a custom resource.
"""

from __future__ import annotations

from aws_cdk import CustomResource, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_msk as msk
from constructs import Construct

from fraudstream import contract as c
from stacks.config import PipelineConfig
from stacks.custom_resources import StackResources
from stacks.log_groups import log_group
from stacks.network import Network
from stacks.shared import Shared

IAM_PORT = 9098  # SASL/IAM over TLS, from inside AWS


class KafkaArns:
    """ARNs of a cluster's topics and consumer groups, for kafka-cluster:* IAM statements."""

    def __init__(self, stack: Stack, cluster_arn: str) -> None:
        parts = Fn.split("/", cluster_arn)  # arn:...:cluster/<name>/<uuid>
        self._stack, self._name, self._uuid = stack, Fn.select(1, parts), Fn.select(2, parts)
        self.cluster = cluster_arn

    def _arn(self, kind: str, name: str) -> str:
        return self._stack.format_arn(service="kafka", resource=kind, resource_name=f"{self._name}/{self._uuid}/{name}")

    def topic(self, name: str) -> str:
        return self._arn("topic", name)

    def group(self, name: str) -> str:
        return self._arn("group", name)


class Kafka(Construct):
    def __init__(self, scope: Construct, id: str, *, shared: Shared, network: Network) -> None:
        super().__init__(scope, id)
        config, key, retention, resources = shared.config, shared.key, shared.retention, shared.resources
        vpc, subnets = network.vpc, network.subnets
        self.security_group = self._build_broker_security_group(network)
        self.client_security_group = self._build_client_security_group(network)
        self.broker_logs = log_group(self, "BrokerLogs", key=key, retention=retention)
        self.cluster = self._build_cluster(config, vpc, subnets, key)
        self.cluster_arn = self.cluster.attr_arn
        self.arns = KafkaArns(Stack.of(self), self.cluster_arn)
        self.topics = self._build_topics(config)
        self.bootstrap_brokers = self._build_bootstrap_brokers(resources)

    def _build_broker_security_group(self, network: Network) -> ec2.SecurityGroup:
        """The brokers' group: only the IAM/TLS port, and only from the members that need it."""
        group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=network.vpc, allow_all_outbound=False,
            description="MSK brokers: IAM/TLS port from its own members (Lambda trigger pollers) and Flink",
        )
        # Lambda's MSK trigger polls from ENIs that carry the cluster's own security group.
        group.add_ingress_rule(group, ec2.Port.tcp(IAM_PORT), "trigger pollers")
        group.add_egress_rule(group, ec2.Port.tcp(IAM_PORT), "trigger pollers")
        # HTTPS to the Lambda and STS interface endpoints and to S3 through its gateway endpoint (failed batches).
        network.allow_https(group, endpoints=("Lambda", "Sts"), s3_gateway=True, why="trigger pollers")
        return group

    def _build_client_security_group(self, network: Network) -> ec2.SecurityGroup:
        """Kafka clients you run inside the VPC attach this group to reach the brokers."""
        # For producers such as fraudstream simulate, from an instance or a CloudShell VPC environment.
        group = ec2.SecurityGroup(
            self, "ClientSecurityGroup", vpc=network.vpc, allow_all_outbound=False,
            description="Kafka clients in the VPC: to the MSK brokers (IAM/TLS) and AWS endpoints")
        group.add_egress_rule(self.security_group, ec2.Port.tcp(IAM_PORT), "MSK brokers")
        network.allow_https(group, endpoints=tuple(network.interface_endpoints), s3_gateway=True, why="Kafka clients")
        self.security_group.add_ingress_rule(group, ec2.Port.tcp(IAM_PORT), "Kafka clients")
        return group

    def _build_cluster(self, config: PipelineConfig, vpc: ec2.IVpc, subnets: ec2.SubnetSelection,
                       key: kms.IKey) -> msk.CfnCluster:
        """The provisioned cluster: IAM authentication only, TLS everywhere, volumes under the stack's key."""
        cluster = msk.CfnCluster(
            self,
            "Cluster",
            cluster_name=f"{Stack.of(self).stack_name}-kafka",
            kafka_version=config.kafka_version,
            number_of_broker_nodes=config.broker_count,
            broker_node_group_info=msk.CfnCluster.BrokerNodeGroupInfoProperty(
                instance_type=config.broker_instance_type,
                client_subnets=vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids,
                security_groups=[self.security_group.security_group_id],
                storage_info=msk.CfnCluster.StorageInfoProperty(
                    ebs_storage_info=msk.CfnCluster.EBSStorageInfoProperty(volume_size=config.broker_volume_gib)
                ),
            ),
            client_authentication=msk.CfnCluster.ClientAuthenticationProperty(
                sasl=msk.CfnCluster.SaslProperty(iam=msk.CfnCluster.IamProperty(enabled=True)),
                unauthenticated=msk.CfnCluster.UnauthenticatedProperty(enabled=False),
            ),
            encryption_info=msk.CfnCluster.EncryptionInfoProperty(
                encryption_at_rest=msk.CfnCluster.EncryptionAtRestProperty(data_volume_kms_key_id=key.key_arn),
                encryption_in_transit=msk.CfnCluster.EncryptionInTransitProperty(client_broker="TLS", in_cluster=True),
            ),
            logging_info=msk.CfnCluster.LoggingInfoProperty(
                broker_logs=msk.CfnCluster.BrokerLogsProperty(
                    cloud_watch_logs=msk.CfnCluster.CloudWatchLogsProperty(
                        enabled=True, log_group=self.broker_logs.log_group_name
                    )
                )
            ),
        )
        cluster.apply_removal_policy(RemovalPolicy.DESTROY)
        return cluster

    def _build_topics(self, config: PipelineConfig) -> dict[str, msk.CfnTopic]:
        """The topics as CloudFormation resources, so nobody needs a Kafka CLI to create them."""
        topics = {}
        for name in (c.TRANSACTIONS_TOPIC, c.TRANSACTION_FEATURES_TOPIC, c.INVALID_TRANSACTIONS_TOPIC, c.VERDICTS_TOPIC):
            topic = msk.CfnTopic(
                self,
                f"Topic-{name}",
                cluster_arn=self.cluster_arn,
                topic_name=name,
                partition_count=config.topic_partitions,
                replication_factor=config.topic_replication_factor,
            )
            topic.apply_removal_policy(RemovalPolicy.DESTROY)
            topics[name] = topic
        return topics

    def _build_bootstrap_brokers(self, resources: StackResources) -> str:
        """The IAM bootstrap broker string, read by a custom resource because CloudFormation does not expose it."""
        brokers = CustomResource(
            self,
            "BootstrapBrokers",
            service_token=resources.service_token,
            resource_type=resources.BOOTSTRAP_BROKERS,
            properties={"ClusterArn": self.cluster_arn},
        )
        resources.allow_bootstrap_brokers(self.cluster_arn)
        return brokers.get_att_string("BootstrapBrokerStringSaslIam")
