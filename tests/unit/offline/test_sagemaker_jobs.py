"""SageMaker job requests, checked against the SageMaker API model with Stubber."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from fraudstream.offline import sagemaker_jobs

ROLE = "arn:aws:iam::123456789012:role/fraudstream-jobs"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_processing_request_is_a_valid_create_processing_job_call():
    # Given the request the CLI and the nightly schedule send
    request = sagemaker_jobs.processing_request(
        "fraudstream-features-1", ROLE, sagemaker_jobs.image_uri("spark", "eu-west-1"), "s3://a/0f3c.py",
        "s3://a/9a1b.zip", sagemaker_jobs.features_job_args("s3://d/in/", "s3://d/out", "json", "v2", "cc-agg-batch-fg"),
        volume_kms_key=KEY)
    # When it is sent (botocore validates it against the SageMaker API model)
    client = boto3.client("sagemaker", region_name="eu-west-1")
    with Stubber(client) as stubber:
        stubber.add_response("create_processing_job", {"ProcessingJobArn": "arn:aws:sagemaker:eu-west-1:1:processing-job/x"},
                             expected_params=request)
        client.create_processing_job(**request)
    # Then it runs our entry with the fraudstream zip on the Spark 3.5 image
    assert request["AppSpecification"]["ContainerEntrypoint"] == [
        "smspark-submit", "--py-files", "/opt/ml/processing/input/code/deps/9a1b.zip",
        "/opt/ml/processing/input/code/entry/0f3c.py"]
    assert request["AppSpecification"]["ImageUri"].endswith("/sagemaker-spark-processing:3.5-cpu-py312")
    assert "--feature-group" in request["AppSpecification"]["ContainerArguments"]


def test_training_request_uses_the_endpoints_xgboost_and_the_seed_hyperparameters():
    request = sagemaker_jobs.training_request("fraudstream-train-1", ROLE, sagemaker_jobs.image_uri("xgboost", "us-east-1"),
                                              "s3://d/f/csv/v2/train/", "s3://d/f/csv/v2/validation/", "s3://d/models/")
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/x"},
                             expected_params=request)
        client.create_training_job(**request)
    assert request["AlgorithmSpecification"]["TrainingImage"].endswith("/sagemaker-xgboost:3.0-5")
    assert request["HyperParameters"] == {"objective": "binary:logistic", "max_depth": "5", "eta": "0.2", "gamma": "4",
                                          "min_child_weight": "6", "subsample": "0.7", "num_round": "100"}
    assert [ch["ContentType"] for ch in request["InputDataConfig"]] == ["text/csv", "text/csv"]
