"""Transactions into verdicts: the predict handler's logic.

Plain functions over parsed messages and the two interfaces (OnlineStore, Scorer);
lambdas/predict_from_features only wires them to the environment. Pure Python, shipped in the Lambda asset.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fraudstream import contract as c
from fraudstream.online import telemetry as t
from fraudstream.online.features import card_features, feature_vector
from fraudstream.online.messages import Transaction, parse_event, parse_transaction
from fraudstream.online.scorers import ModelOutputError, Scorer, check_scores
from fraudstream.online.settings import PredictSettings
from fraudstream.online.stores import OnlineStore
from fraudstream.online.verdict import Verdict


class FeatureRow(NamedTuple):
    transaction: Transaction
    features: dict[str, Any]
    streaming_record_age_s: float | None  # transaction time minus the record's (None: the card has none)
    batch_record_age_s: float | None


@dataclass
class PredictionBatch:
    verdicts: list[Verdict] = field(default_factory=list)
    cards_missing: dict[str, int] = field(default_factory=dict)
    endpoint_seconds: float = 0.0
    duplicates: list[tuple[Transaction, Transaction]] = field(default_factory=list)  # (duplicate, first)


def unique_transactions(transactions: Sequence[Transaction]) -> tuple[list[Transaction], list[tuple[Transaction, Transaction]]]:
    """Each transaction once: by its id when it has one, else by its place in the topic (the same record
    delivered twice). The first occurrence stays; the others come back with the one they repeat."""
    first: dict[tuple, Transaction] = {}
    unique, duplicates = [], []
    for tx in transactions:
        key = ("tid", tx.tid) if tx.tid else ("record", tx.ref.topic, tx.ref.partition, tx.ref.offset)
        if key in first:
            duplicates.append((tx, first[key]))
        else:
            first[key] = tx
            unique.append(tx)
    return unique, duplicates


POLL_S = 0.05  # between two reads of the lagging cards' records, while a batch waits for them


def lagging_cards(by_card: Mapping[int, Sequence[Transaction]], streaming: Mapping[int, Any]) -> list[int]:
    """Cards whose 10-minute record is missing or older than their latest transaction of the batch."""
    return [card for card, txs in by_card.items()
            if streaming.get(card) is None or float(streaming[card][c.TRANS_TIME]) < max(tx.trans_ts for tx in txs)]


def await_streaming_records(by_card: Mapping[int, Sequence[Transaction]], records: dict[str, dict], store: OnlineStore,
                            group: str, wait_s: float, sleep: Callable[[float], None] = time.sleep,
                            clock: Callable[[], float] = time.monotonic) -> float:
    """Re-read the 10-minute records of the lagging cards (one batched read a round, those cards only) until each
    holds its card's latest transaction or ``wait_s`` has passed; updates ``records``, returns the time waited."""
    started = clock()
    lagging = lagging_cards(by_card, records[group]) if wait_s > 0 else []
    while lagging and clock() - started < wait_s:
        sleep(min(POLL_S, max(0.0, wait_s - (clock() - started))))
        fresh = store.get_records({group: lagging})[group]
        records[group].update({card: record for card, record in fresh.items() if record is not None})
        lagging = lagging_cards({card: by_card[card] for card in lagging}, records[group])
    return clock() - started


def online_feature_rows(
    transactions: Sequence[Transaction], store: OnlineStore, streaming_group: str, batch_group: str,
    wait_s: float = 0.0, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
) -> tuple[list[FeatureRow], dict[str, int]]:
    """Features of every transaction: one store read for the batch (and, with ``wait_s``, re-reads for the cards
    whose record lags behind), then the online definition.

    A card's transactions are taken in event-time order, each seeing the ones before it. Each row also
    carries the age of the card's 10-minute and 1-week records at the transaction (None when it has none):
    with them `fraudstream consistency` rebuilds the records the features started from.
    """
    by_card: dict[int, list[Transaction]] = defaultdict(list)
    for tx in transactions:
        by_card[tx.cc_num].append(tx)
    records = store.get_records({streaming_group: list(by_card), batch_group: list(by_card)})
    await_streaming_records(by_card, records, store, streaming_group, wait_s, sleep, clock)
    missing = {group: sum(records[group].get(card) is None for card in by_card) for group in (streaming_group, batch_group)}
    rows = []
    for card, card_transactions in by_card.items():
        ordered = sorted(card_transactions, key=lambda x: (x.trans_ts, x.ref.partition, x.ref.offset))
        streaming, batch = records[streaming_group].get(card), records[batch_group].get(card)
        features = card_features([(tx.trans_ts, tx.amount) for tx in ordered], streaming, batch)
        since = None if streaming is None else float(streaming[c.TRANS_TIME])
        batch_since = None if batch is None else float(batch[c.TRANS_TIME])
        rows.extend(FeatureRow(tx, f, None if since is None else tx.trans_ts - since,
                               None if batch_since is None else tx.trans_ts - batch_since) for tx, f in zip(ordered, features))
    return rows, missing


