"""Every verdict, once, on the verdicts topic (contract.VERDICTS_TOPIC), keyed by card: what a card block or a
case queue consumes. The predict function writes a batch's verdicts there before it logs them.

"Once per transaction" holds when a batch is retried (the function failed after writing, or timed out), when
another instance of the function takes a partition over, and when Flink emits a transaction again after a
restart (its Kafka sink is at-least-once):

- The verdicts of features partition q go to verdicts partition q. The MSK trigger gives a partition to one
  invocation at a time, in offset order, so each verdicts partition has one writer at a time.
- Each record carries, in a header, the features offset it was scored from. Before writing, the writer reads
  what partition q holds that it has not seen yet (after a cold start: the last RECENT records): the highest
  features offset written, and the transactions (places on the transactions topic) written.
- A verdict is written only if its features offset is above that highest one (a retried batch, or the part of
  it written before a failure, is not written again) and its transaction is not among those written (Flink's
  re-emission has a new features offset but the same place). The places kept are the last RECENT of each
  partition: a re-emission further back than that is written again, its source place telling it apart.
- A write goes in features-offset order, acknowledged by all in-sync replicas, one request in flight, so a
  failure leaves a prefix written.

The logic (VerdictWriter) is plain Python over the small PartitionLog interface; KafkaPartitionLog is
kafka-python, created on first use (importing it costs about a second, which the cold start should not pay).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fraudstream import contract as c
from fraudstream.contract import RecordRef
from fraudstream.online.kafka_clients import security_config
from fraudstream.online.messages import TransactionFeatures
from fraudstream.online.verdict import Verdict

FEATURES_OFFSET_HEADER = "features-offset"  # the offset on the features topic the verdict was scored from
RECENT = 10_000  # transactions remembered per partition, against Flink's re-emissions after a restart


def topic_message(verdict: Verdict, model_version: str) -> dict[str, Any]:
    """The verdicts topic's JSON: the verdict, what it was scored on and by which model, and where its
    transaction sat on the transactions topic (the key consumers de-duplicate by, if they ever need to)."""
    return {"tid": verdict.tid, "card": verdict.card, c.AMOUNT: verdict.amount, c.TRANS_TS: verdict.trans_ts,
            "score": verdict.score, "verdict": verdict.verdict, "features": verdict.features,
            "model_version": model_version, "late": verdict.late, "source": verdict.place().as_log()}


def source_of(message: dict[str, Any]) -> RecordRef:
    """The transaction place a verdicts-topic message names (topic_message's "source")."""
    source = message["source"]
    return RecordRef(str(source[c.TOPIC]), int(source[c.PARTITION]), int(source[c.OFFSET]))


@dataclass(frozen=True)
class Record:
    """One record of the verdicts topic as the writer writes and reads it."""

    key: bytes
    value: bytes
    features_offset: int


class PartitionLog(Protocol):
    """The verdicts topic, a partition at a time."""

    def end_offset(self, partition: int) -> int: ...

    def read(self, partition: int, start: int, end: int) -> list[Record]:
        """The records at offsets [start, end) (fewer if retention removed the first ones)."""

    def write(self, partition: int, records: Sequence[Record]) -> int:
        """Append ``records`` in order, all acknowledged, or raise; returns the offset after the last."""


@dataclass
class _Seen:
    """What a writer knows of one partition: its end offset, the highest features offset written to it, and the
    transactions of its last RECENT records."""

    end: int = -1  # -1: not read yet
    high: int = -1
    places: OrderedDict = field(default_factory=OrderedDict)

    def add(self, place: RecordRef, features_offset: int) -> None:
        self.high = max(self.high, features_offset)
        self.places[place] = None
        self.places.move_to_end(place)
        while len(self.places) > RECENT:
            self.places.popitem(last=False)


class VerdictWriter:
    """Writes each transaction's verdict once (module docstring); one per function instance."""

    def __init__(self, log: PartitionLog, model_version: str) -> None:
        self.log, self.model_version = log, model_version
        self._seen: dict[int, _Seen] = {}

    def publish(self, scored: Sequence[tuple[TransactionFeatures, Verdict]]) -> int:
        """Write the verdicts of ``scored`` not written before; returns how many were written."""
        by_partition: dict[int, list[tuple[TransactionFeatures, Verdict]]] = {}
        for message, verdict in scored:
            by_partition.setdefault(message.features_ref.partition, []).append((message, verdict))
        return sum(self._publish(partition, items) for partition, items in sorted(by_partition.items()))

    def _publish(self, partition: int, items: list[tuple[TransactionFeatures, Verdict]]) -> int:
        seen = self._catch_up(partition)
        records, places = [], {}  # places: a dict keeps their order and answers "in" at once
        for message, verdict in sorted(items, key=lambda item: item[0].features_ref.offset):
            offset, place = message.features_ref.offset, verdict.place()
            if offset <= seen.high or place in seen.places or place in places:
                continue
            value = json.dumps(topic_message(verdict, self.model_version), separators=(",", ":")).encode()
            records.append(Record(str(message.cc_num).encode(), value, offset))
            places[place] = None
        if not records:
            return 0
        seen.end = self.log.write(partition, records)
        for record, place in zip(records, places, strict=True):
            seen.add(place, record.features_offset)
        return len(records)

    def close(self) -> None:
        close = getattr(self.log, "close", None)
        if close is not None:
            close()

    def _catch_up(self, partition: int) -> _Seen:
        """Read what the partition gained since this writer last saw it (another instance, an earlier try)."""
        seen = self._seen.setdefault(partition, _Seen())
        end = self.log.end_offset(partition)
        if end < seen.end:  # the topic was recreated: what was seen is gone
            seen = self._seen[partition] = _Seen()
        if end > seen.end:
            start = max(seen.end, end - RECENT, 0)
            for record in self.log.read(partition, start, end) if start < end else ():
                seen.add(source_of(json.loads(record.value)), record.features_offset)
            seen.end = end
        return seen


class KafkaPartitionLog:
    """PartitionLog on a Kafka topic with kafka-python: a producer and an assigned consumer (no group), made on
    first use."""

    def __init__(self, brokers: str, topic: str, security: str, region: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self.brokers, self.topic, self.security, self.region = brokers, topic, security, region
        self.timeout_ms = int(timeout_s * 1000)
        self._producer = self._consumer = None

    def _config(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.brokers.split(","), "client_id": "fraudstream-verdicts",
                "request_timeout_ms": self.timeout_ms, "api_version_auto_timeout_ms": self.timeout_ms,
                **security_config(self.security, self.region)}

    def _tp(self, partition: int):
        from kafka import TopicPartition

        return TopicPartition(self.topic, partition)

    @property
    def consumer(self):
        if self._consumer is None:
            from kafka import KafkaConsumer

            self._consumer = KafkaConsumer(**self._config(), group_id=None, enable_auto_commit=False,
                                           auto_offset_reset="earliest", isolation_level="read_committed")
        return self._consumer

    @property
    def producer(self):
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(**self._config(), acks="all", retries=3, linger_ms=0,
                                           max_in_flight_requests_per_connection=1,
                                           delivery_timeout_ms=self.timeout_ms, max_block_ms=self.timeout_ms)
        return self._producer

    def close(self) -> None:
        for client in (self._producer, self._consumer):
            if client is not None:
                client.close()
        self._producer = self._consumer = None

    def end_offset(self, partition: int) -> int:
        tp = self._tp(partition)
        return self.consumer.end_offsets([tp])[tp]

    def read(self, partition: int, start: int, end: int) -> list[Record]:
        tp, consumer = self._tp(partition), self.consumer
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[Record] = []
        while consumer.position(tp) < end:
            batch = consumer.poll(timeout_ms=self.timeout_ms, max_records=5000).get(tp, [])
            if not batch:
                raise TimeoutError(f"{self.topic}/{partition}: nothing read at offset {consumer.position(tp)} "
                                   f"of {end} within {self.timeout_ms} ms")
            records += [Record(r.key, r.value, _features_offset(r.headers)) for r in batch if r.offset < end]
        return records

    def write(self, partition: int, records: Sequence[Record]) -> int:
        futures = [self.producer.send(self.topic, key=r.key, value=r.value, partition=partition,
                                      headers=[(FEATURES_OFFSET_HEADER, str(r.features_offset).encode())])
                   for r in records]
        self.producer.flush(timeout=self.timeout_ms / 1000)
        return max(f.get(timeout=self.timeout_ms / 1000).offset for f in futures) + 1


def _features_offset(headers) -> int:
    for name, value in headers or ():
        if name == FEATURES_OFFSET_HEADER:
            return int(value)
    return -1  # a record someone else wrote: it marks nothing as written
