"""Custom resources of the stack, called by CDK's Provider framework (which talks to CloudFormation).

- Custom::MskBootstrapBrokers: the cluster's IAM bootstrap brokers (CloudFormation has no attribute).
- Custom::FlinkApplicationRun: start the Flink application and wait until it is RUNNING, so the
  deploy ends with the pipeline working; on delete, stop it and wait until it is READY, so the
  application is deleted cleanly.
- Custom::EmptyBucketOnDelete: delete a bucket's objects, every version of them, when the stack is
  deleted, so CloudFormation can delete the bucket. (CDK's autoDeleteObjects does this too, but its
  function's log group is created by Lambda on first write and would outlive the stack.)
- Custom::NetworkInterfacesReleased: on delete, wait until Lambda has released the network interfaces
  it made in the given security groups (the MSK trigger's pollers, the functions' own). Lambda deletes
  them after the trigger and function are gone, as their role; the stack deletes that role, the groups
  and the subnets only after this resource, so none of them is left DELETE_FAILED.
- Custom::CopiedObject: copy an object to a key we choose, and delete the copy with the resource. The
  model artifact needs it: a CDK file asset keeps only the last extension (`<hash>.gz`), while
  SageMaker's ModelDataUrl must name a `.tar.gz` archive.
- Custom::ManagedPrefixList: the id of an AWS-managed prefix list by name (the region's S3 ranges, which the
  security groups name as the only HTTPS destination besides the interface endpoints).
- Custom::BatchFeaturesLoaded: on create and update, write the cards' 1-week records (JSON lines the CDK app
  made from batch_aggregates.parquet, an asset in S3) to the batch feature group, so a fresh stack scores
  with real 1-week features; nothing on delete (the group goes with the stack).

Only boto3 from the Lambda runtime, and the root modules it imports (fraudstream/buckets.py,
fraudstream/feature_puts.py, fraudstream/contract.py), which the asset carries beside this file
(fraudstream/packaging/lambda_assets.py); the functions take their clients so tests stub them.
"""

from __future__ import annotations

import json
import logging
import time

import boto3
from botocore.config import Config

from fraudstream import contract as c
from fraudstream import flink_properties
from fraudstream.buckets import empty_bucket
from fraudstream.feature_puts import FeatureGroupWriter, put_concurrently

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

POLL_SECONDS = 10
SAFETY_MARGIN_MS = 30_000  # answer CloudFormation before Lambda's own timeout
LOAD_CONCURRENCY = 16  # PutRecord calls in flight while the 1-week group is loaded
# Throttled writes back off and retry (botocore's adaptive mode) rather than fail the deploy.
FEATURE_STORE_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10})
TRANSITIONAL = {"STARTING", "UPDATING", "AUTOSCALING", "STOPPING", "FORCE_STOPPING", "ROLLING_BACK", "MAINTENANCE",
                "RESTARTING"}


class ResourceError(RuntimeError):
    """The request cannot be completed: the Provider framework reports it to CloudFormation."""


