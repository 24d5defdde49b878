"""Batch work at scale on SageMaker: the feature job (Spark processing) and the training job (built-in XGBoost).

The request builders here are the one definition of both jobs: the CLI sends them
(`fraudstream features --on sagemaker`, `fraudstream train --on sagemaker`) and the CDK app puts the
processing request in the nightly schedule. Images come from the SageMaker SDK's own table.
"""

from __future__ import annotations

import posixpath
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from fraudstream import contract as c
from fraudstream import stack_outputs as out
from fraudstream.train_config import SEED_HYPERPARAMETERS, SEED_ROUNDS

SPARK_VERSION = "3.5"
SPARK_PYTHON = "py312"
XGBOOST_VERSION = "3.0-5"  # the container the endpoint serves with (stacks/model_endpoint.py)
CODE_DIR = "/opt/ml/processing/input/code"
PROCESSING_INSTANCE = "ml.m5.xlarge"
TRAINING_INSTANCE = "ml.m5.xlarge"
FINAL = {"Completed", "Failed", "Stopped"}
POLL_SECONDS = 30


REPO = Path(__file__).resolve().parent.parent
ENTRY_SCRIPT = REPO / "training" / "processing_job.py"
# What the processing job imports from fraudstream: pure Python, no DuckDB, pyarrow or numpy.
JOB_MODULES = ("__init__.py", "contract.py", "batch_sql.py", "spark.py", "batch_loader.py", "stores.py",
               "stack_outputs.py")


def build_job_code(out_dir: str | Path) -> tuple[Path, Path]:
    """Write the job's entry script and fraudstream.zip (for --py-files) into out_dir; byte-identical
    for identical sources, so the CDK asset changes only when the code does."""
    import shutil
    import zipfile

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entry = out_dir / ENTRY_SCRIPT.name
    shutil.copyfile(ENTRY_SCRIPT, entry)
    deps = out_dir / "fraudstream.zip"
    package = REPO / "fraudstream"
    files = [package / name for name in JOB_MODULES] + sorted((package / "sql").glob("*.sql"))
    with zipfile.ZipFile(deps, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(f"fraudstream/{path.relative_to(package).as_posix()}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return entry, deps


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


# --- Commands -------------------------------------------------------------------------------------

def run_features(args, deployment, log=print, sleep=time.sleep) -> str:
    """`fraudstream features --on sagemaker`: upload local transactions if needed, run the job, wait."""
    from fraudstream.deployed import aws_errors

    bucket = deployment.output(out.DATA_BUCKET)
    name = job_name("fraudstream-features")
    source = str(args.transactions)
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
            features_job_args(source, output, "parquet", args.feature_set,
                              deployment.output(out.BATCH_FEATURE_GROUP), deployment.region),
            instance_count=args.instance_count, volume_kms_key=deployment.output(out.DATA_KEY_ARN),
        )
        sm.create_processing_job(**request)
        log(f"processing job {name} started; its logs: /aws/sagemaker/ProcessingJobs")
        wait(lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus", name, sleep, log)
    return (f"features, 1-week aggregates and training CSV in {output}/ (train on it with "
            f"`fraudstream train {output} --on sagemaker --out DIR`); 1-week aggregates loaded into "
            f"{deployment.output(out.BATCH_FEATURE_GROUP)}")


def run_training(args, deployment, log=print, sleep=time.sleep) -> str:
    """`fraudstream train --on sagemaker`: train on a features job's CSV, then fetch the model and
    record its feature set in it, so the stack can deploy it (-c modelArtifact=...)."""
    from fraudstream.deployed import aws_errors

    from fraudstream.train_config import TrainConfig

    defaults = TrainConfig()
    ignored = [f"--{name.replace('_', '-')}" for name in ("train_start", "holdout_start", "validation_fraction", "threshold")
               if getattr(args, name) != getattr(defaults, name)]
    if ignored:
        raise ValueError(f"{', '.join(ignored)}: not used with --on sagemaker (the features job fixes the split with "
                         f"its defaults; the stack's fraudThreshold sets the threshold)")
    bucket = deployment.output(out.DATA_BUCKET)
    features_uri = str(args.features).rstrip("/")
    csv = {split: f"{features_uri}/csv/{args.feature_set}/{split}/" for split in ("train", "validation")}
    name = job_name("fraudstream-train")
    with aws_errors():
        s3 = deployment.client("s3")
        for uri in csv.values():
            data_bucket, prefix = split_s3(uri)
            if not s3.list_objects_v2(Bucket=data_bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"):
                raise ValueError(f"no training CSV under {uri}: run `fraudstream features --on sagemaker "
                                 f"--feature-set {args.feature_set}` and pass its output")
        sm = deployment.client("sagemaker")
        request = training_request(
            name, deployment.output(out.JOB_ROLE_ARN), image_uri("xgboost", deployment.region),
            csv["train"], csv["validation"], f"s3://{bucket}/models/",
            hyperparameters={"seed": args.seed}, rounds=args.rounds, volume_kms_key=deployment.output(out.DATA_KEY_ARN),
        )
        sm.create_training_job(**request)
        log(f"training job {name} started; its logs: /aws/sagemaker/TrainingJobs")
        job = wait(lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", name, sleep, log)
        model_uri = job["ModelArtifacts"]["S3ModelArtifacts"]
        with tempfile.TemporaryDirectory() as tmp:
            downloaded = Path(tmp) / "model.tar.gz"
            s3.download_file(*split_s3(model_uri), str(downloaded))
            stamp_feature_set(downloaded, args.feature_set, Path(args.out))
    return (f"model from {model_uri} written to {args.out} (feature set {args.feature_set}); deploy it with "
            f"`npx cdk deploy -c modelArtifact={args.out}`")


def stamp_feature_set(archive: Path, feature_set: str, target: Path) -> None:
    """Re-save a container-trained model.tar.gz with the feature set recorded inside, as `fraudstream train` does."""
    from fraudstream.model import load_artifact, save_artifact

    with tarfile.open(archive, "r:gz") as tar:
        if not any(member.isfile() for member in tar.getmembers()):
            raise ValueError(f"{archive}: no model file inside")
    booster = load_artifact(archive)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_artifact(booster, feature_set, target)
