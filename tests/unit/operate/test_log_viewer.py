"""`fraudstream logs`: the predict function's verdicts read back from CloudWatch Logs (moto)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from unittest.mock import patch

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto import mock_aws

from fraudstream import cli
from fraudstream import contract as c
from fraudstream import stack_outputs as out
from fraudstream.cli import args
from fraudstream.cli import operate as cli_operate
from fraudstream.contract import RecordRef
from fraudstream.local.workdir import RunRecord, WorkDir
from fraudstream.online.messages import parse_transaction_features
from fraudstream.online.verdict import Verdict
from fraudstream.operate import log_viewer, verdict_table
from tests.support.events import features_message
from tests.support.stack import OUTPUTS, create_stack

GROUP = OUTPUTS[out.PREDICT_LOG_GROUP]
STREAM = "2026/11/28/[$LATEST]0123456789abcdef"
THRESHOLD = 0.5


# --- Builders ---------------------------------------------------------------------------------------


def card(n: int) -> int:
    return 4111_1100_0000_0000 + n


def masked(n: int) -> str:
    return c.mask_card(card(n))


def prediction_line(n: int, logged: datetime, fraud: bool = False, score: float | None = None, amount: float = 12.0,
                    num_10m: int = 1, avg_10m: float = 12.0) -> str:
    """The JSON line the predict function logs for card ``n`` (Powertools keys + Verdict.log_fields)."""
    trans_ts = logged.timestamp() - 1.5
    tx = parse_transaction_features(RecordRef(c.TRANSACTION_FEATURES_TOPIC, 0, n),
                                    features_message(card(n), trans_ts, amount, offset=1000 + n, tid=f"t{n}"))
    features = {c.AMOUNT: amount, c.NUM_TRANS_LAST_10M: num_10m, c.AVG_AMT_LAST_10M: avg_10m, c.NUM_TRANS_LAST_1W: 20,
                c.AVG_AMT_LAST_1W: 40.0, c.SECS_SINCE_PREV_TX: 60.0}
    p = Verdict.of(tx, features, score if score is not None else (0.95 if fraud else 0.01), THRESHOLD)
    return json.dumps({"level": "INFO", "location": "handle_predict_event:148", "message": p.message(),
                       "timestamp": logged.strftime("%Y-%m-%d %H:%M:%S,000+0000"), "service": "fraudstream",
                       **p.log_fields()})


NOISE = [
    "START RequestId: 6f1c9a2e-0000-4000-8000-000000000000 Version: $LATEST",
    json.dumps({"_aws": {"Timestamp": 0, "CloudWatchMetrics": [{"Namespace": "FraudStream"}]}, "Transactions": 2}),
    json.dumps({"level": "ERROR", "message": "invalid record skipped", "topic": "cc-transactions", "partition": 0,
                "offset": 7, "reason": "amount is not a number"}),
    '{"level":"INFO","message":"Prediction: FRAUD (0.9',  # cut short: malformed
]


def put(*events: tuple[datetime, str]) -> None:
    """Log events (time, message) into the predict log group, as the function would."""
    logs = boto3.client("logs", region_name="us-east-1")
    batch = sorted(({"timestamp": log_viewer.to_ms(at), "message": message} for at, message in events),
                   key=lambda e: e["timestamp"])
    logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=batch)


@pytest.fixture
def stack():
    """A deployed stack in moto, with its predict log group and one log stream."""
    with mock_aws():
        create_stack("FraudTest")
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName=GROUP)
        logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
        yield


def run_logs(*options: str, **seams) -> int:
    """`fraudstream logs` with the command's test seams (sleep, max_polls, page_size)."""
    args = cli.build_parser().parse_args(["logs", "--stack", "FraudTest", "--region", "us-east-1", *options])
    return cli_operate.cmd_logs(args, **seams)


