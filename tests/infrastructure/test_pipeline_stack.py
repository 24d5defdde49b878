"""What the stack deploys, read from the synthesized template: the properties that matter."""

from __future__ import annotations

import json
import re

import pytest

from kafka.partitioner.default import murmur2

from fraudstream import contract as c
from fraudstream.packaging.flink_app import tick_keys
from fraudstream import stack_outputs as out
from fraudstream.online import settings as env
from fraudstream.online import telemetry as t
from stacks.config import PipelineConfig
from stacks.images import region_images
from stacks.network import INTERFACE_ENDPOINTS
from tests.support.synth import BATCH_CARDS, CONTEXT, FEATURE_SET, of_type
from tests.support import aws_calls
from tests.support.aws_calls import as_list


def only(resources: dict, kind: str) -> tuple[str, dict]:
    found = of_type(resources, kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.items()))


def test_network_has_private_subnets_only_and_endpoints_for_the_trigger(resources):
    # Given the template / Then: two isolated subnets, no internet or NAT gateway, flow logs on
    assert len(of_type(resources, "AWS::EC2::Subnet")) == 2
    assert not of_type(resources, "AWS::EC2::InternetGateway") and not of_type(resources, "AWS::EC2::NatGateway")
    assert len(of_type(resources, "AWS::EC2::FlowLog")) == 1
    services = [json.dumps(r["Properties"]["ServiceName"]) for r in of_type(resources, "AWS::EC2::VPCEndpoint").values()]
    assert any(".lambda" in s for s in services) and any(".sts" in s for s in services) and any(".s3" in s for s in services)


def test_kafka_cluster_uses_iam_auth_tls_and_a_customer_key(resources):
    _, cluster = only(resources, "AWS::MSK::Cluster")
    props = cluster["Properties"]
    assert props["ClientAuthentication"] == {"Sasl": {"Iam": {"Enabled": True}}, "Unauthenticated": {"Enabled": False}}
    assert props["EncryptionInfo"]["EncryptionInTransit"] == {"ClientBroker": "TLS", "InCluster": True}
    key_id = props["EncryptionInfo"]["EncryptionAtRest"]["DataVolumeKMSKeyId"]["Fn::GetAtt"][0]
    assert resources[key_id]["Type"] == "AWS::KMS::Key" and resources[key_id]["Properties"]["EnableKeyRotation"]
    assert props["NumberOfBrokerNodes"] == CONTEXT["brokerCount"]
    assert props["BrokerNodeGroupInfo"]["InstanceType"] == "kafka.t3.small"
    logs = props["LoggingInfo"]["BrokerLogs"]["CloudWatchLogs"]
    assert logs["Enabled"] and resources[logs["LogGroup"]["Ref"]]["Properties"]["RetentionInDays"] == 14


def test_the_four_topics_exist_as_msk_topic_resources(resources):
    topics = {r["Properties"]["TopicName"]: r["Properties"] for r in of_type(resources, "AWS::MSK::Topic").values()}
    assert set(topics) == {c.TRANSACTIONS_TOPIC, c.TRANSACTION_FEATURES_TOPIC, c.INVALID_TRANSACTIONS_TOPIC,
                           c.VERDICTS_TOPIC}
    for props in topics.values():
        assert props["PartitionCount"] == CONTEXT["topicPartitions"]
        assert props["ReplicationFactor"] == CONTEXT["topicReplicationFactor"]


def test_flink_application_runs_1_20_in_the_vpc_with_brokers_and_topics_injected(resources):
    name, app = only(resources, "AWS::KinesisAnalyticsV2::Application")
    props = app["Properties"]
    assert props["RuntimeEnvironment"] == "FLINK-1_20"
    config = props["ApplicationConfiguration"]
    assert config["VpcConfigurations"][0]["SubnetIds"]
    assert config["FlinkApplicationConfiguration"]["CheckpointConfiguration"]["CheckpointingEnabled"] is True
    # an update restores the whole latest snapshot or fails: never runs on with part of the state dropped
    assert props["RunConfiguration"] == {
        "ApplicationRestoreConfiguration": {"ApplicationRestoreType": "RESTORE_FROM_LATEST_SNAPSHOT"},
        "FlinkRunConfiguration": {"AllowNonRestoredState": False}}
    groups = {g["PropertyGroupId"]: g["PropertyMap"] for g in config["EnvironmentProperties"]["PropertyGroups"]}
    assert groups["kinesis.analytics.flink.run.options"] == {"python": "main.py",
                                                              "jarfile": "lib/fraudstream-flink-deps.jar"}
    runtime = groups["fraudstream"]
    assert runtime["transactions.topic"] == c.TRANSACTIONS_TOPIC
    assert (runtime["features.topic"], runtime["invalid.topic"]) == (c.TRANSACTION_FEATURES_TOPIC, c.INVALID_TRANSACTIONS_TOPIC)
    assert runtime["ticks.keys"].split(",") == tick_keys(CONTEXT["topicPartitions"])  # a tick for every partition
    keys = runtime["ticks.keys"].split(",")  # Kafka's default partitioner sends each key to its own partition
    assert sorted((murmur2(k.encode()) & 0x7FFFFFFF) % CONTEXT["topicPartitions"] for k in keys) == \
        list(range(CONTEXT["topicPartitions"]))
    assert not {"time.mode", "idle.timeout.seconds", "aggregates.topic"} & set(runtime)
    brokers_resource = runtime["bootstrap.servers"]["Fn::GetAtt"]
    assert resources[brokers_resource[0]]["Type"] == "Custom::MskBootstrapBrokers"
    assert brokers_resource[1] == "BootstrapBrokerStringSaslIam"
    # Started by a custom resource once it exists; logging to CloudWatch.
    _, run = only(resources, "Custom::FlinkApplicationRun")
    assert run["Properties"]["ApplicationName"] == {"Ref": name}
    assert of_type(resources, "AWS::KinesisAnalyticsV2::ApplicationCloudWatchLoggingOption")


