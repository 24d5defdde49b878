"""`fraudstream logs`: the deployed predict function's verdicts, read back from CloudWatch Logs.

The predict Lambda logs one Powertools JSON line per transaction (fraudstream/online/verdict.py:
card masked, amount, score, verdict, features). This command reads the function's log group
(stack output PredictLogGroupName) over a time range with FilterLogEvents, following every page,
and prints those lines as a table or as JSON lines; every other line of the function (START/END/
REPORT, EMF metrics, "invalid record skipped" errors) is counted and skipped, as is a line that
looks like a prediction but cannot be read. --follow polls for new lines until Ctrl-C; --url
prints the CloudWatch console link to the same events instead of reading them.

The time range selects log events by their CloudWatch timestamp (when the function logged
them); the table's time column is the transaction's own event time (trans_ts) when it has one.

The logic is plain functions (the console URL, the follow loop with an injectable sleep); what a
line becomes on screen is fraudstream/operate/verdict_table.py, how a local run's log is read
fraudstream/local/verdict_log.py; only read_events touches AWS.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from botocore.exceptions import ClientError

from fraudstream import contract as c
from fraudstream import stack_outputs as out
from fraudstream.online import aws
from fraudstream.local.verdict_log import local_events
from fraudstream.operate.deployed import Deployment, DeploymentError, aws_errors
from fraudstream.operate.verdict_table import TIME_FORMAT, Printer

# --follow asks again from this long before the newest event seen (dropping the ones already shown by
# eventId): a line another Lambda instance logged a moment earlier can become searchable after it.
FOLLOW_OVERLAP_MS = 60_000
# CloudWatch JSON filter pattern of --fraud-only; moto ignores JSON patterns, so lines are also filtered here.
FRAUD_PATTERN = f'{{ $.verdict = "{c.FRAUD}" }}'


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds, CloudWatch's unit (rounded as every event time is: contract.event_ms)."""
    return c.event_ms(moment.timestamp())


# --- Output ---------------------------------------------------------------------------------------

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


# --- Reading CloudWatch Logs ----------------------------------------------------------------------


def read_events(client, group: str, start_ms: int, end_ms: int | None = None, pattern: str = "",
                page_size: int | None = None) -> Iterator[dict[str, Any]]:
    """Every event of ``group`` logged in [start_ms, end_ms] (end open when None), page after page.

    AWS failures become one DeploymentError line (deployed.aws_errors).
    """
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


def _silence_stdout() -> None:
    """After a closed pipe (`... | head`): stop Python from failing again when it flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def run(deployment: Deployment, start: datetime, end: datetime | None, *, fraud_only: bool = False,
        as_json: bool = False, url: bool = False, interval: float = 5.0, sleep: Callable[[float], None] = time.sleep,
        max_polls: int | None = None, page_size: int | None = None, stdout: TextIO | None = None,
        stderr: TextIO | None = None) -> int:
    """`fraudstream logs`: the verdicts logged in [start, end], or from start on until Ctrl-C when end is None
    (--follow). Keyword arguments after ``interval`` are for tests: injected sleep, poll limit, page size."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    group = deployment.output(out.PREDICT_LOG_GROUP)
    pattern = filter_pattern(fraud_only)
    if url:
        print(console_url(deployment.region, group, start, end, pattern), file=stdout)
        return 0
    client = aws.new_client("logs", session=deployment.session)
    return _show(lambda since, until: read_events(client, group, since, until, pattern, page_size), group, start, end,
                 fraud_only=fraud_only, as_json=as_json, interval=interval, sleep=sleep, max_polls=max_polls,
                 stdout=stdout, stderr=stderr)


def run_local(log: Path, start: datetime | None, end: datetime | None, *, follow_log: bool = False,
              fraud_only: bool = False, as_json: bool = False, interval: float = 5.0,
              sleep: Callable[[float], None] = time.sleep, max_polls: int | None = None, stdout: TextIO | None = None,
              stderr: TextIO | None = None) -> int:
    """`fraudstream logs --local`: the verdicts of a local run's log (fraudstream/local/pipeline.py writes it), all of
    them or those logged in [start, end]; with ``follow_log``, then the new ones until Ctrl-C."""
    fetch = lambda since, until: local_events(log, since, until)  # noqa: E731
    if follow_log:
        start = start or datetime.fromtimestamp(0, tz=timezone.utc)
    return _show(fetch, str(log), start, None if follow_log else end, fraud_only=fraud_only, as_json=as_json,
                 interval=interval, sleep=sleep, max_polls=max_polls, stdout=stdout or sys.stdout,
                 stderr=stderr or sys.stderr, whole=start is None and end is None)


def _show(fetch: Callable[[int | None, int | None], Iterable[Mapping[str, Any]]], group: str, start: datetime | None,
          end: datetime | None, *, fraud_only: bool, as_json: bool, interval: float, sleep: Callable[[float], None],
          max_polls: int | None, stdout: TextIO, stderr: TextIO, whole: bool = False) -> int:
    """Print the events of ``fetch(since_ms, until_ms)`` in [start, end], or from start on until Ctrl-C when end is
    None; ``whole``: every event, no range."""
    printer = Printer(stdout, as_json=as_json, fraud_only=fraud_only, flush=end is None and not whole)
    try:
        if whole:
            for event in fetch(None, None):
                printer.show(event)
            print(printer.summary(group, None, None), file=stderr)
        elif end is None:
            print(f"following {group} from {start.strftime(TIME_FORMAT)} UTC, every {interval:g} s "
                  "(Ctrl-C to stop)", file=stderr, flush=True)
            try:
                follow(lambda since: fetch(since, None), printer.show, to_ms(start), interval, sleep, max_polls)
            except KeyboardInterrupt:
                pass  # the way to end --follow: a normal stop, exit 0
            print(printer.summary(group, start, None), file=stderr)
        else:
            for event in fetch(to_ms(start), to_ms(end)):
                printer.show(event)
            print(printer.summary(group, start, end), file=stderr)
    except BrokenPipeError:
        _silence_stdout()
    return 0
