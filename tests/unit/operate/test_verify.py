"""`fraudstream verify --stack`: a scenario sent through the producer function (botocore's Stubber), its verdicts
read back from the log group and the archive from S3 (moto), the outcome judged and the features checked.

The verdicts are the real predict logic's (fraudstream/online/predict.py) on Flink's message for each card's
first transaction, so the batch definition recomputed from the archive is exact unless a test corrupts it."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime, timezone

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from moto import mock_aws

from fraudstream import archive
from fraudstream import contract as c
from fraudstream import stack_outputs as out
from fraudstream.cli import build_parser
from fraudstream.cli import operate as cli_operate
from fraudstream.contract import RecordRef
from fraudstream.online import predict
from fraudstream.online.messages import parse_transaction_features
from fraudstream.online.settings import PredictSettings, StoreSettings
from fraudstream.online.verdict import Verdict
from fraudstream.operate import verify
from tests.support.doubles import ConstantScorer, MemoryStore
from tests.support.events import features_message
from tests.support.stack import create_stack

STACK, REGION = "FraudVerify", "us-east-1"
FUNCTION, GROUP, BUCKET = "FraudVerify-Produce", "/aws/lambda/FraudVerify-Predict", "fraudverify-data"
CARDS = [4000123412341234, 4000123412345678, 5500000000000004, 4111111111111111]


class Clock:
    """Real time at the start, then moved on only by sleep: waits take no time, deadlines still pass."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def aws():
    with mock_aws():
        create_stack(STACK, {out.PRODUCER_FUNCTION: FUNCTION, out.TRANSACTIONS_TOPIC: c.TRANSACTIONS_TOPIC,
                             out.PREDICT_LOG_GROUP: GROUP, out.DATA_BUCKET: BUCKET, out.REGION: REGION}, REGION)
        logs = boto3.client("logs", region_name=REGION)
        logs.create_log_group(logGroupName=GROUP)
        logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        function = boto3.client("lambda", region_name=REGION)
        with Stubber(function) as stubber:
            yield verify.Clients(function, logs, s3), stubber
            stubber.assert_no_pending_responses()


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "scenario.jsonl"
    path.write_text("".join(json.dumps({c.CC_NUM: card, c.AMOUNT: 10.5 + i}) + "\n" for i, card in enumerate(CARDS)))
    return path


def delivered(stubber, count: int) -> None:
    """The producer function's answer: line i at partition 0, offset i - 1."""
    body = json.dumps({"delivered": [{"line": i + 1, "partition": 0, "offset": i} for i in range(count)],
                       "failed": [], "refused": []}).encode()
    stubber.add_response("invoke", {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))},
                         {"FunctionName": FUNCTION, "InvocationType": "RequestResponse", "Payload": ANY})


def the_pipeline_ran(clients: verify.Clients, at: float, *, logged: int = len(CARDS), corrupt: bool = False) -> None:
    """What the stack leaves for the scenario's transactions (each its card's first): the predict function's verdict
    lines (the first ``logged``; ``corrupt``: the first with a wrong 10-minute count) and Flink's archive."""
    messages = [parse_transaction_features(RecordRef(c.TRANSACTION_FEATURES_TOPIC, 0, i),
                                           features_message(card, at, 10.5 + i, offset=i, count_10m=2 if corrupt and not i else 1))
                for i, card in enumerate(CARDS)]
    verdicts = predict.predict(messages, MemoryStore(), ConstantScorer(), PredictSettings(StoreSettings())).verdicts
    clients.logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=[
        {"timestamp": int(at * 1000), "message": json.dumps({"level": "INFO", "message": v.message(), **v.log_fields()})}
        for v in verdicts[:logged]])
    rows = [archive.ArchivedTransaction(card, 10.5 + i, at, c.TRANSACTIONS_TOPIC, 0, i) for i, card in enumerate(CARDS)]
    # and, from a week ago, another card's transaction: the archive reaches back a week, as a stack's does, so a
    # value that differs is a defect, not a value whose history is missing
    week_ago = archive.ArchivedTransaction(4000000000000002, 1.0, at - 7 * 86_400 + 3_600, c.TRANSACTIONS_TOPIC, 1, 0)
    for part, part_rows in (("a", rows), ("b", [week_ago])):
        day = datetime.fromtimestamp(part_rows[0].trans_ts, timezone.utc).date()
        clients.s3.put_object(Bucket=BUCKET, Key=f"{archive.S3_PREFIX}{archive.PARTITION_PREFIX}{day}/part-{part}-0",
                              Body="\n".join(json.dumps(row.__dict__) for row in part_rows).encode())


