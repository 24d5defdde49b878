"""The stack's custom resources: MSK IAM brokers, and the Flink application started on deploy, stopped on delete.

Real boto3 clients behind botocore's Stubber: every request and response is checked against the AWS API model,
and nothing leaves the machine. Fake sleep and clock make the waiting loops instant and deterministic."""

import importlib.util
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from fraudstream.paths import LAMBDAS
from fraudstream import contract as c
from fraudstream import flink_properties
from fraudstream.feature_puts import encode
from fraudstream.packaging.batch_records import write_batch_records
from tests.support.batch_aggregates import aggregates
from tests.support.components import APP, batch_features_event, copy_event

pytestmark = pytest.mark.aws_component("stack_resources")  # tests/infrastructure/test_calls_granted.py
HANDLER = LAMBDAS / "stack_resources" / "handler.py"
CLUSTER = "arn:aws:kafka:us-east-1:123456789012:cluster/fraudstream/11111111-2222-3333-4444-555555555555-1"
BROKERS = "b-1.fraudstream.kafka.us-east-1.amazonaws.com:9098,b-2.fraudstream.kafka.us-east-1.amazonaws.com:9098"

_spec = importlib.util.spec_from_file_location("handler_stack_resources", HANDLER)
handler = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(handler)


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _stubbed(service):
    client = boto3.client(service)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()  # a missing call fails here, an extra one at the call


@pytest.fixture
def fake():
    return FakeTime()


@pytest.fixture
def flink():
    yield from _stubbed("kinesisanalyticsv2")


@pytest.fixture
def kafka():
    yield from _stubbed("kafka")


@pytest.fixture
def ec2():
    yield from _stubbed("ec2")


def expect_status(stubber, *statuses):
    for current in statuses:
        detail = {"ApplicationARN": f"arn:aws:kinesisanalytics:us-east-1:123456789012:application/{APP}",
                  "ApplicationName": APP, "RuntimeEnvironment": "FLINK-1_20", "ApplicationStatus": current,
                  "ApplicationVersionId": 3}
        stubber.add_response("describe_application", {"ApplicationDetail": detail}, {"ApplicationName": APP})


def expect_missing(stubber):
    stubber.add_client_error("describe_application", service_error_code="ResourceNotFoundException",
                             http_status_code=400, expected_params={"ApplicationName": APP})


def expect_start(stubber):
    # from its latest snapshot, all of it: a snapshot that does not map fails the start instead of being skipped
    run = {"ApplicationRestoreConfiguration": {"ApplicationRestoreType": "RESTORE_FROM_LATEST_SNAPSHOT"},
           "FlinkRunConfiguration": {"AllowNonRestoredState": False}}
    assert run == flink_properties.RUN_CONFIGURATION  # the stack's own RunConfiguration too
    stubber.add_response("start_application", {}, {"ApplicationName": APP, "RunConfiguration": run})


def expect_stop(stubber, force):
    stubber.add_response("stop_application", {}, {"ApplicationName": APP, "Force": force})


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_or_update_returns_the_iam_brokers_keyed_by_the_cluster_arn(kafka, request_type):
    # Given a cluster with IAM client authentication
    client, stubber = kafka
    stubber.add_response("get_bootstrap_brokers", {"BootstrapBrokerStringSaslIam": BROKERS}, {"ClusterArn": CLUSTER})
    # When CloudFormation creates or updates the resource
    result = handler.bootstrap_brokers(client, request_type, CLUSTER)
    # Then the brokers are the resource's data and the cluster ARN its physical id
    assert result == {"PhysicalResourceId": CLUSTER, "Data": {"BootstrapBrokerStringSaslIam": BROKERS}}


def test_delete_of_the_brokers_resource_calls_no_api(kafka):
    # Given no expected call (any call would fail the stub)
    client, _ = kafka
    # When the resource is deleted / Then it answers with its id alone
    assert handler.bootstrap_brokers(client, "Delete", CLUSTER) == {"PhysicalResourceId": CLUSTER}


