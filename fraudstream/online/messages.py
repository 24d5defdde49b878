"""MSK events in, validated messages out: every record is either parsed or reported, never lost.

Pure Python (no numpy) so both Lambda assets can ship it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from fraudstream import contract as c
from fraudstream.checks import CheckError, card_number, number

MAX_VALUE_BYTES = 64 * 1024  # messages are ~150 bytes; anything this large is not one of ours


# The messages are immutable value objects made once per record on the handlers' hot path: NamedTuples,
# which build in a third of a frozen dataclass's time (docs/lambda.md: "Handler speed").
class RecordRef(NamedTuple):
    """Where a record came from: what an operator needs to find it again."""

    topic: str
    partition: int
    offset: int

    def as_log(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


class Transaction(NamedTuple):
    ref: RecordRef
    cc_num: int
    amount: float
    trans_ts: float
    tid: str | None = None


class Aggregate(NamedTuple):
    ref: RecordRef
    cc_num: int
    num_trans_last_10m: int
    avg_amt_last_10m: float
    trans_ts: float
    prev_trans_ts: float | None

    def as_record(self) -> dict[str, Any]:
        """The cc-agg-fg record: event time is the aggregate's, never the wall clock."""
        return {
            c.CC_NUM: self.cc_num,
            c.NUM_TRANS_LAST_10M: self.num_trans_last_10m,
            c.AVG_AMT_LAST_10M: self.avg_amt_last_10m,
            c.TRANS_TIME: self.trans_ts,
            c.PREV_TRANS_TIME: self.prev_trans_ts,
        }


@dataclass(frozen=True)
class InvalidRecord:
    ref: RecordRef
    reason: str


class InvalidMessage(ValueError):
    """A record that cannot be used; the reason is safe to log (it never holds a card number)."""


def records(event: Mapping[str, Any]) -> Iterator[tuple[RecordRef, Any]]:
    """(reference, raw base64 value) of every record of an MSK event, in the event's order.

    The event is AWS's documented shape, ``{"records": {"<topic>-<partition>": [record, ...]}}``, read
    directly: Powertools' KafkaEvent wraps each record in an object to read the same three keys, and
    importing it loads every Powertools event class, about 0.1 s of each cold start (docs/lambda.md:
    "Handler speed"). Values are decoded by decode_value.
    """
    for chunk in (event.get("records") or {}).values():
        for record in chunk:
            yield RecordRef(record["topic"], int(record["partition"]), int(record["offset"])), record.get("value")


def parse_event(event: Mapping[str, Any], parse: Callable[[RecordRef, dict], Any]) -> tuple[list, list[InvalidRecord]]:
    """Split an MSK event into parsed messages and invalid records (with the reason for each)."""
    valid, invalid = [], []
    for ref, value in records(event):
        try:
            valid.append(parse(ref, decode_value(value)))
        except InvalidMessage as exc:
            invalid.append(InvalidRecord(ref, str(exc)))
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            # Backstop: no value, however odd, may fail the batch and stall its partition.
            invalid.append(InvalidRecord(ref, f"unreadable value ({type(exc).__name__})"))
    return valid, invalid


def decode_value(value: Any) -> dict:
    """The JSON object carried by a record's base64 value."""
    if not isinstance(value, str) or not value:
        raise InvalidMessage("record has no value")
    if len(value) > MAX_VALUE_BYTES * 4 // 3 + 4:
        raise InvalidMessage(f"value larger than {MAX_VALUE_BYTES} bytes")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidMessage("value is not valid base64") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidMessage("value is not valid UTF-8") from None
    try:
        message = orjson.loads(text)  # the fast path; RFC 8259 strict (no NaN, no lone surrogate escapes)
    except orjson.JSONDecodeError:
        message = _python_json(text)  # what orjson refuses gets the json module's verdict and reason
    if not isinstance(message, dict):
        raise InvalidMessage(f"value is a JSON {type(message).__name__}, expected an object")
    return message


def _python_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except InvalidMessage:
        raise
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"value is not JSON ({exc.msg} at character {exc.pos})") from None
    except (ValueError, RecursionError) as exc:  # integers past Python's digit limit, deep nesting
        raise InvalidMessage(f"value is not usable JSON ({type(exc).__name__})") from None


def parse_transaction(ref: RecordRef, message: dict) -> Transaction:
    tid = message.get(c.TID)
    return Transaction(
        ref=ref,
        cc_num=_card(message),
        amount=_number(message, c.AMOUNT, low=c.MIN_AMOUNT, high=c.MAX_AMOUNT),
        trans_ts=_event_time(message, c.TRANS_TS),
        tid=None if tid is None else _printable(str(tid)[:64]),
    )


def _printable(text: str) -> str:
    """``text`` with every character but printable ASCII replaced by "?": a tid is logged with its verdict, and no
    value may break the log line. Checked whole first: real ids are printable, and the per-character pass cost
    more than the rest of the parse."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(ch if ch.isascii() and ch.isprintable() else "?" for ch in text)


def parse_aggregate(ref: RecordRef, message: dict) -> Aggregate:
    trans_ts = _event_time(message, c.TRANS_TS)
    prev = None if message.get(c.PREV_TRANS_TS) is None else _event_time(message, c.PREV_TRANS_TS)
    if prev is not None and prev > trans_ts:
        raise InvalidMessage(f"{c.PREV_TRANS_TS} is after {c.TRANS_TS}")
    count = _number(message, c.NUM_TRANS_LAST_10M, low=1, high=1_000_000)
    if count != int(count):
        raise InvalidMessage(f"{c.NUM_TRANS_LAST_10M} is not a whole number")
    return Aggregate(
        ref=ref,
        cc_num=_card(message),
        num_trans_last_10m=int(count),
        avg_amt_last_10m=_number(message, c.AVG_AMT_LAST_10M, low=0.0, high=c.MAX_AMOUNT),
        trans_ts=trans_ts,
        prev_trans_ts=prev,
    )


def _card(message: dict) -> int:
    try:
        return card_number(message.get(c.CC_NUM))
    except CheckError as error:
        raise InvalidMessage(f"{c.CC_NUM} {error}") from None


def _number(message: dict, name: str, low: float, high: float) -> float:
    try:
        return number(message.get(name), low, high)
    except CheckError as error:
        raise InvalidMessage(f"{name} {error}") from None


def _event_time(message: dict, name: str) -> float:
    return _number(message, name, low=c.MIN_EVENT_TIME, high=c.MAX_EVENT_TIME)


def _refuse_constant(name: str):
    raise InvalidMessage(f"value holds {name}, which is not JSON")
