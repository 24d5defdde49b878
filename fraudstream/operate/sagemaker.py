"""Batch work at scale against a deployed stack: the feature job and the training job on SageMaker.

`fraudstream features --on sagemaker` and `fraudstream train --on sagemaker`. The requests come from
fraudstream/offline/sagemaker_jobs.py (the nightly schedule sends the same processing request); this
module uploads inputs, starts a job, follows it to its end and fetches what it made.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fraudstream import stack_outputs as out
from fraudstream.offline import model_artifact
from fraudstream.offline.sagemaker_jobs import (
    features_job_args,
    image_uri,
    job_name,
    processing_request,
    training_request,
)
from fraudstream.operate.deployed import Deployment, aws_errors

FINAL = {"Completed", "Failed", "Stopped"}
POLL_SECONDS = 30


def wait(describe: Callable[[], dict], status_key: str, label: str, sleep=time.sleep, log=print) -> dict:
    """Poll until the job ends, printing each status change; raises if it did not complete."""
    last = None
    while True:
        job = describe()
        status = job[status_key]
        secondary = job.get("SecondaryStatus") or ""
        if (status, secondary) != last:
            log(f"{label}: {status}{' / ' + secondary if secondary else ''}")
            last = (status, secondary)
        if status in FINAL:
            if status != "Completed":
                raise RuntimeError(f"{label} {status.lower()}: {job.get('FailureReason', 'no reason given')}")
            return job
        sleep(POLL_SECONDS)


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri}: expected an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def run_features(deployment: Deployment, transactions: str, feature_set: str, instance_count: int,
                 log: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep) -> str:
    """Upload local transactions if needed, run the feature job, wait; returns the line to print."""
    bucket = deployment.output(out.DATA_BUCKET)
    name = job_name("fraudstream-features")
    source = str(transactions)
    with aws_errors():
        s3 = deployment.client("s3")
        if not source.startswith("s3://"):
            path = Path(source)
            if not path.is_file():
                raise ValueError(f"{path}: no such file (give a local Parquet file or an s3:// URI)")
            key = f"uploads/{name}/{path.name}"
            log(f"uploading {path} to s3://{bucket}/{key}")
            s3.upload_file(str(path), bucket, key)
            source = f"s3://{bucket}/uploads/{name}/"
        output = f"s3://{bucket}/features/{name}"
        sm = deployment.client("sagemaker")
        request = processing_request(
            name, deployment.output(out.JOB_ROLE_ARN), image_uri("spark", deployment.region),
            deployment.output(out.JOB_ENTRY_URI), deployment.output(out.JOB_DEPS_URI),
            features_job_args(source, output, "parquet", feature_set,
                              deployment.output(out.BATCH_FEATURE_GROUP), deployment.region),
            instance_count=instance_count, volume_kms_key=deployment.output(out.DATA_KEY_ARN),
        )
        sm.create_processing_job(**request)
        log(f"processing job {name} started; its logs: /aws/sagemaker/ProcessingJobs")
        wait(lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus", name, sleep, log)
    return (f"features, 1-week aggregates and training CSV in {output}/ (train on it with "
            f"`fraudstream train {output} --on sagemaker --out DIR`); 1-week aggregates loaded into "
            f"{deployment.output(out.BATCH_FEATURE_GROUP)}")


def run_training(deployment: Deployment, features_uri: str, feature_set: str, rounds: int, seed: int, target: Path,
                 log: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep) -> str:
    """Train on a features job's CSV, then fetch the model into ``target`` with its feature set recorded
    inside, so the stack can deploy it (-c modelArtifact=...); returns the line to print."""
    bucket = deployment.output(out.DATA_BUCKET)
    features_uri = str(features_uri).rstrip("/")
    csv = {split: f"{features_uri}/csv/{feature_set}/{split}/" for split in ("train", "validation")}
    name = job_name("fraudstream-train")
    with aws_errors():
        s3 = deployment.client("s3")
        for uri in csv.values():
            data_bucket, prefix = split_s3(uri)
            if not s3.list_objects_v2(Bucket=data_bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"):
                raise ValueError(f"no training CSV under {uri}: run `fraudstream features --on sagemaker "
                                 f"--feature-set {feature_set}` and pass its output")
        sm = deployment.client("sagemaker")
        request = training_request(
            name, deployment.output(out.JOB_ROLE_ARN), image_uri("xgboost", deployment.region),
            csv["train"], csv["validation"], f"s3://{bucket}/models/",
            hyperparameters={"seed": seed}, rounds=rounds, volume_kms_key=deployment.output(out.DATA_KEY_ARN),
        )
        sm.create_training_job(**request)
        log(f"training job {name} started; its logs: /aws/sagemaker/TrainingJobs")
        job = wait(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", name, sleep, log)
        model_uri = job["ModelArtifacts"]["S3ModelArtifacts"]
        with tempfile.TemporaryDirectory() as tmp:
            downloaded = Path(tmp) / "model.tar.gz"
            s3.download_file(*split_s3(model_uri), str(downloaded))
            model_artifact.restamp(downloaded, feature_set, target)
    return (f"model from {model_uri} written to {target} (feature set {feature_set}); deploy it with "
            f"`npx cdk deploy -c modelArtifact={target}`")
