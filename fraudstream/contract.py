"""The feature contract: every name and rule that crosses a component boundary.

Training, the batch SQL wrapper, the Lambda handlers and the local pipeline import these
definitions; nothing else may spell a feature name, the model's column order or a ratio rule.
This module is pure Python (no numpy import) so that it can ship inside a Lambda asset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

# --- Topics -----------------------------------------------------------------------------------
TRANSACTIONS_TOPIC = "cc-transactions"  # transaction messages, key = card number (and Flink's time ticks)
# Flink's output: each valid transaction with its own streaming features, key = card number. Both handlers
# read it; the predict function scores each message as it is (docs/online-path.md: "The online path").
TRANSACTION_FEATURES_TOPIC = "cc-transaction-features"
# Flink's report of every record it refuses (place and reason, never the content); the predict function logs it.
INVALID_TRANSACTIONS_TOPIC = "cc-invalid-transactions"
# One verdict per transaction, key = card number, written by the predict function (fraudstream/online/verdict_topic.py).
VERDICTS_TOPIC = "cc-verdicts"
TOPIC_PARTITIONS = 3  # partitions per topic (the stack's default topicPartitions, the local broker's)
# Every client we configure for Amazon MSK backs off between reconnects: kafka.t3.small brokers accept
# about 4 new IAM connections per broker per second (MSK quota page), and MSK's advice is a backoff of
# a second (reconnect.backoff.ms=1000), growing to the max on repeated failures.
MSK_RECONNECT_BACKOFF_MS = 1_000
MSK_RECONNECT_BACKOFF_MAX_MS = 10_000

# --- Transactions (generator output, topic messages) ------------------------------------
TID = "tid"
DATETIME = "datetime"
CC_NUM = "cc_num"
AMOUNT = "amount"
FRAUD_LABEL = "fraud_label"
TRANS_TS = "trans_ts"  # event time, epoch seconds
MERCHANT = "merchant"
ZIP_CODE = "zip_code"
TICK_MS = "tick_ms"  # a time tick Flink writes to the transactions topic (flink_sql/ticks.sql); never a transaction

TRANSACTION_COLUMNS = (TID, DATETIME, CC_NUM, AMOUNT, FRAUD_LABEL)

# --- Aggregates ---------------------------------------------------------------------------
NUM_TRANS_LAST_10M = "num_trans_last_10m"
AVG_AMT_LAST_10M = "avg_amt_last_10m"
NUM_TRANS_LAST_1W = "num_trans_last_1w"
AVG_AMT_LAST_1W = "avg_amt_last_1w"
SECS_SINCE_PREV_TX = "secs_since_prev_tx"

WINDOW_10M_SECONDS = 600
WINDOW_1W_SECONDS = 7 * 24 * 3600
# secs_since_prev_tx is capped here, and takes this value for a card's first transaction.
SECS_SINCE_PREV_TX_CAP = WINDOW_1W_SECONDS

# Columns the batch SQL computes for every transaction (besides the transaction's own).
AGGREGATE_COLUMNS = (
    NUM_TRANS_LAST_10M,
    AVG_AMT_LAST_10M,
    NUM_TRANS_LAST_1W,
    AVG_AMT_LAST_1W,
    SECS_SINCE_PREV_TX,
)

# --- Event time and order -------------------------------------------------------------------
# Every reader takes a transaction's event time in whole milliseconds, rounded half up: Flink's time
# attribute has millisecond precision, and the batch SQL, the handlers and Flink compute the same integer.
# A card's transactions are taken in order of (event_ms, then place: the topic's partition and offset
# online, the tid in training); each one's windows hold it and the ones before it in that order, so
# transactions of one millisecond count one after another, never as peers.
MS_PER_DAY = 86_400_000


def event_ms(trans_ts: float) -> int:
    """``trans_ts`` (epoch seconds) as the event time every reader orders and windows by."""
    return math.floor(trans_ts * 1000 + 0.5)


def event_ms_sql(seconds: str) -> str:
    """event_ms as a SQL expression on a DOUBLE of epoch seconds (Flink, DuckDB and Spark alike)."""
    return f"CAST(FLOOR({seconds} * 1000 + 0.5) AS BIGINT)"


def secs_since_prev(event: int, previous: int | None) -> float:
    """secs_since_prev_tx from two event times in milliseconds (the cap when there is no previous one)."""
    return float(SECS_SINCE_PREV_TX_CAP) if previous is None else min((event - previous) / 1000, float(SECS_SINCE_PREV_TX_CAP))


# --- Transaction features: Flink's message on TRANSACTION_FEATURES_TOPIC ---------------------------
# Sums travel as exact decimals (amounts are taken to the cent) and averages are computed by the reader
# as float(sum) / count, exactly as the batch SQL computes them: CAST(sum AS DOUBLE) / count.
EVENT_MS = "event_ms"
PREV_EVENT_MS = "prev_event_ms"  # the card's transaction before this one, in order; null for its first
AMT_SUM_LAST_10M = "amt_sum_last_10m"
NUM_TRANS_TODAY = "num_trans_today"  # the card's transactions of this UTC day up to this one, included
AMT_SUM_TODAY = "amt_sum_today"
# The card's count and sum of each of the DAYS_BEFORE UTC days before this transaction's day, as Flink saw them
# (element k - 1: the k-th day before): with a nightly record's tiles, the 1-week features at any lag.
DAYS_BEFORE = 7
NUM_TRANS_DAYS_BEFORE = "num_trans_days_before"
AMT_SUM_DAYS_BEFORE = "amt_sum_days_before"
LATE = "late"  # behind Flink's watermark when read: scored on itself alone (docs/streaming.md: "Late transactions")
TOPIC, PARTITION, OFFSET = "topic", "partition", "offset"  # where the transaction sat on the transactions topic


class RecordRef(NamedTuple):
    """Where a record sat on a Kafka topic: what an operator needs to find it again, and the key that joins a
    transaction's verdict, its archived line and its refusal. A NamedTuple: made once per record on the
    handlers' hot path, in a third of a frozen dataclass's time (docs/lambda.md: "Handler speed")."""

    topic: str
    partition: int
    offset: int

    def as_log(self) -> dict[str, Any]:
        return {TOPIC: self.topic, PARTITION: self.partition, OFFSET: self.offset}

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


REASON = "reason"  # the invalid-transactions message: topic, partition, offset, reason
FEATURE_MESSAGE_FIELDS = (CC_NUM, MERCHANT, AMOUNT, ZIP_CODE, TRANS_TS, TID, EVENT_MS, NUM_TRANS_LAST_10M,
                          AMT_SUM_LAST_10M, PREV_EVENT_MS, NUM_TRANS_TODAY, AMT_SUM_TODAY, NUM_TRANS_DAYS_BEFORE,
                          AMT_SUM_DAYS_BEFORE, LATE, TOPIC, PARTITION, OFFSET)

# --- Feature groups -------------------------------------------------------------------------
TRANS_TIME = "trans_time"  # event time feature of both groups, epoch seconds
PREV_TRANS_TIME = "prev_trans_time"
STREAMING_FEATURE_GROUP = "cc-agg-fg"
BATCH_FEATURE_GROUP = "cc-agg-batch-fg"
RECORD_IDENTIFIER = CC_NUM
EVENT_TIME_FEATURE = TRANS_TIME
INTEGRAL, FRACTIONAL = "Integral", "Fractional"  # SageMaker Feature Store feature types
# (feature name, type) in schema order; the CDK app creates the groups from these.
# The 1-week record (cc-agg-batch-fg) the nightly job writes for each card, as of its cutoff (00:00 UTC of the
# day it runs for): the card's transaction count and exact sum of each of the WEEK_TILES days before the cutoff
# (day k = the k-th day before), and its last transaction before the cutoff. Each day the nightly run has not
# covered comes from Flink's totals in the transaction's message, so the week the model is trained on is served
# exactly however early or late the nightly run is (fraudstream/online/features.py).
LAST_TRANS_TIME = "last_trans_time"
WEEK_TILES = 8
DAY_COUNTS = tuple(f"num_trans_day_{k}" for k in range(1, WEEK_TILES + 1))
DAY_SUMS = tuple(f"amt_sum_day_{k}" for k in range(1, WEEK_TILES + 1))
SECONDS_PER_DAY = 86_400
FEATURE_GROUP_SCHEMAS: dict[str, tuple[tuple[str, str], ...]] = {
    STREAMING_FEATURE_GROUP: (
        (CC_NUM, INTEGRAL),
        (NUM_TRANS_LAST_10M, INTEGRAL),
        (AVG_AMT_LAST_10M, FRACTIONAL),
        (TRANS_TIME, FRACTIONAL),
        (PREV_TRANS_TIME, FRACTIONAL),
    ),
    BATCH_FEATURE_GROUP: (
        (CC_NUM, INTEGRAL),
        (TRANS_TIME, FRACTIONAL),  # the cutoff
        (LAST_TRANS_TIME, FRACTIONAL),
        *((name, INTEGRAL) for name in DAY_COUNTS),
        *((name, FRACTIONAL) for name in DAY_SUMS),
    ),
}
# Content of cc-agg-batch-fg, in schema order (batch_aggregates.parquet has these columns).
BATCH_FEATURE_GROUP_COLUMNS = tuple(name for name, _ in FEATURE_GROUP_SCHEMAS[BATCH_FEATURE_GROUP])
STREAMING_FEATURE_GROUP_COLUMNS = tuple(name for name, _ in FEATURE_GROUP_SCHEMAS[STREAMING_FEATURE_GROUP])

# --- Ratio features -------------------------------------------------------------------------
AMT_RATIO1 = "amt_ratio1"
AMT_RATIO2 = "amt_ratio2"
COUNT_RATIO = "count_ratio"


@dataclass(frozen=True)
class Ratio:
    """A model feature defined as numerator / denominator, 0 only when the denominator is 0."""

    name: str
    numerator: str
    denominator: str


RATIOS = (
    Ratio(AMT_RATIO1, AVG_AMT_LAST_10M, AVG_AMT_LAST_1W),
    Ratio(AMT_RATIO2, AMOUNT, AVG_AMT_LAST_1W),
    Ratio(COUNT_RATIO, NUM_TRANS_LAST_10M, NUM_TRANS_LAST_1W),
)


def safe_divide(numerator: Any, denominator: Any) -> Any:
    """numerator / denominator, and 0 where the denominator is 0.

    Works on plain numbers (the handlers) and on numpy arrays or pandas Series (batch).
    """
    if isinstance(denominator, (int, float)):
        return numerator / denominator if denominator != 0 else 0.0
    # Array-likes: numpy is already imported by whoever built them.
    import numpy as np

    num = np.asarray(numerator, dtype="float64")
    den = np.asarray(denominator, dtype="float64")
    out = np.zeros(np.broadcast(num, den).shape, dtype="float64")
    np.divide(num, den, out=out, where=den != 0)
    return out


def add_ratio_features(columns: dict[str, Any]) -> dict[str, Any]:
    """Return ``columns`` plus every ratio feature; accepts a dict or a DataFrame."""
    for ratio in RATIOS:
        columns[ratio.name] = safe_divide(columns[ratio.numerator], columns[ratio.denominator])
    return columns


def ratio_columns_sql() -> str:
    """The ratio features as SQL select expressions, the same rule as ``safe_divide``.

    The batch SQL embeds these so DuckDB and Spark stream them straight to Parquet (a Python UDF
    costs more than the whole query at seed scale); tests prove both renderings agree.
    """
    return ",\n    ".join(
        f"CASE WHEN {r.denominator} = 0 THEN 0.0 ELSE CAST({r.numerator} AS DOUBLE) / {r.denominator} END AS {r.name}"
        for r in RATIOS
    )


# --- Feature sets: the model's input columns, in order -------------------------------------
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    # The seed's model, kept to reproduce it.
    "v1": (AMOUNT, AMT_RATIO1, AMT_RATIO2, COUNT_RATIO),
    # Default: adds the raw velocity and recency that expose chain attacks early.
    "v2": (AMOUNT, AMT_RATIO1, AMT_RATIO2, COUNT_RATIO, NUM_TRANS_LAST_10M, SECS_SINCE_PREV_TX),
}
DEFAULT_FEATURE_SET = "v2"
# Every feature any set uses, in a stable order (what features.parquet carries).
ALL_FEATURES: tuple[str, ...] = tuple(dict.fromkeys(f for s in FEATURE_SETS.values() for f in s))


def feature_names(feature_set: str) -> tuple[str, ...]:
    """The model's input columns for ``feature_set``, in order; a clear error for unknown sets."""
    try:
        return FEATURE_SETS[feature_set]
    except KeyError:
        known = ", ".join(sorted(FEATURE_SETS))
        raise ValueError(f"unknown feature set {feature_set!r} (known: {known})") from None


