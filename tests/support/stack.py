"""A deployed stack as the operating commands see it: a CloudFormation stack in moto with our outputs."""

from __future__ import annotations

import json

import boto3

from fraudstream import stack_outputs as out

OUTPUTS = {
    out.BOOTSTRAP_BROKERS: "b-1.example.kafka.us-east-1.amazonaws.com:9098,b-2.example.kafka.us-east-1.amazonaws.com:9098",
    out.TRANSACTIONS_TOPIC: "cc-transactions",
    out.FEATURES_TOPIC: "cc-transaction-features",
    out.INVALID_TOPIC: "cc-invalid-transactions",
    out.PREDICT_LOG_GROUP: "/fraudtest/predict",
    out.STREAMING_FEATURE_GROUP: "cc-agg-fg",
    out.BATCH_FEATURE_GROUP: "cc-agg-batch-fg",
    out.ENDPOINT_NAME: "FraudTest-xgboost",
    out.REGION: "us-east-1",
}


def create_stack(name: str = "FraudTest", outputs: dict[str, str] | None = None, region: str = "us-east-1") -> None:
    """Inside mock_aws: a stack whose outputs are ``outputs`` (default: OUTPUTS)."""
    outputs = OUTPUTS if outputs is None else outputs
    template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {key: {"Value": value} for key, value in outputs.items()}}
    boto3.client("cloudformation", region_name=region).create_stack(StackName=name, TemplateBody=json.dumps(template))
