"""`fraudstream simulate`: a scenario to the deployed stack's topic, every delivery confirmed or reported.

CloudFormation is moto; the Kafka boundary is a fake producer class handed to the command, except
in one test that runs the real kafka-python producer against a closed local port.
"""

from __future__ import annotations

import io
import json
import re
import socket
import time
from datetime import datetime, timezone

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from kafka.errors import KafkaTimeoutError, NotEnoughReplicasError, RequestTimedOutError
from kafka.sasl.oauth import AbstractTokenProvider
from moto import mock_aws

from fraudstream import cli
from fraudstream import contract as c
from fraudstream import stack_outputs as out
from fraudstream.cli import operate as cli_operate
from fraudstream.checks import InputError
from fraudstream.files import write_parquet
from fraudstream.local.scenario import ScenarioLine
from fraudstream.online import sending
from fraudstream.operate import deployed, simulator
from tests.support.data import T0, transactions
from tests.support.kafka import make_certificate, new_topic_name, read_all
from tests.support.stack import create_stack

STACK, REGION = "FraudSim", "eu-west-1"  # not the default region of conftest: proves the stack's region is used
BROKERS = "b-1.sim.kafka.eu-west-1.amazonaws.com:9098,b-2.sim.kafka.eu-west-1.amazonaws.com:9098"
TOPIC = "cc-transactions-sim"
CARDS = [4000123412341234, 4000123412345678, 5500000000000004, 4111111111111111]
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01: the fake token never expires


@pytest.fixture
def aws():
    with mock_aws():
        yield


@pytest.fixture
def stack(aws):
    create_stack(STACK, {out.BOOTSTRAP_BROKERS: BROKERS, out.TRANSACTIONS_TOPIC: TOPIC, out.REGION: REGION}, REGION)


@pytest.fixture
def signer(monkeypatch):
    """The MSK IAM signer, replaced: returns ("tok", expiry) and records the regions it signs for."""
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    calls: list[str] = []

    def generate_auth_token(region, aws_debug_creds=False):
        calls.append(region)
        return "tok", FAR_FUTURE_MS

    monkeypatch.setattr(MSKAuthTokenProvider, "generate_auth_token", generate_auth_token)
    return calls


class Metadata:
    def __init__(self, partition: int, offset: int) -> None:
        self.partition, self.offset = partition, offset


class FakeFuture:
    def __init__(self, metadata: Metadata | None = None, error: Exception | None = None) -> None:
        self.metadata, self.error = metadata, error

    def get(self, timeout=None):
        assert timeout is not None and timeout > 0, "a future must be resolved with a timeout"
        if self.error is not None:
            raise self.error
        return self.metadata


class FakeProducer:
    """kafka-python's KafkaProducer as the simulator uses it: checks the settings, records the wire bytes.

    ``fail_delivery`` maps a send's index (0-based) to the KafkaError its future raises;
    ``fail_send`` maps an index to the KafkaError send() itself raises.
    """

    instances: list[FakeProducer] = []
    fail_delivery: dict[int, Exception] = {}
    fail_send: dict[int, Exception] = {}

    def __init__(self, **config) -> None:
        assert config["security_protocol"] == "SASL_SSL"
        assert config["sasl_mechanism"] == "OAUTHBEARER"
        assert config["acks"] == "all"
        assert 0 < config["retries"] < 10
        assert config["client_id"] == "fraudstream-simulate"
        assert isinstance(config["sasl_oauth_token_provider"], AbstractTokenProvider)
        assert config["delivery_timeout_ms"] >= config["request_timeout_ms"] + config.get("linger_ms", 0)
        self.config = config
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.flushed = self.closed = False
        FakeProducer.instances.append(self)

    def send(self, topic, key=None, value=None):
        index = len(self.sent)
        self.sent.append((topic, self.config["key_serializer"](key), self.config["value_serializer"](value)))
        if index in self.fail_send:
            raise self.fail_send[index]
        if index in self.fail_delivery:
            return FakeFuture(error=self.fail_delivery[index])
        return FakeFuture(Metadata(partition=index % 3, offset=100 + index))

    def flush(self, timeout=None):
        self.flushed = True

    def close(self, timeout=None):
        self.closed = True


