"""Writing records to a SageMaker feature group with PutRecord: one definition for the online store
(fraudstream/online/stores.py) and for the custom resource that loads the 1-week group when the stack is
deployed (lambdas/stack_resources/handler.py, whose asset carries only root modules and boto3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from fraudstream import contract as c


@dataclass
class PutResult:
    written: int = 0
    failed: list[tuple[int, BaseException]] = field(default_factory=list)  # (card, error)


class RecordWriter(Protocol):
    def put_record(self, group: str, record: Mapping[str, Any]) -> None:
        """Store one record in ``group``."""


def encode(value: Any) -> str:
    """A feature value as PutRecord's ValueAsString: integers as they are, every other number as a float."""
    return str(value) if isinstance(value, int) else repr(float(value))


class FeatureGroupWriter:
    """PutRecord through a sagemaker-featurestore-runtime client: a RecordWriter for put_concurrently."""

    def __init__(self, client) -> None:
        self.client = client

    def put_record(self, group: str, record: Mapping[str, Any]) -> None:
        """One PutRecord; absent (None) values are left out."""
        self.client.put_record(FeatureGroupName=group, Record=[{"FeatureName": k, "ValueAsString": encode(v)}
                                                               for k, v in record.items() if v is not None])


def put_concurrently(store: RecordWriter, group: str, records: Iterable[Mapping[str, Any]], concurrency: int,
                     on_done: Callable[[], None] = lambda: None) -> PutResult:
    """Call ``store.put_record`` for every record with at most ``concurrency`` in flight; a failed put is
    collected per card. For stores whose writes are independent API calls (Feature Store's PutRecord).

    Records are taken from ``records`` only as slots free up, so a long iterator is never held in memory.
    """
    result = PutResult()
    pending: dict[Future, int] = {}

    def settle(done: Iterable[Future]) -> None:
        for future in done:
            card = pending.pop(future)
            error = future.exception()
            if error is None:
                result.written += 1
            else:
                result.failed.append((card, error))
            on_done()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for record in records:
            if len(pending) >= concurrency:
                settle(wait(pending, return_when=FIRST_COMPLETED)[0])
            pending[pool.submit(store.put_record, group, record)] = record[c.RECORD_IDENTIFIER]
        settle(wait(pending).done)
    return result
