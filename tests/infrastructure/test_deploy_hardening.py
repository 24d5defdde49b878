"""What `cdk deploy` and `cdk destroy` would trip on, found in the docs and held here on the template."""

from __future__ import annotations

import json

from fraudstream import contract as c
from stacks.images import supported_regions
from tests.support.synth import CONTEXT, of_type, role_of, run_app_here
from tests.support import aws_calls


def actions_of(resources: dict, role: str) -> dict[str, list[str]]:
    """action -> the evaluated resources it is granted on, for one role."""
    granted: dict[str, list[str]] = {}
    for statement in aws_calls.role_statements(resources, role):
        for action in aws_calls.as_list(statement["Action"]):
            granted.setdefault(action, []).extend(
                aws_calls.evaluate(r, resources) for r in aws_calls.as_list(statement["Resource"]))
    return granted


def trigger_roles(resources: dict) -> list[str]:
    return [role_of(resources, "predict"), role_of(resources, "aggregate")]


def test_bootstrap_brokers_are_read_with_a_star_resource_as_the_action_requires(resources):
    # GetBootstrapBrokers has no resource type (Service Authorization Reference): a cluster ARN would deny it
    # after the 30-40 minute cluster build, and the stack would roll back.
    for role in [role_of(resources, "stack_resources"), *trigger_roles(resources)]:
        assert actions_of(resources, role)["kafka:GetBootstrapBrokers"] == ["*"]


def test_trigger_roles_hold_only_the_vpc_actions_lambdas_msk_guide_lists(resources):
    flink = next(n for n in of_type(resources, "AWS::IAM::Role") if n.startswith("StreamingAggregationRole"))
    for role in trigger_roles(resources):
        granted = actions_of(resources, role)
        assert {"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"} <= set(granted)
        assert "ec2:CreateNetworkInterfacePermission" not in granted and "ec2:DescribeDhcpOptions" not in granted
        assert "kafka:DescribeClusterV2" in granted and "kafka:DescribeCluster" not in granted
    # Managed Flink does need both.
    assert {"ec2:CreateNetworkInterfacePermission", "ec2:DescribeDhcpOptions"} <= set(actions_of(resources, flink))


def test_interfaces_may_be_created_in_this_account_and_region_only_and_deleted_only_as_interfaces(resources):
    # No AWS document says the services' checks accept subnet and security-group ARNs (docs/deploy-reference.md:
    # IAM): creation names every EC2 resource of the account and region, never "*" or another region.
    flink = next(n for n in of_type(resources, "AWS::IAM::Role") if n.startswith("StreamingAggregationRole"))
    here = f"arn:aws:ec2:{aws_calls.REGION}:{aws_calls.ACCOUNT}"
    for role in [flink, *trigger_roles(resources)]:
        granted = actions_of(resources, role)
        assert granted["ec2:CreateNetworkInterface"] == [f"{here}:*/*"]
        assert granted["ec2:DeleteNetworkInterface"] == [f"{here}:network-interface/*"]