def test_a_cluster_without_iam_brokers_fails_with_a_message_about_iam(kafka):
    # Given a cluster that only offers TLS brokers
    client, stubber = kafka
    stubber.add_response("get_bootstrap_brokers", {"BootstrapBrokerStringTls": "b-1:9094"}, {"ClusterArn": CLUSTER})
    # When / Then the deploy fails, saying what to check
    with pytest.raises(handler.ResourceError, match="IAM"):
        handler.bootstrap_brokers(client, "Create", CLUSTER)


def test_a_ready_application_is_started_once_and_awaited_until_running(flink, fake):
    # Given a READY application that starts, then runs
    client, stubber = flink
    expect_status(stubber, "READY")
    expect_start(stubber)
    expect_status(stubber, "STARTING", "RUNNING")
    # When it is ensured running
    handler.ensure_running(client, APP, deadline=600, sleep=fake.sleep, clock=fake.clock)
    # Then start_application went out once (checked by the stub) and it polled between statuses
    assert fake.sleeps == [handler.POLL_SECONDS] * 2


def test_an_application_already_running_is_not_started_again(flink, fake):
    # Given a RUNNING application
    client, stubber = flink
    expect_status(stubber, "RUNNING")
    # When it is ensured running / Then nothing but the describe call is made, without waiting
    handler.ensure_running(client, APP, deadline=600, sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == []


def test_an_application_that_falls_back_to_ready_after_start_fails_the_deploy(flink, fake):
    # Given an application whose job fails right after starting
    client, stubber = flink
    expect_status(stubber, "READY")
    expect_start(stubber)
    expect_status(stubber, "STARTING", "READY")
    # When / Then the deploy fails pointing at the logs, without starting it a second time
    with pytest.raises(handler.ResourceError, match="went back to READY"):
        handler.ensure_running(client, APP, deadline=600, sleep=fake.sleep, clock=fake.clock)


def test_an_application_still_starting_at_the_deadline_fails_the_deploy(flink, fake):
    # Given an application that stays STARTING, and 25 seconds to wait
    client, stubber = flink
    expect_status(stubber, "READY")
    expect_start(stubber)
    expect_status(stubber, "STARTING", "STARTING", "STARTING")
    # When / Then it gives up once the clock passes the deadline
    with pytest.raises(handler.ResourceError, match="not RUNNING in time"):
        handler.ensure_running(client, APP, deadline=25, sleep=fake.sleep, clock=fake.clock)
    assert fake.now == 30


def test_starting_a_missing_application_fails_the_deploy(flink, fake):
    # Given no such application
    client, stubber = flink
    expect_missing(stubber)
    # When / Then the deploy fails
    with pytest.raises(handler.ResourceError, match="does not exist"):
        handler.ensure_running(client, APP, deadline=600, sleep=fake.sleep, clock=fake.clock)


def test_a_running_application_is_stopped_gracefully_and_awaited_until_ready(flink, fake):
    # Given a RUNNING application with plenty of time left
    client, stubber = flink
    expect_status(stubber, "RUNNING")
    expect_stop(stubber, force=False)
    expect_status(stubber, "STOPPING", "READY")
    # When it is ensured stopped / Then one graceful stop went out and it returned once READY
    handler.ensure_stopped(client, APP, deadline=600, sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == [handler.POLL_SECONDS] * 2


def test_stopping_a_missing_application_succeeds(flink, fake):
    # Given no such application (already deleted)
    client, stubber = flink
    expect_missing(stubber)
    # When / Then the delete succeeds without any stop call
    handler.ensure_stopped(client, APP, deadline=600, sleep=fake.sleep, clock=fake.clock)


def test_a_slow_stop_is_forced_once_when_time_runs_short(flink, fake):
    # Given 135 seconds, so less than the 120-second reserve remains after 15 seconds
    client, stubber = flink
    expect_status(stubber, "RUNNING")
    expect_stop(stubber, force=False)
    expect_status(stubber, "STOPPING", "STOPPING")
    expect_stop(stubber, force=True)
    expect_status(stubber, "STOPPING", "READY")
    # When it is ensured stopped / Then the graceful stop is followed by exactly one forced stop
    handler.ensure_stopped(client, APP, deadline=135, sleep=fake.sleep, clock=fake.clock)


def test_an_application_not_stopped_by_the_deadline_fails_the_delete(flink, fake):
    # Given an application stuck STOPPING, already inside the reserve
    client, stubber = flink
    expect_status(stubber, "STOPPING")
    expect_stop(stubber, force=True)
    expect_status(stubber, "STOPPING", "STOPPING")
    # When / Then it forces the stop, then gives up past the deadline
    with pytest.raises(handler.ResourceError, match="not stopped in time"):
        handler.ensure_stopped(client, APP, deadline=15, sleep=fake.sleep, clock=fake.clock)


CONTEXT = SimpleNamespace(get_remaining_time_in_millis=lambda: 900_000)  # Lambda's context: 15 minutes left


def flink_event(request_type, resource_type="Custom::FlinkApplicationRun"):
    return {"RequestType": request_type, "ResourceType": resource_type, "LogicalResourceId": "FlinkRun",
            "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:p",
                                   "ApplicationName": APP}}


@pytest.fixture
def aws(monkeypatch, flink, kafka):
    """on_event builds its own clients: hand it the stubbed ones, and poll without waiting."""
    clients = {"kinesisanalyticsv2": flink[0], "kafka": kafka[0]}
    monkeypatch.setattr(handler, "boto3", SimpleNamespace(client=lambda service, **_: clients[service]))
    monkeypatch.setattr(handler, "POLL_SECONDS", 0)
    return SimpleNamespace(flink=flink[1], kafka=kafka[1])


def test_deleting_the_run_resource_stops_the_application(aws):
    # Given a RUNNING application
    expect_status(aws.flink, "RUNNING")
    expect_stop(aws.flink, force=False)
    expect_status(aws.flink, "READY")
    # When CloudFormation deletes the run resource / Then it is stopped and the id is the application name
    assert handler.on_event(flink_event("Delete"), CONTEXT) == {"PhysicalResourceId": APP}


def test_creating_the_run_resource_starts_the_application(aws):
    # Given a READY application
    expect_status(aws.flink, "READY")
    expect_start(aws.flink)
    expect_status(aws.flink, "RUNNING")
    # When CloudFormation creates the run resource / Then it is started and the id is the application name
    assert handler.on_event(flink_event("Create"), CONTEXT) == {"PhysicalResourceId": APP}


def test_the_brokers_resource_is_dispatched_to_kafka(aws):
    # Given a cluster with IAM brokers
    aws.kafka.add_response("get_bootstrap_brokers", {"BootstrapBrokerStringSaslIam": BROKERS}, {"ClusterArn": CLUSTER})
    event = {"RequestType": "Create", "ResourceType": "Custom::MskBootstrapBrokers",
             "ResourceProperties": {"ClusterArn": CLUSTER}}
    # When / Then
    assert handler.on_event(event, CONTEXT)["Data"] == {"BootstrapBrokerStringSaslIam": BROKERS}


def test_an_unknown_resource_type_fails(aws):
    # Given / When a resource type this handler does not serve / Then it fails, calling nothing
    with pytest.raises(handler.ResourceError, match="unknown resource type"):
        handler.on_event(flink_event("Create", "Custom::Other"), CONTEXT)


# Custom::EmptyBucketOnDelete: moto's S3 stands in for the failed-records bucket.

@pytest.fixture
def s3():
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="failed-records")
        yield client


