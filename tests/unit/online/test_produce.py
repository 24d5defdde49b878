"""The producer function (lambdas/produce_transactions) on a real Kafka broker: a scenario's lines sent from
inside the VPC, each keyed by card and accounted for, bad lines refused alone, an impossible event refused whole
before anything is sent."""

from __future__ import annotations

import pytest

from fraudstream import contract as c
from fraudstream.local.lambda_runtime import LambdaContext, load_handler
from fraudstream.online import produce
from fraudstream.online.settings import ConfigurationError, producer_settings
from tests.support.kafka import new_topic_name, read_all

CARD, OTHER = 4111111111111111, 5500000000000004


@pytest.fixture
def handler(kafka_broker):
    topic = new_topic_name("transactions")
    kafka_broker.create_topics([topic])
    module = load_handler("produce_transactions", {"PRODUCER_BOOTSTRAP_SERVERS": kafka_broker.bootstrap,
                                                   "KAFKA_SECURITY": "plaintext", "TRANSACTIONS_TOPIC": topic})
    yield module, topic
    if module._producer is not None:
        module._producer.close()


def invoke(module, event: dict) -> dict:
    return module.lambda_handler(event, LambdaContext(function_name="produce", aws_request_id="req-1"))


@pytest.mark.kafka
def test_each_line_is_sent_keyed_by_card_and_answered_with_its_place(kafka_broker, handler):
    module, topic = handler
    answer = invoke(module, {"lines": [{"line": 1, c.CC_NUM: CARD, c.AMOUNT: 12.5},
                                       {"line": 2, c.CC_NUM: OTHER, c.AMOUNT: 3.0, "merchant": "Shop", "delay_s": 0.01}]})
    sent = read_all(kafka_broker.bootstrap, topic)
    assert answer["failed"] == [] and answer["refused"] == []
    # each line's answer names the place its transaction took
    at = {(r["partition"], r["offset"]): r["value"][c.AMOUNT] for r in sent}
    assert {d["line"]: at[(d["partition"], d["offset"])] for d in answer["delivered"]} == {1: 12.5, 2: 3.0}
    by_card = {int(r["key"]): r["value"] for r in sent}
    assert by_card[OTHER][c.MERCHANT] == "Shop" and by_card[CARD][c.AMOUNT] == 12.5
    assert all(isinstance(v[c.TRANS_TS], float) for v in by_card.values())  # stamped when sent


@pytest.mark.kafka
def test_a_bad_line_is_refused_alone_with_its_number_and_reason_never_its_content(kafka_broker, handler):
    module, topic = handler
    answer = invoke(module, {"lines": [{"line": 1, c.CC_NUM: "4111-secret", c.AMOUNT: 1.0},
                                       {"line": 2, c.CC_NUM: CARD, c.AMOUNT: -5},
                                       "not a line",
                                       {"line": 4, c.CC_NUM: CARD, c.AMOUNT: 7.0}]})
    assert answer["refused"] == [{"line": 1, "reason": "cc_num must be a card number"},
                                 {"line": 2, "reason": f"amount must be a number in [{c.MIN_AMOUNT:g}, {c.MAX_AMOUNT:g}]"},
                                 {"line": 3, "reason": "not a JSON object"}]
    assert [d["line"] for d in answer["delivered"]] == [4]
    assert [r["value"][c.AMOUNT] for r in read_all(kafka_broker.bootstrap, topic)] == [7.0]
    assert "secret" not in str(answer)


@pytest.mark.kafka
@pytest.mark.parametrize("event, reason", [
    ({}, 'expected {"lines": [...]} with at least one line'),
    ({"lines": "4111"}, 'expected {"lines": [...]} with at least one line'),
    ({"lines": [{c.CC_NUM: CARD, c.AMOUNT: 1.0}] * (produce.MAX_LINES + 1)}, "at most 1000 per invocation"),
    ({"lines": [{c.CC_NUM: CARD, c.AMOUNT: 1.0, "delay_s": 400}] * 2}, "delays add up to 800 s: at most 600 s"),
])
def test_an_event_beyond_one_invocation_is_refused_whole_before_anything_is_sent(kafka_broker, handler, event, reason):
    module, topic = handler
    answer = invoke(module, event)
    assert reason in answer["error"] and set(answer) == {"error"}
    assert read_all(kafka_broker.bootstrap, topic) == []


def test_the_producer_function_refuses_to_start_without_its_brokers_or_region():
    with pytest.raises(ConfigurationError, match="PRODUCER_BOOTSTRAP_SERVERS is required"):
        producer_settings({})
    with pytest.raises(ConfigurationError, match="AWS_REGION is required when KAFKA_SECURITY=iam"):
        producer_settings({"PRODUCER_BOOTSTRAP_SERVERS": "b-1:9098"})
    assert producer_settings({"PRODUCER_BOOTSTRAP_SERVERS": "b-1:9098", "AWS_REGION": "eu-west-1"}).region == "eu-west-1"