def table_rows(stdout: str) -> list[list[str]]:
    """The table's rows, cell by cell (columns are separated by two spaces or more)."""
    lines = stdout.splitlines()
    assert lines and lines[0].startswith("time (UTC)"), stdout
    return [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


class CallSpy:
    """Counts the AWS calls (through moto) and remembers their parameters."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.original = BaseClient._make_api_call

    def __call__(self, client, operation, params):
        self.calls.append((operation, params))
        return self.original(client, operation, params)

    def of(self, operation: str) -> list[dict]:
        return [params for name, params in self.calls if name == operation]


@pytest.fixture
def spy():
    calls = CallSpy()
    with patch.object(BaseClient, "_make_api_call", autospec=True, side_effect=calls):
        yield calls


@pytest.fixture
def now() -> datetime:
    """The time the test started, to the minute: the tests log relative to it (moto refuses events older than 14
    days) and hand it to the command as its clock where the range depends on it."""
    return datetime.now(timezone.utc).replace(second=0, microsecond=0)


# --- Reading a time range ---------------------------------------------------------------------------


def test_table_shows_each_prediction_logged_in_the_range_and_none_outside_it(stack, capsys, now):
    # Given predictions logged before, inside and after 10 minutes of an hour ago, and other lines inside
    start = now - timedelta(hours=1)
    put((start - timedelta(seconds=1), prediction_line(1, start - timedelta(seconds=1))),
        (start, prediction_line(2, start, fraud=True, score=0.912345, amount=7.5, num_10m=3, avg_10m=9.256)),
        (start + timedelta(minutes=4), prediction_line(3, start + timedelta(minutes=4))),
        *((start + timedelta(minutes=5), line) for line in NOISE),
        (start + timedelta(minutes=10), prediction_line(4, start + timedelta(minutes=10))),
        (start + timedelta(minutes=10, seconds=1), prediction_line(5, start + timedelta(minutes=10, seconds=1))))
    # When the range is asked for
    code = cli.main(["logs", "--stack", "FraudTest", "--start", iso(start), "--end", iso(start + timedelta(minutes=10))])
    # Then the predictions inside it (both ends included) are the rows, in log order, and nothing else
    captured = capsys.readouterr()
    assert code == 0
    rows = table_rows(captured.out)
    assert [row[1] for row in rows] == [masked(2), masked(3), masked(4)]
    # And a row carries the transaction's time (UTC), card, amount, score, verdict and 10-minute features
    trans_time = (start - timedelta(seconds=1.5)).strftime("%Y-%m-%d %H:%M:%S")
    assert rows[0] == [trans_time, masked(2), "7.50", "0.912345", "FRAUD", "3", "9.26"]
    assert rows[1][4] == "NOT FRAUD"
    # And the skipped lines are counted on stderr
    assert ("3 predictions (1 FRAUD) in /fraudtest/predict" in captured.err
            and "skipped 3 other log lines and 1 malformed line" in captured.err)


def test_default_range_is_the_last_15_minutes(stack, capsys, now):
    # Given one prediction logged 5 minutes ago and one 20 minutes ago
    put((now - timedelta(minutes=20), prediction_line(1, now - timedelta(minutes=20))),
        (now - timedelta(minutes=5), prediction_line(2, now - timedelta(minutes=5))))
    # When no range is given
    code = run_logs(now=now)
    # Then only the recent one is shown
    assert code == 0
    assert [row[1] for row in table_rows(capsys.readouterr().out)] == [masked(2)]


def test_since_counts_back_from_end(stack, capsys, now):
    # Given predictions 90, 30 and 10 minutes before a chosen end
    end = now - timedelta(hours=2)
    put(*((end - timedelta(minutes=m), prediction_line(m, end - timedelta(minutes=m))) for m in (90, 30, 10)))
    # When the last hour before that end is asked for
    assert cli.main(["logs", "--stack", "FraudTest", "--since", "1h", "--end", iso(end) + "Z"]) == 0
    # Then the two predictions of that hour are shown
    assert [row[1] for row in table_rows(capsys.readouterr().out)] == [masked(30), masked(10)]


def test_every_page_is_read(stack, spy, capsys, now):
    # Given 25 predictions, more than the pages of 4 events the viewer is made to ask for
    start = now - timedelta(minutes=30)
    put(*((start + timedelta(seconds=i), prediction_line(i, start + timedelta(seconds=i))) for i in range(25)))
    # When they are read
    code = run_logs("--since", "1h", page_size=4)
    # Then it took several FilterLogEvents calls, and every prediction is shown once
    assert code == 0
    assert len(spy.of("FilterLogEvents")) == 7
    assert all(params["limit"] == 4 for params in spy.of("FilterLogEvents"))
    assert [row[1] for row in table_rows(capsys.readouterr().out)] == [masked(i) for i in range(25)]


def test_fraud_only_shows_only_fraud_verdicts(stack, spy, capsys, now):
    # Given FRAUD and NOT FRAUD verdicts (moto ignores JSON filter patterns: all come back)
    start = now - timedelta(minutes=10)
    put(*((start + timedelta(seconds=i), prediction_line(i, start + timedelta(seconds=i), fraud=i % 3 == 0))
          for i in range(9)), (start + timedelta(seconds=20), NOISE[0]))
    # When only FRAUD is asked for
    code = run_logs("--fraud-only", now=now)
    # Then CloudWatch is asked for FRAUD lines only, and only those are shown
    captured = capsys.readouterr()
    assert code == 0
    assert [params["filterPattern"] for params in spy.of("FilterLogEvents")] == ['{ $.verdict = "FRAUD" }']
    rows = table_rows(captured.out)
    assert [(row[1], row[4]) for row in rows] == [(masked(0), "FRAUD"), (masked(3), "FRAUD"), (masked(6), "FRAUD")]
    assert "3 FRAUD verdicts in" in captured.err


def test_json_prints_one_parsable_object_per_prediction(stack, capsys, now):
    # Given two predictions among other lines
    start = now - timedelta(minutes=10)
    put((start, prediction_line(1, start, fraud=True, score=0.987654)), *((start, line) for line in NOISE),
        (start + timedelta(seconds=1), prediction_line(2, start + timedelta(seconds=1), score=0.123)))
    # When they are asked for as JSON
    code = run_logs("--json", now=now)
    # Then stdout is one JSON object per prediction, as logged, and nothing else
    captured = capsys.readouterr()
    assert code == 0
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [(r["card"], r["verdict"], r["score"]) for r in records] == [
        (masked(1), "FRAUD", 0.987654), (masked(2), "NOT FRAUD", 0.123)]
    assert records[0]["features"][c.NUM_TRANS_LAST_10M] == 1 and records[0]["offset"] == 1001
    # And the counts go to stderr, out of the pipe
    assert "2 predictions (1 FRAUD)" in captured.err


# --- Following ----------------------------------------------------------------------------------------


def test_follow_shows_events_logged_between_polls_once(stack, spy, capsys, now):
    # Given two predictions already logged, and a sleep that logs more between polls
    first = now - timedelta(minutes=3)
    put((first, prediction_line(1, first)), (first + timedelta(seconds=5), prediction_line(2, first + timedelta(seconds=5))))
    later = [
        # logged late, with the same millisecond as the newest one shown, and one a bit after
        [(first + timedelta(seconds=5), prediction_line(3, first + timedelta(seconds=5), fraud=True)),
         (first + timedelta(seconds=30), prediction_line(4, first + timedelta(seconds=30)))],
        [(first + timedelta(seconds=31), prediction_line(5, first + timedelta(seconds=31))),
         (first + timedelta(seconds=31), NOISE[1])],
    ]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        put(*later[len(slept) - 1])

    # When following for three polls
    code = run_logs("--follow", "--interval", "2", sleep=sleep, max_polls=3)
    # Then every prediction is shown exactly once, in the order it became visible
    captured = capsys.readouterr()
    assert code == 0 and slept == [2.0, 2.0]
    assert [row[1] for row in table_rows(captured.out)] == [masked(1), masked(2), masked(3), masked(4), masked(5)]
    # And each poll after the first asked from shortly before the newest event seen, with no end
    polls = spy.of("FilterLogEvents")
    assert len(polls) == 3 and all("endTime" not in params for params in polls)
    newest_after_first_poll = log_viewer.to_ms(first + timedelta(seconds=5))
    assert polls[1]["startTime"] == newest_after_first_poll - log_viewer.FOLLOW_OVERLAP_MS
    assert "5 predictions (1 FRAUD)" in captured.err and "skipped 1 other log line" in captured.err


def test_ctrl_c_ends_follow_normally(stack, capsys, now):
    # Given one prediction, and a user who presses Ctrl-C during the first wait
    moment = now - timedelta(minutes=1)
    put((moment, prediction_line(1, moment)))

    def sleep(_seconds):
        raise KeyboardInterrupt

    # When following
    code = run_logs("--follow", sleep=sleep)
    # Then the command ends with exit 0 after showing what it read, and says so on stderr
    captured = capsys.readouterr()
    assert code == 0
    assert [row[1] for row in table_rows(captured.out)] == [masked(1)]
    assert "(Ctrl-C to stop)" in captured.err
    assert "1 prediction (0 FRAUD)" in captured.err and "until stopped" in captured.err


def test_follow_loop_stops_when_asked():
    # Given a fetch that always returns the same two events
    events = [{"eventId": "a", "timestamp": 1_000}, {"eventId": "b", "timestamp": 2_000}]
    shown, polls = [], []
    # When following until a stop hook says so, on its third check
    count = log_viewer.follow(lambda since: polls.append(since) or events, shown.append, start_ms=0, interval=1,
                              sleep=lambda s: None, stop=lambda: len(polls) == 3)
    # Then it polled three times, from the start then from the newest event less the overlap, and showed each once
    assert count == 3 and polls == [0, 0, 0]  # 2_000 - 10_000 is before the start
    assert shown == events


# --- Console link -------------------------------------------------------------------------------------


@pytest.mark.parametrize("options, query", [
    ([], "$3FfilterPattern$3D$26start$3D1795860000000$26end$3D1795860900000"),
    (["--fraud-only"], "$3FfilterPattern$3D$257B$2520$2524.verdict$2520$253D$2520$2522FRAUD$2522$2520$257D"
                       "$26start$3D1795860000000$26end$3D1795860900000"),
])
def test_url_is_the_console_link_to_the_same_events(stack, spy, capsys, options, query):
    # Given the stack's predict log group /fraudtest/predict in us-east-1
    # When the link for 10:00 to 10:15 UTC on 2026-11-28 is asked for (the end given in +01:00)
    code = cli.main(["logs", "--stack", "FraudTest", "--start", "2026-11-28T10:00", "--end", "2026-11-28T11:15+01:00",
                     *options, "--url"])
    # Then it is the console's log-events page of that group, range and filter, in the console's own escaping
    assert code == 0
    assert capsys.readouterr().out.strip() == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#logsV2:log-groups/log-group/$252Ffraudtest$252Fpredict/log-events" + query)
    # And no log event was read
    assert spy.of("FilterLogEvents") == []


# --- Bad input ------------------------------------------------------------------------------------------


def error_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_unknown_stack_is_one_error_line(capsys):
    # Given no stack at all
    with mock_aws():
        # When its logs are asked for
        code = cli.main(["logs", "--stack", "NoSuchStack", "--region", "us-east-1"])
    # Then one line names the stack, the region and the fix
    assert code == 1
    assert error_lines(capsys) == ["fraudstream logs: error: stack NoSuchStack not found in us-east-1: deploy it "
                                   "(make deploy) or pass --stack NAME / --region REGION"]


def test_stack_without_the_log_group_output_names_it(capsys):
    # Given a stack deployed by an older version, without PredictLogGroupName
    with mock_aws():
        create_stack("Old", {out.TRANSACTIONS_TOPIC: "cc-transactions"})
        code = cli.main(["logs", "--stack", "Old"])
    # Then one line names the missing output
    assert code == 1
    assert error_lines(capsys) == ["fraudstream logs: error: stack Old has no output PredictLogGroupName: it was "
                                   "deployed by an older version; run `make deploy`"]


def test_missing_log_group_is_one_error_line(capsys):
    # Given a stack whose predict log group does not exist
    with mock_aws():
        create_stack("FraudTest")
        code = cli.main(["logs", "--stack", "FraudTest"])
    # Then one line names the group
    assert code == 1
    assert error_lines(capsys) == ["fraudstream logs: error: log group /fraudtest/predict not found: "
                                   "redeploy the stack (make deploy)"]


@pytest.mark.parametrize("operation", ["DescribeStacks", "FilterLogEvents"])
def test_expired_credentials_are_one_line_about_credentials(stack, capsys, operation):
    # Given credentials that AWS refuses as expired, at the stack lookup or at the log read
    original = BaseClient._make_api_call

    def expire(client, name, params):
        if name == operation:
            raise ClientError({"Error": {"Code": "ExpiredTokenException",
                                         "Message": "The security token included in the request is expired"}}, name)
        return original(client, name, params)

    with patch.object(BaseClient, "_make_api_call", autospec=True, side_effect=expire):
        # When the logs are asked for
        code = cli.main(["logs", "--stack", "FraudTest"])
    # Then one line says the credentials must be refreshed
    assert code == 1
    assert error_lines(capsys) == ["fraudstream logs: error: AWS credentials expired or invalid "
                                   "(ExpiredTokenException): refresh them and retry"]


@pytest.mark.parametrize("options, message", [
    (["--since", "15"], "argument --since: expected a positive duration like 90s, 15m, 2h or 1d, got '15'"),
    (["--since", "0m"], "argument --since"),
    (["--since", "-1h"], "argument --since"),
    (["--since", "1w"], "argument --since"),
    (["--start", "yesterday"], "argument --start: expected an ISO 8601 time"),
    (["--end", "2026-11-31T10:00"], "argument --end: expected an ISO 8601 time"),
    (["--since", "1h", "--start", "2026-11-28T10:00"], "argument --start: not allowed with argument --since"),
    (["--interval", "0"], "argument --interval: expected a positive number of seconds"),
    (["--start", "2026-11-28T10:00", "--end", "2026-11-28T09:00"], "the range is empty"),
    (["--follow", "--end", "2026-11-28T09:00"], "cannot be combined with --end"),
    (["--url", "--follow"], "cannot be combined with --follow"),
])
def test_bad_options_are_usage_errors(capsys, options, message):
    # Given options that make no sense (no AWS call is made: no mock is needed)
    # When the command is run
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["logs", *options])
    # Then argparse's usage error says which one, with exit status 2
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_explains_the_range_and_gives_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["logs", "--help"])
    text = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "PredictLogGroupName" in text and "--fraud-only" in text and "examples:" in text and "Ctrl-C" in text


# --- Plain functions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("90s", timedelta(seconds=90)), ("15m", timedelta(minutes=15)), ("2h", timedelta(hours=2)), ("1D", timedelta(days=1)),
])
def test_durations_take_s_m_h_d_suffixes(text, expected):
    assert args.duration(text) == expected


@pytest.mark.parametrize("text", ["2026-11-28T10:00", "2026-11-28T10:00Z", "2026-11-28T11:00+01:00",
                                  "2026-11-28 10:00:00+00:00"])
def test_times_without_an_offset_are_utc(text):
    assert args.moment(text) == datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("message, skipped", [
    ("REPORT RequestId: x Duration: 12.3 ms", verdict_table.NotAPrediction),
    ('{"level": "INFO", "message": "transactions processed"}', verdict_table.NotAPrediction),
    ('{"verdict": "FRAUD", "card": "411111******1111"', verdict_table.MalformedLine),
    ("[1, 2]", verdict_table.NotAPrediction),
    ('{"verdict": "MAYBE"}', verdict_table.MalformedLine),
    ('{"verdict": "FRAUD", "card": "4111", "amount": "12", "score": 0.9, "features": {}}', verdict_table.MalformedLine),
])
def test_lines_that_are_not_readable_predictions_are_told_apart(message, skipped):
    with pytest.raises(skipped):
        verdict_table.parse_event({"eventId": "1", "timestamp": 0, "message": message})


def test_a_prediction_without_trans_ts_takes_the_log_time(now):
    record = json.loads(prediction_line(1, now, fraud=True))
    del record[c.TRANS_TS]
    row = verdict_table.parse_event({"eventId": "9", "timestamp": log_viewer.to_ms(now), "message": json.dumps(record) + "\n"})
    assert (row.time, row.verdict.card, row.verdict.verdict, row.event_id) == (now, masked(1), "FRAUD", "9")


# --- A local run's verdict log (--local) -------------------------------------------------------------


def local_run(tmp_path, *lines: str):
    """A local run's work directory as fraudstream/local/pipeline.py leaves it: its run record and verdict log."""
    files = WorkDir(tmp_path)
    files.logs.mkdir()
    files.verdict_log.write_text("".join(line + "\n" for line in lines))
    files.write_run(RunRecord(model=tmp_path / "model.tar.gz", feature_set="v2", threshold=0.5, batch_aggregates=(),
                              archived=False, history=None))
    return tmp_path


def run_local_logs(workdir, *options: str, now: datetime, **seams) -> int:
    args = cli.build_parser().parse_args(["logs", "--local", str(workdir), *options])
    return cli_operate.cmd_logs(args, now=now, **seams)


def test_local_shows_the_whole_run_as_the_same_table_whatever_its_age(tmp_path, capsys, now):
    old = now - timedelta(days=30)  # older than the stack's default range: a local run is read whole
    workdir = local_run(tmp_path, prediction_line(1, old), prediction_line(2, old, fraud=True), NOISE[3])
    assert run_local_logs(workdir, now=now) == 0
    captured = capsys.readouterr()
    rows = table_rows(captured.out)
    assert [(row[1], row[4]) for row in rows] == [(masked(1), c.NOT_FRAUD), (masked(2), c.FRAUD)]
    assert captured.err.strip() == (f"2 predictions (1 FRAUD) in {workdir / 'logs' / 'verdicts.jsonl'}; "
                                    "skipped 1 malformed line")


def test_local_takes_the_same_filters_and_formats(tmp_path, capsys, now):
    workdir = local_run(tmp_path, prediction_line(1, now - timedelta(hours=2), fraud=True),
                        prediction_line(2, now - timedelta(minutes=5), fraud=True),
                        prediction_line(3, now - timedelta(minutes=4)))
    assert run_local_logs(workdir, "--since", "1h", "--fraud-only", "--json", now=now) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["card"] for record in shown] == [masked(2)]  # logged in the last hour, FRAUD


def test_local_follow_shows_lines_appended_between_polls_once(tmp_path, capsys, now):
    workdir = local_run(tmp_path, prediction_line(1, now - timedelta(minutes=1)))
    log = workdir / "logs" / "verdicts.jsonl"

    def sleep(_seconds):
        with open(log, "a") as file:
            file.write(prediction_line(len(log.read_text().splitlines()) + 1, now) + "\n")

    assert run_local_logs(workdir, "--follow", "--json", sleep=sleep, max_polls=3, now=now) == 0
    assert [json.loads(line)["card"] for line in capsys.readouterr().out.splitlines()] == [masked(1), masked(2), masked(3)]


def test_local_without_a_run_and_with_url_are_refused(tmp_path, capsys, now):
    assert cli.main(["logs", "--local", str(tmp_path)]) == 1
    assert "no run.json; not the work directory of a local run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_local_logs(local_run(tmp_path), "--url", now=now)
    assert "--url links to CloudWatch: it cannot be combined with --local" in capsys.readouterr().err
