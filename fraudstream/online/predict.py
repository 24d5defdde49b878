"""Flink's transaction features into verdicts: the predict handler's logic.

Plain functions over parsed messages and the two interfaces (OnlineStore, Scorer);
lambdas/predict_from_features only wires them to the environment. Pure Python, shipped in the Lambda asset.

Each message carries its own transaction's streaming features, computed by Flink in order
(fraudstream/online/features.py), so a verdict never depends on how far this function lags behind: a batch
takes one read of the cards' 1-week records and one model call, at any load or backlog.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fraudstream import contract as c
from fraudstream.contract import RecordRef
from fraudstream.online import telemetry as t
from fraudstream.online.features import feature_vector, model_features
from fraudstream.online.messages import (TransactionFeatures, parse_event, parse_invalid_report,
                                         parse_transaction_features)
from fraudstream.online.scorers import ModelOutputError, Scorer, check_scores
from fraudstream.online.settings import PredictSettings
from fraudstream.online.stores import OnlineStore
from fraudstream.online.verdict import Verdict
from fraudstream.online.verdict_topic import VerdictWriter


@dataclass
class PredictionBatch:
    verdicts: list[Verdict] = field(default_factory=list)
    cards_missing_batch: int = 0  # cards with no 1-week record
    endpoint_seconds: float = 0.0
    duplicates: list[tuple[TransactionFeatures, TransactionFeatures]] = field(default_factory=list)  # (again, first)
    scored: list[tuple[TransactionFeatures, Verdict]] = field(default_factory=list)  # each verdict with its message


def unique_transactions(messages: Sequence[TransactionFeatures]
                        ) -> tuple[list[TransactionFeatures], list[tuple[TransactionFeatures, TransactionFeatures]]]:
    """Each transaction once, by its place on the transactions topic (Flink writes at least once: a restart
    may emit a transaction again). The first occurrence stays; the others come back with the one they repeat."""
    first: dict[RecordRef, TransactionFeatures] = {}
    unique, duplicates = [], []
    for message in messages:
        if message.ref in first:
            duplicates.append((message, first[message.ref]))
        else:
            first[message.ref] = message
            unique.append(message)
    return unique, duplicates


def predict(messages: Sequence[TransactionFeatures], store: OnlineStore, scorer: Scorer, settings: PredictSettings,
            clock: Callable[[], float] = time.perf_counter) -> PredictionBatch:
    """Verdicts for a batch, in the transactions' topic order: each transaction once, one read of the 1-week group,
    one model call (split only at the payload limit). A model answer that is not one probability per row raises
    ModelOutputError."""
    messages, duplicates = unique_transactions(messages)
    if not messages:
        return PredictionBatch(duplicates=duplicates)
    group = settings.store.batch_group
    records = store.get_records({group: list(dict.fromkeys(m.cc_num for m in messages))})[group]
    features = [model_features(m, records.get(m.cc_num)) for m in messages]
    started = clock()
    scores = check_scores(scorer.score([feature_vector(f, settings.feature_set) for f in features]), len(messages))
    elapsed = clock() - started
    scored = sorted(((m, Verdict.of(m, f, score, settings.threshold, _age(m, records.get(m.cc_num))))
                     for m, f, score in zip(messages, features, scores, strict=True)), key=lambda s: s[1].place())
    return PredictionBatch([v for _, v in scored], sum(record is None for record in records.values()), elapsed,
                           duplicates, scored)


def _age(message: TransactionFeatures, record: Mapping[str, Any] | None) -> float | None:
    """Transaction time minus the time of the card's 1-week record (None: the card has none)."""
    return None if record is None else message.trans_ts - float(record[c.TRANS_TIME])


def handle_predict_event(event: Mapping[str, Any], store: OnlineStore, scorer: Scorer, settings: PredictSettings,
                         now: Callable[[], float] = time.time, writer: VerdictWriter | None = None) -> dict[str, int]:
    """An MSK event of either trigger: features messages are scored, Flink's invalid-transaction reports logged.

    The verdicts go to the verdicts topic (``writer``; once per transaction, a retried batch included) before
    they are logged: a batch whose write fails is retried whole, and logged then."""
    features_event, invalid_event = split_by_topic(event, c.INVALID_TRANSACTIONS_TOPIC)
    refused = report_refused(invalid_event) if invalid_event["records"] else 0
    messages, unusable = parse_event(features_event, parse_transaction_features)
    t.report_invalid(unusable)
    try:
        batch = predict(messages, store, scorer, settings)
    except ModelOutputError as error:
        t.logger.error("model output refused; the batch fails and is retried", extra={"reason": str(error)})
        t.metrics.add_metric(name=t.INVALID_MODEL_OUTPUT, unit="Count", value=1)
        raise
    for duplicate, first in batch.duplicates:
        t.logger.warning("duplicate transaction skipped", extra={**duplicate.ref.as_log(), "tid": duplicate.tid,
                                                                 "duplicate_of": first.features_ref.as_log()})
    published = writer.publish(batch.scored) if writer is not None else 0
    for verdict in batch.verdicts:
        t.logger.info(verdict.message(), extra=verdict.log_fields())
    fraud = sum(v.fraud for v in batch.verdicts)
    late = sum(v.late for v in batch.verdicts)
    if messages or unusable:
        t.metrics.add_metric(name=t.DUPLICATE_TRANSACTIONS, unit="Count", value=len(batch.duplicates))
        t.metrics.add_metric(name=t.TRANSACTIONS, unit="Count", value=len(batch.verdicts))
        t.metrics.add_metric(name=t.FRAUD_VERDICTS, unit="Count", value=fraud)
        t.metrics.add_metric(name=t.LATE_TRANSACTIONS, unit="Count", value=late)
    if batch.verdicts:
        t.metrics.add_metric(name=t.CARDS_MISSING_BATCH, unit="Count", value=batch.cards_missing_batch)
        t.metrics.add_metric(name=t.ENDPOINT_LATENCY, unit="Milliseconds", value=batch.endpoint_seconds * 1000)
        at = now()
        t.add_largest(t.END_TO_END_LAG, [max(0.0, at - v.trans_ts) for v in batch.verdicts])
    return {"transactions": len(batch.verdicts), "fraud": fraud, "late": late, "invalid": len(unusable) + refused,
            "duplicates": len(batch.duplicates), "published": published}


def split_by_topic(event: Mapping[str, Any], topic: str) -> tuple[dict, dict]:
    """(the event without ``topic``'s records, the event with only them): one function serves both triggers."""
    others, chosen = {}, {}
    for key, chunk in (event.get("records") or {}).items():
        on_topic = bool(chunk) and chunk[0].get("topic") == topic
        (chosen if on_topic else others)[key] = chunk
    return {**event, "records": others}, {**event, "records": chosen}


def report_refused(event: Mapping[str, Any]) -> int:
    """Log each record Flink refused (its place on the transactions topic and the reason, never its content) and
    count them in the InvalidRecords metric, with the predict function's own unusable records."""
    reports, unusable = parse_event(event, parse_invalid_report)
    for report in reports:
        t.logger.error("invalid transaction refused", extra={**report.ref.as_log(), "reason": report.reason})
    t.metrics.add_metric(name=t.INVALID_RECORDS, unit="Count", value=len(reports))
    t.report_invalid(unusable)
    return len(reports) + len(unusable)
