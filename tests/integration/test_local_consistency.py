"""Exact features at any load, through the real thing: the local broker, real Flink running the application zip,
both handlers behind their triggers. A burst of one card, a backlog while the predict function is stalled, a late
transaction and refused records; then `fraudstream consistency` finds every on-time verdict exact."""

from __future__ import annotations

import json
import threading
import time

import pytest

from fraudstream import contract as c
from fraudstream.local.pipeline import LocalPipeline
from fraudstream.operate import consistency
from tests.support.models import write_model
from tests.support.pipeline import wrap_predict_handler
from tests.support.wait import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.flink]

BURST_CARD, PACED_CARD, BACKLOG_CARDS, LATE_CARD = 4111111111111111, 4222222222222222, 5000, 4333333333333333
# Flink writes a time tick (the newest event time it has read, + 1 ms) to every partition tick.delay.ms (200 ms)
# after reading it, so a transaction that lands in its partition later than that after a later-stamped one was read
# is late, by design (docs/streaming.md). The backlog is sent one transaction after another, each acknowledged before
# the next, so the test does not depend on how fast a loaded machine sends; the out-of-order burst itself is
# tests/flink/test_features_sql.py's.




def test_bursts_a_backlog_late_and_refused_records_all_scored_exactly_or_reported(tmp_path, monkeypatch):
    # Given a predict function that stalls while `stalled` is set (an endpoint throttled, a deploy)
    stalled = threading.Event()

    def wait_while_stalled():
        while stalled.is_set():
            time.sleep(0.05)

    wrap_predict_handler(monkeypatch, wait_while_stalled)
    workdir = tmp_path / "work"
    with LocalPipeline(workdir, write_model(tmp_path / "model.tar.gz")) as pipeline:
        pipeline.start()
        now = time.time()
        # When one card sends ten transactions at once and another twenty 50 ms apart
        burst = pipeline.send_many([{c.CC_NUM: BURST_CARD, c.AMOUNT: 1.0 + i, c.TRANS_TS: now} for i in range(10)])
        paced = []
        for i in range(20):
            paced.append(pipeline.send({c.CC_NUM: PACED_CARD, c.AMOUNT: 2.0 + i, c.TRANS_TS: time.time()}))
            time.sleep(0.05)
        wait_for(lambda: len(pipeline.verdicts) == 30)
        # and 3,000 transactions arrive while the predict function is stalled
        stalled.set()
        start = time.time()
        backlog = [pipeline.send({c.CC_NUM: BACKLOG_CARDS + i % 300, c.AMOUNT: 3.25, c.TRANS_TS: start + i / 1000})
                   for i in range(3000)]
        wait_for(lambda: pipeline.aggregates_consumed >= 3030)  # Flink emitted them all meanwhile
        stalled.clear()
        # and one transaction stamped a minute behind, and three records nobody can score
        late = pipeline.send({c.CC_NUM: LATE_CARD, c.AMOUNT: 9.0, c.TRANS_TS: time.time() - 60})
        bad = [pipeline.send_raw(value) for value in (b"not json", b'{"cc_num": 7, "amount": "lots", "trans_ts": 1}',
                                                       None)]
        keys = burst + paced + backlog + [late]
        wait_for(lambda: len(pipeline.verdicts) == len(keys))
        assert pipeline.wait_for_archive(keys, 60) == 0
    # Then every transaction got one verdict; the burst counts one after another, 1 to 10
    assert [pipeline.verdicts[k].features[c.NUM_TRANS_LAST_10M] for k in burst] == list(range(1, 11))
    assert [pipeline.verdicts[k].features[c.NUM_TRANS_LAST_10M] for k in paced] == list(range(1, 21))
    assert pipeline.verdicts[late].late and not any(pipeline.verdicts[k].late for k in burst + paced + backlog)
    # and each refused record is logged with its place and reason, never its content
    lines = [json.loads(line) for line in (workdir / "logs" / "handlers.jsonl").read_text().splitlines()]
    refused = {(r["topic"], r["partition"], r["offset"]): r["reason"] for r in lines
               if r.get("message") == "invalid transaction refused"}
    assert set(refused) == set(bad) and not any("lots" in json.dumps(r) for r in lines)
    # and the consistency report finds every on-time value exact, and names the late one
    report = consistency.check_local_run(workdir)
    assert report.compared == len(keys)
    assert all(counts["exact"] >= len(keys) - 1 for counts in report.features.values())
    assert report.features[c.NUM_TRANS_LAST_10M]["exact"] == len(keys)  # the late one's own count is 1, as in batch
    assert list(report.problems) in ([], ["late verdicts (came behind Flink's watermark, scored on themselves alone)"])