def test_deleting_the_stack_empties_the_bucket_across_pages(s3):
    # Given more objects than one list page holds (1,000)
    for i in range(1_205):
        s3.put_object(Bucket="failed-records", Key=f"batch/{i}.json", Body=b"{}")
    # When the bucket's emptier is deleted
    deleted = handler.empty_bucket(s3, "failed-records")
    # Then every object is gone and counted, so CloudFormation can delete the bucket
    assert deleted == 1_205
    assert s3.list_objects_v2(Bucket="failed-records")["KeyCount"] == 0


def test_an_already_deleted_bucket_counts_as_empty(s3):
    assert handler.empty_bucket(s3, "no-such-bucket") == 0


def test_every_version_and_delete_marker_of_a_versioned_bucket_goes(s3):
    # Given a versioned bucket with two versions of one key and a deleted key (a delete marker)
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2"):
        s3.put_object(Bucket="versioned", Key="model.tar.gz", Body=body)
    s3.put_object(Bucket="versioned", Key="gone.json", Body=b"{}")
    s3.delete_object(Bucket="versioned", Key="gone.json")
    # When it is emptied
    deleted = handler.empty_bucket(s3, "versioned")
    # Then nothing is left, not even a delete marker, so CloudFormation can delete the bucket
    listing = s3.list_object_versions(Bucket="versioned")
    assert deleted == 4 and not listing.get("Versions") and not listing.get("DeleteMarkers")


