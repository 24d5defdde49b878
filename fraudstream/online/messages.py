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
from fraudstream.contract import RecordRef
from fraudstream.checks import CheckError, card_number, number

MAX_VALUE_BYTES = 64 * 1024  # messages are ~150 bytes; anything this large is not one of ours


# The messages are immutable value objects made once per record on the handlers' hot path: NamedTuples,
# which build in a third of a frozen dataclass's time (docs/lambda.md: "Handler speed").
class TransactionFeatures(NamedTuple):
    """Flink's message for one transaction (fraudstream/contract.py: "Transaction features"): the transaction
    with its card's streaming features as Flink computed them, in order. ``ref`` is where the transaction sat
    on the transactions topic (what the archive and every verdict name); ``features_ref`` where this message
    sits on the features topic."""

    ref: RecordRef
    cc_num: int
    amount: float
    trans_ts: float
    tid: str | None
    event_ms: int
    num_trans_last_10m: int
    amt_sum_last_10m: float
    prev_event_ms: int | None
    num_trans_today: int
    amt_sum_today: float
    num_trans_days_before: tuple[int, ...]  # contract.DAYS_BEFORE days, the day before first
    amt_sum_days_before: tuple[float, ...]
    late: bool
    features_ref: RecordRef

    @property
    def avg_amt_last_10m(self) -> float:
        """As the batch SQL computes it: the exact sum as a double, divided by the count."""
        return self.amt_sum_last_10m / self.num_trans_last_10m

    def as_record(self) -> dict[str, Any]:
        """The cc-agg-fg record: the card's 10-minute values as of this transaction (event time, never the clock)."""
        return {
            c.CC_NUM: self.cc_num,
            c.NUM_TRANS_LAST_10M: self.num_trans_last_10m,
            c.AVG_AMT_LAST_10M: self.avg_amt_last_10m,
            c.TRANS_TIME: self.trans_ts,
            c.PREV_TRANS_TIME: None if self.prev_event_ms is None else self.prev_event_ms / 1000,
        }


class InvalidReport(NamedTuple):
    """Flink's report of a record it refused: where it sat on the transactions topic, and why."""

    ref: RecordRef
    reason: str


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


MAX_COUNT = 10_000_000  # more transactions of one card in a day than any real card makes: not Flink's
MAX_SUM = c.MAX_AMOUNT * MAX_COUNT


def parse_transaction_features(features_ref: RecordRef, message: dict) -> TransactionFeatures:
    """One message of the features topic, held to what Flink writes (a message that is not one is reported, as
    any unusable record is)."""
    tid = message.get(c.TID)
    trans_ts = _event_time(message, c.TRANS_TS)
    event_ms = _whole(message, c.EVENT_MS, c.MIN_EVENT_TIME * 1000, c.MAX_EVENT_TIME * 1000)
    prev = None if message.get(c.PREV_EVENT_MS) is None else _whole(message, c.PREV_EVENT_MS, 0, event_ms)
    late = message.get(c.LATE)
    if not isinstance(late, bool):
        raise InvalidMessage(f"{c.LATE} is not true or false")
    return TransactionFeatures(
        ref=RecordRef(_text(message, c.TOPIC), _whole(message, c.PARTITION, 0, 2**31 - 1),
                      _whole(message, c.OFFSET, 0, 2**63 - 1)),
        cc_num=_card(message),
        amount=_field_number(message, c.AMOUNT, low=c.MIN_AMOUNT, high=c.MAX_AMOUNT),
        trans_ts=trans_ts,
        tid=None if tid is None else _printable(str(tid)[:64]),
        event_ms=event_ms,
        num_trans_last_10m=_whole(message, c.NUM_TRANS_LAST_10M, 1, MAX_COUNT),
        amt_sum_last_10m=_field_number(message, c.AMT_SUM_LAST_10M, low=0.0, high=MAX_SUM),
        prev_event_ms=prev,
        num_trans_today=_whole(message, c.NUM_TRANS_TODAY, 1, MAX_COUNT),
        amt_sum_today=_field_number(message, c.AMT_SUM_TODAY, low=0.0, high=MAX_SUM),
        num_trans_days_before=_counts(message, c.NUM_TRANS_DAYS_BEFORE),
        amt_sum_days_before=_sums(message, c.AMT_SUM_DAYS_BEFORE),
        late=late,
        features_ref=features_ref,
    )


def parse_invalid_report(_ref: RecordRef, message: dict) -> InvalidReport:
    """One message of the invalid-transactions topic: the refused record's place and reason."""
    return InvalidReport(RecordRef(_text(message, c.TOPIC), _whole(message, c.PARTITION, 0, 2**31 - 1),
                                   _whole(message, c.OFFSET, 0, 2**63 - 1)),
                         _printable(_text(message, c.REASON)[:200]))


def _text(message: dict, name: str) -> str:
    value = message.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidMessage(f"{name} is missing or not text")
    return value


def _whole(message: dict, name: str, low: float, high: float) -> int:
    value = message.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value  # JSON integers as Flink writes them, exact whatever their size
    number = _field_number(message, name, low=low, high=high)
    if number != int(number):
        raise InvalidMessage(f"{name} is not a whole number")
    return int(number)


def _days(message: dict, name: str) -> list:
    values = message.get(name)
    if not isinstance(values, list) or len(values) != c.DAYS_BEFORE:
        raise InvalidMessage(f"{name} is missing or not a list of {c.DAYS_BEFORE} numbers")
    return values


def _counts(message: dict, name: str) -> tuple[int, ...]:
    values = _days(message, name)
    if not all(type(v) is int and 0 <= v <= MAX_COUNT for v in values):
        raise InvalidMessage(f"{name} holds a value that is not a whole number from 0 to {MAX_COUNT}")
    return tuple(values)


def _sums(message: dict, name: str) -> tuple[float, ...]:
    values = _days(message, name)
    if all((type(v) is float or type(v) is int) and 0.0 <= v <= MAX_SUM for v in values):
        return tuple(values)  # JSON numbers as Flink writes them (NaN fails the comparison: checked below)
    try:
        return tuple(number(v, 0.0, MAX_SUM) for v in values)
    except CheckError as error:
        raise InvalidMessage(f"{name} holds a value that {error}") from None


def _printable(text: str) -> str:
    """``text`` with every character but printable ASCII replaced by "?": a tid is logged with its verdict, and no
    value may break the log line. Checked whole first: real ids are printable, and the per-character pass cost
    more than the rest of the parse."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(ch if ch.isascii() and ch.isprintable() else "?" for ch in text)


def _card(message: dict) -> int:
    try:
        return card_number(message.get(c.CC_NUM))
    except CheckError as error:
        raise InvalidMessage(f"{c.CC_NUM} {error}") from None


def _field_number(message: dict, name: str, low: float, high: float) -> float:
    value = message.get(name)
    if (type(value) is float or type(value) is int) and low <= value <= high:
        return float(value)  # the JSON numbers Flink writes; anything else (text, NaN, bool) gets the full check
    try:
        return number(value, low, high)
    except CheckError as error:
        raise InvalidMessage(f"{name} {error}") from None


def _event_time(message: dict, name: str) -> float:
    return _field_number(message, name, low=c.MIN_EVENT_TIME, high=c.MAX_EVENT_TIME)


def _refuse_constant(name: str):
    raise InvalidMessage(f"value holds {name}, which is not JSON")
