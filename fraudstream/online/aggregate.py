"""Flink's transaction features into the streaming feature group: the aggregate handler's logic.

cc-agg-fg holds each card's current 10-minute record (the AWS sample's group), for anyone who asks
(`fraudstream card`); the predict function no longer reads it: each message carries its own features.

Plain functions over parsed messages and the OnlineStore interface; lambdas/aggregate_to_feature_store
only wires them to the environment. Pure Python, shipped in the Lambda asset.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fraudstream.online import telemetry as t
from fraudstream.online.messages import TransactionFeatures, parse_event, parse_transaction_features
from fraudstream.online.settings import AggregateSettings
from fraudstream.online.stores import OnlineStore, StoreError


def newest_per_card(aggregates: Sequence[TransactionFeatures]) -> list[TransactionFeatures]:
    """Each card's newest record (latest event time, then latest place in its partition): the only one worth a
    write. Late transactions are left out: they carry features of themselves alone, not the card's."""
    newest: dict[int, TransactionFeatures] = {}
    for aggregate in aggregates:
        if aggregate.late:
            continue
        kept = newest.get(aggregate.cc_num)
        if kept is None or (aggregate.event_ms, aggregate.ref.offset) >= (kept.event_ms, kept.ref.offset):
            newest[aggregate.cc_num] = aggregate
    return list(newest.values())


def write_aggregates(aggregates: Sequence[TransactionFeatures], store: OnlineStore, group: str, max_concurrency: int) -> dict[str, int]:
    """Put each card's newest aggregate, cards in parallel (bounded); any failed put fails the batch."""
    newest = newest_per_card(aggregates)
    result = store.put_records(group, [a.as_record() for a in newest], max_concurrency)
    if result.failed:
        _card, error = result.failed[0]
        raise StoreError(f"{len(result.failed)} of {len(newest)} aggregate writes failed") from error
    return {"written": result.written, "skipped_stale": len(aggregates) - len(newest)}


def handle_aggregate_event(event: Mapping[str, Any], store: OnlineStore, settings: AggregateSettings,
                           now: Callable[[], float] = time.time) -> dict[str, int]:
    aggregates, invalid = parse_event(event, parse_transaction_features)
    t.report_invalid(invalid)
    summary = write_aggregates(aggregates, store, settings.store.streaming_group, settings.max_concurrency)
    at = now()  # written: how long after its transaction each newest aggregate reached the store
    t.add_largest(t.AGGREGATE_LAG, [max(0.0, at - a.trans_ts) for a in newest_per_card(aggregates)])
    t.metrics.add_metric(name=t.AGGREGATES_WRITTEN, unit="Count", value=summary["written"])
    t.metrics.add_metric(name=t.AGGREGATES_SKIPPED_STALE, unit="Count", value=summary["skipped_stale"])
    return {**summary, "invalid": len(invalid)}
