"""The online definition: a transaction's model features rebuilt from the stored records.

For a transaction of card c at time t, the predict handler must produce what the batch SQL
(fraudstream/offline/sql/batch_features.sql) computes for it, window including the transaction
itself (README: "The online definition (training/serving parity)"):

- 10 minutes: the cc-agg-fg record if its trans_time >= t - 600 s, else nothing; then fold in the
  current transaction and the card's earlier transactions of the batch newer than the record.
- 1 week: the cc-agg-batch-fg record with the same fold-in and no staleness cut (the nightly job keeps
  it fresh); no record means no weekly history, so a first transaction has ratios of 1, as in batch.
- previous transaction: the latest of the streaming record's trans_time (its prev_trans_time when the
  record already includes this transaction), the batch's earlier transactions, the batch record's time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from fraudstream import contract as c


def online_features(
    trans_ts: float,
    amount: float,
    streaming: Mapping[str, Any] | None,
    batch: Mapping[str, Any] | None,
    earlier: Iterable[tuple[float, float]] = (),
) -> dict[str, Any]:
    """Every model feature of one transaction, equal to what the batch SQL computes for it.

    ``streaming`` and ``batch`` are the card's records in cc-agg-fg and cc-agg-batch-fg (None when
    missing); ``earlier`` holds (event time, amount) of the card's transactions scored before this
    one in the same batch. A record that already includes this transaction (its trans_time is
    not older) is not folded in twice. Stored records are scalars, so a transaction that left a
    window between a record's time and this one cannot be subtracted (README: "The online definition").
    """
    earlier = list(earlier)
    folded = [*earlier, (trans_ts, amount)]

    def window(record, count_name, average_name, seconds, stale_after):
        count, total, since = 0, 0.0, -math.inf
        if record is not None and record[c.TRANS_TIME] >= trans_ts - stale_after:
            count, since = int(record[count_name]), float(record[c.TRANS_TIME])
            total = float(record[average_name]) * count
        for ts, amt in folded:
            if ts > since and ts >= trans_ts - seconds:
                count, total = count + 1, total + amt
        return count, total / count

    n_10m, avg_10m = window(streaming, c.NUM_TRANS_LAST_10M, c.AVG_AMT_LAST_10M, c.WINDOW_10M_SECONDS, c.WINDOW_10M_SECONDS)
    # The batch record stands for the card's weekly profile, kept fresh nightly: no staleness cut.
    n_1w, avg_1w = window(batch, c.NUM_TRANS_LAST_1W, c.AVG_AMT_LAST_1W, c.WINDOW_1W_SECONDS, math.inf)

    previous = [ts for ts, _ in earlier]
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

    features = {
        c.AMOUNT: amount,
        c.NUM_TRANS_LAST_10M: n_10m,
        c.AVG_AMT_LAST_10M: avg_10m,
        c.NUM_TRANS_LAST_1W: n_1w,
        c.AVG_AMT_LAST_1W: avg_1w,
        c.SECS_SINCE_PREV_TX: float(min(gap, c.SECS_SINCE_PREV_TX_CAP)),
    }
    return c.add_ratio_features(features)


def feature_vector(features: Mapping[str, Any], feature_set: str) -> list[float]:
    """The model's input row for ``feature_set``, in the model's column order."""
    return [float(features[name]) for name in c.feature_names(feature_set)]
