"""Loading 1-week aggregates into a deployed stack's batch feature group."""

from __future__ import annotations

import pytest
from moto import mock_aws

from fraudstream import cli
from fraudstream.online import aws
from tests.support.batch_aggregates import write_aggregates
from tests.support.fakes import THROTTLED, answer_with, http_response
from tests.support.stack import create_stack


@pytest.fixture
def aggregates_file(tmp_path):
    return write_aggregates(tmp_path / "batch_aggregates.parquet", 25)


@pytest.fixture
def feature_store_answers(monkeypatch):
    """Answers for PutRecord, injected below botocore's retry loop of the client the command builds."""
    script: dict = {"responses": [http_response(200, {})], "calls": None}
    real = aws.new_client

    def new_client(service, session=None, **kwargs):
        client = real(service, session=session, **kwargs)
        if service == "sagemaker-featurestore-runtime":
            script["calls"] = answer_with(client, "PutRecord", script["responses"])
        return client

    monkeypatch.setattr(aws, "new_client", new_client)
    return script


def test_command_writes_the_file_to_the_stacks_batch_group_retrying_throttles(aggregates_file, feature_store_answers, capsys):
    # Given a deployed stack, and a Feature Store that throttles the first call
    feature_store_answers["responses"][:] = [THROTTLED, http_response(200, {})]
    with mock_aws():
        create_stack("FraudTest")
        # When the aggregates are loaded
        code = cli.main(["load-batch-features", str(aggregates_file), "--stack", "FraudTest", "--region", "us-east-1",
                         "--concurrency", "1", "-q"])
    # Then every card is written once, after one retry, to the group named by the stack
    assert code == 0
    assert capsys.readouterr().out == "cc-agg-batch-fg: 25 records written, 0 failed\n"
    calls = feature_store_answers["calls"]
    assert len(calls) == 26 and all("/FeatureGroup/cc-agg-batch-fg" in r.url for r in calls)


def test_command_reports_failed_cards_and_exits_1(aggregates_file, feature_store_answers, capsys):
    invalid = http_response(400, {"__type": "ValidationError", "message": "bad record"})
    feature_store_answers["responses"][:] = [invalid] + [http_response(200, {})]
    with mock_aws():
        create_stack("FraudTest")
        code = cli.main(["load-batch-features", str(aggregates_file), "--stack", "FraudTest", "--region", "us-east-1",
                         "--concurrency", "1", "-q"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == "cc-agg-batch-fg: 24 records written, 1 failed\n"
    assert "bad record" in captured.err


@pytest.mark.parametrize("setup, message", [
    ("missing", "no such file"),
    ("unknown-stack", "stack Nope not found in us-east-1"),
])
def test_bad_input_is_one_error_line(setup, message, aggregates_file, tmp_path, capsys):
    with mock_aws():
        create_stack("FraudTest")
        path = tmp_path / "absent.parquet" if setup == "missing" else aggregates_file
        stack = "Nope" if setup == "unknown-stack" else "FraudTest"
        code = cli.main(["load-batch-features", str(path), "--stack", stack, "--region", "us-east-1", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and message in err[0] and err[0].startswith("fraudstream load-batch-features: error:")
