"""The online definition: a transaction's model features rebuilt from the stored records.

For a transaction of card c at time t, the predict handler must produce what the batch SQL
(fraudstream/offline/sql/batch_features.sql) computes for it, window including the transaction
itself (docs/online-path.md: "The online definition (training/serving parity)"):

- 10 minutes: the cc-agg-fg record if its trans_time >= t - 600 s, else nothing; then fold in the
  current transaction and the card's earlier transactions of the batch newer than the record.
- 1 week: the cc-agg-batch-fg record with the same fold-in and no staleness cut (the nightly job keeps
  it fresh); no record means no weekly history, so a first transaction has ratios of 1, as in batch.
- previous transaction: the latest of the streaming record's trans_time (its prev_trans_time when the
  record already includes this transaction), the batch's earlier transactions, the batch record's time.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fraudstream import contract as c


def card_features(
    transactions: Sequence[tuple[float, float]],
    streaming: Mapping[str, Any] | None,
    batch: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """Every model feature of one card's transactions of a batch, given as (event time, amount) in scoring
    order (event time, then place in the topic); each sees the ones before it.

    ``streaming`` and ``batch`` are the card's records in cc-agg-fg and cc-agg-batch-fg (None when missing).
    A record that already includes a transaction (its trans_time is not older) is not folded in again, and
    the card's later transactions of the batch that the record already holds are taken out of it: a batch
    delivered again after Flink aggregated it gets the counts and averages of its first delivery. Stored
    records are scalars, so a transaction that left a window between a record's time and this one cannot be
    subtracted (docs/online-path.md: "The online definition"). One pass with binary searches: n log n in the card's
    transactions, whatever the batch size.
    """
    times = [ts for ts, _ in transactions]
    if times != sorted(times):
        raise ValueError("a card's transactions must come in event-time order")
    running = list(itertools.accumulate((amount for _, amount in transactions), initial=0.0))  # prefix sums
    rows = []
    for i, (trans_ts, amount) in enumerate(transactions):
        n_10m, avg_10m = _window(times, running, i, streaming, c.NUM_TRANS_LAST_10M, c.AVG_AMT_LAST_10M,
                                 c.WINDOW_10M_SECONDS, c.WINDOW_10M_SECONDS)
        # The batch record stands for the card's weekly profile, kept fresh nightly: no staleness cut.
        n_1w, avg_1w = _window(times, running, i, batch, c.NUM_TRANS_LAST_1W, c.AVG_AMT_LAST_1W,
                               c.WINDOW_1W_SECONDS, math.inf)
        previous = [times[i - 1]] if i else []
        if streaming is not None:
            record_ts, record_prev = streaming[c.TRANS_TIME], streaming.get(c.PREV_TRANS_TIME)
            if record_ts < trans_ts:
                previous.append(record_ts)
            elif record_prev is not None and (record_ts == trans_ts or record_prev < trans_ts):
                # The record already includes this transaction (or, scored late, newer ones too).
                previous.append(record_prev)
        if batch is not None and batch[c.TRANS_TIME] < trans_ts:
            previous.append(batch[c.TRANS_TIME])
        gap = trans_ts - max(previous) if previous else c.SECS_SINCE_PREV_TX_CAP
        rows.append(c.add_ratio_features({
            c.AMOUNT: amount,
            c.NUM_TRANS_LAST_10M: n_10m,
            c.AVG_AMT_LAST_10M: avg_10m,
            c.NUM_TRANS_LAST_1W: n_1w,
            c.AVG_AMT_LAST_1W: avg_1w,
            c.SECS_SINCE_PREV_TX: float(min(gap, c.SECS_SINCE_PREV_TX_CAP)),
        }))
    return rows


def _window(times: Sequence[float], running: Sequence[float], i: int, record: Mapping[str, Any] | None,
            count_name: str, average_name: str, seconds: float, stale_after: float) -> tuple[int, float]:
    """(count, average) of one window at transaction ``i``: the record's figures (unless older than
    ``stale_after``) plus the batch's transactions it lacks; ``running`` holds the amounts' prefix sums."""
    t = times[i]
    count, total, since = 0, 0.0, -math.inf
    if record is not None and record[c.TRANS_TIME] >= t - stale_after:
        count, since = int(record[count_name]), float(record[c.TRANS_TIME])
        total = float(record[average_name]) * count
        # Later transactions of this batch (strictly newer than this one) that the record already holds.
        lo, hi = max(bisect.bisect_right(times, t), i + 1), bisect.bisect_right(times, since)
        if hi > lo and count - (hi - lo) >= 1:
            count, total = count - (hi - lo), total - (running[hi] - running[lo])
    # This transaction and the batch's earlier ones newer than the record and inside the window.
    lo = max(bisect.bisect_right(times, since), bisect.bisect_left(times, t - seconds))
    if lo <= i:
        count, total = count + (i + 1 - lo), total + (running[i + 1] - running[lo])
    return count, total / count


def online_features(
    trans_ts: float,
    amount: float,
    streaming: Mapping[str, Any] | None,
    batch: Mapping[str, Any] | None,
    earlier: Iterable[tuple[float, float]] = (),
) -> dict[str, Any]:
    """Every model feature of one transaction, equal to what the batch SQL computes for it; ``earlier``
    holds (event time, amount) of the card's transactions scored before it in the same batch."""
    return card_features([*sorted(earlier), (trans_ts, amount)], streaming, batch)[-1]


def feature_vector(features: Mapping[str, Any], feature_set: str) -> list[float]:
    """The model's input row for ``feature_set``, in the model's column order."""
    return [float(features[name]) for name in c.feature_names(feature_set)]
