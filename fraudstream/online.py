"""The online path's logic: aggregate messages into the store, transactions into verdicts.

Plain functions over parsed messages and the two interfaces (OnlineStore, Scorer); the Lambda
handlers only wire them to the environment. Pure Python, shipped in both Lambda assets.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fraudstream import contract as c
from fraudstream import telemetry as t
from fraudstream.messages import Aggregate, InvalidRecord, Transaction, parse_aggregate, parse_event, parse_transaction
from fraudstream.scorers import Scorer
from fraudstream.settings import AggregateSettings, ConfigurationError, PredictSettings
from fraudstream.stores import OnlineStore


# --- Aggregates -> cc-agg-fg -------------------------------------------------------------------


def newest_per_card(aggregates: Sequence[Aggregate]) -> list[Aggregate]:
    """Each card's newest aggregate (latest event time, then latest offset): the only one worth a write."""
    newest: dict[int, Aggregate] = {}
    for aggregate in aggregates:
        kept = newest.get(aggregate.cc_num)
        if kept is None or (aggregate.trans_ts, aggregate.ref.offset) >= (kept.trans_ts, kept.ref.offset):
            newest[aggregate.cc_num] = aggregate
    return list(newest.values())


def write_aggregates(aggregates: Sequence[Aggregate], store: OnlineStore, group: str, max_concurrency: int) -> dict[str, int]:
    """Put each card's newest aggregate, cards in parallel (bounded); a failed put raises."""
    newest = newest_per_card(aggregates)
    if newest:
        with ThreadPoolExecutor(max_workers=min(max_concurrency, len(newest))) as pool:
            list(pool.map(lambda a: store.put_record(group, a.as_record()), newest))
    return {"written": len(newest), "skipped_stale": len(aggregates) - len(newest)}


def handle_aggregate_event(event: Mapping[str, Any], store: OnlineStore, settings: AggregateSettings) -> dict[str, int]:
    aggregates, invalid = parse_event(event, parse_aggregate)
    report_invalid(invalid)
    summary = write_aggregates(aggregates, store, settings.store.streaming_group, settings.max_concurrency)
    t.metrics.add_metric(name=t.AGGREGATES_WRITTEN, unit="Count", value=summary["written"])
    t.metrics.add_metric(name=t.AGGREGATES_SKIPPED_STALE, unit="Count", value=summary["skipped_stale"])
    return {**summary, "invalid": len(invalid)}


# --- Transactions -> verdicts ---------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    transaction: Transaction
    features: dict[str, Any]
    score: float
    fraud: bool

    @property
    def verdict(self) -> str:
        return "FRAUD" if self.fraud else "NOT FRAUD"

    def line(self) -> str:
        """The seed's log line, card masked."""
        return (
            f"Prediction: {self.verdict} ({self.score:.6f}), num last 10m: {self.features[c.NUM_TRANS_LAST_10M]}, "
            f"avg amt last 10m: {self.features[c.AVG_AMT_LAST_10M]:.2f}, card num: {c.mask_card(self.transaction.cc_num)}, "
            f"amount: {self.transaction.amount:.2f}"
        )

    def log_fields(self) -> dict[str, Any]:
        tx = self.transaction
        return {
            **tx.ref.as_log(),
            "card": c.mask_card(tx.cc_num),
            "tid": tx.tid,
            "trans_ts": tx.trans_ts,
            "amount": tx.amount,
            "score": self.score,
            "verdict": self.verdict,
            "features": self.features,
        }


@dataclass
class PredictionBatch:
    predictions: list[Prediction] = field(default_factory=list)
    cards_missing: dict[str, int] = field(default_factory=dict)
    endpoint_seconds: float = 0.0


