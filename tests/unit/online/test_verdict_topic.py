"""The verdicts topic on a real Kafka broker: each transaction's verdict written once, whatever the predict
function goes through (a retried batch, a write that failed half way, a new instance, Flink emitting a
transaction again), keyed by card, with what a consumer acts on."""

from __future__ import annotations

import pytest

from fraudstream import contract as c
from fraudstream.contract import RecordRef
from fraudstream.online.messages import parse_transaction_features
from fraudstream.online.verdict import Verdict
from fraudstream.online.verdict_topic import KafkaPartitionLog, Record, VerdictWriter
from tests.support.events import features_message
from tests.support.kafka import new_topic_name, read_all

pytestmark = pytest.mark.kafka
CARD = 4111111111111111


@pytest.fixture
def topic(kafka_broker):
    name = new_topic_name("verdicts")
    kafka_broker.create_topics([name], partitions=2)
    return name


def scored(features_offset: int, place: int, *, partition: int = 0, card: int = CARD, score: float = 0.9):
    """A features message of ``partition`` at ``features_offset`` for the transaction at offset ``place``, and its
    verdict."""
    message = parse_transaction_features(
        RecordRef(c.TRANSACTION_FEATURES_TOPIC, partition, features_offset),
        features_message(card, 1_700_000_000.0 + place, 12.5, offset=place, partition=partition, tid=f"{place:016x}"))
    return message, Verdict.of(message, {c.NUM_TRANS_LAST_10M: 1, c.AVG_AMT_LAST_10M: 12.5}, score, 0.5)


def writer(kafka_broker, topic, log=None) -> VerdictWriter:
    return VerdictWriter(log or KafkaPartitionLog(kafka_broker.bootstrap, topic, "plaintext"), "model-abc")


def sources(kafka_broker, topic) -> list[int]:
    return [r["value"]["source"][c.OFFSET] for r in read_all(kafka_broker.bootstrap, topic)]


def test_each_verdict_is_written_keyed_by_card_with_what_a_consumer_acts_on(kafka_broker, topic):
    # When a batch of two transactions is published
    w = writer(kafka_broker, topic)
    assert w.publish([scored(0, 10), scored(1, 11, score=0.1)]) == 2
    w.close()
    # Then each is one record of the features partition, keyed by the card, naming its source and the model
    [first, second] = read_all(kafka_broker.bootstrap, topic)
    assert first["partition"] == 0 and first["key"] == str(CARD).encode()
    assert first["value"] == {"tid": f"{10:016x}", "card": "411111******1111", "amount": 12.5,
                              "trans_ts": 1_700_000_010.0, "score": 0.9, "verdict": c.FRAUD,
                              "features": {c.NUM_TRANS_LAST_10M: 1, c.AVG_AMT_LAST_10M: 12.5},
                              "model_version": "model-abc", "late": False,
                              "source": {"topic": c.TRANSACTIONS_TOPIC, "partition": 0, "offset": 10}}
    assert second["value"]["verdict"] == c.NOT_FRAUD and second["value"]["source"]["offset"] == 11


def test_a_retried_batch_is_not_written_again_by_the_same_or_a_new_instance(kafka_broker, topic):
    batch = [scored(0, 10), scored(1, 11)]
    first = writer(kafka_broker, topic)
    assert first.publish(batch) == 2
    # When the trigger retries the batch on the same instance, then on a fresh one (a cold start)
    assert first.publish(batch) == 0
    fresh = writer(kafka_broker, topic)
    assert fresh.publish(batch) == 0
    # and the next batch follows
    assert fresh.publish([scored(2, 12)]) == 1
    first.close(), fresh.close()
    # Then each transaction is on the topic once
    assert sources(kafka_broker, topic) == [10, 11, 12]


class FailingAfter:
    """The real partition log, but a write stops after ``keep`` records (a timeout half way)."""

    def __init__(self, log: KafkaPartitionLog, keep: int) -> None:
        self.log, self.keep = log, keep
        self.end_offset, self.read = log.end_offset, log.read

    def write(self, partition: int, records: list[Record]) -> int:
        self.log.write(partition, records[:self.keep])
        raise TimeoutError("the function timed out while writing")


def test_a_write_that_failed_half_way_is_completed_by_the_retry_without_repeats(kafka_broker, topic):
    batch = [scored(0, 10), scored(1, 11), scored(2, 12)]
    log = KafkaPartitionLog(kafka_broker.bootstrap, topic, "plaintext")
    with pytest.raises(TimeoutError):
        writer(kafka_broker, topic, FailingAfter(log, keep=1)).publish(batch)
    # When the batch is retried by another instance
    retry = writer(kafka_broker, topic)
    assert retry.publish(batch) == 2
    retry.close(), log.close()
    # Then every transaction is there once, in features order
    assert sources(kafka_broker, topic) == [10, 11, 12]


def test_a_transaction_flink_emits_again_is_not_written_again(kafka_broker, topic):
    w = writer(kafka_broker, topic)
    assert w.publish([scored(0, 10), scored(1, 11)]) == 2
    # When Flink restarts from a checkpoint and emits transaction 11 again, at a new features offset, with a new one
    fresh = writer(kafka_broker, topic)
    assert fresh.publish([scored(2, 11), scored(3, 12)]) == 1
    w.close(), fresh.close()
    assert sources(kafka_broker, topic) == [10, 11, 12]


def test_partitions_are_kept_apart(kafka_broker, topic):
    # Given features partition 1 far ahead of partition 0
    w = writer(kafka_broker, topic)
    assert w.publish([scored(50, 500, partition=1, card=4000000000000002)]) == 1
    # When partition 0's first offsets come
    assert w.publish([scored(0, 10), scored(1, 11)]) == 2
    w.close()
    # Then they are written to their own partition, not taken for partition 1's
    records = read_all(kafka_broker.bootstrap, topic)
    assert [(r["partition"], r["value"]["source"]["offset"]) for r in records] == [(0, 10), (0, 11), (1, 500)]
