"""`fraudstream logs`: the deployed predict function's verdicts, read back from CloudWatch Logs.

The predict Lambda logs one Powertools JSON line per transaction (online.Prediction.log_fields:
card masked, amount, score, verdict, features). This command reads the function's log group
(stack output PredictLogGroupName) over a time range with FilterLogEvents, following every page,
and prints those lines as a table or as JSON lines; every other line of the function (START/END/
REPORT, EMF metrics, "invalid record skipped" errors) is counted and skipped, as is a line that
looks like a prediction but cannot be read. --follow polls for new lines until Ctrl-C; --url
prints the CloudWatch console link to the same events instead of reading them.

The time range selects log events by their CloudWatch timestamp (when the function logged
them); the table's time column is the transaction's own event time (trans_ts) when it has one.

The logic is plain functions (time parsing, event -> PredictionRow, table and JSON formatting,
console URL, the follow loop with an injectable sleep); only read_events touches AWS.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO
from urllib.parse import quote

from fraudstream import contract as c
from fraudstream import stack_outputs as out

FRAUD, NOT_FRAUD = "FRAUD", "NOT FRAUD"  # online.Prediction.verdict
DEFAULT_SINCE = "15m"
DEFAULT_INTERVAL = 5.0
# --follow asks again from this long before the newest event seen (dropping the ones already shown by
# eventId): a line another Lambda instance logged a moment earlier can become searchable after it.
FOLLOW_OVERLAP_MS = 60_000
# CloudWatch JSON filter pattern of --fraud-only; moto ignores JSON patterns, so lines are also filtered here.
FRAUD_PATTERN = '{ $.verdict = "FRAUD" }'
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

HELP = "show the deployed predict function's verdicts from CloudWatch Logs"
DESCRIPTION = """\
Read the prediction lines of the deployed predict function from its CloudWatch log group (stack
output PredictLogGroupName) and print one row per transaction: time (UTC, the transaction's event
time), card (masked), amount, score, verdict, and the 10-minute count and average amount it was
scored with. Other lines of the function and unreadable lines are skipped and counted on stderr.

Time range: the last --since (default 15m), or --start to --end (ISO 8601; no offset means UTC;
--since with --end counts back from --end). Events are selected by when they were logged."""
EPILOG = """\
examples:
  fraudstream logs                                  last 15 minutes, as a table
  fraudstream logs --since 2h --fraud-only          FRAUD verdicts of the last two hours
  fraudstream logs --start 2026-11-28T10:00 --end 2026-11-28T11:00Z --json | jq .score
  fraudstream logs --follow --interval 2            keep printing new verdicts; Ctrl-C stops (exit 0)
  fraudstream logs --since 1h --url                 CloudWatch console link to the same events

exit status: 0 on success (also when --follow is stopped with Ctrl-C), 1 when the stack, its
outputs, the log group or the AWS credentials cannot be used (one line on stderr), 2 on bad options."""


# --- Time -----------------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '2h', '1d' -> timedelta (argparse type: a bad value is a usage error)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration like 90s, 15m, 2h or 1d, got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_time(text: str) -> datetime:
    """ISO 8601 date or date-time, with Z or an offset or none (UTC) -> aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time like 2026-11-28T10:00, 2026-11-28T10:00Z or 2026-11-28T11:00+01:00, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def time_range(since: timedelta, start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """[start, end]: --start (else --end or now minus --since) to --end (else now)."""
    end = end or now
    return (start or end - since), end


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds, CloudWatch's unit."""
    return int(moment.timestamp() * 1000)


def _utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)


# --- Log events -> prediction rows --------------------------------------------------------------


class SkippedLine(Exception):
    """A log event that is not shown."""


class NotAPrediction(SkippedLine):
    """Another line of the function: platform lines, EMF metrics, errors, other messages."""


class MalformedLine(SkippedLine):
    """A line that starts as JSON or carries a verdict but cannot be read as a prediction."""