def mask_card(cc_num: int | str) -> str:
    """A card number as PCI DSS allows it to be shown: first six and last four digits."""
    digits = str(cc_num)
    if len(digits) < 11:
        return "*" * len(digits)
    return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"


# --- Scoring ----------------------------------------------------------------------------------
DEFAULT_THRESHOLD = 0.25  # FRAUD when the score is above it (the AWS sample's value)
FRAUD, NOT_FRAUD = "FRAUD", "NOT FRAUD"  # the verdicts, as logged and searched for in CloudWatch


def verdict(score: float, threshold: float) -> str:
    return FRAUD if score > threshold else NOT_FRAUD


# --- Valid transactions: one rule, applied by every reader -------------------------------------
# The scenario reader (and so the simulator), the Flink query (valid_transaction_sql) and both handlers
# (fraudstream/online/messages.py) refuse anything else; tests/flink/test_validity.py runs one table of
# edge values through all of them.
REQUIRED_TRANSACTION_FIELDS = (CC_NUM, AMOUNT, TRANS_TS)
MIN_AMOUNT, MAX_AMOUNT = 0.0, 10_000_000.0  # larger amounts are refused as oversized
MIN_EVENT_TIME = 946_684_800.0  # 2000-01-01
MAX_EVENT_TIME = 4_102_444_800.0  # 2100-01-01
MAX_CARD_DIGITS = 19  # ISO/IEC 7812
MIN_CARD_NUMBER, MAX_CARD_NUMBER = 1, 2**63 - 1  # Feature Store's Integral and SQLite's INTEGER are signed 64-bit
# A card number is a JSON integer or a string of digits; an amount or event time a JSON number or a
# string holding one in this syntax (Flink's JSON format reads both alike, so every reader accepts both).
CARD_PATTERN = "[0-9]{1," + str(MAX_CARD_DIGITS) + "}"
NUMBER_PATTERN = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"


