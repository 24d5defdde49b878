"""`features --on sagemaker` and `train --on sagemaker` against a deployed stack (moto for CloudFormation, S3, SageMaker)."""

from __future__ import annotations

import io
import tarfile

import boto3
import numpy as np
import pytest
import xgboost as xgb
from moto import mock_aws

from fraudstream import cli
from fraudstream import contract as c
from fraudstream import stack_outputs as out
from fraudstream.offline.model_artifact import feature_set_of, load_artifact
from fraudstream.operate import sagemaker
from tests.support.stack import OUTPUTS, create_stack

JOB_OUTPUTS = {
    **OUTPUTS,
    out.DATA_BUCKET: "fraudstream-data",
    out.DATA_KEY_ARN: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    out.JOB_ROLE_ARN: "arn:aws:iam::123456789012:role/fraudstream-jobs",
    out.JOB_ENTRY_URI: "s3://cdk-assets/0f3c.py",
    out.JOB_DEPS_URI: "s3://cdk-assets/9a1b.zip",
}


def test_a_failed_job_raises_with_its_reason_after_showing_each_status():
    answers = iter([{"ProcessingJobStatus": "InProgress"}, {"ProcessingJobStatus": "InProgress"},
                    {"ProcessingJobStatus": "Failed", "FailureReason": "AlgorithmError: no such file"}])
    shown = []
    with pytest.raises(RuntimeError, match="job failed: AlgorithmError: no such file"):
        sagemaker.wait(lambda: next(answers), "ProcessingJobStatus", "job", sleep=lambda s: None, log=shown.append)
    assert shown == ["job: InProgress", "job: Failed"]


@pytest.fixture
def stack(monkeypatch):
    monkeypatch.setattr(sagemaker, "POLL_SECONDS", 0)
    monkeypatch.setattr(sagemaker, "job_name", lambda prefix: f"{prefix}-test")
    with mock_aws():
        create_stack("FraudTest", JOB_OUTPUTS)
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="fraudstream-data")
        yield boto3.client("s3", region_name="us-east-1")


def test_features_on_sagemaker_uploads_the_file_and_runs_the_job(stack, tmp_path, capsys):
    # Given a local transactions file
    source = tmp_path / "transactions.parquet"
    source.write_bytes(b"PAR1 stand-in")
    # When the features run on SageMaker
    code = cli.main(["features", str(source), "--on", "sagemaker", "--stack", "FraudTest", "--region", "us-east-1", "-q"])
    # Then the file is in the data bucket and the job read it, wrote to the bucket and loaded the batch group
    assert code == 0
    assert stack.get_object(Bucket="fraudstream-data", Key="uploads/fraudstream-features-test/transactions.parquet")["Body"].read() == b"PAR1 stand-in"
    job = boto3.client("sagemaker", region_name="us-east-1").describe_processing_job(ProcessingJobName="fraudstream-features-test")
    arguments = job["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--transactions") + 1] == "s3://fraudstream-data/uploads/fraudstream-features-test/"
    assert arguments[arguments.index("--feature-group") + 1] == "cc-agg-batch-fg"
    assert "s3://fraudstream-data/features/fraudstream-features-test/" in capsys.readouterr().out


def container_model() -> bytes:
    """model.tar.gz as the XGBoost container writes it: one `xgboost-model`, no feature set recorded."""
    x = np.random.default_rng(1).random((30, len(c.feature_names("v2"))))
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, label=x[:, 0] > 0.5), 2)
    raw = booster.save_raw("ubj")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(bytes(raw)))
    return buffer.getvalue()


def test_train_on_sagemaker_fetches_the_model_with_its_feature_set_recorded(stack, tmp_path, capsys):
    # Given a features job's CSV, and the model the training job will leave where SageMaker puts it
    for split in ("train", "validation"):
        stack.put_object(Bucket="fraudstream-data", Key=f"features/job1/csv/v2/{split}/part-0.csv", Body=b"0,1,2\n")
    stack.put_object(Bucket="fraudstream-data", Key="models/fraudstream-train-test/output/model.tar.gz", Body=container_model())
    # When training runs on SageMaker
    code = cli.main(["train", "s3://fraudstream-data/features/job1", "--on", "sagemaker", "--out", str(tmp_path),
                     "--stack", "FraudTest", "--region", "us-east-1", "-q"])
    # Then the model is local, loads as the container loads it, and says which features it takes
    assert code == 0
    assert feature_set_of(load_artifact(tmp_path / "model.tar.gz")) == "v2"
    job = boto3.client("sagemaker", region_name="us-east-1").describe_training_job(TrainingJobName="fraudstream-train-test")
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://fraudstream-data/features/job1/csv/v2/train/"
    assert "modelArtifact=" in capsys.readouterr().out


def test_train_without_csv_for_the_feature_set_says_which_features_job_to_run(stack, tmp_path, capsys):
    code = cli.main(["train", "s3://fraudstream-data/features/none", "--on", "sagemaker", "--out", str(tmp_path),
                     "--feature-set", "v1", "--stack", "FraudTest", "--region", "us-east-1", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "--feature-set v1" in err[0] and "csv/v1/train/" in err[0]


def test_local_split_options_are_refused_on_sagemaker(stack, tmp_path, capsys):
    code = cli.main(["train", "s3://fraudstream-data/features/job1", "--on", "sagemaker", "--out", str(tmp_path),
                     "--holdout-start", "2022-05-01", "--stack", "FraudTest", "--region", "us-east-1", "-q"])
    assert code == 1 and "--holdout-start: not used with --on sagemaker" in capsys.readouterr().err


def test_s3_input_without_sagemaker_is_refused(capsys):
    assert cli.main(["features", "s3://bucket/tx/", "--out", "data"]) == 1
    assert "needs --on sagemaker" in capsys.readouterr().err