def on_event(event: dict, context) -> dict:
    kind, request = event["ResourceType"], event["RequestType"]
    props = event["ResourceProperties"]
    LOG.info("%s %s %s", request, kind, event.get("LogicalResourceId"))
    if kind == "Custom::MskBootstrapBrokers":
        return bootstrap_brokers(boto3.client("kafka"), request, props["ClusterArn"])
    if kind == "Custom::EmptyBucketOnDelete":
        bucket = props["BucketName"]
        if request == "Delete":
            LOG.info("deleted %d objects from %s", empty_bucket(boto3.client("s3"), bucket), bucket)
        return {"PhysicalResourceId": bucket}
    if kind == "Custom::NetworkInterfacesReleased":
        groups = props["SecurityGroupIds"]
        if request == "Delete":
            deadline = time.monotonic() + (context.get_remaining_time_in_millis() - SAFETY_MARGIN_MS) / 1000
            await_interfaces_released(boto3.client("ec2"), groups, deadline)
        return {"PhysicalResourceId": ",".join(groups)}
    if kind == "Custom::CopiedObject":
        return copied_object(boto3.client("s3"), request, props)
    if kind == "Custom::ManagedPrefixList":
        if request == "Delete":
            return {"PhysicalResourceId": event["PhysicalResourceId"]}
        found = prefix_list_id(boto3.client("ec2"), props["PrefixListName"])
        return {"PhysicalResourceId": found, "Data": {"PrefixListId": found}}
    if kind == "Custom::BatchFeaturesLoaded":
        if request != "Delete":
            deadline = time.monotonic() + (context.get_remaining_time_in_millis() - SAFETY_MARGIN_MS) / 1000
            featurestore = boto3.client("sagemaker-featurestore-runtime", config=FEATURE_STORE_CONFIG)
            written = load_batch_features(boto3.client("s3"), featurestore, props, deadline)
            LOG.info("wrote %d 1-week records to %s", written, props["FeatureGroupName"])
        return {"PhysicalResourceId": f"{props['FeatureGroupName']}:{props['Key']}"}
    if kind == "Custom::FlinkApplicationRun":
        deadline = time.monotonic() + (context.get_remaining_time_in_millis() - SAFETY_MARGIN_MS) / 1000
        client = boto3.client("kinesisanalyticsv2")
        name = props["ApplicationName"]
        if request == "Delete":
            ensure_stopped(client, name, deadline)
        else:
            ensure_running(client, name, deadline)
        return {"PhysicalResourceId": name}
    raise ResourceError(f"unknown resource type {kind}")


def prefix_list_id(ec2, name: str) -> str:
    lists = ec2.describe_managed_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [name]}])["PrefixLists"]
    if len(lists) != 1:
        raise ResourceError(f"expected one managed prefix list named {name}, found {len(lists)}")
    return lists[0]["PrefixListId"]


def load_batch_features(s3, featurestore, props: dict, deadline: float, clock=time.monotonic) -> int:
    """Write every record of the object to the group, LOAD_CONCURRENCY at a time; the number written.

    ResourceError (the deploy stops, naming the way around) when a record still fails after its retries or
    the function's time runs out: a stack that says its 1-week group is loaded has every record in it."""
    group, expected = props["FeatureGroupName"], int(props["Records"])
    body = s3.get_object(Bucket=props["Bucket"], Key=props["Key"])["Body"]
    out_of_time = []

    def records():
        for line in body.iter_lines():
            if clock() >= deadline:
                out_of_time.append(True)
                return
            if line.strip():
                yield json.loads(line)

    result = put_concurrently(FeatureGroupWriter(featurestore), group, records(), LOAD_CONCURRENCY)
    if result.failed or out_of_time or result.written != expected:
        why = "the function ran out of time" if out_of_time else f"{len(result.failed)} failed"
        if result.failed:
            card, error = result.failed[0]
            why += f" (first: card {c.mask_card(card)}: {type(error).__name__}: {error})"
        raise ResourceError(f"{group}: {result.written} of {expected} 1-week records written, {why}. Deploy with "
                            f"-c batchFeatures=none and load them with `fraudstream load-batch-features FILE`")
    return result.written


def bootstrap_brokers(kafka, request: str, cluster_arn: str) -> dict:
    if request == "Delete":
        return {"PhysicalResourceId": cluster_arn}
    brokers = kafka.get_bootstrap_brokers(ClusterArn=cluster_arn).get("BootstrapBrokerStringSaslIam")
    if not brokers:
        raise ResourceError(f"{cluster_arn} has no IAM bootstrap brokers: is IAM client authentication enabled?")
    return {"PhysicalResourceId": cluster_arn, "Data": {"BootstrapBrokerStringSaslIam": brokers}}


def copied_object(s3, request: str, props: dict) -> dict:
    """Create/Update: copy Source{Bucket,Key} to Bucket/Key. Delete: remove that copy (CloudFormation sends
    Delete for the old copy after an update that changed the key, so old copies do not pile up)."""
    bucket, key = props["Bucket"], props["Key"]
    physical_id = f"s3://{bucket}/{key}"
    if request == "Delete":
        try:
            s3.delete_object(Bucket=bucket, Key=key)
        except s3.exceptions.NoSuchBucket:
            pass  # the stack's bucket went first: nothing left to remove
        return {"PhysicalResourceId": physical_id}
    source = {"Bucket": props["SourceBucket"], "Key": props["SourceKey"]}
    s3.copy(source, bucket, key)  # multipart above 8 MB, as CopyObject stops at 5 GB
    LOG.info("copied s3://%s/%s to %s", source["Bucket"], source["Key"], physical_id)
    return {"PhysicalResourceId": physical_id, "Data": {"Url": physical_id}}