def test_kms_grants_are_only_for_aws_resources(resources):
    statements = [s for role in of_type(resources, "AWS::IAM::Role")
                  for s in aws_calls.role_statements(resources, role)
                  if "kms:CreateGrant" in aws_calls.as_list(s["Action"])]
    assert statements and all(s["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}} for s in statements)


def test_the_nightly_schedule_targets_the_api_in_the_stacks_partition(resources):
    [(_, schedule)] = of_type(resources, "AWS::Scheduler::Schedule").items()
    target = schedule["Properties"]["Target"]["Arn"]
    assert "arn:aws:" not in json.dumps(target) and {"Ref": "AWS::Partition"} in target["Fn::Join"][1]
    assert aws_calls.evaluate(target, resources) == "arn:aws:scheduler:::aws-sdk:sagemaker:createProcessingJob"


def test_a_region_without_the_images_is_refused_before_anything_is_created(template_json):
    # Given the template's rules / Then one asserts the stack's region is among those with both images
    rule = template_json["Rules"]["SupportedRegion"]  # (CDK adds its own bootstrap-version rule)
    [assertion] = rule["Assertions"]
    regions, region = assertion["Assert"]["Fn::Contains"]
    assert region == {"Ref": "AWS::Region"} and regions == supported_regions() and "us-east-1" in regions
    assert "deploy to one of: " in assertion["AssertDescription"]


def test_synthesis_for_a_region_without_images_is_one_line_naming_the_supported_ones(artifacts, tmp_path, monkeypatch):
    monkeypatch.setenv("CDK_DEFAULT_REGION", "xx-nowhere-1")
    result = run_app_here({**CONTEXT, **artifacts}, tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: region xx-nowhere-1 has no SageMaker image") and "us-east-1" in line


def test_the_model_reads_a_tar_gz_copy_of_the_artifact_with_network_isolation(resources):
    [(model_id, model)] = of_type(resources, "AWS::SageMaker::Model").items()
    props = model["Properties"]
    assert props["EnableNetworkIsolation"] is True
    # ModelDataUrl is the copy's URL, and the copy's key ends in .tar.gz (the CDK asset's ends in .gz only).
    copy_id, attribute = props["PrimaryContainer"]["ModelDataUrl"]["Fn::GetAtt"]
    copy = resources[copy_id]
    assert copy["Type"] == "Custom::CopiedObject" and attribute == "Url"
    key = copy["Properties"]["Key"]
    assert key.startswith("models/") and key.endswith("/model.tar.gz")
    assert aws_calls.evaluate(copy["Properties"]["SourceKey"], resources).endswith(".gz")
    # The model's role may read exactly that copy.
    role = props["ExecutionRoleArn"]["Fn::GetAtt"][0]
    assert actions_of(resources, role)["s3:GetObject"] == [f"arn:aws:s3:::*/{key}"]


def test_eventbridge_may_publish_to_the_alarm_topic_for_the_nightly_rule_only(resources):
    [(_, policy)] = of_type(resources, "AWS::SNS::TopicPolicy").items()
    by_service = {s["Principal"]["Service"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]
                  if s["Effect"] == "Allow"}
    [rule_id] = of_type(resources, "AWS::Events::Rule")
    assert by_service["events.amazonaws.com"]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}
    assert "aws:SourceAccount" in by_service["cloudwatch.amazonaws.com"]["Condition"]["StringEquals"]


def test_msk_clients_back_off_between_reconnects():
    from tests.support.flink_job import flink_main

    iam = flink_main().SECURITY_OPTIONS["iam"]
    assert iam["properties.reconnect.backoff.ms"] == str(c.MSK_RECONNECT_BACKOFF_MS) == "1000"
    assert int(iam["properties.reconnect.backoff.max.ms"]) == c.MSK_RECONNECT_BACKOFF_MAX_MS > c.MSK_RECONNECT_BACKOFF_MS


# --- Security posture (docs/deploy-reference.md "Security") -------------------------------------------------------------

def stack_key(resources: dict) -> str:
    [key] = of_type(resources, "AWS::KMS::Key")
    return key


def test_every_log_group_is_encrypted_with_the_stacks_key_which_logs_may_use_for_its_groups_only(resources):
    key = stack_key(resources)
    groups = of_type(resources, "AWS::Logs::LogGroup")
    assert len(groups) >= 8
    assert all(g["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key, "Arn"]} for g in groups.values())
    statements = resources[key]["Properties"]["KeyPolicy"]["Statement"]
    [logs] = [s for s in statements if "logs." in json.dumps(s.get("Principal", {}))]
    context = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert aws_calls.evaluate(context, resources) == "arn:aws:logs:us-east-1:123456789012:log-group:*"
    assert aws_calls.evaluate(logs["Principal"]["Service"], resources) == "logs.us-east-1.amazonaws.com"


def test_every_function_reserves_concurrency_and_encrypts_its_environment_with_the_key(resources):
    key = stack_key(resources)
    functions = of_type(resources, "AWS::Lambda::Function")
    assert len(functions) == 5  # both handlers, the producer, the custom-resource handler and CDK's provider function
    for name, function in functions.items():
        props = function["Properties"]
        assert props["KmsKeyArn"] == {"Fn::GetAtt": [key, "Arn"]}, name
        # handlers: one invocation per partition of each trigger (the predict function has two), others 2
        triggers = 2 if name.startswith("HandlersPredict") else 1
        expected = CONTEXT["topicPartitions"] * triggers if name.startswith("Handlers") else 2
        assert props["ReservedConcurrentExecutions"] == expected, name
        # Lambda decrypts the environment as the function's role.
        role = props["Role"]["Fn::GetAtt"][0]
        assert any(r.endswith("key/*") for r in actions_of(resources, role)["kms:Decrypt"]), name


def test_the_handlers_run_where_the_layers_wheels_were_built_with_the_memory_chosen_for_each(resources):
    from fraudstream.packaging import lambda_assets
    from stacks.config import PipelineConfig

    handlers = {name: f["Properties"] for name, f in of_type(resources, "AWS::Lambda::Function").items()
                if name.startswith("Handlers")}
    memory = {("predict" if "Predict" in name else "producer" if "Produce" in name else "aggregate"): props["MemorySize"]
              for name, props in handlers.items()}
    assert memory == {"predict": 1769, "aggregate": 512, "producer": 256}  # one full vCPU for the CPU-bound predict
    for props in handlers.values():  # orjson in the layer is compiled for this runtime and architecture only
        assert props["Runtime"] == f"python{lambda_assets.PYTHON_VERSION}"
        assert props["Architectures"] == [lambda_assets.ARCHITECTURE]
    assert PipelineConfig.from_context({"predictMemoryMb": "1024"}.get).predict_memory_mb == 1024


def test_reserved_concurrency_can_be_turned_off_for_small_accounts():
    from stacks.config import PipelineConfig

    assert PipelineConfig.from_context({"reserveConcurrency": "false"}.get).reserved_concurrency(3) is None
    assert PipelineConfig.from_context({}.get).reserved_concurrency(3) == 3


def test_make_deploy_s_concurrency_check_reads_what_the_synthesized_stack_reserves(assembly, resources):
    from fraudstream.operate.preflight import reserved_by

    # One per topic partition (6 here) of each of a handler's triggers (predict has two); 2 for each function of
    # the custom resources.
    kinds = {"HandlersPredict": "predict", "HandlersAggregate": "aggregate", "HandlersProduce": "producer",
             "StackResourcesHandler": "custom resources", "StackResourcesProvider": "their provider"}
    reserved = {kind: f["Properties"]["ReservedConcurrentExecutions"]
                for name, f in of_type(resources, "AWS::Lambda::Function").items()
                for prefix, kind in kinds.items() if name.startswith(prefix)}
    assert reserved == {"predict": 12, "aggregate": 6, "producer": 6, "custom resources": 2, "their provider": 2}
    assert reserved_by(assembly) == {"FraudTest": 28}


def test_every_bucket_is_versioned_the_data_and_failed_records_buckets_log_access_and_every_bucket_is_emptied(
        resources):
    buckets = of_type(resources, "AWS::S3::Bucket")
    [log_bucket] = [n for n in buckets if n.startswith("AccessLogs")]
    logged = {n: b for n, b in buckets.items() if n != log_bucket}
    assert len(logged) == 2
    for name, bucket in logged.items():
        props = bucket["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, name
        assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": log_bucket}, name
        assert any("NoncurrentVersionExpiration" in rule for rule in props["LifecycleConfiguration"]["Rules"]), name
    # The log bucket is versioned too (checkov CKV_AWS_21), its old versions expiring as the others'
    log_props = buckets[log_bucket]["Properties"]
    assert log_props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert any("NoncurrentVersionExpiration" in rule for rule in log_props["LifecycleConfiguration"]["Rules"])
    # S3 delivers access logs only to an SSE-S3 bucket, under a bucket policy limited to our account.
    sse = buckets[log_bucket]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    [policy] = [p for p in of_type(resources, "AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == {"Ref": log_bucket}]
    deliveries = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
                  if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}]
    assert len(deliveries) == 2  # one per logged bucket, each limited to it (aws:SourceArn) and our account
    assert all("aws:SourceAccount" in json.dumps(d["Condition"]) and "aws:SourceArn" in json.dumps(d["Condition"])
               for d in deliveries)
    # Every bucket, the log bucket too, is emptied (all versions) before CloudFormation deletes it.
    emptied = {r["Properties"]["BucketName"]["Ref"] for r in of_type(resources, "Custom::EmptyBucketOnDelete").values()}
    assert emptied == set(buckets)
    role = role_of(resources, "stack_resources")
    assert {"s3:ListBucketVersions", "s3:DeleteObjectVersion"} <= set(actions_of(resources, role))


def depends_on(resources: dict, name: str) -> set[str]:
    return set(aws_calls.as_list(resources[name].get("DependsOn", [])))


def test_handlers_run_in_the_private_subnets_reaching_aws_through_interface_endpoints_only(resources):
    services = [json.dumps(r["Properties"]["ServiceName"]) for r in of_type(resources, "AWS::EC2::VPCEndpoint").values()]
    assert any(".sagemaker.runtime" in s for s in services) and any(".sagemaker.featurestore-runtime" in s
                                                                    for s in services)
    subnets = set(of_type(resources, "AWS::EC2::Subnet"))
    for name in ("HandlersPredictFromFeatures", "HandlersAggregateToFeatureStore", "HandlersProduceTransactions"):
        [function] = [f for n, f in of_type(resources, "AWS::Lambda::Function").items() if n.startswith(name)]
        vpc = function["Properties"]["VpcConfig"]
        assert {s["Ref"] for s in vpc["SubnetIds"]} == subnets
        # (the Kafka writers' group, to the brokers only: test_pipeline_stack.py; the producer has it alone)
        groups = [g["Fn::GetAtt"][0] for g in vpc["SecurityGroupIds"]]
        writers = [g for g in groups if g.startswith("HandlersKafkaWritersSecurityGroup")]
        assert len(writers) == (0 if "Aggregate" in name else 1), name
        if "Produce" in name:
            assert groups == writers
            continue
        [group] = [g for g in groups if g not in writers]
        egress = resources[group]["Properties"]["SecurityGroupEgress"]
        # HTTPS to the VPC's own range (the interface endpoints), nothing else: no internet egress exists.
        assert [(e["IpProtocol"], e["FromPort"], e["ToPort"]) for e in egress] == [("tcp", 443, 443)]
        assert "Fn::GetAtt" in egress[0]["CidrIp"] and egress[0]["CidrIp"]["Fn::GetAtt"][1] == "CidrBlock"
    assert not of_type(resources, "AWS::EC2::InternetGateway") and not of_type(resources, "AWS::EC2::NatGateway")


def test_destroy_waits_for_lambdas_interfaces_before_deleting_their_roles_groups_and_subnets(resources):
    # CloudFormation deletes in reverse dependency order: whatever depends on X goes before X.
    [(wait, released)] = of_type(resources, "Custom::NetworkInterfacesReleased").items()
    groups = {g["Fn::GetAtt"][0] for g in released["Properties"]["SecurityGroupIds"]}
    [msk] = of_type(resources, "AWS::MSK::Cluster").values()
    assert {g["Fn::GetAtt"][0] for g in msk["Properties"]["BrokerNodeGroupInfo"]["SecurityGroups"]} < groups
    # The triggers and the functions make the interfaces: they go first.
    makers = list(of_type(resources, "AWS::Lambda::EventSourceMapping")) + [
        n for n in of_type(resources, "AWS::Lambda::Function") if n.startswith("Handlers")]
    assert len(makers) == 6 and all(wait in depends_on(resources, m) for m in makers)  # 3 triggers, 3 functions
    # Lambda deletes them as the functions' roles, in the subnets: those go after the wait.
    roles = {role_of(resources, "predict"), role_of(resources, "aggregate")}
    policies = {n for n, p in of_type(resources, "AWS::IAM::Policy").items()
                if any(r.get("Ref") in roles for r in p["Properties"]["Roles"])}
    assert roles | policies | set(of_type(resources, "AWS::EC2::Subnet")) <= depends_on(resources, wait)


def kafka_names(resources: dict, role: str) -> dict[str, list[str]]:
    """Kafka data action -> the topic or group names (the ARNs' last part) ``role`` holds it on."""
    granted = actions_of(resources, role)
    return {action: sorted({arn.rsplit("/", 1)[-1] for arn in granted[action]}) for action in
            ("kafka-cluster:ReadData", "kafka-cluster:WriteData", "kafka-cluster:AlterGroup") if action in granted}


def test_each_role_reads_and_writes_exactly_its_topics_as_its_own_consumer_groups(resources):
    from stacks.config import PipelineConfig

    config = PipelineConfig()  # the test context keeps the default group names
    flink = next(n for n in of_type(resources, "AWS::IAM::Role") if n.startswith("StreamingAggregationRole"))
    # Flink reads the transactions and writes only its time ticks there, the features and the invalid reports.
    assert kafka_names(resources, flink) == {
        "kafka-cluster:ReadData": [c.TRANSACTIONS_TOPIC],
        "kafka-cluster:WriteData": sorted([c.TRANSACTIONS_TOPIC, c.TRANSACTION_FEATURES_TOPIC, c.INVALID_TRANSACTIONS_TOPIC]),
        "kafka-cluster:AlterGroup": ["fraudstream-features", "fraudstream-features-archive",
                                     "fraudstream-features-unparsed"]}
    # The predict function reads the features and the invalid reports, each trigger as its own group, and writes the
    # verdicts, which it reads back without a group to write each once (fraudstream/online/verdict_topic.py).
    assert kafka_names(resources, role_of(resources, "predict")) == {
        "kafka-cluster:ReadData": sorted([c.TRANSACTION_FEATURES_TOPIC, c.INVALID_TRANSACTIONS_TOPIC, c.VERDICTS_TOPIC]),
        "kafka-cluster:WriteData": [c.VERDICTS_TOPIC],
        "kafka-cluster:AlterGroup": sorted([config.predict_consumer_group, config.invalid_consumer_group])}
    assert config.invalid_consumer_group == "fraudstream-invalid-transactions"
    # The aggregate function reads the features only.
    assert kafka_names(resources, role_of(resources, "aggregate")) == {
        "kafka-cluster:ReadData": [c.TRANSACTION_FEATURES_TOPIC],
        "kafka-cluster:AlterGroup": [config.aggregate_consumer_group]}
    # The producer function writes the transactions topic and reads nothing.
    producer = next(n for n in of_type(resources, "AWS::IAM::Role") if n.startswith("HandlersProduceTransactionsRole"))
    assert kafka_names(resources, producer) == {"kafka-cluster:WriteData": [c.TRANSACTIONS_TOPIC]}
    # No other role touches Kafka data.
    others = set(of_type(resources, "AWS::IAM::Role")) - {flink, producer, *trigger_roles(resources)}
    assert others and all(kafka_names(resources, role) == {} for role in others)


def test_flink_may_use_its_own_consumer_groups_and_no_other(resources):
    flink = next(n for n in of_type(resources, "AWS::IAM::Role") if n.startswith("StreamingAggregationRole"))
    groups = actions_of(resources, flink)["kafka-cluster:AlterGroup"]
    assert sorted(g.rsplit("/", 1)[-1] for g in groups) == ["fraudstream-features", "fraudstream-features-archive",
                                                            "fraudstream-features-unparsed"]
