"""Lambda's MSK trigger (event source mapping), on one machine: a consumer group feeding one function.

What it does, as the event source mapping does on AWS:
- consumes its topic as its consumer group (kafka-python), from the earliest offset when the group is new;
- gathers up to `batch_size` records, waiting at most `batching_window_s` for more once one is there;
- builds the MSK event from the real records (topic, partition, offset, timestamp, key, headers) and
  invokes the handler once per batch, one batch at a time, so each partition's order is kept;
- commits the offsets only after the handler returned;
- retries a failing batch `retry_attempts` times with a growing pause, then writes it whole to the
  on-failure folder in the S3 destination's format, commits, and moves on.
Settings come from online/settings.py (TriggerSettings), the ones the stack gives its triggers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import CommitFailedError, KafkaError

from fraudstream.local.lambda_runtime import LOCAL_CLUSTER_ARN, LambdaContext, msk_event, msk_record
from fraudstream.online.settings import TriggerSettings

LOG = logging.getLogger("fraudstream.local.trigger")
POLL_MS = 100
RETRY_PAUSE_S = (0.05, 2.0)  # first pause between attempts, and the most it doubles to
# MSK brokers of kafka.t3.small accept few new connections a second; back off reconnects (docs/deploy-reference.md: brokerInstanceType).
CONSUMER_OPTIONS = {"reconnect_backoff_ms": 100, "reconnect_backoff_max_ms": 2000, "session_timeout_ms": 10_000,
                    "heartbeat_interval_ms": 2000, "request_timeout_ms": 30_000}


class Trigger:
    """Run with run() (e.g. in a thread) until stop(); counts what it did."""

    def __init__(self, function_name: str, handler: Callable[[dict, Any], Any], settings: TriggerSettings,
                 bootstrap_servers: str, failure_dir: Path, sleep: Callable[[float], None] = time.sleep) -> None:
        self.function_name, self.handler, self.settings = function_name, handler, settings
        self.bootstrap_servers, self.failure_dir, self.sleep = bootstrap_servers, failure_dir, sleep
        self.context = LambdaContext(function_name=function_name,
                                     invoked_function_arn=f"arn:aws:lambda:local:000000000000:function:{function_name}")
        self.records = 0  # records of the batches the handler accepted
        self.invocations = 0
        self.failed_batches = 0
        self.failed_records = 0
        self.ready = threading.Event()  # set once the group has its partitions
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        consumer = KafkaConsumer(
            self.settings.topic, bootstrap_servers=self.bootstrap_servers, group_id=self.settings.consumer_group,
            client_id=f"lambda-{self.function_name}", enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=self.settings.batch_size, **CONSUMER_OPTIONS)
        try:
            while not self._stop.is_set():
                batch = self._next_batch(consumer)
                if batch:
                    self._deliver(batch)
                    self._commit(consumer)
        finally:
            consumer.close(autocommit=False)

    # --- one batch ----------------------------------------------------------------------------

    def _next_batch(self, consumer: KafkaConsumer) -> list:
        """Up to batch_size records; once one is there, wait at most the batching window for more."""
        batch: list = []
        deadline = None
        while not self._stop.is_set() and len(batch) < self.settings.batch_size:
            if deadline is None:
                timeout_ms = POLL_MS
            else:
                timeout_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
            polled = consumer.poll(timeout_ms=timeout_ms, max_records=self.settings.batch_size - len(batch))
            if consumer.assignment():
                self.ready.set()
            for records in polled.values():
                batch.extend(records)
            if batch and deadline is None:
                deadline = time.monotonic() + self.settings.batching_window_s
            if batch and time.monotonic() >= deadline:
                break
        return batch

    def event(self, batch: list) -> dict:
        """The MSK event of ``batch``, from each record's own metadata."""
        return msk_event((msk_record(r.topic, r.partition, r.offset, r.value, key=r.key, timestamp_ms=r.timestamp,
                                     headers=r.headers or ()) for r in batch),
                         cluster_arn=LOCAL_CLUSTER_ARN, bootstrap_servers=self.bootstrap_servers)

    def _deliver(self, batch: list) -> None:
        event = self.event(batch)
        pause, attempts = RETRY_PAUSE_S[0], 1 + self.settings.retry_attempts
        for attempt in range(1, attempts + 1):
            self.invocations += 1
            try:
                self.handler(event, self.context)
                self.records += len(batch)
                return
            except Exception:  # noqa: BLE001 - any failure of the function fails the batch, as on Lambda
                LOG.error("%s failed a batch of %d records (attempt %d of %d):\n%s", self.function_name, len(batch),
                          attempt, attempts, traceback.format_exc(limit=3))
                if attempt < attempts and not self._stop.is_set():
                    self.sleep(pause)
                    pause = min(pause * 2, RETRY_PAUSE_S[1])
        path = write_failure(self.failure_dir, self.function_name, event, batch, attempts)
        self.failed_batches += 1
        self.failed_records += len(batch)
        LOG.error("%s gave up on %d records after %d attempts: %s", self.function_name, len(batch), attempts, path)

    def _commit(self, consumer: KafkaConsumer) -> None:
        """Commit what was delivered; while the broker is away, keep trying (a rebalance means redelivery)."""
        while not self._stop.is_set():
            try:
                consumer.commit()
                return
            except CommitFailedError:
                LOG.warning("%s: group rebalanced before the commit; the batch may be delivered again", self.function_name)
                return
            except KafkaError as error:
                LOG.warning("%s: commit failed (%s); retrying", self.function_name, error)
                self.sleep(0.5)


def write_failure(failure_dir: Path, function_name: str, event: dict, batch: list, attempts: int) -> Path:
    """The batch as Lambda writes it to an S3 on-failure destination: metadata, and the whole event as a JSON string."""
    now = datetime.now(timezone.utc)
    payload = json.dumps(event)
    by_partition: dict[str, list] = {}
    for record in batch:
        by_partition.setdefault(f"{record.topic}-{record.partition}", []).append(record)
    document = {
        "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": f"arn:aws:lambda:local:000000000000:function:{function_name}",
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": _iso(now),
        "KafkaBatchInfo": {
            "batchSize": len(batch), "eventSourceArn": event["eventSourceArn"], "bootstrapServers": event["bootstrapServers"],
            "payloadSize": len(payload.encode()),
            "recordsInfo": {key: {"firstRecordOffset": str(records[0].offset), "lastRecordOffset": str(records[-1].offset),
                                  "firstRecordTimestamp": _iso_ms(records[0].timestamp),
                                  "lastRecordTimestamp": _iso_ms(records[-1].timestamp)}
                            for key, records in by_partition.items()},
        },
        "payload": payload,
    }
    first = next(iter(by_partition))
    path = failure_dir / function_name / first / now.strftime("%Y/%m/%d") / f"{now.strftime('%Y-%m-%dT%H.%M.%S')}-{uuid.uuid4()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
    tmp.rename(path)
    return path


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _iso_ms(epoch_ms: int) -> str:
    return _iso(datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc))
