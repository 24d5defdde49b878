"""Custom resources of the stack, called by CDK's Provider framework (which talks to CloudFormation).

- Custom::MskBootstrapBrokers: the cluster's IAM bootstrap brokers (CloudFormation has no attribute).
- Custom::FlinkApplicationRun: start the Flink application and wait until it is RUNNING, so the
  deploy ends with the pipeline working; on delete, stop it and wait until it is READY, so the
  application is deleted cleanly.
- Custom::EmptyBucketOnDelete: delete a bucket's objects when the stack is deleted, so CloudFormation
  can delete the bucket. (CDK's autoDeleteObjects does this too, but its function's log group is
  created by Lambda on first write and would outlive the stack.)

Only boto3 from the Lambda runtime; the functions take their clients so tests stub them.
"""

from __future__ import annotations

import logging
import time

import boto3

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

POLL_SECONDS = 10
SAFETY_MARGIN_MS = 30_000  # answer CloudFormation before Lambda's own timeout
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


def bootstrap_brokers(kafka, request: str, cluster_arn: str) -> dict:
    if request == "Delete":
        return {"PhysicalResourceId": cluster_arn}
    brokers = kafka.get_bootstrap_brokers(ClusterArn=cluster_arn).get("BootstrapBrokerStringSaslIam")
    if not brokers:
        raise ResourceError(f"{cluster_arn} has no IAM bootstrap brokers: is IAM client authentication enabled?")
    return {"PhysicalResourceId": cluster_arn, "Data": {"BootstrapBrokerStringSaslIam": brokers}}


def empty_bucket(s3, bucket: str) -> int:
    """Delete every object of an unversioned bucket; returns how many. A missing bucket is already empty."""
    deleted = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                if answer.get("Errors"):
                    raise ResourceError(f"could not delete {len(answer['Errors'])} objects from {bucket}: "
                                        f"{answer['Errors'][0].get('Message')}")
                deleted += len(keys)
    except s3.exceptions.NoSuchBucket:
        return deleted
    return deleted


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
                raise ResourceError(f"Flink application {name} went back to READY while starting: see its log group")
            LOG.info("starting %s", name)
            client.start_application(
                ApplicationName=name,
                RunConfiguration={"FlinkRunConfiguration": {"AllowNonRestoredState": True}},
            )
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
