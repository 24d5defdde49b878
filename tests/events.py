"""MSK event builders for tests: the exact shape Lambda delivers (see tests/events/*.json)."""

from __future__ import annotations

import base64
import copy
import functools
import json
from pathlib import Path
from typing import Any

from fraudstream import contract as c

EVENTS = Path(__file__).parent / "events"
CLUSTER_ARN = "arn:aws:kafka:us-east-1:123456789012:cluster/fraudstream/751d2973-a626-431c-9d4e-d7975eb44dd7-2"


@functools.cache
def _documented_example_text() -> str:
    return (EVENTS / "msk_documented_example.json").read_text()


def documented_example() -> dict:
    """AWS's documented MSK event (Lambda developer guide), value 'Hello, this is a test.'."""
    return json.loads(_documented_example_text())


def encode(message: Any) -> str:
    raw = message if isinstance(message, bytes) else json.dumps(message).encode()
    return base64.b64encode(raw).decode()


def msk_event(values: list[Any], topic: str = c.TRANSACTIONS_TOPIC, partition: int = 0, first_offset: int = 0,
              key: Any = "absent") -> dict:
    """An MSK event with one record per value (dicts become JSON, bytes are sent as they are)."""
    template = documented_example()
    record_template = template["records"]["mytopic-0"][0]
    records = []
    for i, value in enumerate(values):
        record = {**record_template, "headers": copy.deepcopy(record_template["headers"])}
        record.update(topic=topic, partition=partition, offset=first_offset + i, value=encode(value))
        if key == "absent":
            record.pop("key")
        else:
            record["key"] = key
        records.append(record)
    template["eventSourceArn"] = CLUSTER_ARN
    template["records"] = {f"{topic}-{partition}": records} if records else {}
    return template


def transaction(cc_num: int, trans_ts: float, amount: float, **extra: Any) -> dict:
    return {c.CC_NUM: cc_num, "merchant": "Random Corp", c.AMOUNT: amount, "zip_code": "03099", c.TRANS_TS: trans_ts, **extra}


def aggregate(cc_num: int, trans_ts: float, count: int, average: float, prev: float | None) -> dict:
    return {c.CC_NUM: cc_num, c.NUM_TRANS_LAST_10M: count, c.AVG_AMT_LAST_10M: average, c.TRANS_TS: trans_ts,
            c.PREV_TRANS_TS: prev}