def lambda_interfaces(ec2, groups: list[str]) -> list[str]:
    """Ids of the Lambda-managed network interfaces that carry any of ``groups``."""
    ids = []
    for page in ec2.get_paginator("describe_network_interfaces").paginate(
            Filters=[{"Name": "group-id", "Values": groups}, {"Name": "interface-type", "Values": ["lambda"]}]):
        ids += [interface["NetworkInterfaceId"] for interface in page["NetworkInterfaces"]]
    return ids


def await_interfaces_released(ec2, groups: list[str], deadline: float, sleep=time.sleep, clock=time.monotonic) -> None:
    """Return once Lambda has deleted its interfaces in ``groups``; fail (so a retried delete waits again) if not
    by ``deadline``: letting CloudFormation go on would delete the role Lambda deletes them with."""
    while True:
        remaining = lambda_interfaces(ec2, groups)
        if not remaining:
            LOG.info("no Lambda network interface left in %s", ", ".join(groups))
            return
        if clock() > deadline:
            raise ResourceError(f"Lambda still holds {len(remaining)} network interfaces in {', '.join(groups)} "
                                f"({', '.join(remaining[:3])}); run the delete again (make destroy) to keep waiting")
        LOG.info("waiting for Lambda to release %d network interfaces", len(remaining))
        sleep(POLL_SECONDS)


def status(client, name: str) -> str | None:
    try:
        return client.describe_application(ApplicationName=name)["ApplicationDetail"]["ApplicationStatus"]
    except client.exceptions.ResourceNotFoundException:
        return None


def ensure_running(client, name: str, deadline: float, sleep=time.sleep, clock=time.monotonic) -> None:
    """Start the application unless it runs already; return once it is RUNNING."""
    started = False
    while True:
        current = status(client, name)
        if current == "RUNNING":
            LOG.info("%s is RUNNING", name)
            return
        if current is None:
            raise ResourceError(f"Flink application {name} does not exist")
        if current == "READY":
            if started:
                raise ResourceError(f"Flink application {name} went back to READY while starting: see its log group "
                                    "(a job whose SQL changed cannot start from the old job's snapshot: "
                                    "docs/streaming.md, \"Changing the job's SQL\")")
            LOG.info("starting %s", name)
            client.start_application(ApplicationName=name, RunConfiguration=flink_properties.RUN_CONFIGURATION)
            started = True
        elif current not in TRANSITIONAL:
            raise ResourceError(f"Flink application {name} is {current}; it cannot be started")
        if clock() > deadline:
            raise ResourceError(f"Flink application {name} is still {current}: not RUNNING in time")
        sleep(POLL_SECONDS)


def ensure_stopped(client, name: str, deadline: float, sleep=time.sleep, clock=time.monotonic) -> None:
    """Stop the application if it runs; return once it is READY or gone. Forces the stop if time runs short."""
    stop_requested = forced = False
    while True:
        current = status(client, name)
        if current in (None, "READY", "DELETING"):
            LOG.info("%s is %s", name, current or "gone")
            return
        late = clock() > deadline - 120
        if current == "RUNNING" and not stop_requested:
            LOG.info("stopping %s", name)
            client.stop_application(ApplicationName=name, Force=False)
            stop_requested = True
        elif late and not forced and current in ("RUNNING", "STOPPING", "STARTING", "UPDATING", "AUTOSCALING"):
            LOG.info("forcing %s to stop", name)
            client.stop_application(ApplicationName=name, Force=True)
            forced = True
        if clock() > deadline:
            raise ResourceError(f"Flink application {name} is still {current}: not stopped in time")
        sleep(POLL_SECONDS)
