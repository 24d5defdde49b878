"""Argument types and option groups shared by the verbs: one definition of each."""

from __future__ import annotations

import argparse
import math
import os
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from fraudstream import stack_outputs as out


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_seconds(maximum: float = math.inf):
    """An argparse type: a number of seconds in (0, maximum]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 < value <= maximum or math.isinf(value):
            bound = f" at most {maximum:g}" if math.isfinite(maximum) else ""
            raise argparse.ArgumentTypeError(f"expected a positive number of seconds{bound}, got {text!r}")
        return value

    return parse


def out_of_orderness(text: str) -> float:
    """An argparse type: the Flink job's max.out.of.orderness.seconds, checked by the job's own rule."""
    from fraudstream import flink_properties as flink

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not flink.out_of_orderness_ok(value):
        raise argparse.ArgumentTypeError(f"expected {flink.OUT_OF_ORDERNESS_EXPECTED}, got {text!r}")
    return value


def tick_delay(text: str) -> int:
    """An argparse type: the Flink job's tick.delay.ms, checked by the job's own rule."""
    from fraudstream import flink_properties as flink

    if not (text.isdigit() and flink.tick_delay_ok(int(text))):
        raise argparse.ArgumentTypeError(f"expected {flink.TICK_DELAY_EXPECTED}, got {text!r}")
    return int(text)


def output_file(suffix: str):
    """An argparse type: the path of a file to write, named ``*suffix`` (what is written is that format) and not an
    existing directory; checked before any work starts."""

    def parse(text: str) -> Path:
        path = Path(text)
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a directory; give a file name such as {path / ('out' + suffix)}")
        if path.suffix.lower() != suffix:
            raise argparse.ArgumentTypeError(f"{text}: the file written is {suffix[1:]}; give a name ending in {suffix}")
        return path

    return parse


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2022-05-15, got {text!r}") from None


_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def duration(text: str) -> timedelta:
    """'90s', '15m', '2h', '1d' -> timedelta."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration like 90s, 15m, 2h or 1d, got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def moment(text: str) -> datetime:
    """ISO 8601 date or date-time, with Z or an offset or none (UTC) -> aware UTC datetime."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time like 2026-11-28T10:00, 2026-11-28T10:00Z or 2026-11-28T11:00+01:00, got {text!r}"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def quiet_parent() -> argparse.ArgumentParser:
    """-q/--quiet, for every verb that prints progress."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-q", "--quiet", action="store_true", help="do not print progress to stderr")
    return parent


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """--stack and --region, shared by every command that works on a deployed stack."""
    parser.add_argument("--stack", default=os.environ.get(out.ENV_STACK, out.DEFAULT_STACK_NAME),
                        help=f"deployed stack name (default: ${out.ENV_STACK} or {out.DEFAULT_STACK_NAME})")
    parser.add_argument("--region", help="AWS region of the stack (default: your AWS configuration)")
