"""Online feature store: one interface, two backends (SageMaker Feature Store, embedded SQLite).

Semantics both keep (those of the SageMaker online store): a record is a flat mapping of feature
values, identified by cc_num; a put with an older event time than the stored record is ignored
(latest event time wins); an unknown card reads as None; records may expire after a TTL.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import orjson

from fraudstream import contract as c
from fraudstream.feature_puts import FeatureGroupWriter, PutResult, put_concurrently

Record = dict[str, Any]

# BatchGetRecord's documented limits: 100 identifiers per request, 100 records per identifier.
MAX_IDENTIFIERS_PER_REQUEST = 100
MAX_RECORDS_PER_IDENTIFIER = 100
UNPROCESSED_RETRIES = 5


class OnlineStore(Protocol):
    def get_records(self, requests: Mapping[str, Collection[int]]) -> dict[str, dict[int, Record | None]]:
        """For each feature group, the record of each requested card (None if it has none)."""

    def put_record(self, group: str, record: Mapping[str, Any]) -> None:
        """Store ``record``, unless the group already holds a newer one for the card."""

    def put_records(self, group: str, records: Iterable[Mapping[str, Any]], concurrency: int,
                    on_done: Callable[[], None] = lambda: None) -> PutResult:
        """Store many records, each as put_record would; a failed one is reported per card, not raised."""


class StoreError(RuntimeError):
    """The store could not answer: the batch must be retried, not scored on partial data."""


def _decode(group: str, values: Mapping[str, str]) -> Record:
    types = dict(c.FEATURE_GROUP_SCHEMAS[group])
    return {name: (int(v) if types.get(name) == c.INTEGRAL else float(v)) for name, v in values.items() if name in types}


class FeatureStoreOnlineStore(FeatureGroupWriter):
    """SageMaker Feature Store online store, through sagemaker-featurestore-runtime (put_record: FeatureGroupWriter)."""

    def __init__(self, client, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(client)
        self.sleep = sleep

    def get_records(self, requests: Mapping[str, Collection[int]]) -> dict[str, dict[int, Record | None]]:
        found: dict[str, dict[int, Record | None]] = {group: dict.fromkeys(cards) for group, cards in requests.items()}
        identifiers = [
            {"FeatureGroupName": group, "RecordIdentifiersValueAsString": chunk}
            for group, cards in requests.items()
            for chunk in _chunks([str(card) for card in dict.fromkeys(cards)], MAX_RECORDS_PER_IDENTIFIER)
        ]
        for request in _chunks(identifiers, MAX_IDENTIFIERS_PER_REQUEST):
            attempt = 0
            while request:
                response = self.client.batch_get_record(Identifiers=request)
                if response.get("Errors"):
                    first = response["Errors"][0]
                    raise StoreError(f"BatchGetRecord failed for {len(response['Errors'])} record(s): "
                                     f"{first.get('ErrorCode')}: {first.get('ErrorMessage')}")
                for item in response.get("Records", []):
                    values = {f["FeatureName"]: f["ValueAsString"] for f in item["Record"]}
                    group = item["FeatureGroupName"]
                    found.setdefault(group, {})[int(item["RecordIdentifierValueAsString"])] = _decode(group, values)
                request = response.get("UnprocessedIdentifiers") or []
                attempt += 1
                if request and attempt > UNPROCESSED_RETRIES:
                    raise StoreError(f"BatchGetRecord left records unprocessed after {UNPROCESSED_RETRIES} retries")
                if request:
                    self.sleep(min(0.05 * 2**attempt, 1.0))
        return found

    def put_records(self, group: str, records: Iterable[Mapping[str, Any]], concurrency: int,
                    on_done: Callable[[], None] = lambda: None) -> PutResult:
        """One PutRecord per record (the API has no batch write), at most ``concurrency`` in flight."""
        return put_concurrently(self, group, records, concurrency, on_done)


class EmbeddedOnlineStore:
    """The online store in one SQLite file, shared by the processes of the local pipeline."""

    def __init__(self, path: str | os.PathLike, ttl_seconds: float | None = None, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._local = threading.local()
        # SQLite takes one writer at a time and makes the others sleep and retry: let this
        # process's threads queue here instead.
        self._write_lock = threading.Lock()
        with self._connection() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS records (feature_group TEXT NOT NULL, record_id INTEGER NOT NULL, "
                "event_time REAL NOT NULL, record TEXT NOT NULL, PRIMARY KEY (feature_group, record_id))"
            )

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread: the aggregate handler writes from a thread pool.
        con = getattr(self._local, "con", None)
        if con is None:
            # Switching a new file to WAL takes a lock SQLite's busy timeout does not wait for: processes that
            # open a fresh store together take turns here (a lock file beside it) instead of failing.
            with open(self.path.with_name(self.path.name + ".lock"), "a") as guard:
                fcntl.flock(guard, fcntl.LOCK_EX)
                con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                con.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            con.execute("PRAGMA synchronous=NORMAL")  # no fsync per write; WAL keeps the file consistent
            self._local.con = con
        return con

    def get_records(self, requests: Mapping[str, Collection[int]]) -> dict[str, dict[int, Record | None]]:
        con = self._connection()
        found: dict[str, dict[int, Record | None]] = {}
        for group, cards in requests.items():
            found[group] = dict.fromkeys(cards)
            for chunk in _chunks(list(dict.fromkeys(cards)), 500):
                rows = con.execute(
                    f"SELECT record_id, event_time, record FROM records WHERE feature_group = ? "
                    f"AND record_id IN ({','.join('?' * len(chunk))})",
                    [group, *chunk],
                )
                for record_id, event_time, record in rows:
                    if self.ttl_seconds is None or self.clock() - event_time <= self.ttl_seconds:
                        found[group][record_id] = orjson.loads(record)
        return found

    def put_record(self, group: str, record: Mapping[str, Any]) -> None:
        with self._write_lock:
            self._put(group, record)

    def put_records(self, group: str, records: Iterable[Mapping[str, Any]], concurrency: int,
                    on_done: Callable[[], None] = lambda: None) -> PutResult:
        """All records in one transaction (SQLite takes one writer at a time: parallel puts only queue)."""
        records = list(records)
        try:
            with self._write_lock:
                con = self._connection()
                con.execute("BEGIN IMMEDIATE")
                try:
                    con.executemany(_UPSERT, [_row(group, record) for record in records])
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
        except (sqlite3.Error, KeyError, TypeError, ValueError) as error:
            return PutResult(failed=[(record.get(c.RECORD_IDENTIFIER), error) for record in records])
        for _ in records:
            on_done()
        return PutResult(written=len(records))

    def _put(self, group: str, record: Mapping[str, Any]) -> None:
        self._connection().execute(_UPSERT, _row(group, record))


# Latest event time wins, as in the SageMaker online store.
_UPSERT = ("INSERT INTO records (feature_group, record_id, event_time, record) VALUES (?, ?, ?, ?) "
           "ON CONFLICT (feature_group, record_id) DO UPDATE SET event_time = excluded.event_time, "
           "record = excluded.record WHERE excluded.event_time >= records.event_time")


def _row(group: str, record: Mapping[str, Any]) -> list:
    return [group, int(record[c.RECORD_IDENTIFIER]), float(record[c.EVENT_TIME_FEATURE]), orjson.dumps(dict(record)).decode()]


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
