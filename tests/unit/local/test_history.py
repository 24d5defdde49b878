"""The history moved to the present (`replay --history-to-today`): whole days, ending before today, with the
1-week records a nightly run at today's midnight would have written."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow.parquet as pq

from fraudstream import contract as c
from fraudstream.local.history import present_history, shift_days
from tests.support.data import T0, transactions


def test_the_history_moves_by_whole_days_to_end_before_today_with_records_as_of_today(tmp_path):
    # Given transactions on 2022-03-01 (T0's day) and a day later, and "now" on 2026-12-04 at 00:05 UTC
    source = tmp_path / "tx.parquet"
    pq.write_table(transactions([(1, 0, 10.0), (1, 86_400 + 60, 20.0), (2, 30, 5.0)]), source)
    now = datetime(2026, 12, 4, 0, 5, tzinfo=timezone.utc)
    paths = present_history(source, tmp_path / "out", now=now)
    moved = pq.read_table(paths["history"]).to_pylist()
    days = shift_days(datetime(2022, 3, 2, 0, 1), now)
    # Then every transaction moved by the same whole number of days, the newest onto yesterday
    assert [r[c.DATETIME].date().isoformat() for r in moved] == ["2026-12-02", "2026-12-03", "2026-12-02"]
    assert (moved[1][c.DATETIME] - moved[0][c.DATETIME]).total_seconds() == 86_400 + 60 and days == 1_737
    # and the 1-week records are as of today's midnight: yesterday in tile 1, the day before in tile 2
    records = {r[c.CC_NUM]: r for r in pq.read_table(paths["batch_aggregates"]).to_pylist()}
    assert records[1][c.TRANS_TIME] == datetime(2026, 12, 4, tzinfo=timezone.utc).timestamp()
    assert (records[1][c.DAY_COUNTS[0]], records[1][c.DAY_COUNTS[1]], records[2][c.DAY_COUNTS[1]]) == (1, 1, 1)
    assert T0 < records[1][c.LAST_TRANS_TIME]
