"""SageMaker job requests: the one definition of the feature job (Spark processing) and the training job.

The CLI sends them (`fraudstream features --on sagemaker`, `fraudstream train --on sagemaker`, through
fraudstream/operate/sagemaker.py) and the CDK app puts the processing request in the nightly schedule
(stacks/batch_jobs.py). Images come from the SageMaker SDK's own table, at the versions below.
"""

from __future__ import annotations

import posixpath
import time
import uuid

from fraudstream import contract as c
from fraudstream.offline.train_config import SEED_HYPERPARAMETERS, SEED_ROUNDS

SPARK_VERSION = "3.5"
SPARK_PYTHON = "py312"
XGBOOST_VERSION = "3.0-5"  # the container the endpoint serves with (stacks/model_endpoint.py)
CODE_DIR = "/opt/ml/processing/input/code"
PROCESSING_INSTANCE = "ml.m5.xlarge"
TRAINING_INSTANCE = "ml.m5.xlarge"


def image_uri(framework: str, region: str) -> str:
    """The SageMaker image of ``framework`` ("spark" processing or "xgboost") for ``region``."""
    import logging

    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)
    from sagemaker.core import image_uris

    if framework == "spark":
        # py312: the job's code needs Python 3.10+ (the 3.5 image also exists with Python 3.9).
        return image_uris.retrieve("spark", region, version=SPARK_VERSION, image_scope="processing",
                                   py_version=SPARK_PYTHON)
    return image_uris.retrieve("xgboost", region, version=XGBOOST_VERSION)


def job_name(prefix: str) -> str:
    """A unique job name (SageMaker names are at most 63 characters)."""
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"[:63]


def processing_request(name: str, role_arn: str, image: str, entry_uri: str, deps_uri: str, job_args: list[str],
                       instance_type: str = PROCESSING_INSTANCE, instance_count: int = 2,
                       max_runtime_s: int = 4 * 3600, volume_kms_key: str | None = None,
                       entry_name: str | None = None, deps_name: str | None = None) -> dict:
    """CreateProcessingJob: smspark-submit of training/processing_job.py with the fraudstream zip on --py-files.

    The job reads and writes S3 directly (its arguments carry s3:// URIs); only the code is a
    processing input. Works with CDK tokens in place of any string (the nightly schedule); then
    give the file names, which a token's text does not show.
    """
    entry_local = f"{CODE_DIR}/entry/{entry_name or posixpath.basename(entry_uri)}"
    deps_local = f"{CODE_DIR}/deps/{deps_name or posixpath.basename(deps_uri)}"
    resources = {"InstanceCount": instance_count, "InstanceType": instance_type, "VolumeSizeInGB": 30}
    if volume_kms_key:
        resources["VolumeKmsKeyId"] = volume_kms_key
    return {
        "ProcessingJobName": name,
        "RoleArn": role_arn,
        "AppSpecification": {
            "ImageUri": image,
            "ContainerEntrypoint": ["smspark-submit", "--py-files", deps_local, entry_local],
            "ContainerArguments": list(job_args),
        },
        "ProcessingInputs": [
            {"InputName": name_, "S3Input": {"S3Uri": uri, "LocalPath": f"{CODE_DIR}/{name_}", "S3DataType": "S3Prefix",
                                             "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}
            for name_, uri in (("entry", entry_uri), ("deps", deps_uri))
        ],
        "ProcessingResources": {"ClusterConfig": resources},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
    }


def features_job_args(transactions_uri: str, output_uri: str, fmt: str = "parquet", feature_set: str = c.DEFAULT_FEATURE_SET,
                      feature_group: str | None = None, region: str | None = None) -> list[str]:
    args = ["--transactions", transactions_uri, "--format", fmt, "--output", output_uri, "--feature-set", feature_set]
    if feature_group:
        args += ["--feature-group", feature_group]
    if region:
        args += ["--region", region]
    return args


def training_request(name: str, role_arn: str, image: str, train_uri: str, validation_uri: str, output_uri: str,
                     hyperparameters: dict | None = None, rounds: int = SEED_ROUNDS, instance_type: str = TRAINING_INSTANCE,
                     max_runtime_s: int = 2 * 3600, volume_kms_key: str | None = None) -> dict:
    """CreateTrainingJob: the built-in XGBoost container on the processing job's CSV (label first), seed hyperparameters."""
    params = {**SEED_HYPERPARAMETERS, **(hyperparameters or {}), "num_round": rounds}
    channel = lambda name_, uri: {  # noqa: E731
        "ChannelName": name_, "ContentType": "text/csv",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}},
    }
    resources = {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": 30}
    if volume_kms_key:
        resources["VolumeKmsKeyId"] = volume_kms_key
    return {
        "TrainingJobName": name,
        "RoleArn": role_arn,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "HyperParameters": {k: str(v) for k, v in params.items()},
        "InputDataConfig": [channel("train", train_uri), channel("validation", validation_uri)],
        "OutputDataConfig": {"S3OutputPath": output_uri, **({"KmsKeyId": volume_kms_key} if volume_kms_key else {})},
        "ResourceConfig": resources,
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
    }