@dataclass(frozen=True)
class PredictionRow:
    time: datetime  # the transaction's event time (trans_ts), else when it was logged
    card: str
    amount: float
    score: float
    verdict: str
    num_last_10m: int
    avg_amt_last_10m: float
    record: dict[str, Any]  # the line as logged, for --json
    event_id: str = ""


def _number(record: Mapping[str, Any], key: str) -> float:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MalformedLine(f"{key} is not a number: {value!r}")
    return value


def parse_event(event: Mapping[str, Any]) -> PredictionRow:
    """A FilterLogEvents event -> its prediction; NotAPrediction or MalformedLine otherwise."""
    message = str(event.get("message", "")).strip()
    if not message.startswith("{"):
        raise NotAPrediction("not JSON")
    try:
        record = json.loads(message)
    except ValueError:
        raise MalformedLine("invalid JSON") from None
    if not isinstance(record, dict):
        raise MalformedLine("not a JSON object")
    if "verdict" not in record:
        raise NotAPrediction("no verdict")
    verdict = record["verdict"]
    if verdict not in (FRAUD, NOT_FRAUD):
        raise MalformedLine(f"unknown verdict {verdict!r}")
    card, features = record.get("card"), record.get("features")
    if not isinstance(card, str) or not isinstance(features, dict):
        raise MalformedLine("no card or features")
    try:
        trans_ts = _number(record, c.TRANS_TS)
        moment = _utc(trans_ts)
    except (MalformedLine, OverflowError, OSError, ValueError):
        moment = _utc(_number(event, "timestamp") / 1000)
    return PredictionRow(
        time=moment,
        card=card,
        amount=_number(record, c.AMOUNT),
        score=_number(record, "score"),
        verdict=verdict,
        num_last_10m=int(_number(features, c.NUM_TRANS_LAST_10M)),
        avg_amt_last_10m=_number(features, c.AVG_AMT_LAST_10M),
        record=record,
        event_id=str(event.get("eventId", "")),
    )


# --- Output ---------------------------------------------------------------------------------------

# (header, width, align) of each table column
COLUMNS = (
    ("time (UTC)", 19, "<"),
    ("card", 19, "<"),
    ("amount", 10, ">"),
    ("score", 8, ">"),
    ("verdict", 9, "<"),
    ("num last 10m", 12, ">"),
    ("avg amt last 10m", 16, ">"),
)


def _line(cells: Iterable[str]) -> str:
    return "  ".join(f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, COLUMNS, strict=True)).rstrip()


def table_header() -> str:
    return _line(header for header, _, _ in COLUMNS)


def table_row(row: PredictionRow) -> str:
    """Fixed-width columns, so rows can be printed as they arrive (--follow) and still line up."""
    return _line((row.time.strftime(TIME_FORMAT), row.card, f"{row.amount:.2f}", f"{row.score:.6f}", row.verdict,
                  str(row.num_last_10m), f"{row.avg_amt_last_10m:.2f}"))


def json_line(row: PredictionRow) -> str:
    """The prediction line as the function logged it, one JSON object per line."""
    return json.dumps(row.record, ensure_ascii=False)


def filter_pattern(fraud_only: bool) -> str:
    """The CloudWatch filter pattern sent to FilterLogEvents and put in the console link."""
    return FRAUD_PATTERN if fraud_only else ""


def _console_escape(text: str) -> str:
    """The CloudWatch console's escaping inside its URL fragment: URL-encode everything, then % -> $25."""
    return quote(text, safe="").replace("%", "$25")


