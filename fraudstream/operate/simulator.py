"""`fraudstream simulate`: send a scenario's transactions to a deployed stack's MSK topic, or to a Kafka broker.

The command finds the stack by name and reads the IAM bootstrap brokers and the transactions topic
from its outputs (or takes --bootstrap-servers, plaintext or TLS, for a broker such as the local
pipeline's), and produces one message per scenario line (key = card number, value = the
transaction JSON with `trans_ts` stamped at send time), waiting each line's `delay_s` first.

Every delivery is confirmed or reported. The seed's producer fired messages and hoped
(`#error handling - TODO`); here each send keeps its future, the producer is flushed, and every
future is resolved: a delivered message prints its partition and offset, a failed one is listed
with its line number, masked card and error, and the command exits 1. A producer that cannot
reach any broker counts as every message failed, not as a crash.

Why a `producer_factory` seam: the only I/O is the kafka-python producer (and the CloudFormation
lookup, which moto fakes). `simulate` takes a factory called with KafkaProducer's keyword arguments
(default: builds the real `kafka.KafkaProducer`), so tests hand it a fake producer class that
checks the security settings and fails chosen deliveries, and one test runs the real producer
against a closed port. Configuration, sending and reporting are plain functions around it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from fraudstream import contract as c
from fraudstream import stack_outputs as out
from fraudstream.local.scenario import ScenarioLine
from fraudstream.online.kafka_clients import SECURITY_MODES, security_config
from fraudstream.operate import deployed

CLIENT_ID = "fraudstream-simulate"
RETRIES = 3

# --- Producer configuration (kafka-python) ------------------------------------------------------


def serialize_key(cc_num: int | str) -> bytes:
    """Messages are keyed by card number, so one card's transactions stay on one partition, in order."""
    return str(cc_num).encode("utf-8")


