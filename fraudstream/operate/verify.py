"""`fraudstream verify --stack NAME`: does the deployed pipeline work, end to end?

It sends a scenario (the AWS sample's by default) through the stack's producer function, as `fraudstream
simulate` does, reads each transaction's verdict back from the predict function's log group (matched by the
place the function reported for it on the transactions topic), judges the outcome (the AWS sample's scenario:
one-offs NOT FRAUD, the attack flagged by its third transaction and FRAUD from then on; any other scenario:
a verdict for every transaction), waits until Flink's archive holds the transactions, and runs
`fraudstream consistency` over the verdicts' time range. Exit 0 only if every step holds.

The logic is plain functions over injected clients and clock; only `deployed` finds the stack.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

from fraudstream import stack_outputs as out
from fraudstream.contract import RecordRef
from fraudstream.local.scenario import seed_outcome
from fraudstream.online.sending import ScenarioLine
from fraudstream.online.verdict import UnreadableVerdict, Verdict
from fraudstream.operate import consistency, deployed, simulator
from fraudstream.operate.consistency.sources import stack_archive
from fraudstream.operate.log_viewer import read_events, to_ms

POLL_S = 5.0
CLOCK_MARGIN_S = 60  # the log group is read from this long before the first send (clocks differ a little)


@dataclass
class Clients:
    """The AWS clients verify uses: the producer function's (Lambda), the log group's and the archive's."""

    function: Any
    logs: Any
    s3: Any

    @classmethod
    def of(cls, deployment: deployed.Deployment) -> Clients:
        from fraudstream.online import aws

        return cls(simulator.function_client(deployment), aws.new_client("logs", session=deployment.session),
                   aws.new_client("s3", session=deployment.session))


def logged_verdicts(events) -> dict[RecordRef, Verdict]:
    """The verdicts among log events, by their transaction's place (the first line of each: a retried batch
    logs again)."""
    found: dict[RecordRef, Verdict] = {}
    for event in events:
        message = str(event.get("message", "")).strip()
        if '"verdict"' not in message:
            continue
        try:
            verdict = Verdict.from_log(json.loads(message))
        except (ValueError, UnreadableVerdict):
            continue
        found.setdefault(verdict.place(), verdict)
    return found


def wait_until(done: Callable[[], tuple[int, int]], what: str, deadline: float, *, clock: Callable[[], float],
               sleep: Callable[[float], None], progress: Callable[[str], None]) -> bool:
    """Poll ``done()`` -> (have, want) every POLL_S until have >= want or ``deadline``; a progress line per change."""
    shown = None
    while True:
        have, want = done()
        if (have, want) != shown:
            progress(f"{what}: {have} of {want}")
            shown = (have, want)
        if have >= want:
            return True
        if clock() >= deadline:
            return False
        sleep(POLL_S)


def verify(deployment: deployed.Deployment, lines: list[ScenarioLine], source: str, *, seed: bool,
           timeout_s: float, clients: Clients | None = None, out_stream: TextIO,
           progress: Callable[[str], None] = lambda _m: None, sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.time) -> int:
    """Send, read back, judge, check consistency; returns the exit code (0: every step holds)."""
    clients = clients or Clients.of(deployment)
    started = datetime.fromtimestamp(clock(), timezone.utc)
    topic = deployment.output(out.TRANSACTIONS_TOPIC)
    function = deployment.output(out.PRODUCER_FUNCTION)
    progress(f"sending {len(lines)} transactions from {source} through {function} (stack {deployment.stack})")
    with deployed.aws_errors():
        deliveries = simulator.send_through_function(clients.function, function, lines, sleep=sleep, log=progress)
    if simulator.report(deliveries, topic, out_stream=out_stream):
        return 1
    places = [RecordRef(topic, d.partition, d.offset) for d in deliveries]
    deadline = clock() + timeout_s
    with deployed.aws_errors():
        verdicts = _read_back(deployment, clients, places, started, deadline, clock=clock, sleep=sleep,
                              progress=progress)
        missing = [d for d, place in zip(deliveries, places, strict=True) if place not in verdicts]
        if missing:
            print(f"no verdict within {timeout_s:g} s for {len(missing)} of {len(places)} transactions: "
                  + ", ".join(simulator.line_text(d.line) for d in missing)
                  + f" (see the predict function's log group {deployment.output(out.PREDICT_LOG_GROUP)})", file=out_stream)
            return 1
        ok = _judge(places, verdicts, seed, out_stream)
        archived = _await_archive(deployment, clients, places, started, deadline, clock=clock, sleep=sleep,
                                  progress=progress)
        ended = datetime.fromtimestamp(clock(), timezone.utc)
        report = consistency.check_stack(deployment, started - timedelta(seconds=CLOCK_MARGIN_S), ended)
    print(consistency.table(report), file=out_stream)
    if not archived:
        print(f"the archive did not hold every transaction within {timeout_s:g} s: the consistency above misses "
              "some", file=out_stream)
    passed = ok and archived and report.consistent
    print(f"fraudstream verify: {'PASSED' if passed else 'FAILED'}: stack {deployment.stack}", file=out_stream)
    return 0 if passed else 1


def _read_back(deployment, clients: Clients, places: list[RecordRef], started: datetime, deadline: float, *,
               clock, sleep, progress) -> dict[RecordRef, Verdict]:
    group = deployment.output(out.PREDICT_LOG_GROUP)
    since = to_ms(started - timedelta(seconds=CLOCK_MARGIN_S))
    found: dict[RecordRef, Verdict] = {}
    wanted = set(places)

    def done() -> tuple[int, int]:
        found.update({p: v for p, v in logged_verdicts(read_events(clients.logs, group, since)).items()
                      if p in wanted})
        return len(found), len(places)

    wait_until(done, f"verdicts back from {group}", deadline, clock=clock, sleep=sleep, progress=progress)
    return found


def _judge(places: list[RecordRef], verdicts: dict[RecordRef, Verdict], seed: bool, out_stream: TextIO) -> bool:
    """Print each verdict in the scenario's order; the AWS sample's scenario must have its expected outcome."""
    for place in places:
        print(verdicts[place].message(), file=out_stream)
    if not seed:
        print(f"every one of the {len(places)} transactions got its verdict", file=out_stream)
        return True
    ok, text = seed_outcome([verdicts[place].fraud for place in places])
    print(f"expected outcome {text}", file=out_stream)
    return ok


def _await_archive(deployment, clients: Clients, places: list[RecordRef], started: datetime, deadline: float, *,
                   clock, sleep, progress) -> bool:
    """Until Flink's archive in the data bucket holds every transaction sent (it commits a file per checkpoint)."""
    bucket = deployment.output(out.DATA_BUCKET)
    wanted = set(places)

    def done() -> tuple[int, int]:
        rows, _problems = stack_archive(clients.s3, bucket, started.date(),
                                        datetime.fromtimestamp(clock(), timezone.utc).date())
        return len(wanted & {row.key for row in rows}), len(wanted)

    return wait_until(done, f"transactions in the archive (s3://{bucket})", deadline, clock=clock, sleep=sleep,
                      progress=progress)
