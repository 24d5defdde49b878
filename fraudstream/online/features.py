"""The online definition: a transaction's model features from Flink's message and the card's 1-week record.

Flink computes each transaction's streaming features in order on event time (flink_sql/features_in_order.sql),
the definition the batch SQL (fraudstream/offline/sql/batch_features.sql) computes for training, so they
hold whatever the load or backlog of the functions that read them (docs/online-path.md: "The online
definition"):

- 10 minutes: Flink's count, and its exact sum divided by the count (as the batch SQL divides).
- previous transaction: Flink's, else the 1-week record's last transaction (a card Flink has not seen since
  the cutoff).
- 1 week: the 7 full UTC days before the transaction's day plus Flink's running total of the day itself. Each
  of the 7 days comes from the nightly record's tile when the nightly run covered it (cutoff after the day,
  within its WEEK_TILES days), else from Flink's total of that day in the message: exact whether the nightly
  run is on time, late by days or ahead, as long as Flink has seen the days since the record's cutoff (a job
  started after them, with no nightly run since, has not: docs/online-path.md). Sums are added in whole
  cents, as exact as the batch SQL's decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from fraudstream import contract as c
from fraudstream.online.messages import TransactionFeatures


class Week(NamedTuple):
    count: int
    cents: int


def cents(amount: float) -> int:
    """An exact sum of cent amounts (a decimal read as the nearest double) back in whole cents."""
    return round(amount * 100)


def prior_days(tx: TransactionFeatures, record: Mapping[str, Any] | None) -> Week:
    """The card's count and sum over the 7 UTC days before ``tx``'s day."""
    day = tx.event_ms // c.MS_PER_DAY
    cutoff = None if record is None else round(float(record[c.TRANS_TIME]) / c.SECONDS_PER_DAY)
    count = total = 0
    for k in range(1, c.DAYS_BEFORE + 1):
        tile = None if cutoff is None else cutoff - (day - k)  # the record's k-th day before its cutoff
        if tile is not None and 1 <= tile <= c.WEEK_TILES:
            count += int(record[c.DAY_COUNTS[tile - 1]])
            total += cents(float(record[c.DAY_SUMS[tile - 1]]))
        else:
            count += tx.num_trans_days_before[k - 1]
            total += cents(tx.amt_sum_days_before[k - 1])
    return Week(count, total)


def model_features(tx: TransactionFeatures, record: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every model feature of ``tx`` (``record``: the card's cc-agg-batch-fg record, None when it has none)."""
    previous = tx.prev_event_ms
    if previous is None and record is not None:
        last = c.event_ms(float(record[c.LAST_TRANS_TIME]))
        previous = last if last < tx.event_ms else None
    week = prior_days(tx, record)
    n_1w = week.count + tx.num_trans_today
    return c.add_ratio_features({
        c.AMOUNT: tx.amount,
        c.NUM_TRANS_LAST_10M: tx.num_trans_last_10m,
        c.AVG_AMT_LAST_10M: tx.avg_amt_last_10m,
        c.NUM_TRANS_LAST_1W: n_1w,
        c.AVG_AMT_LAST_1W: (week.cents + cents(tx.amt_sum_today)) / 100 / n_1w,
        c.SECS_SINCE_PREV_TX: c.secs_since_prev(tx.event_ms, previous),
    })


def feature_vector(features: Mapping[str, Any], feature_set: str) -> list[float]:
    """The model's input row for ``feature_set``, in the model's column order."""
    return [float(features[name]) for name in c.feature_names(feature_set)]