@pytest.fixture
def producer():
    FakeProducer.instances, FakeProducer.fail_delivery, FakeProducer.fail_send = [], {}, {}
    yield FakeProducer
    FakeProducer.instances, FakeProducer.fail_delivery, FakeProducer.fail_send = [], {}, {}


def write_lines(path, lines: list[dict | str]):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
                    encoding="utf-8")
    return path


@pytest.fixture
def scenario(tmp_path):
    """Four transactions on four cards, no delays."""
    return write_lines(tmp_path / "scenario.jsonl",
                       [{c.CC_NUM: card, c.AMOUNT: 10.5 + i, "delay_s": 0} for i, card in enumerate(CARDS)])


def simulate(argv: list[str], producer_factory=None) -> int:
    """The command connecting to the brokers itself (--direct), as from inside the VPC."""
    args = cli.build_parser().parse_args(["simulate", "--stack", STACK, "--region", REGION, "-q", "--direct", *argv])
    return cli_operate.cmd_simulate(args, producer_factory=producer_factory)


# --- Through the stack's producer function (the default: no network path to the brokers needed) ----------

FUNCTION = "FraudSim-ProduceTransactions"


@pytest.fixture
def function_stack(aws):
    create_stack(STACK, {out.PRODUCER_FUNCTION: FUNCTION, out.TRANSACTIONS_TOPIC: TOPIC, out.REGION: REGION}, REGION)


@pytest.fixture
def function():
    """The Lambda client, stubbed: each expected invocation of the producer function answers as told."""
    client = boto3.client("lambda", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def answers(stubber, *bodies: dict, error: str | None = None) -> None:
    for body in bodies:
        data = json.dumps(body).encode()
        stubber.add_response("invoke", {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(data), len(data)),
                                        **({"FunctionError": error} if error else {})},
                             {"FunctionName": FUNCTION, "InvocationType": "RequestResponse", "Payload": ANY})


def simulate_through_function(argv: list[str], client) -> int:
    args = cli.build_parser().parse_args(["simulate", "--stack", STACK, "--region", REGION, "-q", *argv])
    return cli_operate.cmd_simulate(args, function_client=client)


def test_the_stacks_producer_function_sends_the_scenario_and_each_line_is_reported(function_stack, function, scenario,
                                                                                   capsys):
    client, stubber = function
    answers(stubber, {"delivered": [{"line": i + 1, "partition": i % 3, "offset": 200 + i} for i in range(4)],
                      "failed": [], "refused": []})
    assert simulate_through_function(["--scenario", str(scenario)], client) == 0
    stdout = capsys.readouterr().out
    assert f"line 1: card {c.mask_card(CARDS[0])}, amount 10.50 -> partition 0 offset 200" in stdout
    assert "4 of 4 transactions delivered to cc-transactions-sim" in stdout


def test_lines_the_function_could_not_send_or_refused_are_listed_and_exit_1(function_stack, function, scenario,
                                                                          capsys):
    client, stubber = function
    answers(stubber, {"delivered": [{"line": 1, "partition": 0, "offset": 7}, {"line": 2, "partition": 1, "offset": 3}],
                      "failed": [{"line": 3, "error": "NotEnoughReplicasError"}],
                      "refused": [{"line": 4, "reason": "amount must be a number"}]})
    assert simulate_through_function(["--scenario", str(scenario)], client) == 1
    err = capsys.readouterr().err
    assert "2 of 4 transactions not delivered" in err
    assert "line 3: card" in err and "NotEnoughReplicasError" in err
    assert "line 4: card" in err and "refused by the function: amount must be a number" in err