def run(clients, argv: list[str], clock: Clock, capsys) -> tuple[int, str, str]:
    args = build_parser().parse_args(["verify", "--stack", STACK, "--region", REGION, *argv])
    code = cli_operate.cmd_verify(args, clients=clients, sleep=clock.sleep, clock=clock)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_working_stack_passes_every_step(aws, scenario, capsys):
    clients, stubber = aws
    clock = Clock()
    delivered(stubber, len(CARDS))
    the_pipeline_ran(clients, clock.now)
    code, stdout, stderr = run(clients, ["--scenario", str(scenario)], clock, capsys)
    assert code == 0, stdout + stderr
    assert "4 of 4 transactions delivered to cc-transactions" in stdout
    assert stdout.count("Prediction: NOT FRAUD") == 4 and "every one of the 4 transactions got its verdict" in stdout
    assert "4 verdicts read, 4 compared" in stdout and "fraudstream verify: PASSED: stack FraudVerify" in stdout
    assert "verdicts back from /aws/lambda/FraudVerify-Predict: 4 of 4" in stderr  # the progress line


def test_a_transaction_without_a_verdict_fails_at_the_deadline_naming_it(aws, scenario, capsys):
    clients, stubber = aws
    clock = Clock()
    delivered(stubber, len(CARDS))
    the_pipeline_ran(clients, clock.now, logged=3)
    code, stdout, stderr = run(clients, ["--scenario", str(scenario), "--timeout", "60"], clock, capsys)
    assert code == 1
    assert "no verdict within 60 s for 1 of 4 transactions: line 4: card 411111******1111" in stdout
    assert "verdicts back from /aws/lambda/FraudVerify-Predict: 3 of 4" in stderr


def test_a_served_feature_that_differs_from_the_batch_definition_fails(aws, scenario, capsys):
    clients, stubber = aws
    clock = Clock()
    delivered(stubber, len(CARDS))
    the_pipeline_ran(clients, clock.now, corrupt=True)
    code, stdout, _ = run(clients, ["--scenario", str(scenario)], clock, capsys)
    assert code == 1
    unexplained = [line for line in stdout.splitlines() if line.startswith("unexplained:")]
    assert any(f"400012******1234 {c.NUM_TRANS_LAST_10M} online 2" in line for line in unexplained), unexplained
    assert "fraudstream verify: FAILED" in stdout


def test_the_seed_outcome_is_judged():
    # the AWS sample's scenario: three one-offs NOT FRAUD, then the attack flagged by its third, FRAUD from then on
    places = [RecordRef(c.TRANSACTIONS_TOPIC, 0, i) for i in range(13)]

    def verdicts(frauds):
        return {p: Verdict("411111******1111", 1.0, 0.9 if f else 0.1, c.FRAUD if f else c.NOT_FRAUD,
                                   {c.NUM_TRANS_LAST_10M: 1, c.AVG_AMT_LAST_10M: 1.0}) for p, f in zip(places, frauds)}

    out = io.StringIO()
    assert verify._judge(places, verdicts([False] * 5 + [True] * 8), True, out)
    assert not verify._judge(places, verdicts([False] * 6 + [True] * 7), True, out)  # flagged by its fourth only
    assert "expected outcome met" in out.getvalue() and "not met" in out.getvalue()


def test_help_says_what_it_checks_and_what_the_credentials_need(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["verify", "--help"])
    text = capsys.readouterr().out
    assert "producer function" in text and "log group" in text and "consistency" in text
    assert "lambda:InvokeFunction" in text
