"""A scenario's transactions onto the transactions topic from inside the VPC: the producer function's logic.

`fraudstream simulate --stack` invokes the stack's producer function (lambdas/produce_transactions) with the
lines of a scenario, so the laptop needs AWS credentials but no network path to the brokers. The function
sends them as the simulator does (fraudstream/online/sending.py: each keyed by card, stamped when sent, after
its delay) and answers with what became of each line. An event is refused whole, before anything is sent,
when it is not a list of lines or asks for more than the function can do in one invocation; a line that
breaks the rules of a scenario line is refused alone, with its number and reason, never its content.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from fraudstream.online.sending import Delivery, ScenarioLine, scenario_line, send_scenario

LINES_KEY, DELAYS_KEY = "lines", "delays"
MAX_LINES = 1000  # per invocation: the CLI sends larger scenarios in several (a Lambda payload is 6 MB at most)
MAX_DELAY_S = 600.0  # the delays of one invocation, in all: well inside the function's 15-minute timeout


class EventRefused(ValueError):
    """The event as a whole cannot be sent; nothing was."""


def lines_of(event: Mapping[str, Any]) -> tuple[list[ScenarioLine], list[dict[str, Any]]]:
    """The event's valid lines, and one refusal (line number, reason) per invalid one; EventRefused when the event
    is not {"lines": [...]} or is beyond one invocation's limits."""
    items = event.get(LINES_KEY) if isinstance(event, Mapping) else None
    if not isinstance(items, list) or not items:
        raise EventRefused(f'expected {{"{LINES_KEY}": [...]}} with at least one line')
    if len(items) > MAX_LINES:
        raise EventRefused(f"{len(items)} lines: at most {MAX_LINES} per invocation")
    lines, refused = [], []
    for index, item in enumerate(items, start=1):
        number = item.get("line", index) if isinstance(item, Mapping) else index
        number = number if isinstance(number, int) and not isinstance(number, bool) else index
        try:
            line, _unknown = scenario_line(number, item)
        except ValueError as error:
            refused.append({"line": number, "reason": str(error)})
        else:
            lines.append(line)
    delays = sum(line.delay_s for line in lines) if event.get(DELAYS_KEY, True) else 0.0
    if delays > MAX_DELAY_S:
        raise EventRefused(f"delays add up to {delays:g} s: at most {MAX_DELAY_S:g} s per invocation")
    return lines, refused


def answer(deliveries: list[Delivery], refused: list[dict[str, Any]]) -> dict[str, Any]:
    """What became of each line: delivered (partition, offset), failed (error) or refused (reason)."""
    return {"delivered": [{"line": d.line.line, "partition": d.partition, "offset": d.offset}
                          for d in deliveries if d.delivered],
            "failed": [{"line": d.line.line, "error": d.error} for d in deliveries if not d.delivered],
            "refused": refused}


def handle_produce_event(event: Mapping[str, Any], producer, topic: str, *, timeout_s: float,
                         sleep: Callable[[float], None] = time.sleep,
                         clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """Send the event's valid lines to ``topic`` with ``producer`` and answer for every line (``answer``); an event
    refused whole answers {"error": reason}."""
    try:
        lines, refused = lines_of(event)
    except EventRefused as error:
        return {"error": str(error)}
    deliveries = send_scenario(producer, topic, lines, timeout_s=timeout_s, delays=bool(event.get(DELAYS_KEY, True)),
                               sleep=sleep, clock=clock) if lines else []
    return answer(deliveries, refused)
