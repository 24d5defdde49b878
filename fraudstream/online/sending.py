"""Transactions sent into the pipeline: a scenario line and its rules, and the loop that sends lines to Kafka and
accounts for every one. `fraudstream simulate` sends from a laptop (fraudstream/operate/simulator.py), the
stack's producer function from inside the VPC (lambdas/produce_transactions), `fraudstream replay` reads the
same lines (fraudstream/local/scenario.py).

A line holds a card, an amount, optional merchant and zip code, and the delay to wait after the previous line.
Event times are taken when each transaction is sent, as a card terminal would stamp them. kafka-python is
imported only when a send happens.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fraudstream import contract as c
from fraudstream.checks import CheckError, card_number, number

MAX_DELAY_S = 3600.0
DELAY_S = "delay_s"
SCENARIO_KEYS = (c.CC_NUM, c.AMOUNT, c.MERCHANT, c.ZIP_CODE, DELAY_S)
DEFAULT_MERCHANT, DEFAULT_ZIP_CODE = "Random Corp", "03099"


@dataclass(frozen=True)
class ScenarioLine:
    line: int
    cc_num: int
    amount: float
    delay_s: float
    merchant: str = DEFAULT_MERCHANT
    zip_code: str = DEFAULT_ZIP_CODE

    def message(self, trans_ts: float) -> dict:
        """The transaction message sent for this line, stamped with ``trans_ts``."""
        return {c.CC_NUM: self.cc_num, c.MERCHANT: self.merchant, c.AMOUNT: self.amount, c.ZIP_CODE: self.zip_code,
                c.TRANS_TS: trans_ts}

    def as_json(self) -> dict[str, Any]:
        """The line as a scenario file holds it."""
        return {c.CC_NUM: self.cc_num, c.AMOUNT: self.amount, c.MERCHANT: self.merchant, c.ZIP_CODE: self.zip_code,
                DELAY_S: self.delay_s}


def scenario_line(line_number: int, data: Any) -> tuple[ScenarioLine, list[str]]:
    """``data`` held to the contract's rule of valid transactions (card and amount; the time is stamped when sent):
    the line, and the keys it has that a line does not know (at most 5 named, each cut to 40 characters);
    ValueError naming the field otherwise."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    try:
        card = card_number(data.get(c.CC_NUM))
    except CheckError:
        raise ValueError("cc_num must be a card number") from None
    try:
        amount = number(data.get(c.AMOUNT), c.MIN_AMOUNT, c.MAX_AMOUNT)
    except CheckError:
        raise ValueError(f"amount must be a number in [{c.MIN_AMOUNT:g}, {c.MAX_AMOUNT:g}]") from None
    delay = data.get(DELAY_S, 0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not math.isfinite(delay) or delay < 0:
        raise ValueError("delay_s must be a non-negative number")
    if delay > MAX_DELAY_S:
        raise ValueError(f"delay_s above {MAX_DELAY_S:g}")
    unknown = [str(key)[:40] for key in data if key not in SCENARIO_KEYS][:5]
    return ScenarioLine(line_number, card, amount, float(delay), str(data.get(c.MERCHANT, DEFAULT_MERCHANT))[:100],
                        str(data.get(c.ZIP_CODE, DEFAULT_ZIP_CODE))[:20]), unknown


RETRIES = 3


def producer_config(brokers: list[str], timeout_s: float, client_id: str, security: dict[str, Any]) -> dict[str, Any]:
    """KafkaProducer keyword arguments: ``security`` (fraudstream/online/kafka_clients.py), acknowledged by all
    in-sync replicas.

    ``timeout_s`` bounds each wait: connecting to a broker, fetching the topic's metadata, and a
    message's delivery (retries included). One request in flight per connection keeps a card's
    transactions in order when a retry happens.
    """
    timeout_ms = max(1, int(timeout_s * 1000))
    return {
        "bootstrap_servers": brokers,
        **security,
        "client_id": client_id,
        "acks": "all",
        "retries": RETRIES,
        "max_in_flight_requests_per_connection": 1,
        "linger_ms": 0,
        "key_serializer": serialize_key,
        "value_serializer": serialize_value,
        "request_timeout_ms": max(1, timeout_ms // 2),
        "delivery_timeout_ms": timeout_ms,
        "max_block_ms": timeout_ms,
        "api_version_auto_timeout_ms": timeout_ms,
    }


def serialize_key(cc_num: int | str) -> bytes:
    """Messages are keyed by card number, so one card's transactions stay on one partition, in order."""
    return str(cc_num).encode("utf-8")


def serialize_value(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


@dataclass
class Delivery:
    """One scenario line and what became of it."""

    line: ScenarioLine
    message: dict | None = None
    future: Any = None
    partition: int | None = None
    offset: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.error is None and self.offset is not None


def describe_error(error: BaseException) -> str:
    text = str(error)
    name = type(error).__name__
    return text if name in text else f"{name}: {text}" if text else name


def line_text(line: ScenarioLine) -> str:
    return f"line {line.line}: card {c.mask_card(line.cc_num)}, amount {line.amount:.2f}"


def not_sent(lines: Iterable[ScenarioLine], reason: str) -> list[Delivery]:
    return [Delivery(line, error=reason) for line in lines]


def send_scenario(producer, topic: str, lines: list[ScenarioLine], *, timeout_s: float, delays: bool = True,
                  sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.time, log: Callable[[str], None] = lambda _m: None
                  ) -> list[Delivery]:
    """Send each line (after its delay), then resolve every send's future: one Delivery per line.

    A send that raises is recorded as failed. A timeout in send() means the topic's metadata could
    not be fetched (brokers unreachable, no access, no such topic): the remaining lines are then
    reported as not sent instead of each waiting the same timeout again.
    """
    from kafka.errors import KafkaError, KafkaTimeoutError

    deliveries: list[Delivery] = []
    for index, line in enumerate(lines):
        if delays and line.delay_s:
            sleep(line.delay_s)
        delivery = Delivery(line, message=line.message(clock()))
        deliveries.append(delivery)
        try:
            delivery.future = producer.send(topic, key=line.cc_num, value=delivery.message)
        except KafkaTimeoutError as error:
            delivery.error = describe_error(error)
            deliveries += not_sent(lines[index + 1:], f"not sent (stopped after line {line.line} failed)")
            log(f"{line_text(line)}: not sent ({delivery.error}); stopping")
            break
        except KafkaError as error:
            delivery.error = describe_error(error)
        log(f"{'sent' if delivery.error is None else 'FAILED'} {index + 1}/{len(lines)} {line_text(line)}")
    try:
        producer.flush(timeout=timeout_s)
    except KafkaError as error:  # flush timed out: the futures still pending fail below
        log(f"flush: {describe_error(error)}")
    for delivery in deliveries:
        if delivery.future is None:
            continue
        try:
            metadata = delivery.future.get(timeout=timeout_s)
        except KafkaError as error:
            delivery.error = describe_error(error)
        else:
            delivery.partition, delivery.offset = metadata.partition, metadata.offset
    return deliveries
