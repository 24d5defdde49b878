"""The time ticks' windows (flink_sql/ticks.sql) fed directly: every slice of reading gets its tick, however the
slices' rows reach the windows."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from fraudstream import contract as c
from fraudstream import flink_properties
from fraudstream.local.processes import Supervised
from fraudstream.paths import FLINK_PYTHON
from tests.support.flink_job import Topics, job_environment
from tests.support.kafka import new_topic_name, produce, read_all
from tests.support.wait import wait_for

pytestmark = [pytest.mark.flink, pytest.mark.kafka]

# The job's tick INSERT over a tick_slices table read from a topic instead of the job's view: what the test sends
# there reaches the windows when the test says, as the view's rows do when the slices' timer was held up.
DRIVER = """
import sys
from pathlib import Path
sys.path.insert(0, ".")
import main
props = main.load_properties(Path(sys.argv[1]))
settings = {**main.job_settings(), **main.local_settings(props)}
env = main.table_environment(settings)
[sink, _view], insert = main.ticks(props)
env.execute_sql(sink)
env.execute_sql(f'''CREATE TABLE tick_slices (newest_ms BIGINT, slice_end TIMESTAMP(3), read_at AS PROCTIME())
    WITH ('connector' = 'kafka', 'topic' = '{sys.argv[2]}', 'scan.startup.mode' = 'earliest-offset',
          'properties.bootstrap.servers' = '{props["bootstrap.servers"]}', 'value.format' = 'json')''')
result = env.execute_sql(insert)
main.wait_until_running(settings["rest.port"], str(result.get_job_client().get_job_id()))
print(main.READY_MARKER, flush=True)
result.wait()
"""


def test_slices_reaching_the_windows_together_each_get_their_tick(kafka_broker, flink_app, topics: Topics,
                                                                 tmp_path):
    """On a loaded machine the slices' timer can fire late and hand the windows two slices' rows at once (seen: a
    burst's last two transactions got no verdict). Each row is its own group, so each slice's newest time is
    ticked; one window over both wrote only the earlier one's, and the later transactions waited."""
    slices = new_topic_name("slices")
    kafka_broker.create_topics([slices])
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    log = tmp_path / "flink.log"
    job = Supervised("ticks-driver", [str(FLINK_PYTHON), str(driver), str(topics.properties(tmp_path)), slices], log,
                     env=job_environment(tmp_path), cwd=flink_app)
    job.start()
    try:
        wait_for(lambda: flink_properties.READY_MARKER in log.read_text(), timeout=180,
                 message=f"the ticks job did not start; see {log}")
        # When three consecutive slices' rows reach the windows together (the last one's slice ends about now: the
        # slices' timer fires a millisecond before a slice's end)
        now_ms = int(time.time() * 1000) // 100 * 100
        newest = {now_ms - 100: now_ms - 150, now_ms: now_ms - 50, now_ms + 100: now_ms + 30}  # slice end: newest
        produce(kafka_broker.bootstrap, slices,
                [{"newest_ms": ms, "slice_end": _sql_time(end)} for end, ms in newest.items()])

        expected = {(partition, ms + 1) for partition in range(kafka_broker.partitions) for ms in newest.values()}

        def ticked() -> set[tuple[int, int]]:
            return {(r["partition"], r["value"][c.TICK_MS]) for r in read_all(kafka_broker.bootstrap, topics.transactions)}

        written = wait_for(lambda: (found := ticked()) >= expected and found, timeout=60,
                           message=f"not every slice ticked on every partition; see {log}")
    finally:
        job.stop()
    # Then each slice's newest time is ticked (+1 ms) on every partition, and nothing else
    assert written == expected


def _sql_time(ms: int) -> str:
    """``ms`` as Flink's JSON format reads a TIMESTAMP(3) (the job's time zone is UTC)."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