def test_a_function_that_fails_fails_its_lines_and_nothing_more_is_sent(function_stack, function, tmp_path, capsys):
    # Given a scenario that needs two invocations (more lines than one takes)
    client, stubber = function
    path = write_lines(tmp_path / "big.jsonl", [{c.CC_NUM: CARDS[0], c.AMOUNT: 1.0}] * (simulator.INVOKE_LINES + 2))
    answers(stubber, {"errorMessage": "Task timed out after 720.00 seconds"}, error="Unhandled")
    # When the first invocation fails / Then every line is reported, the second invocation never made
    assert simulate_through_function(["--scenario", str(path)], client) == 1
    err = capsys.readouterr().err
    assert f"{simulator.INVOKE_LINES + 2} of {simulator.INVOKE_LINES + 2} transactions not delivered" in err
    assert "the function failed: Task timed out" in err and "stopped after an invocation failed" in err


def test_a_bad_scenario_is_refused_before_the_function_is_invoked(function_stack, function, tmp_path, capsys):
    client, _stubber = function  # no invocation expected: one would fail the stubber
    path = write_lines(tmp_path / "bad.jsonl", ['{"cc_num": "nope", "amount": 1}', "not json"])
    with pytest.raises(InputError, match="no valid transaction to send"):
        simulate_through_function(["--scenario", str(path)], client)
    assert "bad.jsonl:1: cc_num must be a card number; line skipped" in capsys.readouterr().err


def test_invocations_hold_at_most_their_lines_and_delays_and_the_first_delay_is_waited_here():
    lines = [ScenarioLine(i + 1, CARDS[0], 1.0, delay) for i, delay in enumerate([5.0, 300.0, 299.0, 2.0, 3600.0])]
    groups = simulator.invocations(lines, delays=True)
    # Then no invocation waits more than produce.MAX_DELAY_S after its first line
    assert [[line.line for line in group] for group in groups] == [[1, 2, 3], [4], [5]]
    assert simulator.invocations(lines, delays=False) == [lines]
    # and each first line's delay is waited by the command, sent with none
    payloads, slept = [], []

    class Client:
        def invoke(self, **request):
            payload = json.loads(request["Payload"])
            payloads.append(payload)
            body = json.dumps({"delivered": [{"line": x["line"], "partition": 0, "offset": x["line"]}
                                             for x in payload["lines"]], "failed": [], "refused": []}).encode()
            return {"Payload": io.BytesIO(body)}

    deliveries = simulator.send_through_function(Client(), FUNCTION, lines, sleep=slept.append)
    assert slept == [5.0, 2.0, 3600.0] and all(d.delivered for d in deliveries)
    assert [[x["delay_s"] for x in p["lines"]] for p in payloads] == [[0.0, 300.0, 299.0], [0.0], [0.0]]


# --- Delivery: confirmed or reported ----------------------------------------------------------------


def test_every_transaction_is_keyed_by_card_and_confirmed_with_partition_and_offset(
        stack, signer, producer, scenario, capsys):
    # Given a deployed stack and a four-card scenario
    before = time.time()
    # When it is simulated and every delivery succeeds
    code = simulate(["--scenario", str(scenario)], producer)
    after = time.time()
    # Then the producer went to the stack's brokers and topic, each key is the card number,
    # each value the transaction stamped at send time, and the run exits 0
    assert code == 0
    (fake,) = producer.instances
    assert fake.config["bootstrap_servers"] == BROKERS.split(",")
    assert [topic for topic, _, _ in fake.sent] == [TOPIC] * 4
    assert [key for _, key, _ in fake.sent] == [str(card).encode() for card in CARDS]
    values = [json.loads(value) for _, _, value in fake.sent]
    assert [v[c.CC_NUM] for v in values] == CARDS and [v[c.AMOUNT] for v in values] == [10.5, 11.5, 12.5, 13.5]
    assert all(before <= v[c.TRANS_TS] <= after for v in values)
    assert fake.flushed and fake.closed
    stdout = capsys.readouterr().out
    assert f"line 1: card {c.mask_card(CARDS[0])}, amount 10.50 -> partition 0 offset 100" in stdout
    assert "4 of 4 transactions delivered to cc-transactions-sim" in stdout
    assert not any(str(card) in stdout for card in CARDS)  # cards are only shown masked