def online_feature_rows(
    transactions: Sequence[Transaction], store: OnlineStore, streaming_group: str, batch_group: str
) -> tuple[list[tuple[Transaction, dict[str, Any]]], dict[str, int]]:
    """Features of every transaction: one store read for the batch, then the online definition.

    A card's transactions are taken in event-time order, each seeing the ones before it.
    """
    by_card: dict[int, list[Transaction]] = defaultdict(list)
    for tx in transactions:
        by_card[tx.cc_num].append(tx)
    records = store.get_records({streaming_group: list(by_card), batch_group: list(by_card)})
    missing = {group: sum(records[group].get(card) is None for card in by_card) for group in (streaming_group, batch_group)}
    rows = []
    for card, card_transactions in by_card.items():
        earlier: list[tuple[float, float]] = []
        for tx in sorted(card_transactions, key=lambda x: (x.trans_ts, x.ref.partition, x.ref.offset)):
            rows.append((tx, c.online_features(tx.trans_ts, tx.amount, records[streaming_group].get(card),
                                                records[batch_group].get(card), earlier)))
            earlier.append((tx.trans_ts, tx.amount))
    return rows, missing


def predict(
    transactions: Sequence[Transaction],
    store: OnlineStore,
    scorer: Scorer,
    settings: PredictSettings,
    clock: Callable[[], float] = time.perf_counter,
) -> PredictionBatch:
    """Verdicts for a batch: one store read, one model call (split only at the payload limit)."""
    if not transactions:
        return PredictionBatch()
    rows, missing = online_feature_rows(transactions, store, settings.store.streaming_group, settings.store.batch_group)
    started = clock()
    scores = scorer.score([c.feature_vector(features, settings.feature_set) for _, features in rows])
    elapsed = clock() - started
    predictions = [
        Prediction(tx, features, score, score > settings.threshold) for (tx, features), score in zip(rows, scores, strict=True)
    ]
    predictions.sort(key=lambda p: (p.transaction.ref.topic, p.transaction.ref.partition, p.transaction.ref.offset))
    return PredictionBatch(predictions, missing, elapsed)


def handle_predict_event(
    event: Mapping[str, Any], store: OnlineStore, scorer: Scorer, settings: PredictSettings
) -> dict[str, int]:
    transactions, invalid = parse_event(event, parse_transaction)
    report_invalid(invalid)
    batch = predict(transactions, store, scorer, settings)
    for prediction in batch.predictions:
        t.logger.info(prediction.line(), extra=prediction.log_fields())
    fraud = sum(p.fraud for p in batch.predictions)
    t.metrics.add_metric(name=t.TRANSACTIONS, unit="Count", value=len(batch.predictions))
    t.metrics.add_metric(name=t.FRAUD_VERDICTS, unit="Count", value=fraud)
    if batch.predictions:
        t.metrics.add_metric(name=t.CARDS_MISSING_STREAMING, unit="Count", value=batch.cards_missing[settings.store.streaming_group])
        t.metrics.add_metric(name=t.CARDS_MISSING_BATCH, unit="Count", value=batch.cards_missing[settings.store.batch_group])
        t.metrics.add_metric(name=t.ENDPOINT_LATENCY, unit="Milliseconds", value=batch.endpoint_seconds * 1000)
    return {"transactions": len(batch.predictions), "fraud": fraud, "invalid": len(invalid)}


def report_invalid(invalid: Sequence[InvalidRecord]) -> None:
    """One structured error per unusable record, naming where it is; never its content."""
    for record in invalid:
        t.logger.error("invalid record skipped", extra={**record.ref.as_log(), "reason": record.reason})
    t.metrics.add_metric(name=t.INVALID_RECORDS, unit="Count", value=len(invalid))


def check_model(settings: PredictSettings, scorer: Scorer) -> None:
    """Refuse to start when the model was trained on another feature set than the one configured."""
    trained_on = scorer.feature_set or settings.model_feature_set
    if trained_on is not None and trained_on != settings.feature_set:
        raise ConfigurationError(
            f"FEATURE_SET={settings.feature_set} but the model expects feature set {trained_on}; "
            "set FEATURE_SET to match the model, or deploy a model trained on it"
        )