def predict(
    transactions: Sequence[Transaction],
    store: OnlineStore,
    scorer: Scorer,
    settings: PredictSettings,
    clock: Callable[[], float] = time.perf_counter,
) -> PredictionBatch:
    """Verdicts for a batch, in record order: each transaction once, one store read, one model call (split only
    at the payload limit). A model answer that is not one probability per row raises ModelOutputError."""
    transactions, duplicates = unique_transactions(transactions)
    if not transactions:
        return PredictionBatch(duplicates=duplicates)
    rows, missing = online_feature_rows(transactions, store, settings.store.streaming_group, settings.store.batch_group,
                                        settings.streaming_wait_s)
    started = clock()
    scores = check_scores(scorer.score([feature_vector(row.features, settings.feature_set) for row in rows]),
                          len(rows))
    elapsed = clock() - started
    scored = sorted(zip(rows, scores, strict=True), key=lambda item: item[0].transaction.ref)  # (topic, partition, offset)
    spans = batch_spans(transactions)
    verdicts = [Verdict.of(row.transaction, row.features, score, settings.threshold, row.streaming_record_age_s,
                           row.batch_record_age_s, spans[(row.transaction.ref.topic, row.transaction.ref.partition)])
                for row, score in scored]
    return PredictionBatch(verdicts, missing, elapsed, duplicates)


def batch_spans(transactions: Sequence[Transaction]) -> dict[tuple[str, int], tuple[int, int]]:
    """(first, last) offset of each topic-partition's transactions: which ones were scored together."""
    spans: dict[tuple[str, int], tuple[int, int]] = {}
    for tx in transactions:
        where = (tx.ref.topic, tx.ref.partition)
        first, last = spans.get(where, (tx.ref.offset, tx.ref.offset))
        spans[where] = (min(first, tx.ref.offset), max(last, tx.ref.offset))
    return spans


def handle_predict_event(
    event: Mapping[str, Any], store: OnlineStore, scorer: Scorer, settings: PredictSettings,
    now: Callable[[], float] = time.time,
) -> dict[str, int]:
    transactions, invalid = parse_event(event, parse_transaction)
    t.report_invalid(invalid)
    try:
        batch = predict(transactions, store, scorer, settings)
    except ModelOutputError as error:
        t.logger.error("model output refused; the batch fails and is retried", extra={"reason": str(error)})
        t.metrics.add_metric(name=t.INVALID_MODEL_OUTPUT, unit="Count", value=1)
        raise
    for duplicate, first in batch.duplicates:
        t.logger.warning("duplicate transaction skipped", extra={**duplicate.ref.as_log(), "tid": duplicate.tid,
                                                                 "duplicate_of": first.ref.as_log()})
    t.metrics.add_metric(name=t.DUPLICATE_TRANSACTIONS, unit="Count", value=len(batch.duplicates))
    for verdict in batch.verdicts:
        t.logger.info(verdict.message(), extra=verdict.log_fields())
    fraud = sum(v.fraud for v in batch.verdicts)
    t.metrics.add_metric(name=t.TRANSACTIONS, unit="Count", value=len(batch.verdicts))
    t.metrics.add_metric(name=t.FRAUD_VERDICTS, unit="Count", value=fraud)
    if batch.verdicts:
        t.metrics.add_metric(name=t.CARDS_MISSING_STREAMING, unit="Count", value=batch.cards_missing[settings.store.streaming_group])
        t.metrics.add_metric(name=t.CARDS_MISSING_BATCH, unit="Count", value=batch.cards_missing[settings.store.batch_group])
        t.metrics.add_metric(name=t.ENDPOINT_LATENCY, unit="Milliseconds", value=batch.endpoint_seconds * 1000)
        t.add_largest(t.STREAMING_RECORD_AGE, [v.streaming_record_age_s for v in batch.verdicts
                                               if v.streaming_record_age_s is not None])
        at = now()
        t.add_largest(t.END_TO_END_LAG, [max(0.0, at - v.trans_ts) for v in batch.verdicts])
    return {"transactions": len(batch.verdicts), "fraud": fraud, "invalid": len(invalid),
            "duplicates": len(batch.duplicates)}

