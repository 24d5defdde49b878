"""Transactions into verdicts: the predict handler's logic.

Plain functions over parsed messages and the two interfaces (OnlineStore, Scorer);
lambdas/predict_from_features only wires them to the environment. Pure Python, shipped in the Lambda asset.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fraudstream.online import telemetry as t
from fraudstream.online.features import feature_vector, online_features
from fraudstream.online.messages import Transaction, parse_event, parse_transaction
from fraudstream.online.scorers import Scorer
from fraudstream.online.settings import PredictSettings
from fraudstream.online.stores import OnlineStore
from fraudstream.online.verdict import Verdict


@dataclass
class PredictionBatch:
    verdicts: list[Verdict] = field(default_factory=list)
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
            rows.append((tx, online_features(tx.trans_ts, tx.amount, records[streaming_group].get(card),
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
    """Verdicts for a batch, in record order: one store read, one model call (split only at the payload limit)."""
    if not transactions:
        return PredictionBatch()
    rows, missing = online_feature_rows(transactions, store, settings.store.streaming_group, settings.store.batch_group)
    started = clock()
    scores = scorer.score([feature_vector(features, settings.feature_set) for _, features in rows])
    elapsed = clock() - started
    scored = sorted(zip(rows, scores, strict=True), key=lambda item: _record_order(item[0][0]))
    verdicts = [Verdict.of(tx, features, score, settings.threshold) for (tx, features), score in scored]
    return PredictionBatch(verdicts, missing, elapsed)


def _record_order(tx: Transaction) -> tuple[str, int, int]:
    return tx.ref.topic, tx.ref.partition, tx.ref.offset


def handle_predict_event(
    event: Mapping[str, Any], store: OnlineStore, scorer: Scorer, settings: PredictSettings
) -> dict[str, int]:
    transactions, invalid = parse_event(event, parse_transaction)
    t.report_invalid(invalid)
    batch = predict(transactions, store, scorer, settings)
    for verdict in batch.verdicts:
        t.logger.info(verdict.message(), extra=verdict.log_fields())
    fraud = sum(v.fraud for v in batch.verdicts)
    t.metrics.add_metric(name=t.TRANSACTIONS, unit="Count", value=len(batch.verdicts))
    t.metrics.add_metric(name=t.FRAUD_VERDICTS, unit="Count", value=fraud)
    if batch.verdicts:
        t.metrics.add_metric(name=t.CARDS_MISSING_STREAMING, unit="Count", value=batch.cards_missing[settings.store.streaming_group])
        t.metrics.add_metric(name=t.CARDS_MISSING_BATCH, unit="Count", value=batch.cards_missing[settings.store.batch_group])
        t.metrics.add_metric(name=t.ENDPOINT_LATENCY, unit="Milliseconds", value=batch.endpoint_seconds * 1000)
    return {"transactions": len(batch.verdicts), "fraud": fraud, "invalid": len(invalid)}