def test_feature_groups_follow_the_contract_schemas_with_a_kms_encrypted_online_store(resources):
    groups = {r["Properties"]["FeatureGroupName"]: r for r in of_type(resources, "AWS::SageMaker::FeatureGroup").values()}
    assert set(groups) == set(c.FEATURE_GROUP_SCHEMAS)
    for name, group in groups.items():
        props = group["Properties"]
        assert [(f["FeatureName"], f["FeatureType"]) for f in props["FeatureDefinitions"]] == \
            list(c.FEATURE_GROUP_SCHEMAS[name])
        assert props["RecordIdentifierFeatureName"] == c.RECORD_IDENTIFIER
        assert props["EventTimeFeatureName"] == c.EVENT_TIME_FEATURE
        online = props["OnlineStoreConfig"]
        assert online["EnableOnlineStore"] is True
        assert resources[online["SecurityConfig"]["KmsKeyId"]["Fn::GetAtt"][0]]["Type"] == "AWS::KMS::Key"
        assert group["DeletionPolicy"] == "Delete"


def test_model_serves_the_artifact_on_the_regions_xgboost_3_0_5_image(template_json, resources):
    _, model = only(resources, "AWS::SageMaker::Model")
    container = model["Properties"]["PrimaryContainer"]
    assert "Fn::FindInMap" in container["Image"] and container["Image"]["Fn::FindInMap"][1] == {"Ref": "AWS::Region"}
    mapping = template_json["Mappings"][container["Image"]["Fn::FindInMap"][0]]
    assert mapping["eu-west-1"]["uri"] == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
    assert set(mapping) == set(region_images("xgboost"))
    # (the .tar.gz copy it reads: tests/infrastructure/test_deploy_hardening.py)
    assert resources[container["ModelDataUrl"]["Fn::GetAtt"][0]]["Type"] == "Custom::CopiedObject"
    _, config = only(resources, "AWS::SageMaker::EndpointConfig")
    variant = config["Properties"]["ProductionVariants"][0]
    assert variant["InstanceType"] == CONTEXT["endpointInstanceType"] and variant["InitialInstanceCount"] == 1
    _, endpoint = only(resources, "AWS::SageMaker::Endpoint")
    assert endpoint["Properties"]["EndpointName"] == "FraudTest-xgboost"


def _functions(resources) -> dict[str, dict]:
    return {r["Properties"].get("Description", ""): r for r in of_type(resources, "AWS::Lambda::Function").values()}


def test_handlers_run_python_3_12_or_later_with_powertools_and_wired_environment(resources):
    functions = of_type(resources, "AWS::Lambda::Function")
    handlers = {n: f for n, f in functions.items() if f["Properties"].get("Handler") == "handler.lambda_handler"
                and not n.startswith("HandlersProduceTransactions")}  # (the producer: its own test below)
    assert len(handlers) == 2
    predict = next(f for n, f in handlers.items() if "Predict" in n)["Properties"]
    aggregate = next(f for n, f in handlers.items() if "Aggregate" in n)["Properties"]
    for props in (predict, aggregate):
        major, minor = props["Runtime"].removeprefix("python").split(".")
        assert (int(major), int(minor)) >= (3, 12)
        (layer,) = props["Layers"]
        assert resources[layer["Ref"]]["Type"] == "AWS::Lambda::LayerVersion"
        variables = props["Environment"]["Variables"]
        assert variables[env.ENV_STORE_BACKEND] == "sagemaker"
        assert variables[env.ENV_STREAMING_GROUP] == c.STREAMING_FEATURE_GROUP
        assert variables[env.ENV_BATCH_GROUP] == c.BATCH_FEATURE_GROUP
        assert "this_will_be_overwritten" not in json.dumps(variables)
    variables = predict["Environment"]["Variables"]
    assert variables[env.ENV_MODEL_BACKEND] == "endpoint"
    assert variables[env.ENV_ENDPOINT_NAME] == "FraudTest-xgboost"
    assert variables[env.ENV_FEATURE_SET] == FEATURE_SET == variables[env.ENV_MODEL_FEATURE_SET]
    assert float(variables[env.ENV_THRESHOLD]) == CONTEXT["fraudThreshold"]
    assert "STREAMING_WAIT_MS" not in variables
    # The environment the stack sets (with the AWS_REGION Lambda adds) is one the handler accepts at cold start.
    accepted = env.predict_settings({**variables, env.ENV_REGION: "us-east-1"})
    assert accepted.feature_set == FEATURE_SET and accepted.verdicts.security == "iam"