def test_producer_authenticates_with_iam_tokens_signed_for_the_stack_region(stack, signer, producer, scenario):
    # Given a stack in eu-west-1 while the default region is us-east-1
    # When it is simulated
    assert simulate(["--scenario", str(scenario)], producer) == 0
    # Then the producer's token provider is kafka-python's OAUTHBEARER kind, and its token is the
    # MSK signer's, signed for the stack's region
    provider = producer.instances[0].config["sasl_oauth_token_provider"]
    assert isinstance(provider, AbstractTokenProvider)
    assert provider.token() == "tok"
    assert signer and set(signer) == {REGION}
    # and it backs off a second between reconnects (kafka.t3.small's new-connection quota)
    config = producer.instances[0].config
    assert (config["reconnect_backoff_ms"], config["reconnect_backoff_max_ms"]) == (1000, 10_000)


def test_failed_deliveries_are_listed_with_line_and_masked_card_and_exit_1(stack, signer, producer, scenario, capsys):
    # Given deliveries 2 and 4 fail (not enough in-sync replicas, request timed out)
    producer.fail_delivery = {1: NotEnoughReplicasError("ISR too small"), 3: RequestTimedOutError("no answer")}
    # When the scenario is simulated
    code = simulate(["--scenario", str(scenario)], producer)
    # Then the run exits 1, and each failure is reported with its line number, masked card and error
    assert code == 1
    captured = capsys.readouterr()
    assert "2 of 4 transactions delivered" in captured.out
    assert f"line 3: card {c.mask_card(CARDS[2])}, amount 12.50 -> partition 2 offset 102" in captured.out
    err = captured.err.splitlines()
    assert err[0] == "fraudstream simulate: error: 2 of 4 transactions not delivered:"
    assert err[1].startswith(f"  line 2: card {c.mask_card(CARDS[1])}, amount 11.50: ") and "NotEnoughReplicas" in err[1]
    assert err[2].startswith(f"  line 4: card {c.mask_card(CARDS[3])}, amount 13.50: ") and "no answer" in err[2]
    assert len(err) == 3


def test_a_send_that_times_out_stops_and_reports_the_rest_as_not_sent(stack, signer, producer, scenario, capsys):
    # Given the topic's metadata cannot be fetched when the second transaction is sent
    producer.fail_send = {1: KafkaTimeoutError("Failed to update metadata after 30.0 secs.")}
    # When the scenario is simulated
    code = simulate(["--scenario", str(scenario)], producer)
    # Then the first is delivered, the second fails, the last two are reported as not sent, exit 1
    assert code == 1
    assert len(producer.instances[0].sent) == 2
    err = capsys.readouterr().err
    assert "3 of 4 transactions not delivered" in err
    assert "line 2:" in err and "Failed to update metadata" in err
    assert "line 3:" in err and "line 4:" in err and "not sent (stopped after line 2 failed)" in err


