"""Finding a deployed stack: its outputs, and one clear line for everything that can go wrong."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import NoCredentialsError
from botocore.stub import Stubber
from moto import mock_aws

from fraudstream import stack_outputs as out
from fraudstream.operate import deployed
from tests.support.stack import OUTPUTS, create_stack


@pytest.fixture
def aws():
    with mock_aws():
        yield


def test_outputs_of_a_deployed_stack_are_found_by_name(aws):
    create_stack("FraudTest")
    deployment = deployed.find("FraudTest", "us-east-1")
    assert deployment.output(out.BATCH_FEATURE_GROUP) == OUTPUTS[out.BATCH_FEATURE_GROUP]
    assert deployment.region == "us-east-1"


def test_unknown_stack_names_the_stack_region_and_fix(aws):
    with pytest.raises(deployed.DeploymentError) as error:
        deployed.find("NoSuchStack", "eu-west-1")
    assert str(error.value) == ("stack NoSuchStack not found in eu-west-1: deploy it (make deploy) "
                                "or pass --stack NAME / --region REGION")


def test_missing_output_names_the_output(aws):
    create_stack("Old", {out.TRANSACTIONS_TOPIC: "cc-transactions"})
    with pytest.raises(deployed.DeploymentError, match="stack Old has no output BatchFeatureGroupName"):
        deployed.find("Old", "us-east-1").output(out.BATCH_FEATURE_GROUP)


def _stubbed_session(error_code: str):
    session = boto3.session.Session(region_name="us-east-1")
    client = session.client("cloudformation")
    stubber = Stubber(client)
    stubber.add_client_error("describe_stacks", service_error_code=error_code, service_message="The security token included in the request is expired")
    stubber.activate()
    session.client = lambda service, **kwargs: client  # the one client find() asks for
    return session


def test_expired_credentials_are_one_line_that_says_so():
    with pytest.raises(deployed.DeploymentError) as error:
        deployed.find("FraudTest", session=_stubbed_session("ExpiredTokenException"))
    assert str(error.value) == "AWS credentials expired or invalid (ExpiredTokenException): refresh them and retry"


def test_no_credentials_and_no_region_say_how_to_fix_them(monkeypatch, tmp_path):
    assert "configure them" in deployed.explain(NoCredentialsError())
    # Given no region anywhere (environment or config file)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(deployed.DeploymentError, match=r"no AWS region: pass --region, or set AWS_REGION \(or AWS_DEFAULT_REGION"):
        deployed.find("FraudTest")


@pytest.mark.parametrize("environment, expected", [
    ({"AWS_REGION": "eu-west-1"}, "eu-west-1"),
    ({"AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1"),
    ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "ap-south-1"}, "eu-west-1"),  # the AWS CLI's precedence
])
def test_the_region_comes_from_aws_region_or_aws_default_region_as_in_the_aws_cli(monkeypatch, tmp_path, environment,
                                                                                  expected):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert deployed.session_for(None).region_name == expected
    assert deployed.session_for("us-west-2").region_name == "us-west-2"  # --region wins


def test_a_stack_still_deploying_is_refused(aws):
    create_stack("FraudTest")
    real = boto3.session.Session(region_name="us-east-1")
    client = real.client("cloudformation")
    answer = client.describe_stacks(StackName="FraudTest")
    answer["Stacks"][0]["StackStatus"] = "CREATE_IN_PROGRESS"
    client.describe_stacks = lambda **kwargs: answer
    real.client = lambda service, **kwargs: client
    with pytest.raises(deployed.DeploymentError, match="is CREATE_IN_PROGRESS: wait"):
        deployed.find("FraudTest", session=real)


def test_the_environment_of_the_credentials_is_account_and_region(aws):
    assert deployed.environment("eu-west-1") == "aws://123456789012/eu-west-1"  # moto's account