def test_the_model_artifact_is_copied_under_a_tar_gz_key_and_the_copy_goes_with_the_resource(s3, monkeypatch):
    # Given the CDK asset, whose key ends in .gz only
    s3.create_bucket(Bucket="cdk-assets")
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="cdk-assets", Key="abc.gz", Body=b"model bytes")
    monkeypatch.setattr(handler, "boto3", SimpleNamespace(client=lambda service: s3))
    # When CloudFormation creates the copy
    answer = handler.on_event(copy_event("Create"), None)
    # Then the same bytes sit at the .tar.gz key ModelDataUrl names, which the resource returns
    assert answer == {"PhysicalResourceId": "s3://data/models/abc/model.tar.gz",
                      "Data": {"Url": "s3://data/models/abc/model.tar.gz"}}
    assert s3.get_object(Bucket="data", Key="models/abc/model.tar.gz")["Body"].read() == b"model bytes"
    # When it is deleted (stack deletion, or the old copy after an update) / Then the copy is gone
    handler.on_event(copy_event("Delete"), None)
    assert s3.list_objects_v2(Bucket="data")["KeyCount"] == 0


def test_deleting_a_copy_whose_bucket_is_gone_succeeds(s3, monkeypatch):
    monkeypatch.setattr(handler, "boto3", SimpleNamespace(client=lambda service: s3))
    event = {**copy_event("Delete"), "ResourceProperties": {**copy_event("Delete")["ResourceProperties"],
                                                            "Bucket": "no-such-bucket"}}
    assert handler.on_event(event, None)["PhysicalResourceId"] == "s3://no-such-bucket/models/abc/model.tar.gz"


def test_create_and_update_leave_the_bucket_alone(s3, monkeypatch):
    # Given an object in the bucket
    s3.put_object(Bucket="failed-records", Key="kept.json", Body=b"{}")
    monkeypatch.setattr(handler, "boto3", SimpleNamespace(client=lambda service: s3))
    for request in ("Create", "Update"):
        # When CloudFormation creates or updates the emptier
        answer = handler.on_event({"ResourceType": "Custom::EmptyBucketOnDelete", "RequestType": request,
                                   "ResourceProperties": {"BucketName": "failed-records"}}, None)
        # Then nothing is deleted
        assert answer == {"PhysicalResourceId": "failed-records"}
    assert s3.list_objects_v2(Bucket="failed-records")["KeyCount"] == 1


# Custom::NetworkInterfacesReleased: the wait for Lambda's own interfaces before the stack deletes their role.

