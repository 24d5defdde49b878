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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from fraudstream import stack_outputs as out
from fraudstream.online import produce
from fraudstream.online.kafka_clients import SECURITY_MODES, security_config
from fraudstream.online.sending import (
    DELAY_S,
    Delivery,
    ScenarioLine,
    describe_error,
    line_text,
    not_sent,
    send_scenario,
)
from fraudstream.online.sending import producer_config as sending_producer_config
from fraudstream.operate import deployed

CLIENT_ID = "fraudstream-simulate"

# --- Producer configuration (kafka-python) ------------------------------------------------------


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
    """KafkaProducer keyword arguments for the target (fraudstream/online/sending.py: producer_config)."""
    return sending_producer_config(list(target.brokers), timeout_s, CLIENT_ID,
                                   security_config(target.security, target.region, target.ssl_cafile))


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
        print(f"{line_text(delivery.line)} -> {result}", file=out_stream)
    failed = [d for d in deliveries if not d.delivered]
    print(f"{len(deliveries) - len(failed)} of {len(deliveries)} transactions delivered to {topic}", file=out_stream)
    if not failed:
        return 0
    print(f"fraudstream simulate: error: {len(failed)} of {len(deliveries)} transactions not delivered"
          + (f": {cause}" if cause else ":"), file=err_stream)
    for delivery in failed:
        print(f"  {line_text(delivery.line)}: {delivery.error}", file=err_stream)
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


# --- Through the stack's producer function ----------------------------------------------------------


INVOKE_LINES = 500  # lines per invocation (at most produce.MAX_LINES)
INVOKE_READ_TIMEOUT_S = 900  # an invocation sends up to produce.MAX_DELAY_S of delays


def function_client(deployment: deployed.Deployment):
    """A Lambda client that waits for a whole invocation and never invokes twice: a retried invocation would send
    its transactions again."""
    from botocore.config import Config

    from fraudstream.online import aws

    config = Config(read_timeout=INVOKE_READ_TIMEOUT_S, connect_timeout=10, retries={"total_max_attempts": 1})
    return aws.new_client("lambda", session=deployment.session, config=config)


def invocations(lines: list[ScenarioLine], delays: bool) -> list[list[ScenarioLine]]:
    """The lines in the order given, cut so that each invocation holds at most INVOKE_LINES lines and
    produce.MAX_DELAY_S of delays after its first line (whose own delay the command waits before invoking)."""
    groups: list[list[ScenarioLine]] = []
    waited = 0.0
    for line in lines:
        delay = line.delay_s if delays else 0.0
        if not groups or len(groups[-1]) >= INVOKE_LINES or waited + delay > produce.MAX_DELAY_S:
            groups.append([line])
            waited = 0.0
        else:
            groups[-1].append(line)
            waited += delay
    return groups


def send_through_function(client, function_name: str, lines: list[ScenarioLine], *, delays: bool = True,
                          sleep: Callable[[float], None] = time.sleep,
                          log: Callable[[str], None] = lambda _m: None) -> list[Delivery]:
    """Invoke the producer function with the lines, an invocation at a time (``invocations``), and turn its answers
    into one Delivery per line. A failed invocation fails its lines, and the rest are not sent."""
    from botocore.exceptions import BotoCoreError, ClientError

    deliveries: list[Delivery] = []
    groups = invocations(lines, delays)
    for index, group in enumerate(groups):
        if delays and group[0].delay_s:
            sleep(group[0].delay_s)
        payload = {produce.DELAYS_KEY: delays, produce.LINES_KEY: [
            {"line": line.line, **line.as_json(), DELAY_S: 0.0 if position == 0 else line.delay_s}
            for position, line in enumerate(group)]}
        log(f"invoking {function_name} with {len(group)} transactions ({index + 1}/{len(groups)})")
        try:
            response = client.invoke(FunctionName=function_name, InvocationType="RequestResponse",
                                      Payload=json.dumps(payload).encode())
            answer = json.loads(response["Payload"].read() or b"{}")
        except (BotoCoreError, ClientError, ValueError) as error:
            answer, response = {"error": describe_error(error)}, {}
        problem = (f"the function failed: {answer.get('errorMessage') or answer}" if response.get("FunctionError")
                   else answer.get("error"))
        if problem:
            deliveries += not_sent(group, f"not sent ({problem})")
            deliveries += not_sent([line for rest in groups[index + 1:] for line in rest],
                                   "not sent (stopped after an invocation failed)")
            return deliveries
        deliveries += _answered(group, answer)
    return deliveries


def simulate_through_stack(deployment: deployed.Deployment, lines: list[ScenarioLine], source: str, *,
                           delays: bool = True, log: Callable[[str], None] = lambda _m: None, client=None) -> int:
    """`fraudstream simulate --stack`: ``lines`` sent by the stack's producer function, every line reported; returns
    the exit code."""
    function = deployment.output(out.PRODUCER_FUNCTION)
    client = client or function_client(deployment)
    log(f"sending {len(lines)} transactions from {source} through {function} (stack {deployment.stack})")
    with deployed.aws_errors():
        deliveries = send_through_function(client, function, lines, delays=delays, log=log)
    return report(deliveries, deployment.output(out.TRANSACTIONS_TOPIC))


def _answered(group: list[ScenarioLine], answer: dict[str, Any]) -> list[Delivery]:
    """One Delivery per line of ``group`` from the producer function's answer (produce.answer)."""
    delivered = {d["line"]: d for d in answer.get("delivered", [])}
    failed = {d["line"]: d["error"] for d in answer.get("failed", [])}
    refused = {d["line"]: f"refused by the function: {d['reason']}" for d in answer.get("refused", [])}
    deliveries = []
    for line in group:
        if line.line in delivered:
            deliveries.append(Delivery(line, partition=delivered[line.line]["partition"],
                                       offset=delivered[line.line]["offset"]))
        else:
            deliveries.append(Delivery(line, error=failed.get(line.line) or refused.get(line.line)
                                       or "not in the function's answer"))
    return deliveries
