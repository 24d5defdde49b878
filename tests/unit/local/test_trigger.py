"""The local MSK trigger against the real broker: batches, the event built from the real records, offsets
committed only after success, a failing batch retried then written whole to the failure folder."""

from __future__ import annotations

import pytest

import base64
import json
import threading
import time

from kafka import KafkaAdminClient

from fraudstream.local.trigger import Trigger
from fraudstream.online.messages import parse_event
from fraudstream.online.settings import TriggerSettings
from tests.support.kafka import new_topic_name, produce
from tests.support.wait import wait_for

pytestmark = pytest.mark.kafka  # every test here reads from a real broker

CARDS = [4111111111111111, 5500000000000004, 4000123412341234]


class Recorder:
    """A handler that records each event, and fails while ``failing`` is set."""

    def __init__(self, failing: bool = False):
        self.events, self.failing, self.calls = [], failing, 0

    def __call__(self, event, context):
        self.calls += 1
        if self.failing:
            raise RuntimeError("endpoint down")
        self.events.append(event)
        return {"ok": True}

    def records(self):
        return [r for e in self.events for records in e["records"].values() for r in records]


class Running:
    """A trigger running in a thread for the duration of a with-block."""

    def __init__(self, trigger: Trigger):
        self.trigger, self.thread = trigger, threading.Thread(target=trigger.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        assert self.trigger.ready.wait(60), "the consumer group got no partitions"
        return self.trigger

    def __exit__(self, *exc):
        self.trigger.stop()
        self.thread.join(timeout=30)


def trigger_for(broker, tmp_path, handler, **settings) -> tuple[Trigger, TriggerSettings]:
    topic = new_topic_name("trig")
    broker.create_topics([topic])
    config = TriggerSettings(topic, new_topic_name("group"), **settings)
    return Trigger("predict", handler, config, broker.bootstrap, tmp_path / "failed", sleep=lambda _s: None), config




def committed(broker, group, topic) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        return {tp.partition: m.offset for tp, m in admin.list_consumer_group_offsets(group).items() if tp.topic == topic}
    finally:
        admin.close()


def transactions(n):
    return [{"cc_num": CARDS[i % 3], "amount": 1.0 + i, "trans_ts": 1_700_000_000.0 + i} for i in range(n)]


def test_the_event_carries_each_record_as_kafka_delivered_it(kafka_broker, tmp_path):
    handler = Recorder()
    trigger, config = trigger_for(kafka_broker, tmp_path, handler)
    with Running(trigger):
        places = produce(kafka_broker.bootstrap, config.topic, transactions(6), keys=[m["cc_num"] for m in transactions(6)])
        wait_for(lambda: len(handler.records()) == 6)
    # Then the handlers' own parser reads every record, by its real partition and offset
    event = handler.events[0]
    assert event["eventSource"] == "aws:kafka" and event["bootstrapServers"] == kafka_broker.bootstrap
    parsed = [ref for e in handler.events for ref in parse_event(e, lambda ref, _message: ref)[0]]
    assert sorted((ref.partition, ref.offset) for ref in parsed) == sorted(places)
    record = handler.records()[0]
    assert base64.b64decode(record["key"]).decode() in {str(card) for card in CARDS}
    assert abs(record["timestamp"] / 1000 - time.time()) < 120 and record["timestampType"] == "CREATE_TIME"


def test_batches_hold_at_most_batch_size_records_and_keep_each_partitions_order(kafka_broker, tmp_path):
    handler = Recorder()
    trigger, config = trigger_for(kafka_broker, tmp_path, handler, batch_size=4, batching_window_s=1.0)
    values = transactions(30)
    produce(kafka_broker.bootstrap, config.topic, values, keys=[m["cc_num"] for m in values])
    with Running(trigger):
        wait_for(lambda: len(handler.records()) == 30)
    assert max(sum(len(r) for r in e["records"].values()) for e in handler.events) <= 4
    assert len(handler.events) >= 30 // 4
    by_partition = {}
    for record in handler.records():
        by_partition.setdefault(record["partition"], []).append(record["offset"])
    assert all(offsets == sorted(offsets) == list(range(len(offsets))) for offsets in by_partition.values())


def test_offsets_are_committed_after_the_handler_returns_and_not_delivered_again(kafka_broker, tmp_path):
    handler = Recorder()
    trigger, config = trigger_for(kafka_broker, tmp_path, handler)
    produce(kafka_broker.bootstrap, config.topic, transactions(3), keys=CARDS)
    with Running(trigger):
        wait_for(lambda: len(handler.records()) == 3)
        wait_for(lambda: sum(committed(kafka_broker, config.consumer_group, config.topic).values()) == 3)
    # A new trigger of the same group (a new poller) starts after what was committed
    again = Recorder()
    second = Trigger("predict", again, config, kafka_broker.bootstrap, tmp_path / "failed")
    with Running(second):
        produce(kafka_broker.bootstrap, config.topic, transactions(1), keys=CARDS[:1])
        wait_for(lambda: len(again.records()) == 1)
    assert len(again.records()) == 1


def test_a_batch_that_keeps_failing_is_retried_written_whole_to_the_failure_folder_and_passed(kafka_broker, tmp_path):
    handler = Recorder(failing=True)
    trigger, config = trigger_for(kafka_broker, tmp_path, handler, retry_attempts=2, batching_window_s=1.0)
    produce(kafka_broker.bootstrap, config.topic, transactions(3), keys=CARDS)  # one batch: all there at the start
    with Running(trigger):
        wait_for(lambda: trigger.failed_records == 3)
        # the partitions move on: a later record reaches the handler once it recovers
        handler.failing = False
        produce(kafka_broker.bootstrap, config.topic, transactions(1), keys=CARDS[:1])
        wait_for(lambda: len(handler.records()) == 1)
    assert trigger.failed_batches == 1 and handler.calls == 3 + 1  # 1 + 2 retries, then the later record
    (document,) = [json.loads(p.read_text()) for p in (tmp_path / "failed").rglob("*") if p.is_file()]
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["requestContext"]["approximateInvokeCount"] == 3
    assert document["responseContext"]["functionError"] == "Unhandled"
    payload = json.loads(document["payload"])  # the whole event, as an escaped JSON string (S3 destinations)
    assert sum(len(r) for r in payload["records"].values()) == document["KafkaBatchInfo"]["batchSize"] == 3
    assert set(document["KafkaBatchInfo"]["recordsInfo"]) == set(payload["records"])