def test_each_delay_is_waited_before_its_send_unless_disabled():
    # Given three lines with delays 0, 1.5 and 2 s, a fake clock and a fake producer
    lines = [ScenarioLine(i + 1, CARDS[i], 1.0, delay) for i, delay in enumerate((0.0, 1.5, 2.0))]
    now = [1000.0]

    def sleep(seconds):
        now[0] += seconds

    fake = FakeProducer.__new__(FakeProducer)
    fake.config, fake.sent = {"key_serializer": sending.serialize_key, "value_serializer": sending.serialize_value}, []
    # When the lines are sent with delays, then without
    with_delays = simulator.send_scenario(fake, TOPIC, lines, timeout_s=30, sleep=sleep, clock=lambda: now[0])
    stamps = [json.loads(value)[c.TRANS_TS] for _, _, value in fake.sent]
    without = simulator.send_scenario(fake, TOPIC, lines, timeout_s=30, delays=False, sleep=sleep, clock=lambda: now[0])
    # Then each transaction is stamped after its own delay, and --no-delay sends them all at once
    assert stamps == [1000.0, 1001.5, 1003.5]
    assert [json.loads(value)[c.TRANS_TS] for _, _, value in fake.sent[3:]] == [1003.5] * 3
    assert all(d.delivered for d in with_delays + without)


# --- Scenarios ------------------------------------------------------------------------------------


def test_invalid_scenario_lines_are_reported_with_their_number_and_skipped(stack, signer, producer, tmp_path, capsys):
    # Given a scenario with a non-JSON line (2) and a negative amount (4) among valid lines
    path = write_lines(tmp_path / "mixed.jsonl", [
        {c.CC_NUM: CARDS[0], c.AMOUNT: 5.0},
        "not json",
        {c.CC_NUM: str(CARDS[1]), c.AMOUNT: 6.0, c.MERCHANT: "Shop", c.ZIP_CODE: "10001"},
        {c.CC_NUM: CARDS[2], c.AMOUNT: -1},
    ])
    # When it is simulated
    code = simulate(["--scenario", str(path)], producer)
    # Then the two invalid lines are reported with their numbers and only the valid ones are sent
    assert code == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{path}:2: not JSON; line skipped", f"{path}:4: amount must be a number in [0, 1e+07]; line skipped"]
    sent = [json.loads(value) for _, _, value in producer.instances[0].sent]
    assert [(v[c.CC_NUM], v[c.MERCHANT], v[c.ZIP_CODE]) for v in sent] == [
        (CARDS[0], "Random Corp", "03099"), (CARDS[1], "Shop", "10001")]


def test_the_seed_scenario_is_sent_by_default(stack, signer, producer, tmp_path, capsys):
    # Given transactions on four cards in the hold-out period (from 2022-05-15)
    holdout = int(datetime(2022, 5, 20, tzinfo=timezone.utc).timestamp()) - T0
    write_parquet(transactions([(card, holdout + i * 60, 20.0) for i, card in enumerate(CARDS)]),
                  tmp_path / "tx.parquet")
    # When simulate runs without --scenario (and without the 1-2 s waits)
    code = simulate(["--transactions", str(tmp_path / "tx.parquet"), "--no-delay"], producer)
    # Then the seed's scenario is sent: three one-off cards, then ten transactions on a fourth
    assert code == 0
    keys = [int(key) for _, key, _ in producer.instances[0].sent]
    assert len(keys) == 13 and len(set(keys[:3])) == 3 and len(set(keys[3:])) == 1
    assert set(keys) == set(CARDS)
    assert "13 of 13 transactions delivered" in capsys.readouterr().out


# --- The real kafka-python producer, up to the socket ----------------------------------------------


def test_real_producer_with_no_reachable_broker_reports_every_message_failed(aws, signer, scenario, capsys):
    # Given a stack whose brokers are a closed local port, and the real KafkaProducer (default factory)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    create_stack(STACK, {out.BOOTSTRAP_BROKERS: f"127.0.0.1:{port}", out.TRANSACTIONS_TOPIC: TOPIC}, REGION)
    # When the scenario is simulated with a 1 s timeout
    started = time.monotonic()
    code = simulate(["--scenario", str(scenario), "--timeout", "1"])
    # Then, within seconds, every transaction is reported as not delivered and the run exits 1
    assert time.monotonic() - started < 20
    assert code == 1
    captured = capsys.readouterr()
    assert "0 of 4 transactions delivered" in captured.out
    err = captured.err.splitlines()
    assert err[0].startswith("fraudstream simulate: error: 4 of 4 transactions not delivered: "
                             f"no connection to the brokers 127.0.0.1:{port} within 1 s (NoBrokersAvailable)")
    assert err[1:] == [f"  line {i + 1}: card {c.mask_card(card)}, amount {10.5 + i:.2f}: "
                       "not sent (no connection to the brokers)" for i, card in enumerate(CARDS)]


