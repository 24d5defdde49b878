"""MSK event builders for tests: the product's own builder (fraudstream/local/lambda_runtime.py), with
test values (dicts become JSON, bytes are sent as they are), and AWS's documented example event."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fraudstream import contract as c
from fraudstream.local.lambda_runtime import msk_event as build_event
from fraudstream.local.lambda_runtime import msk_record

HERE = Path(__file__).parent
CLUSTER_ARN = "arn:aws:kafka:us-east-1:123456789012:cluster/fraudstream/751d2973-a626-431c-9d4e-d7975eb44dd7-2"
ABSENT = "absent"


@functools.cache
def _documented_example_text() -> str:
    return (HERE / "msk_documented_example.json").read_text()


def documented_example() -> dict:
    """AWS's documented MSK event (Lambda developer guide), value 'Hello, this is a test.'."""
    return json.loads(_documented_example_text())


def msk_event(values: list[Any], topic: str = c.TRANSACTIONS_TOPIC, partition: int = 0, first_offset: int = 0,
              key: Any = ABSENT) -> dict:
    """An MSK event with one record per value. ``key``: ABSENT leaves it out, None sends a null key,
    any other value is put in the record as it is (a base64 string, or something malformed)."""
    records = []
    for i, value in enumerate(values):
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        record = msk_record(topic, partition, first_offset + i, raw, timestamp_ms=1545084650987,
                            headers=[("headerKey", b"headerValue")])
        if key != ABSENT:
            record["key"] = key
        records.append(record)
    return build_event(records, cluster_arn=CLUSTER_ARN)


def transaction(cc_num: int, trans_ts: float, amount: float, **extra: Any) -> dict:
    return {c.CC_NUM: cc_num, "merchant": "Random Corp", c.AMOUNT: amount, "zip_code": "03099", c.TRANS_TS: trans_ts, **extra}


def features_message(cc_num: int, trans_ts: float, amount: float, *, offset: int = 0, partition: int = 0,
                     count_10m: int = 1, sum_10m: float | None = None, prev_ts: float | None = None,
                     today: tuple[int, float] | None = None, days_before: Mapping[int, tuple[int, float]] | None = None,
                     late: bool = False, tid: str | None = None, topic: str = c.TRANSACTIONS_TOPIC) -> dict:
    """Flink's message for one transaction on the features topic (flink_sql/features_in_order.sql), as it
    writes it; by default the card's first transaction (its own 10-minute and day totals). ``days_before``:
    the card's (count, sum) of the k-th day before, by k (the others none)."""
    days = [(days_before or {}).get(k, (0, 0.0)) for k in range(1, c.DAYS_BEFORE + 1)]
    return {c.CC_NUM: cc_num, c.MERCHANT: "Random Corp", c.AMOUNT: amount, c.ZIP_CODE: "03099", c.TRANS_TS: trans_ts,
            c.TID: tid, c.EVENT_MS: c.event_ms(trans_ts), c.NUM_TRANS_LAST_10M: count_10m,
            c.AMT_SUM_LAST_10M: amount if sum_10m is None else sum_10m,
            c.PREV_EVENT_MS: None if prev_ts is None else c.event_ms(prev_ts),
            c.NUM_TRANS_TODAY: (today or (1, amount))[0], c.AMT_SUM_TODAY: (today or (1, amount))[1],
            c.NUM_TRANS_DAYS_BEFORE: [n for n, _ in days], c.AMT_SUM_DAYS_BEFORE: [s for _, s in days], c.LATE: late,
            c.TOPIC: topic, c.PARTITION: partition, c.OFFSET: offset}


def invalid_report(offset: int, reason: str = "cc_num is missing or not a card number", partition: int = 0) -> dict:
    """Flink's report of a refused record on the invalid-transactions topic."""
    return {c.TOPIC: c.TRANSACTIONS_TOPIC, c.PARTITION: partition, c.OFFSET: offset, c.REASON: reason}
