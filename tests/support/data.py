"""Hand-made transaction tables for tests."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa

from fraudstream import contract as c

# 2022-03-01 00:00:00 UTC: inside the default generator period.
T0 = int(datetime(2022, 3, 1, tzinfo=timezone.utc).timestamp())


def transactions(rows: list[tuple[int, float, float]]) -> pa.Table:
    """A transactions table from (cc_num, seconds after T0, amount) tuples; tids t0, t1, ..."""
    return pa.table(
        {
            c.TID: [f"t{i}" for i in range(len(rows))],
            c.DATETIME: pa.array([(T0 + offset) * 1_000_000 for _, offset, _ in rows], type=pa.timestamp("us")),
            c.CC_NUM: pa.array([card for card, _, _ in rows], type=pa.int64()),
            c.AMOUNT: pa.array([amount for _, _, amount in rows], type=pa.float64()),
            c.FRAUD_LABEL: pa.array([0] * len(rows), type=pa.int8()),
        }
    )
