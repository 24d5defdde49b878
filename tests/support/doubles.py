"""Stand-ins for the two interfaces of the handler logic (OnlineStore, Scorer), shared by the online tests."""

from __future__ import annotations

import threading
import time

from fraudstream import contract as c
from fraudstream.feature_puts import put_concurrently
from fraudstream.online.stores import EmbeddedOnlineStore


class MemoryStore:
    """The OnlineStore semantics in a dict (latest event time wins), for fast property tests."""

    def __init__(self):
        self.data = {}

    def get_records(self, requests):
        return {g: {card: self.data.get((g, card)) for card in cards} for g, cards in requests.items()}

    def put_records(self, group, records, concurrency, on_done=lambda: None):
        return put_concurrently(self, group, records, 1, on_done)

    def put_record(self, group, record):
        key = (group, record[c.CC_NUM])
        if key not in self.data or self.data[key][c.TRANS_TIME] <= record[c.TRANS_TIME]:
            self.data[key] = dict(record)


class RecordingStore:
    """An embedded store that counts reads and the peak number of concurrent writes."""

    def __init__(self, path):
        self.inner = EmbeddedOnlineStore(path)
        self.reads, self.writes, self.active, self.peak = 0, 0, 0, 0
        self.lock = threading.Lock()

    def get_records(self, requests):
        self.reads += 1
        return self.inner.get_records(requests)

    def put_records(self, group, records, concurrency, on_done=lambda: None):
        return put_concurrently(self, group, records, concurrency, on_done)  # parallel, to see the bound

    def put_record(self, group, record):
        with self.lock:
            self.writes += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.01)
        self.inner.put_record(group, record)
        with self.lock:
            self.active -= 1


class ConstantScorer:
    """Scores every row the same, and remembers the calls and rows it was given."""

    feature_set = "v2"

    def __init__(self, score: float = 0.1):
        self.calls, self.rows, self.fixed = 0, [], score

    def score(self, rows):
        self.calls += 1
        self.rows.extend(rows)
        return [self.fixed] * len(rows)