def serialize_value(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Target:
    """Where the transactions go: the brokers, the topic, and how the producer authenticates.

    ``iam``: a deployed stack's MSK (SASL/OAUTHBEARER tokens signed for ``region``, over TLS); ``ssl``: TLS
    with the CA in ``ssl_cafile`` (or the system's); ``plaintext``: a broker on loopback (the local pipeline's).
    """

    brokers: tuple[str, ...]
    topic: str
    security: str = "iam"
    region: str | None = None
    ssl_cafile: str | None = None
    name: str = ""  # for messages: the stack, or the address

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(f"security {self.security!r}: expected one of {', '.join(SECURITY_MODES)}")
        if not self.brokers:
            raise ValueError("no broker address to send to")


def stack_target(deployment: deployed.Deployment) -> Target:
    """The transactions topic of a deployed stack, from its outputs."""
    brokers = tuple(b.strip() for b in deployment.output(out.BOOTSTRAP_BROKERS).split(",") if b.strip())
    if not brokers:
        raise deployed.DeploymentError(f"stack {deployment.stack}: output {out.BOOTSTRAP_BROKERS} is empty")
    return Target(brokers, deployment.output(out.TRANSACTIONS_TOPIC), "iam", deployment.region,
                  name=f"stack {deployment.stack} ({deployment.region})")


def producer_config(target: Target, timeout_s: float) -> dict[str, Any]:
    """KafkaProducer keyword arguments: the target's authentication, acknowledged by all in-sync replicas.

    ``timeout_s`` bounds each wait: connecting to a broker, fetching the topic's metadata, and a
    message's delivery (retries included). One request in flight per connection keeps a card's
    transactions in order when a retry happens. Reconnects back off (kafka.t3.small brokers accept few
    new IAM connections a second).
    """
    timeout_ms = max(1, int(timeout_s * 1000))
    return {
        "bootstrap_servers": list(target.brokers),
        **security_config(target.security, target.region, target.ssl_cafile),
        "client_id": CLIENT_ID,
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


def check_credentials(provider) -> None:
    """Sign a first token now: missing credentials are one clear line, not a broker auth failure later."""
    from botocore.exceptions import NoCredentialsError

    with deployed.aws_errors():
        try:
            provider.token()
        except (AttributeError, ValueError):  # the signer found no credentials (None, or empty keys)
            raise NoCredentialsError() from None


def default_producer_factory(**config):
    from kafka import KafkaProducer

    return KafkaProducer(**config)


# --- Sending and reporting ----------------------------------------------------------------------


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


def _line_text(line: ScenarioLine) -> str:
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
            log(f"{_line_text(line)}: not sent ({delivery.error}); stopping")
            break
        except KafkaError as error:
            delivery.error = describe_error(error)
        log(f"{'sent' if delivery.error is None else 'FAILED'} {index + 1}/{len(lines)} {_line_text(line)}")
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


def report(deliveries: list[Delivery], topic: str, cause: str | None = None, out_stream: TextIO | None = None,
           err_stream: TextIO | None = None) -> int:
    """One stdout line per transaction and a summary; the failed ones again on stderr (after ``cause``,
    when one reason failed them all). Exit code 0 or 1."""
    out_stream, err_stream = out_stream or sys.stdout, err_stream or sys.stderr
    for delivery in deliveries:
        if delivery.delivered:
            result = f"partition {delivery.partition} offset {delivery.offset}"
        else:
            result = f"FAILED: {delivery.error}"
        print(f"{_line_text(delivery.line)} -> {result}", file=out_stream)
    failed = [d for d in deliveries if not d.delivered]
    print(f"{len(deliveries) - len(failed)} of {len(deliveries)} transactions delivered to {topic}", file=out_stream)
    if not failed:
        return 0
    print(f"fraudstream simulate: error: {len(failed)} of {len(deliveries)} transactions not delivered"
          + (f": {cause}" if cause else ":"), file=err_stream)
    for delivery in failed:
        print(f"  {_line_text(delivery.line)}: {delivery.error}", file=err_stream)
    return 1


# --- Command ------------------------------------------------------------------------------------


@contextlib.contextmanager
def kafka_log_to_stderr(enabled: bool) -> Iterator[None]:
    """kafka-python's own log (connections, authentication) on stderr while the block runs, if ``enabled``."""
    if not enabled:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    kafka_logger = logging.getLogger("kafka")
    kafka_logger.addHandler(handler)
    kafka_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        kafka_logger.removeHandler(handler)


def simulate(target: Target, lines: list[ScenarioLine], source: str, *, timeout_s: float,
             delays: bool = True, log: Callable[[str], None] = lambda _m: None,
             producer_factory: Callable[..., Any] = default_producer_factory) -> int:
    """Send ``lines`` to the target's topic and report every delivery; returns the exit code."""
    from kafka.errors import KafkaError

    config = producer_config(target, timeout_s)
    if target.security == "iam":
        check_credentials(config["sasl_oauth_token_provider"])
    log(f"connecting to {len(target.brokers)} broker(s) of {target.name or ','.join(target.brokers)}")
    try:
        producer = producer_factory(**config)
    except ssl.SSLError as error:
        cause = (f"the TLS handshake with {','.join(target.brokers)} failed ({error}); is --ssl-cafile the CA that "
                 "signed the broker's certificate?")
        return report(not_sent(lines, "not sent (TLS handshake failed)"), target.topic, cause)
    except KafkaError as error:
        where = ("they are in the stack's VPC" if target.security == "iam" else "is the broker running?")
        cause = (f"no connection to the brokers {','.join(target.brokers)} within {timeout_s:g} s "
                 f"({describe_error(error)}); check that this machine can reach them ({where})"
                 + (" and that your credentials allow kafka-cluster:Connect" if target.security == "iam" else "")
                 + "; --verbose shows kafka-python's log")
        return report(not_sent(lines, "not sent (no connection to the brokers)"), target.topic, cause)
    try:
        log(f"sending {len(lines)} transactions from {source} to {target.topic}")
        deliveries = send_scenario(producer, target.topic, lines, delays=delays, timeout_s=timeout_s, log=log)
    finally:
        producer.close(timeout=timeout_s)
    return report(deliveries, target.topic)