def console_url(region: str, group: str, start: datetime, end: datetime, pattern: str = "") -> str:
    """The CloudWatch console page of the log group's events in [start, end] matching ``pattern``.

    The console reads its query from the fragment, written with ?, = and & as $3F, $3D and $26.
    """
    fields = (("filterPattern", pattern), ("start", str(to_ms(start))), ("end", str(to_ms(end))))
    query = "$26".join(f"{key}$3D{_console_escape(value)}" for key, value in fields)
    return (f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#logsV2:log-groups/log-group/{_console_escape(group)}/log-events$3F{query}")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


@dataclass
class Printer:
    """Prints each prediction of the events it is shown, and counts what it skipped."""

    out: TextIO
    as_json: bool = False
    fraud_only: bool = False
    flush: bool = False
    shown: int = 0
    fraud: int = 0
    not_predictions: int = 0
    malformed: int = 0
    header_printed: bool = field(default=False, repr=False)

    def show(self, event: Mapping[str, Any]) -> None:
        try:
            row = parse_event(event)
        except NotAPrediction:
            self.not_predictions += 1
            return
        except MalformedLine:
            self.malformed += 1
            return
        if self.fraud_only and row.verdict != FRAUD:
            return
        if not self.as_json and not self.header_printed:
            print(table_header(), file=self.out)
            self.header_printed = True
        print(json_line(row) if self.as_json else table_row(row), file=self.out, flush=self.flush)
        self.shown += 1
        self.fraud += row.verdict == FRAUD

    def summary(self, group: str, start: datetime, end: datetime | None) -> str:
        until = f"to {end.strftime(TIME_FORMAT)}" if end else "until stopped"
        text = _count(self.shown, "FRAUD verdict" if self.fraud_only else "prediction")
        text += "" if self.fraud_only else f" ({self.fraud:,} FRAUD)"
        text += f" in {group} from {start.strftime(TIME_FORMAT)} {until} UTC"
        skipped = []
        if self.not_predictions:
            skipped.append(_count(self.not_predictions, "other log line"))
        if self.malformed:
            skipped.append(_count(self.malformed, "malformed line"))
        return text + (f"; skipped {' and '.join(skipped)}" if skipped else "")


# --- Reading CloudWatch Logs ----------------------------------------------------------------------


def read_events(client, group: str, start_ms: int, end_ms: int | None = None, pattern: str = "",
                page_size: int | None = None) -> Iterator[dict[str, Any]]:
    """Every event of ``group`` logged in [start_ms, end_ms] (end open when None), page after page.

    AWS failures become one DeploymentError line (deployed.aws_errors).
    """
    from botocore.exceptions import ClientError

    from fraudstream.deployed import DeploymentError, aws_errors

    request: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
    if end_ms is not None:
        request["endTime"] = end_ms
    if pattern:
        request["filterPattern"] = pattern
    pages = client.get_paginator("filter_log_events").paginate(
        **request, PaginationConfig={"PageSize": page_size} if page_size else {})
    with aws_errors():
        try:
            for page in pages:
                yield from page.get("events", [])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise DeploymentError(f"log group {group} not found: redeploy the stack (make deploy)") from None
            raise


def follow(fetch: Callable[[int], Iterable[Mapping[str, Any]]], show: Callable[[Mapping[str, Any]], None], start_ms: int,
           interval: float, sleep: Callable[[float], None] = time.sleep, max_polls: int | None = None,
           stop: Callable[[], bool] = lambda: False) -> int:
    """Poll ``fetch(since_ms)`` every ``interval`` seconds and ``show`` each event once (by eventId).

    Each poll asks from FOLLOW_OVERLAP_MS before the newest event seen, so late-arriving events are
    not missed. Runs until ``max_polls`` polls were made, ``stop()`` is true, or KeyboardInterrupt.
    Returns the number of polls.
    """
    seen: dict[str, int] = {}  # eventId -> timestamp, of the events the next poll can return again
    newest, polls = start_ms, 0
    while True:
        for event in fetch(max(start_ms, newest - FOLLOW_OVERLAP_MS)):
            if event["eventId"] in seen:
                continue
            seen[event["eventId"]] = event["timestamp"]
            newest = max(newest, event["timestamp"])
            show(event)
        cutoff = newest - FOLLOW_OVERLAP_MS
        seen = {event_id: ts for event_id, ts in seen.items() if ts >= cutoff}
        polls += 1
        if (max_polls is not None and polls >= max_polls) or stop():
            return polls
        sleep(interval)


# --- Command ----------------------------------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from fraudstream.deployed import add_stack_arguments

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    add_stack_arguments(parser)
    when = parser.add_argument_group("time range (UTC unless an offset is given)")
    first = when.add_mutually_exclusive_group()
    first.add_argument("--since", type=parse_duration, default=parse_duration(DEFAULT_SINCE), metavar="DURATION",
                       help=f"how far back from --end or now: 90s, 15m, 2h, 1d (default: {DEFAULT_SINCE})")
    first.add_argument("--start", type=parse_time, metavar="TIME",
                       help="first log time, ISO 8601: 2026-11-28T10:00, 2026-11-28T10:00Z, ...+01:00")
    when.add_argument("--end", type=parse_time, metavar="TIME", help="last log time, ISO 8601 (default: now)")
    what = parser.add_argument_group("output")
    what.add_argument("--fraud-only", action="store_true", help="only FRAUD verdicts")
    what.add_argument("--json", action="store_true",
                      help="one JSON object per prediction, as the function logged it (for jq and scripts)")
    what.add_argument("--url", action="store_true",
                      help="print the CloudWatch console link to the same log events instead of reading them")
    what.add_argument("--follow", "-f", action="store_true",
                      help="after the range, keep polling for new verdicts until Ctrl-C (exit 0)")
    what.add_argument("--interval", type=positive_seconds, default=DEFAULT_INTERVAL, metavar="SECONDS",
                      help=f"--follow: seconds between polls (default: {DEFAULT_INTERVAL:g})")
    parser.set_defaults(logs_parser=parser)


def _check(args: argparse.Namespace, start: datetime, end: datetime) -> None:
    """Combinations argparse cannot express: a usage error (exit 2), before anything touches AWS."""
    parser = getattr(args, "logs_parser", None)
    problems = [
        (args.follow and args.end is not None, "--follow reads up to now: it cannot be combined with --end"),
        (args.url and args.follow, "--url prints a link: it cannot be combined with --follow"),
        (args.url and args.json, "--url prints a link: it cannot be combined with --json"),
        (start >= end, f"the range is empty: start {start.strftime(TIME_FORMAT)} is not before end "
                       f"{end.strftime(TIME_FORMAT)} UTC"),
    ]
    for failed, message in problems:
        if failed:
            if parser is None:
                raise ValueError(message)
            parser.error(message)


def _silence_stdout() -> None:
    """After a closed pipe (`... | head`): stop Python from failing again when it flushes stdout at exit."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def run(args: argparse.Namespace, *, sleep: Callable[[float], None] = time.sleep, max_polls: int | None = None,
        now: datetime | None = None, page_size: int | None = None, stdout: TextIO | None = None,
        stderr: TextIO | None = None) -> int:
    """The command. Keyword arguments are for tests: injected sleep, poll limit, clock and page size."""
    from fraudstream import aws, deployed

    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    now = now or datetime.now(timezone.utc)
    start, end = time_range(args.since, args.start, args.end, now)
    _check(args, start, end)
    deployment = deployed.find(args.stack, args.region)
    group = deployment.output(out.PREDICT_LOG_GROUP)
    pattern = filter_pattern(args.fraud_only)
    if args.url:
        print(console_url(deployment.region, group, start, end, pattern), file=stdout)
        return 0
    client = aws.new_client("logs", session=deployment.session)
    printer = Printer(stdout, as_json=args.json, fraud_only=args.fraud_only, flush=args.follow)
    try:
        if args.follow:
            print(f"following {group} from {start.strftime(TIME_FORMAT)} UTC, every {args.interval:g} s "
                  "(Ctrl-C to stop)", file=stderr, flush=True)
            try:
                follow(lambda since: read_events(client, group, since, None, pattern, page_size), printer.show,
                       to_ms(start), args.interval, sleep, max_polls)
            except KeyboardInterrupt:
                pass  # the way to end --follow: a normal stop, exit 0
            print(printer.summary(group, start, None), file=stderr)
        else:
            for event in read_events(client, group, to_ms(start), to_ms(end), pattern, page_size):
                printer.show(event)
            print(printer.summary(group, start, end), file=stderr)
    except BrokenPipeError:
        _silence_stdout()
    return 0
