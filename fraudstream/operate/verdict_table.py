"""A verdict log line on screen: CloudWatch events (or a local run's lines) read as verdicts, printed as a
fixed-width table or as JSON lines, with a count of what was skipped. `fraudstream logs` prints through it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

from fraudstream import contract as c
from fraudstream.online.verdict import UnreadableVerdict, Verdict

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)


class SkippedLine(Exception):
    """A log event that is not shown."""


class NotAPrediction(SkippedLine):
    """Another line of the function: platform lines, EMF metrics, errors, other messages."""


class MalformedLine(SkippedLine):
    """A line that starts as JSON or carries a verdict but cannot be read as a prediction."""


@dataclass(frozen=True)
class LoggedVerdict:
    """A verdict as CloudWatch holds it: the verdict, when it happened, and the line as logged (for --json)."""

    verdict: Verdict
    time: datetime  # the transaction's event time (trans_ts), else when it was logged
    record: dict[str, Any]
    event_id: str = ""


def parse_event(event: Mapping[str, Any]) -> LoggedVerdict:
    """A FilterLogEvents event -> its verdict; NotAPrediction or MalformedLine otherwise."""
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
    try:
        verdict = Verdict.from_log(record)
    except UnreadableVerdict as error:
        raise MalformedLine(str(error)) from None
    try:
        moment = _utc(verdict.trans_ts)
    except (TypeError, OverflowError, OSError, ValueError):
        timestamp = event.get("timestamp")
        if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
            raise MalformedLine(f"timestamp is not a number: {timestamp!r}") from None
        moment = _utc(timestamp / 1000)
    return LoggedVerdict(verdict, moment, record, str(event.get("eventId", "")))


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


def table_row(row: LoggedVerdict) -> str:
    """Fixed-width columns, so rows can be printed as they arrive (--follow) and still line up."""
    v = row.verdict
    return _line((row.time.strftime(TIME_FORMAT), v.card, f"{v.amount:.2f}", f"{v.score:.6f}", v.verdict,
                  str(v.features[c.NUM_TRANS_LAST_10M]), f"{v.features[c.AVG_AMT_LAST_10M]:.2f}"))


def json_line(row: LoggedVerdict) -> str:
    """The prediction line as the function logged it, one JSON object per line."""
    return json.dumps(row.record, ensure_ascii=False)


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
        if self.fraud_only and not row.verdict.fraud:
            return
        if not self.as_json and not self.header_printed:
            print(table_header(), file=self.out)
            self.header_printed = True
        print(json_line(row) if self.as_json else table_row(row), file=self.out, flush=self.flush)
        self.shown += 1
        self.fraud += row.verdict.fraud

    def summary(self, group: str, start: datetime | None, end: datetime | None) -> str:
        """What was shown and skipped; ``start`` None: the whole log (a local run's)."""
        until = f"to {end.strftime(TIME_FORMAT)}" if end else "until stopped"
        text = _count(self.shown, "FRAUD verdict" if self.fraud_only else "prediction")
        text += "" if self.fraud_only else f" ({self.fraud:,} FRAUD)"
        text += f" in {group}"
        if start is not None:
            text += f" from {start.strftime(TIME_FORMAT)} {until} UTC"
        skipped = []
        if self.not_predictions:
            skipped.append(_count(self.not_predictions, "other log line"))
        if self.malformed:
            skipped.append(_count(self.malformed, "malformed line"))
        return text + (f"; skipped {' and '.join(skipped)}" if skipped else "")