def test_triggers_read_the_right_topics_with_configured_batching_and_a_failure_destination(resources):
    mappings = [r["Properties"] for r in of_type(resources, "AWS::Lambda::EventSourceMapping").values()]
    functions = of_type(resources, "AWS::Lambda::Function")
    by_target = {(m["Topics"][0], "Predict" if "Predict" in m["FunctionName"]["Ref"] else "Aggregate"): m for m in mappings}
    # Both functions read Flink's features; the predict function also its invalid-transaction reports
    assert set(by_target) == {(c.TRANSACTION_FEATURES_TOPIC, "Aggregate"), (c.TRANSACTION_FEATURES_TOPIC, "Predict"),
                              (c.INVALID_TRANSACTIONS_TOPIC, "Predict")}
    assert all(m["FunctionName"]["Ref"] in functions for m in mappings)
    aggregate, predict = by_target[(c.TRANSACTION_FEATURES_TOPIC, "Aggregate")], by_target[(c.TRANSACTION_FEATURES_TOPIC, "Predict")]
    assert (aggregate["BatchSize"], aggregate["MaximumBatchingWindowInSeconds"]) == (250, 2)
    assert (predict["BatchSize"], predict["MaximumBatchingWindowInSeconds"]) == (50, 1)
    groups = [m["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"] for m in mappings]
    assert len(set(groups)) == 3  # each trigger its own consumer group
    invalid = by_target[(c.INVALID_TRANSACTIONS_TOPIC, "Predict")]
    assert invalid["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"] == env.INVALID_TRIGGER.consumer_group == \
        PipelineConfig().invalid_consumer_group == "fraudstream-invalid-transactions"
    assert (invalid["BatchSize"], invalid["MaximumBatchingWindowInSeconds"]) == (
        env.INVALID_TRIGGER.batch_size, int(env.INVALID_TRIGGER.batching_window_s))
    # Each trigger is its own construct, the predict function's second one PredictFromFeaturesInvalidTrigger
    constructs = {re.sub(r"[0-9A-F]{8}$", "", name): (m["Properties"]["Topics"][0], m["Properties"]["FunctionName"]["Ref"])
                  for name, m in of_type(resources, "AWS::Lambda::EventSourceMapping").items()}
    assert {name: (topic, "Predict" in function) for name, (topic, function) in constructs.items()} == {
        "HandlersAggregateToFeatureStoreTrigger": (c.TRANSACTION_FEATURES_TOPIC, False),
        "HandlersPredictFromFeaturesTrigger": (c.TRANSACTION_FEATURES_TOPIC, True),
        "HandlersPredictFromFeaturesInvalidTrigger": (c.INVALID_TRANSACTIONS_TOPIC, True)}
    # Each trigger starts polling only once its own topic exists
    topic_ids = {r["Properties"]["TopicName"]: n for n, r in of_type(resources, "AWS::MSK::Topic").items()}
    for name, mapping in of_type(resources, "AWS::Lambda::EventSourceMapping").items():
        assert topic_ids[mapping["Properties"]["Topics"][0]] in mapping["DependsOn"], name
    for props in mappings:
        assert resources[props["EventSourceArn"]["Fn::GetAtt"][0]]["Type"] == "AWS::MSK::Cluster"
        assert props["StartingPosition"] == "TRIM_HORIZON"
        destination = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        assert resources[destination]["Type"] == "AWS::S3::Bucket"
        assert props["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"]