GROUPS = ["sg-0123456789abcdef0", "sg-0fedcba9876543210"]
FILTERS = [{"Name": "group-id", "Values": GROUPS}, {"Name": "interface-type", "Values": ["lambda"]}]


def expect_interfaces(stubber, *counts):
    for count in counts:
        stubber.add_response("describe_network_interfaces",
                             {"NetworkInterfaces": [{"NetworkInterfaceId": f"eni-{i:017x}"} for i in range(count)]},
                             {"Filters": FILTERS})


def test_the_delete_waits_until_lambda_has_released_its_interfaces(ec2, fake):
    # Given two Lambda interfaces in the groups, one released at the next look, the other at the one after
    client, stubber = ec2
    expect_interfaces(stubber, 2, 1, 0)
    # When the resource is deleted / Then it returns once none is left, having waited twice
    handler.await_interfaces_released(client, GROUPS, deadline=600, sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == [handler.POLL_SECONDS] * 2


def test_interfaces_still_held_at_the_deadline_fail_the_delete_so_a_retry_waits_again(ec2, fake):
    client, stubber = ec2
    expect_interfaces(stubber, 1, 1)
    with pytest.raises(handler.ResourceError, match="still holds 1 network interfaces.*run the delete again"):
        handler.await_interfaces_released(client, GROUPS, deadline=5, sleep=fake.sleep, clock=fake.clock)


def test_creating_the_wait_calls_nothing_and_deleting_it_looks(ec2, monkeypatch):
    client, stubber = ec2
    monkeypatch.setattr(handler, "boto3", SimpleNamespace(client=lambda service, **_: client))
    event = {"ResourceType": "Custom::NetworkInterfacesReleased", "ResourceProperties": {"SecurityGroupIds": GROUPS}}
    assert handler.on_event({**event, "RequestType": "Create"}, CONTEXT) == {"PhysicalResourceId": ",".join(GROUPS)}
    expect_interfaces(stubber, 0)
    assert handler.on_event({**event, "RequestType": "Delete"}, CONTEXT) == {"PhysicalResourceId": ",".join(GROUPS)}


# Custom::BatchFeaturesLoaded: the records' asset in moto's S3, PutRecord answered by a Stubber.

class Context:
    def __init__(self, remaining_ms: int = 600_000):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def _records_asset(s3, cards: int, tmp_path) -> list[dict]:
    """The asset the CDK app writes (packaging/batch_records.py) for ``cards`` cards, in the assets bucket."""
    rows = aggregates(cards)
    records = write_batch_records(rows, tmp_path)
    s3.create_bucket(Bucket="cdk-assets")
    s3.put_object(Bucket="cdk-assets", Key="def.jsonl", Body=records.path.read_bytes())
    return rows


def _feature_store(rows: list[dict]):
    """A featurestore-runtime client expecting one PutRecord per row (in any order: writes run in parallel)."""
    client = boto3.client("sagemaker-featurestore-runtime")
    stubber = Stubber(client)
    for _ in rows:
        stubber.add_response("put_record", {})
    sent = []
    client.meta.events.register("provide-client-params.sagemaker-featurestore-runtime.PutRecord",
                                lambda params, **kw: sent.append(params))
    return client, stubber, sent


def test_deploying_loads_every_1_week_record_into_the_batch_group(s3, monkeypatch, tmp_path):
    # Given the CDK asset of three cards' records
    rows = _records_asset(s3, 3, tmp_path)
    client, stubber, sent = _feature_store(rows)
    clients = {"s3": s3, "sagemaker-featurestore-runtime": client}
    monkeypatch.setattr(handler, "boto3", SimpleNamespace(client=lambda service, **kwargs: clients[service]))
    # When CloudFormation creates the resource
    with stubber:
        answer = handler.on_event(batch_features_event("Create", records=3), Context())
        stubber.assert_no_pending_responses()
    # Then each card's record is in the group, every value as the online store writes it
    assert answer == {"PhysicalResourceId": "cc-agg-batch-fg:def.jsonl"}
    written = {int(p["Record"][0]["ValueAsString"]): p["Record"] for p in sent}
    assert {p["FeatureGroupName"] for p in sent} == {"cc-agg-batch-fg"}
    for row in rows:
        assert written[row[c.CC_NUM]] == [{"FeatureName": k, "ValueAsString": encode(v)} for k, v in row.items()]


def test_deleting_the_loaded_records_calls_nothing(monkeypatch):
    monkeypatch.setattr(handler, "boto3", SimpleNamespace(client=lambda service, **kwargs: pytest.fail(service)))
    assert handler.on_event(batch_features_event("Delete", records=3), Context()) == {
        "PhysicalResourceId": "cc-agg-batch-fg:def.jsonl"}


def test_a_record_that_keeps_failing_stops_the_deploy_naming_the_way_around(s3, tmp_path):
    # Given a group that refuses one card's record
    _records_asset(s3, 3, tmp_path)
    client = boto3.client("sagemaker-featurestore-runtime")
    with Stubber(client) as stubber:
        stubber.add_response("put_record", {})
        stubber.add_client_error("put_record", "ValidationError", "bad record", http_status_code=400)
        stubber.add_response("put_record", {})
        # When the records are loaded / Then the deploy stops saying how many were written and what to do
        with pytest.raises(handler.ResourceError) as error:
            handler.load_batch_features(s3, client, batch_features_event("Create", 3)["ResourceProperties"],
                                        deadline=float("inf"))
    message = str(error.value)
    assert message.startswith("cc-agg-batch-fg: 2 of 3 1-week records written, 1 failed (first: card ")
    assert "ValidationError" in message and "-c batchFeatures=none" in message and "load-batch-features" in message


def test_running_out_of_time_stops_the_deploy_before_lambda_s_timeout(s3, tmp_path):
    # Given a clock that passes the deadline after the first record
    _records_asset(s3, 3, tmp_path)
    client = boto3.client("sagemaker-featurestore-runtime")
    ticks = iter([0.0, 100.0, 100.0, 100.0])
    with Stubber(client) as stubber:
        stubber.add_response("put_record", {})
        with pytest.raises(handler.ResourceError, match=r"1 of 3 1-week records written, the function ran out of time"):
            handler.load_batch_features(s3, client, batch_features_event("Create", 3)["ResourceProperties"],
                                        deadline=50.0, clock=lambda: next(ticks))


# Custom::ManagedPrefixList

def test_the_region_s_s3_prefix_list_is_found_by_name(ec2, monkeypatch):
    client, stubber = ec2
    name = "com.amazonaws.eu-west-1.s3"
    stubber.add_response("describe_managed_prefix_lists", {"PrefixLists": [{
        "PrefixListId": "pl-6da54004", "PrefixListName": name, "AddressFamily": "IPv4", "State": "create-complete"}]},
        {"Filters": [{"Name": "prefix-list-name", "Values": [name]}]})
    monkeypatch.setattr(handler, "boto3", SimpleNamespace(client=lambda service: client))
    event = {"ResourceType": "Custom::ManagedPrefixList", "RequestType": "Create",
             "ResourceProperties": {"PrefixListName": name}}
    assert handler.on_event(event, None) == {"PhysicalResourceId": "pl-6da54004", "Data": {"PrefixListId": "pl-6da54004"}}


def test_a_prefix_list_that_is_not_there_fails_the_deploy_naming_it(ec2):
    client, stubber = ec2
    stubber.add_response("describe_managed_prefix_lists", {"PrefixLists": []})
    with pytest.raises(handler.ResourceError, match="expected one managed prefix list named com.amazonaws.xx-1.s3, found 0"):
        handler.prefix_list_id(client, "com.amazonaws.xx-1.s3")