# --- Bad input: one error line, exit 1 ----------------------------------------------------------


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    return err[0]


def test_unknown_stack_is_one_line_naming_it(aws, signer, scenario, capsys):
    # Given no stack of that name in the region
    # When simulate is run through the command line
    code = cli.main(["simulate", "--stack", "NoSuchStack", "--region", REGION, "--scenario", str(scenario)])
    # Then one error line names the stack and the fix, and the exit code is 1
    assert code == 1
    assert _one_error_line(capsys) == (f"fraudstream simulate: error: stack NoSuchStack not found in {REGION}: "
                                       "deploy it (make deploy) or pass --stack NAME / --region REGION")


def test_stack_without_the_brokers_output_is_one_line_naming_the_output(aws, signer, scenario, capsys):
    # Given a stack deployed before the brokers output existed
    create_stack(STACK, {out.TRANSACTIONS_TOPIC: TOPIC}, REGION)
    # When simulate is run against it
    code = cli.main(["simulate", "--stack", STACK, "--region", REGION, "--direct", "--scenario", str(scenario)])
    # Then one error line names the missing output
    assert code == 1
    line = _one_error_line(capsys)
    assert line.startswith("fraudstream simulate: error: ") and f"has no output {out.BOOTSTRAP_BROKERS}" in line


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    (b"\xff\xfe\x00binary", "no valid transaction to send"),  # its one line is reported as not UTF-8
    (b"not json\n[1, 2]\n", "no valid transaction to send"),
], ids=["missing", "not-text", "no-valid-line"])
def test_unreadable_scenario_is_one_error_line(stack, signer, tmp_path, content, message, capsys):
    # Given a scenario file that is missing, not text, or has no valid line
    path = tmp_path / "scenario.jsonl"
    if content is not None:
        path.write_bytes(content)
    # When simulate is run with it
    code = cli.main(["simulate", "--stack", STACK, "--region", REGION, "--scenario", str(path)])
    # Then the run exits 1 with one error line naming the file (after the skipped-line reports, if any)
    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert errors == [f"fraudstream simulate: error: {path}: {message}"]


def test_missing_scenario_file_prints_exactly_one_line(aws, signer, tmp_path, capsys):
    # Given a scenario path that does not exist
    # When simulate is run with it
    code = cli.main(["simulate", "--stack", STACK, "--scenario", str(tmp_path / "nope.jsonl")])
    # Then stderr is exactly one line
    assert code == 1
    assert _one_error_line(capsys) == f"fraudstream simulate: error: {tmp_path / 'nope.jsonl'}: no such file"


def test_expired_credentials_are_one_line_mentioning_credentials(monkeypatch, signer, scenario, capsys):
    # Given AWS answers describe_stacks with ExpiredTokenException
    real_session = boto3.session.Session

    def expired_session(**kwargs):
        session = real_session(**kwargs)
        client = session.client("cloudformation")
        stubber = Stubber(client)
        stubber.add_client_error("describe_stacks", service_error_code="ExpiredTokenException",
                                 service_message="The security token included in the request is expired")
        stubber.activate()
        session.client = lambda service, **_kwargs: client
        return session

    monkeypatch.setattr(deployed.boto3.session, "Session", expired_session)
    # When simulate is run
    code = cli.main(["simulate", "--stack", STACK, "--region", REGION, "--scenario", str(scenario)])
    # Then one line says the credentials expired, and the exit code is 1
    assert code == 1
    assert _one_error_line(capsys) == ("fraudstream simulate: error: AWS credentials expired or invalid "
                                       "(ExpiredTokenException): refresh them and retry")


