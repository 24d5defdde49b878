"""The local pipeline keeps what `fraudstream consistency` reads, as the stack does: the archive, every set of
1-week records loaded (a nightly refresh mid-run included), the verdict log; event-time markers move Flink on."""

from __future__ import annotations

import json
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudstream import contract as c
from fraudstream.local.pipeline import LocalPipeline
from fraudstream.operate import consistency
from tests.support.models import write_model

pytestmark = pytest.mark.slow

CARD = 4111111111111111
T = 1_653_000_000.0  # 2022-05-19, event time


def week_record(path, count: int, average: float, trans_time: float):
    pq.write_table(pa.Table.from_pylist([{c.CC_NUM: CARD, c.NUM_TRANS_LAST_1W: count, c.AVG_AMT_LAST_1W: average,
                                          c.TRANS_TIME: trans_time}]), path)
    return path


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_run_in_event_time_with_a_refresh_mid_run_has_nothing_unexplained(tmp_path):
    model = write_model(tmp_path / "model.tar.gz")
    workdir = tmp_path / "work"
    with LocalPipeline(workdir, model, time_mode="event") as pipeline:
        # Given the card's 1-week record of the day before
        pipeline.start(week_record(tmp_path / "night-1.parquet", 2, 30.0, T - 86_400))
        keys = [pipeline.send({c.CC_NUM: CARD, c.AMOUNT: 10.0 + i, c.TRANS_TS: T + 10 * i}) for i in range(3)]
        # When event time is moved past them (a marker on each partition) and a newer record is loaded mid-run
        pipeline.advance_event_time(T + 25)
        wait_for(lambda: len(pipeline.verdicts) == 3 and pipeline.aggregates_consumed == 3)
        pipeline.load_batch(week_record(tmp_path / "night-2.parquet", 5, 40.0, T + 20))
        for i in range(2):  # one at a time: each in a batch of its own
            keys.append(pipeline.send({c.CC_NUM: CARD, c.AMOUNT: 20.0 + i, c.TRANS_TS: T + 40 + 10 * i}))
            wait_for(lambda: len(pipeline.verdicts) == len(keys))
        pipeline.advance_event_time(T + 60)
        wait_for(lambda: len(pipeline.verdicts) == 5 and pipeline.aggregates_consumed == 5)
        assert pipeline.wait_for_archive(keys, 30) == 0
        assert pipeline.archived() == set(keys)  # the markers are not transactions: not archived
        weekly = [pipeline.verdicts[key].features[c.NUM_TRANS_LAST_1W] for key in keys]
    # Then the verdicts after the refresh started from the new record (5, plus the transaction itself)
    assert weekly[3:] == [6, 6]
    # and the consistency report finds every transaction and both loads, and nothing unexplained
    report = consistency.local(workdir)
    assert (report.compared, report.unexplained_values, dict(report.problems)) == (5, 0, {})
    # No history given: the batch definition counts the run's own transactions only (1 to 5), the records 2 + the
    # batch and 5 + 1; the records explain the difference (the third may match: 2 + 1 = 3)
    week = report.features[c.NUM_TRANS_LAST_1W]
    assert week["exact"] + week["explained"] == 5 and week["explained"] >= 4
    run = json.loads((workdir / "run.json").read_text())
    assert run["batch_aggregates"] == ["batch_aggregates-1.parquet", "batch_aggregates-2.parquet"]
    # The six markers (two steps, three partitions) were refused by the predict function as invalid records
    lines = [json.loads(line) for line in (workdir / "logs" / "handlers.jsonl").read_text().splitlines()]
    assert sum(r.get("message") == "invalid record skipped" for r in lines) == 6