def _field_rules() -> list[tuple[str, str]]:
    """(Flink SQL condition on the source's text column, reason when it fails) for each required field."""
    def number(column: str, low: float, high: float) -> str:
        return (f"REGEXP({column}, '^{NUMBER_PATTERN}$') "
                f"AND TRY_CAST({column} AS DOUBLE) BETWEEN {low!r} AND {high!r}")

    return [
        (f"REGEXP({CC_NUM}, '^{CARD_PATTERN}$') AND TRY_CAST({CC_NUM} AS BIGINT) BETWEEN {MIN_CARD_NUMBER} AND "
         f"{MAX_CARD_NUMBER}", f"{CC_NUM} is missing or not a card number"),
        (number(AMOUNT, MIN_AMOUNT, MAX_AMOUNT), f"{AMOUNT} is missing or not a number from {MIN_AMOUNT:.0f} to {MAX_AMOUNT:.0f}"),
        (number(TRANS_TS, MIN_EVENT_TIME, MAX_EVENT_TIME), f"{TRANS_TS} is missing or not an event time "
                                                           "(epoch seconds) from 2000 to 2100"),
    ]


def valid_transaction_sql() -> str:
    """The rule as a Flink SQL condition on the source's text columns (flink_sql/transactions_parsed.sql):
    the same syntax (anchored patterns) and ranges; NULL, from a missing field, fails it."""
    return " AND ".join(f"({condition})" for condition, _ in _field_rules())


def invalid_reason_sql() -> str:
    """Why a transaction fails the rule, as a Flink SQL CASE on the same columns (NULL when it passes)."""
    cases = " ".join(f"WHEN ({condition}) IS NOT TRUE THEN '{reason}'" for condition, reason in _field_rules())
    return f"CASE {cases} END"