def test_failed_records_bucket_is_private_encrypted_and_removed_with_the_stack(resources):
    ((name, bucket),) = [(n, b) for n, b in of_type(resources, "AWS::S3::Bucket").items() if "FailedRecords" in n]
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {k: True for k in (
        "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
        "SSEAlgorithm"] == "aws:kms"
    assert bucket["DeletionPolicy"] == "Delete"
    ((emptier_id, emptier),) = [(n, e) for n, e in of_type(resources, "Custom::EmptyBucketOnDelete").items()
                                if e["Properties"]["BucketName"] == {"Ref": name}]
    # Triggers are deleted before the bucket is emptied (they depend on the emptier).
    for mapping in of_type(resources, "AWS::Lambda::EventSourceMapping").values():
        assert emptier_id in mapping["DependsOn"]
    policy = json.dumps(next(iter(of_type(resources, "AWS::S3::BucketPolicy").values())))
    assert '"aws:SecureTransport": "false"' in policy


def test_alarms_cover_errors_lag_flink_downtime_and_endpoint_5xx(resources):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm").values()
    metrics = sorted((a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms)
    assert metrics == sorted([("AWS/Lambda", "Errors")] * 2 + [("AWS/Lambda", "OffsetLag")] * 2
                             + [("AWS/KinesisAnalytics", "downtime"), ("AWS/SageMaker", "Invocation5XXErrors"),
                                ("AWS/Scheduler", "InvocationDroppedCount"), (t.NAMESPACE, t.END_TO_END_LAG)])
    (topic,) = of_type(resources, "AWS::SNS::Topic")
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic}]
    assert of_type(resources, "AWS::SNS::Subscription") or any(
        "oncall@example.com" in json.dumps(r) for r in resources.values())
    (dashboard,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in ("Transactions", "FraudVerdicts", "InvalidRecords", "OffsetLag", "Duration", "uptime",
                   "numRecordsInPerSecond", "ModelLatency", "Invocation5XXErrors"):
        assert metric in body


def test_freshness_is_on_the_dashboard_and_a_late_p99_alarms(resources):
    [lag] = [a["Properties"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
             if a["Properties"]["MetricName"] == t.END_TO_END_LAG]
    assert (lag["ExtendedStatistic"], lag["Threshold"], lag["EvaluationPeriods"]) == ("p99", 60, 5)
    (dashboard,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (t.END_TO_END_LAG, t.AGGREGATE_LAG, t.LATE_TRANSACTIONS, t.INVALID_RECORDS):
        assert metric in body
    assert "StreamingRecordAge" not in body  # the age of a 10-minute record: the predict function reads none
    assert '\\"stat\\":\\"p50\\"' in body and '\\"stat\\":\\"p99\\"' in body


def test_outputs_carry_every_key_the_operating_commands_read(template_json):
    assert set(template_json["Outputs"]) == set(out.ALL)
    outputs = template_json["Outputs"]
    assert (outputs[out.TRANSACTIONS_TOPIC]["Value"], outputs[out.FEATURES_TOPIC]["Value"],
            outputs[out.INVALID_TOPIC]["Value"]) == (c.TRANSACTIONS_TOPIC, c.TRANSACTION_FEATURES_TOPIC,
                                                     c.INVALID_TRANSACTIONS_TOPIC)
    assert (out.FEATURES_TOPIC, out.INVALID_TOPIC) == ("FeaturesTopic", "InvalidTopic")
    assert "AggregatesTopic" not in outputs and not hasattr(out, "AGGREGATES_TOPIC")
    assert template_json["Outputs"][out.BOOTSTRAP_BROKERS]["Value"]["Fn::GetAtt"][1] == "BootstrapBrokerStringSaslIam"


def test_destroy_removes_everything_the_stack_created(resources):
    # Every stateful resource is deleted with the stack; log groups are the stack's own, not
    # created on first write by the services (which would outlive it).
    for name, resource in resources.items():
        if resource["Type"] in ("AWS::Logs::LogGroup", "AWS::S3::Bucket", "AWS::KMS::Key", "AWS::MSK::Cluster",
                                "AWS::MSK::Topic", "AWS::SageMaker::FeatureGroup", "AWS::SageMaker::Endpoint",
                                "AWS::KinesisAnalyticsV2::Application"):
            assert resource.get("DeletionPolicy") == "Delete", name
    for function in of_type(resources, "AWS::Lambda::Function").values():
        assert "LoggingConfig" in function["Properties"] or function["Properties"].get("Runtime", "").startswith("nodejs")
    endpoint_logs = [r for r in of_type(resources, "AWS::Logs::LogGroup").values()
                     if r["Properties"].get("LogGroupName") == "/aws/sagemaker/Endpoints/FraudTest-xgboost"]
    assert endpoint_logs


def test_flink_entry_point_accepts_the_runtime_properties_the_stack_sets(resources):
    # Given the property group the stack gives the application, brokers resolved as at deploy time
    from tests.support.flink_job import flink_main

    _, app = only(resources, "AWS::KinesisAnalyticsV2::Application")
    groups = {g["PropertyGroupId"]: g["PropertyMap"] for g in
              app["Properties"]["ApplicationConfiguration"]["EnvironmentProperties"]["PropertyGroups"]}
    entry = flink_main()
    properties = {**groups[entry.PROPERTY_GROUP], "bootstrap.servers": "b-1.example:9098,b-2.example:9098"}
    assert set(properties) <= set(entry.DEFAULTS) | {"bootstrap.servers", "transactions.topic", "features.topic",
                                                     "invalid.topic", "ticks.keys", "archive.path", "s3.region",
                                                     "s3.endpoint"}
    properties["archive.path"] = "s3://fraudstream-data/transactions"
    assert "'path' = 's3://fraudstream-data/transactions'" in "\n".join(entry.archive_tables(properties))
    # When flink_sql/main.py renders its MSK tables from them
    ddl = "\n".join(entry.kafka_tables(properties))
    # Then the tables read and write the stack's topics with IAM auth, as the managed job will
    assert all(f"'topic' = '{topic}'" in ddl for topic in
               (c.TRANSACTIONS_TOPIC, c.TRANSACTION_FEATURES_TOPIC, c.INVALID_TRANSACTIONS_TOPIC))
    sink, insert = entry.ticks(properties)
    assert insert and f"'topic' = '{c.TRANSACTIONS_TOPIC}'" in sink[0]
    # with the context's event-time tolerance: the watermark trails by it, a tick carries it and waits as long
    assert "row_time - INTERVAL '0 00:00:02.501' DAY TO SECOND(3)" in ddl
    assert "MAX(newest_ms) + 1 + 2500 AS tick_ms" in insert and "INTERVAL '2.6' SECOND)" in insert
    assert (properties["max.out.of.orderness.seconds"], properties["tick.delay.ms"]) == ("2.5", "500")
    assert "b-1.example:9098,b-2.example:9098" in ddl and "AWS_MSK_IAM" in ddl
    assert f"'properties.group.id' = '{CONTEXT.get('flinkConsumerGroup', 'fraudstream-features')}'" in ddl


def _resolved(value, pseudo: dict[str, str]) -> str:
    """A template value with the pseudo parameters of one region and partition filled in."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return pseudo[value["Ref"]]
    separator, parts = value["Fn::Join"]
    return separator.join(_resolved(part, pseudo) for part in parts)


@pytest.mark.parametrize("region, suffix", [("us-east-1", "amazonaws.com"), ("eu-west-1", "amazonaws.com"),
                                            ("ap-southeast-2", "amazonaws.com"), ("cn-north-1", "amazonaws.com.cn")])
def test_the_archive_s_s3_client_gets_the_stack_s_region_and_regional_endpoint(resources, region, suffix):
    # Given the application's properties as CloudFormation resolves them in a region
    from fraudstream import flink_properties as fp
    from tests.support.flink_job import flink_main

    _, app = only(resources, "AWS::KinesisAnalyticsV2::Application")
    [group] = [g["PropertyMap"] for g in app["Properties"]["ApplicationConfiguration"]["EnvironmentProperties"][
        "PropertyGroups"] if g["PropertyGroupId"] == fp.PROPERTY_GROUP]
    pseudo = {"AWS::Region": region, "AWS::URLSuffix": suffix}
    properties = {key: _resolved(value, pseudo) for key, value in group.items() if key in (fp.S3_REGION, fp.S3_ENDPOINT)}
    # When flink_sql/main.py turns them into the job's configuration / Then S3A gets that region's endpoint, never
    # the global s3.amazonaws.com (flink-s3-fs-hadoop maps s3.* keys to Hadoop's fs.s3a.*)
    assert flink_main().filesystem_settings(properties) == {"s3.endpoint.region": region,
                                                            "s3.endpoint": f"s3.{region}.{suffix}"}


def test_flink_starts_after_the_three_topics_exist_and_stops_before_they_go(resources):
    _, run = only(resources, "Custom::FlinkApplicationRun")
    topics = {name for name, r in of_type(resources, "AWS::MSK::Topic").items()
              if r["Properties"]["TopicName"] != c.VERDICTS_TOPIC}
    assert len(topics) == 3 and topics <= set(run["DependsOn"])


def test_the_predict_function_writes_verdicts_through_its_own_group_to_the_brokers_iam_port_only(resources):
    # Given the predict function and the group of the functions that write to Kafka
    [predict] = [f for n, f in of_type(resources, "AWS::Lambda::Function").items()
                 if n.startswith("HandlersPredictFromFeatures")]
    groups = [g["Fn::GetAtt"][0] for g in predict["Properties"]["VpcConfig"]["SecurityGroupIds"]]
    [writer] = [g for g in groups if g.startswith("HandlersKafkaWritersSecurityGroup")]
    # Then that group may reach the brokers' group on 9098 and nothing else, and the brokers admit it there
    _, cluster = only(resources, "AWS::MSK::Cluster")
    brokers = cluster["Properties"]["BrokerNodeGroupInfo"]["SecurityGroups"][0]["Fn::GetAtt"][0]
    egress = [r["Properties"] for r in of_type(resources, "AWS::EC2::SecurityGroupEgress").values()
              if r["Properties"]["GroupId"] == {"Fn::GetAtt": [writer, "GroupId"]}]
    inline = resources[writer]["Properties"].get("SecurityGroupEgress", [])
    assert [(e["FromPort"], e["DestinationSecurityGroupId"]["Fn::GetAtt"][0]) for e in egress] == [(9098, brokers)]
    assert all(e.get("CidrIp") == "255.255.255.255/32" for e in inline)  # CDK's "no other egress" marker
    ingress = [r["Properties"] for r in of_type(resources, "AWS::EC2::SecurityGroupIngress").values()
               if r["Properties"].get("SourceSecurityGroupId") == {"Fn::GetAtt": [writer, "GroupId"]}]
    assert [(i["FromPort"], i["GroupId"]["Fn::GetAtt"][0]) for i in ingress] == [(9098, brokers)]
    # and the function is told where to write, as what model, and waits for the topic to exist
    env = predict["Properties"]["Environment"]["Variables"]
    assert env["VERDICTS_TOPIC"] == c.VERDICTS_TOPIC and env["KAFKA_SECURITY"] == "iam" and env["MODEL_VERSION"]
    [verdicts] = [n for n, r in of_type(resources, "AWS::MSK::Topic").items()
                  if r["Properties"]["TopicName"] == c.VERDICTS_TOPIC]
    assert verdicts in predict["DependsOn"]


def test_cloudwatch_alarms_may_publish_to_the_tls_only_alarm_topic(resources):
    (policy,) = of_type(resources, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s) for s in statements)


def _egress(resources: dict, group_id: str) -> list[dict]:
    """Every egress rule of a security group: inline, and the separate rules that name it."""
    inline = resources[group_id]["Properties"].get("SecurityGroupEgress", [])
    separate = [r["Properties"] for r in of_type(resources, "AWS::EC2::SecurityGroupEgress").values()
                if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}]
    return inline + separate


def _https_destinations(resources: dict, group_id: str) -> set[str]:
    """Where a group's port-443 rules lead: interface endpoints (by their logical id) or the S3 prefix list."""
    found = set()
    for rule in _egress(resources, group_id):
        if rule["FromPort"] != 443:
            continue
        if "DestinationPrefixListId" in rule:
            [custom, _] = rule["DestinationPrefixListId"]["Fn::GetAtt"]
            assert resources[custom]["Type"] == "Custom::ManagedPrefixList"
            assert resources[custom]["Properties"]["PrefixListName"] == {
                "Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".s3"]]}
            found.add("S3")
        else:
            [group, _] = rule["DestinationSecurityGroupId"]["Fn::GetAtt"]
            [endpoint] = [n for n, r in of_type(resources, "AWS::EC2::VPCEndpoint").items()
                          if {"Fn::GetAtt": [group, "GroupId"]} in r["Properties"].get("SecurityGroupIds", [])]
            [name] = [name for name, _ in INTERFACE_ENDPOINTS if endpoint.startswith(f"NetworkVpc{name}")]
            found.add(name)
    return found


def test_no_security_group_lets_anything_out_to_the_internet(resources):
    rules = [rule for name in of_type(resources, "AWS::EC2::SecurityGroup") for rule in _egress(resources, name)]
    # (CDK gives a group without rules a placeholder that matches nothing: ICMP type 252 to 255.255.255.255/32.)
    assert rules and not [r for r in rules if r.get("CidrIp") == "0.0.0.0/0"]
    assert not of_type(resources, "AWS::EC2::InternetGateway") and not of_type(resources, "AWS::EC2::NatGateway")


def test_trigger_pollers_reach_brokers_and_only_the_lambda_sts_and_s3_endpoints(resources):
    # The pollers carry the cluster's security group: 9098 to itself, 443 to the endpoints they use.
    _, cluster = only(resources, "AWS::MSK::Cluster")
    (group_ref,) = cluster["Properties"]["BrokerNodeGroupInfo"]["SecurityGroups"]
    group_id = group_ref["Fn::GetAtt"][0]
    assert _https_destinations(resources, group_id) == {"Lambda", "Sts", "S3"}
    self_rules = [r["Properties"] for r in of_type(resources, "AWS::EC2::SecurityGroupIngress").values()
                  if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}]
    assert {r["FromPort"] for r in self_rules} == {9098}


def test_flink_reaches_only_the_brokers_and_s3_and_clients_only_the_brokers_and_the_endpoints(resources):
    groups = of_type(resources, "AWS::EC2::SecurityGroup")
    [flink] = [n for n in groups if n.startswith("StreamingAggregationSecurityGroup")]
    [clients] = [n for n in groups if n.startswith("KafkaClientSecurityGroup")]
    assert _https_destinations(resources, flink) == {"S3"}
    assert {r["FromPort"] for r in _egress(resources, flink)} == {9098, 443}
    assert _https_destinations(resources, clients) == {"Lambda", "Sts", "SageMakerRuntime", "FeatureStoreRuntime", "S3"}


def test_the_s3_gateway_endpoint_admits_the_stack_s_two_buckets_only(resources):
    [(_, endpoint)] = [(n, r) for n, r in of_type(resources, "AWS::EC2::VPCEndpoint").items()
                       if r["Properties"].get("VpcEndpointType", "Gateway") == "Gateway"]
    statements = endpoint["Properties"]["PolicyDocument"]["Statement"]
    buckets = {name for name, r in of_type(resources, "AWS::S3::Bucket").items() if not name.startswith("AccessLogs")}
    named = set()
    for statement in statements:
        assert statement["Effect"] == "Allow" and statement["Principal"] == {"AWS": "*"}
        assert not any(a == "s3:*" or a.endswith("*") for a in as_list(statement["Action"]))
        for resource in as_list(statement["Resource"]):
            text = json.dumps(resource)
            [bucket] = [b for b in buckets if b in text]
            named.add(bucket)
    assert named == buckets and len(buckets) == 2


def _resolve(value, template_json):
    """A template value with intrinsics replaced by what they would be in us-east-1, account 123456789012."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_resolve(v, template_json) for v in value]
    (function, arg), = value.items()
    if function == "Fn::Join":
        return arg[0].join(_resolve(part, template_json) for part in arg[1])
    if function == "Fn::Sub":
        return arg.replace("${AWS::AccountId}", "123456789012").replace("${AWS::Region}", "us-east-1").replace(
            "${AWS::Partition}", "aws")
    if function == "Ref":
        return {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}.get(arg, arg.lower())
    if function == "Fn::GetAtt":
        return f"arn:aws:iam::123456789012:role/{arg[0]}"
    if function == "Fn::FindInMap":
        return template_json["Mappings"][arg[0]]["us-east-1"][arg[2]]
    raise AssertionError(f"unexpected intrinsic {function}")


def test_nightly_schedule_sends_a_valid_processing_job_over_the_archive(template_json, resources):
    import re
    import uuid

    import boto3
    from botocore.stub import Stubber

    # Given the schedule's target input, as Scheduler sends it (execution id filled in)
    _, schedule = only(resources, "AWS::Scheduler::Schedule")
    target = schedule["Properties"]["Target"]
    assert aws_calls.evaluate(target["Arn"], resources) == "arn:aws:scheduler:::aws-sdk:sagemaker:createProcessingJob"
    assert schedule["Properties"]["ScheduleExpression"] == "cron(0 2 * * ? *)"
    text = _resolve(target["Input"], template_json).replace("<aws.scheduler.execution-id>", str(uuid.uuid4()))
    request = json.loads(text)
    # Then it is a valid CreateProcessingJob request (checked against the SageMaker API model)
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", request["ProcessingJobName"])
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_response("create_processing_job", {"ProcessingJobArn": "arn:aws:sagemaker:us-east-1:1:processing-job/x"},
                             expected_params=request)
        client.create_processing_job(**request)
    # and it reads the archive Flink writes, and loads the batch group
    args = request["AppSpecification"]["ContainerArguments"]
    ((bucket_id, _),) = [(n, r) for n, r in of_type(resources, "AWS::S3::Bucket").items() if "BatchJobsData" in n]
    assert args[args.index("--transactions") + 1] == f"s3://{bucket_id.lower()}/transactions/"
    assert args[args.index("--format") + 1] == "json"
    assert args[args.index("--feature-group") + 1] == c.BATCH_FEATURE_GROUP
    assert request["AppSpecification"]["ImageUri"].endswith("sagemaker-spark-processing:3.5-cpu-py312")
    entry = request["AppSpecification"]["ContainerEntrypoint"]
    code = {i["InputName"]: i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"]}
    assert entry[2].endswith(code["deps"].rsplit("/", 1)[1]) and entry[3].endswith(code["entry"].rsplit("/", 1)[1])
    # Flink writes that archive, and nothing else of the bucket
    _, app = only(resources, "AWS::KinesisAnalyticsV2::Application")
    groups = {g["PropertyGroupId"]: g["PropertyMap"] for g in
              app["Properties"]["ApplicationConfiguration"]["EnvironmentProperties"]["PropertyGroups"]}
    archive = _resolve(groups["fraudstream"]["archive.path"], template_json)
    assert archive.startswith("s3a://") and archive.replace("s3a://", "s3://") + "/" == args[args.index("--transactions") + 1]


def test_archive_expires_after_the_retention_and_the_scheduler_may_only_start_nightly_jobs(resources):
    bucket = next(r for n, r in of_type(resources, "AWS::S3::Bucket").items() if "BatchJobsData" in n)
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {"Prefix": "transactions/", "ExpirationInDays": 8, "Status": "Enabled"}.items() <= next(
        r for r in rules if r.get("Prefix") == "transactions/").items()
    policy = next(r for n, r in of_type(resources, "AWS::IAM::Policy").items() if "SchedulerRole" in n)
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    create = next(s for s in statements if s["Action"] == "sagemaker:CreateProcessingJob")
    assert json.dumps(create["Resource"]).endswith(':processing-job/fraudstream-nightly-*"]]}')
    pass_role = next(s for s in statements if s["Action"] == "iam:PassRole")
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_a_failed_nightly_job_notifies_the_alarm_topic(resources):
    (rule,) = of_type(resources, "AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail"]["ProcessingJobName"] == [{"prefix": "fraudstream-nightly-"}]
    assert set(pattern["detail"]["ProcessingJobStatus"]) == {"Failed", "Stopped"}
    (topic,) = of_type(resources, "AWS::SNS::Topic")
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Ref": topic}


def test_the_producer_function_sends_from_inside_the_vpc_and_may_only_write_the_transactions_topic(
        template_json, resources):
    # Given the function `fraudstream simulate --stack` invokes
    [(name, producer)] = [(n, f) for n, f in of_type(resources, "AWS::Lambda::Function").items()
                          if n.startswith("HandlersProduceTransactions")]
    props = producer["Properties"]
    # Then it runs in the VPC with only the Kafka writers' group (9098 to the brokers: nothing else)
    [group] = [g["Fn::GetAtt"][0] for g in props["VpcConfig"]["SecurityGroupIds"]]
    assert group.startswith("HandlersKafkaWritersSecurityGroup")
    # long enough for one invocation's delays, sending to the transactions topic with IAM
    assert props["Timeout"] >= 600
    variables = props["Environment"]["Variables"]
    assert variables["TRANSACTIONS_TOPIC"] == c.TRANSACTIONS_TOPIC and variables["KAFKA_SECURITY"] == "iam"
    assert env.producer_settings({**variables, env.ENV_REGION: "us-east-1"}).topic == c.TRANSACTIONS_TOPIC
    # its role may connect and describe and write that one topic, and read nothing
    kafka = {action: sorted(aws_calls.evaluate(r, resources).rsplit("/", 1)[-1] for r in as_list(s["Resource"]))
             for s in aws_calls.role_statements(resources, props["Role"]["Fn::GetAtt"][0])
             for action in as_list(s["Action"]) if action.startswith("kafka-cluster:")}
    assert kafka["kafka-cluster:WriteData"] == [c.TRANSACTIONS_TOPIC] and "kafka-cluster:ReadData" not in kafka
    assert set(kafka) == {"kafka-cluster:Connect", "kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"}
    # and the command finds it in the stack's outputs
    assert template_json["Outputs"][out.PRODUCER_FUNCTION]["Value"] == {"Ref": name}


def test_the_deploy_loads_the_1_week_records_it_was_given_into_the_batch_group(assembly, resources):
    # Given the batch_aggregates.parquet the app was given (BATCH_CARDS cards)
    name, loaded = only(resources, "Custom::BatchFeaturesLoaded")
    props = loaded["Properties"]
    # Then a custom resource writes its records to the 1-week group, once that group exists
    [(group_id, group)] = [(n, r) for n, r in of_type(resources, "AWS::SageMaker::FeatureGroup").items()
                           if r["Properties"]["FeatureGroupName"] == c.BATCH_FEATURE_GROUP]
    assert props["FeatureGroupName"] == {"Ref": group_id} and group_id in loaded["DependsOn"]
    assert props["Records"] == BATCH_CARDS
    # And the asset it reads holds one JSON record per card, with exactly the group's features
    manifest = json.loads((assembly / "FraudTest.assets.json").read_text())
    [source] = [f["source"]["path"] for key, f in manifest["files"].items() if key in props["Key"]]
    lines = (assembly / source).read_text().splitlines()
    assert len(lines) == BATCH_CARDS
    assert all(set(json.loads(line)) == set(c.BATCH_FEATURE_GROUP_COLUMNS) for line in lines)


def test_the_deploy_reference_counts_the_alarms_the_stack_has(resources):
    from fraudstream.paths import REPO

    [stated] = re.findall(r"and (\d+) alarms: ", (REPO / "docs" / "deploy-reference.md").read_text())
    assert int(stated) == len(of_type(resources, "AWS::CloudWatch::Alarm")) == 8