def test_credentials_the_signer_cannot_find_are_one_line_before_any_connection(stack, monkeypatch, producer,
                                                                              scenario, capsys):
    # Given the MSK signer finds no credentials (botocore returns None: AttributeError inside the signer)
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    def no_credentials(region, aws_debug_creds=False):
        raise AttributeError("'NoneType' object has no attribute 'access_key'")

    monkeypatch.setattr(MSKAuthTokenProvider, "generate_auth_token", no_credentials)
    monkeypatch.setattr(simulator, "default_producer_factory", producer)
    # When simulate is run through the command line
    code = cli.main(["simulate", "--stack", STACK, "--region", REGION, "--direct", "--scenario", str(scenario)])
    # Then one line says how to configure credentials, and no producer was built
    assert code == 1
    assert _one_error_line(capsys) == ("fraudstream simulate: error: no AWS credentials found: configure them "
                                       "(aws configure, AWS_PROFILE or aws sso login)")
    assert producer.instances == []


def test_help_explains_the_scenario_and_the_options(capsys):
    # When simulate --help is asked for
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["simulate", "--help"])
    # Then it exits 0 and documents the stack, scenario, delay and timeout options
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--stack", "--region", "--scenario", "--transactions", "--seed", "--no-delay", "--timeout",
                   "--verbose"):
        assert option in text
    assert "delay_s" in text and "partition and offset" in text


# --- Against a real broker (the local pipeline's kind): plaintext and TLS ------------------------------------


def _sent_lines(stdout: str) -> list[tuple[int, int]]:
    return [tuple(int(x) for x in re.search(r"partition (\d+) offset (\d+)", line).groups())
            for line in stdout.splitlines() if "-> partition" in line]


@pytest.mark.kafka
def test_a_real_broker_receives_every_transaction_keyed_by_card_at_the_place_reported(kafka_broker, scenario, capsys):
    topic = new_topic_name("sim")
    kafka_broker.create_topics([topic])
    before = time.time()
    code = cli.main(["simulate", "--bootstrap-servers", kafka_broker.bootstrap, "--topic", topic,
                     "--scenario", str(scenario), "-q"])
    after = time.time()
    out = capsys.readouterr().out
    assert code == 0 and f"4 of 4 transactions delivered to {topic}" in out
    records = read_all(kafka_broker.bootstrap, topic)
    assert sorted(_sent_lines(out)) == [(r["partition"], r["offset"]) for r in records]
    assert sorted((r["key"].decode(), r["value"][c.AMOUNT]) for r in records) == sorted(
        (str(card), 10.5 + i) for i, card in enumerate(CARDS))
    assert all(before <= r["value"][c.TRANS_TS] <= after for r in records)  # stamped when sent


@pytest.mark.kafka
def test_a_tls_listener_is_reached_with_its_ca_and_refused_with_another(kafka_broker, scenario, tmp_path, capsys):
    topic = new_topic_name("simtls")
    kafka_broker.create_topics([topic])
    base = ["simulate", "--bootstrap-servers", kafka_broker.tls_bootstrap, "--security", "ssl", "--topic", topic,
            "--scenario", str(scenario), "--timeout", "10", "-q"]
    assert cli.main([*base, "--ssl-cafile", str(kafka_broker.ca_file)]) == 0
    assert len(read_all(kafka_broker.bootstrap, topic)) == 4
    capsys.readouterr()
    _, other_ca = make_certificate(tmp_path / "other")
    assert cli.main([*base, "--ssl-cafile", str(other_ca)]) == 1
    err = capsys.readouterr().err
    assert "4 of 4 transactions not delivered: the TLS handshake" in err and "--ssl-cafile" in err
    assert len(read_all(kafka_broker.bootstrap, topic)) == 4  # nothing more arrived
