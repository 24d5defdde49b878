"""The local pipeline's own parts, on its real Kafka broker: triggers that feed the real handlers, verdicts
collected from the handler's log, failed batches kept, one pipeline per work directory, and a process left as
it was. Flink is stood in for by producing its features messages directly; tests/integration runs the whole
thing with real Flink."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import sys
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudstream import contract as c
from fraudstream.contract import RecordRef
from fraudstream.local import pipeline as local_pipeline
from fraudstream.local.handlers import VerdictCollector, handler_environment, load_batch_aggregates, model_version
from fraudstream.local.pipeline import LocalPipeline, PipelineOptions
from fraudstream.local.workdir import PipelineBusy
from fraudstream.online import settings
from fraudstream.online.stores import EmbeddedOnlineStore
from fraudstream.online.telemetry import logger
from fraudstream.paths import REPO
from tests.support.events import features_message
from tests.support.kafka import produce, read_all, verdict_sources
from tests.support.models import write_model
from tests.support.pipeline import wrap_predict_handler
from tests.support.wait import wait_for

CARD = 4111111111111111
T = 1_700_000_000.0
_places = iter(range(10**6))


def emit(pipeline, amount: float, trans_ts: float = T, **fields) -> tuple[int, int]:
    """What Flink writes for one transaction of CARD (a made-up place on the transactions topic, unique in the
    test run); returns that place, by which the pipeline keys the verdict."""
    offset = next(_places)
    produce(pipeline.broker.bootstrap, c.TRANSACTION_FEATURES_TOPIC,
            [features_message(CARD, trans_ts, amount, offset=offset, **fields)], keys=[CARD])
    return RecordRef(c.TRANSACTIONS_TOPIC, 0, offset)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("model") / "model.tar.gz", "v2")


@pytest.fixture
def no_flink(monkeypatch):
    """Flink's process is not started; the test writes its output itself."""
    for name in ("start", "check", "stop"):
        monkeypatch.setattr(local_pipeline.FlinkJob, name, lambda self, *args, **kwargs: None)


@pytest.mark.kafka  # the pipeline starts its own broker
def test_transactions_and_aggregates_reach_the_handlers_and_each_verdict_is_collected_once(tmp_path, model, no_flink):
    shown = []
    stream_before = logger.registered_handler.stream
    metrics_disabled_before = os.environ.get("POWERTOOLS_METRICS_DISABLED")
    with LocalPipeline(tmp_path / "work", model, on_verdict=shown.append) as pipeline:
        pipeline.start()
        # When Flink writes a transaction of the card with its features (its third in 10 minutes)
        key = emit(pipeline, 30.0, count_10m=3, sum_10m=60.0, prev_ts=T - 30, today=(3, 60.0))
        assert pipeline.wait_for_verdicts(1, timeout=30)
        wait_for(lambda: pipeline.aggregates_consumed == 1)
        on_topic = read_all(pipeline.broker.bootstrap, c.VERDICTS_TOPIC)
    # Then its verdict is scored on those features, and was shown and logged once
    verdict = pipeline.verdicts[key]
    assert (verdict.features[c.NUM_TRANS_LAST_10M], verdict.features[c.AVG_AMT_LAST_10M]) == (3, 20.0)
    assert verdict.features[c.SECS_SINCE_PREV_TX] == 30.0
    # and the card's current 10-minute record is in the streaming group
    record = EmbeddedOnlineStore(pipeline.store_path).get_records({c.STREAMING_FEATURE_GROUP: [CARD]})
    assert record[c.STREAMING_FEATURE_GROUP][CARD][c.NUM_TRANS_LAST_10M] == 3
    assert shown == [verdict]
    # and written once to the verdicts topic, keyed by the card, naming the model
    [published] = on_topic
    assert published["key"] == str(CARD).encode() and published["value"]["source"] == key.as_log()
    assert published["value"]["model_version"] == model_version(model) and published["value"]["score"] == verdict.score
    logged = [json.loads(line) for line in pipeline.verdict_log.read_text().splitlines()]
    assert [(r["topic"], r["partition"], r["offset"]) for r in logged] == [key]  # the verdict log holds verdicts only
    others = [json.loads(line) for line in pipeline.handler_log.read_text().splitlines()]
    assert "transactions processed" in {r["message"] for r in others} and not any("verdict" in r for r in others)
    # And the process is as it was: the logger writes where it did, the pipeline's variables are gone
    assert logger.registered_handler.stream is stream_before
    assert not any(isinstance(h, VerdictCollector) for h in logger.handlers)
    assert os.environ.get("POWERTOOLS_METRICS_DISABLED") == metrics_disabled_before


@pytest.mark.kafka  # the pipeline starts its own broker
def test_a_batch_the_handler_keeps_failing_goes_to_the_failure_folder_and_the_partition_moves_on(
        tmp_path, model, no_flink, monkeypatch):
    # Given a predict handler that fails while `down` is set, and a trigger that retries once
    down = threading.Event()
    down.set()

    def fail_while_down():
        if down.is_set():
            raise RuntimeError("endpoint down")

    wrap_predict_handler(monkeypatch, fail_while_down)
    triggers = {local_pipeline.PREDICT_TRIGGER: dataclasses.replace(settings.PREDICT_TRIGGER, retry_attempts=1)}
    with LocalPipeline(tmp_path / "work", model, PipelineOptions(triggers=triggers)) as pipeline:
        pipeline.start()
        lost = emit(pipeline, 1.0)
        wait_for(lambda: pipeline.triggers[local_pipeline.PREDICT_TRIGGER].failed_records == 1)
        down.clear()
        scored = emit(pipeline, 2.0, T + 1)
        assert pipeline.wait_for_verdicts(1, timeout=30)
    # Then the failed batch is kept whole, and the next transaction of the same partition got its verdict
    assert lost not in pipeline.verdicts and scored in pipeline.verdicts
    (document,) = [json.loads(p.read_text()) for p in pipeline.failure_dir.rglob("*") if p.is_file()]
    (records,) = json.loads(document["payload"])["records"].values()
    assert [json.loads(base64.b64decode(r["value"]))[c.OFFSET] for r in records] == [lost.offset]


@pytest.mark.kafka  # the pipeline starts its own broker
def test_a_batch_retried_after_its_verdicts_were_written_leaves_each_on_the_verdicts_topic_once(
        tmp_path, model, no_flink, monkeypatch):
    # Given a predict function that fails once after doing its work (a timeout after the write)
    failed = []

    def fail_once():
        if not failed:
            failed.append(True)
            raise RuntimeError("timed out after writing")

    wrap_predict_handler(monkeypatch, after=fail_once)
    with LocalPipeline(tmp_path / "work", model) as pipeline:
        pipeline.start()
        # When a batch of three transactions comes, fails after writing, and is retried
        keys = [emit(pipeline, 1.0 + i, T + i) for i in range(3)]
        assert pipeline.wait_for_verdicts(3, timeout=30)
        wait_for(lambda: failed and pipeline.duplicates >= 1)  # the retry logged its verdicts again
        sources = verdict_sources(pipeline.broker.bootstrap)
    # Then the verdicts topic holds each transaction once
    assert sorted(sources) == sorted(keys)


@pytest.mark.kafka  # the pipeline starts its own broker
def test_a_second_pipeline_on_the_same_work_directory_stops_at_once_naming_it(tmp_path, model, no_flink):
    with LocalPipeline(tmp_path / "work", model) as first:
        first.start()
        second = LocalPipeline(tmp_path / "work", model)
        with pytest.raises(PipelineBusy, match=f"pid {os.getpid()}.*{tmp_path / 'work'}"):
            second.start()
        # and the first one still works
        key = emit(first, 3.0)
        assert first.wait_for_verdicts(1, timeout=30) and key in first.verdicts


KILLED_RUN = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from fraudstream.local import pipeline as p
p.FlinkJob.start = p.FlinkJob.check = p.FlinkJob.stop = lambda self, *a, **k: None
pipe = p.LocalPipeline(Path(sys.argv[2]), Path(sys.argv[3]))
pipe.start()
print(pipe.broker.process.process.pid, flush=True)
time.sleep(300)
"""


@pytest.mark.kafka  # the pipeline starts its own broker
def test_a_killed_run_leaves_nothing_running_and_the_next_run_starts_clean(tmp_path, model, no_flink):
    # Given a pipeline whose process is killed without cleaning up
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(REPO), str(tmp_path / "work"), str(model)],
                           stdout=subprocess.PIPE, text=True)
    watchdog = int(run.stdout.readline())
    run.kill()
    run.wait(timeout=30)
    wait_for(lambda: not _alive(watchdog))  # the broker went with it
    # When the next run starts on the same directory, then it works
    with LocalPipeline(tmp_path / "work", model) as pipeline:
        pipeline.start()
        key = emit(pipeline, 4.0)
        assert pipeline.wait_for_verdicts(1, timeout=30) and key in pipeline.verdicts


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_the_handlers_environment_selects_the_embedded_store_and_the_in_process_model(tmp_path):
    env = handler_environment(tmp_path / "s.sqlite", tmp_path / "m.tar.gz", "v1")
    assert env == {"FEATURE_STORE_BACKEND": "embedded", "EMBEDDED_STORE_PATH": str(tmp_path / "s.sqlite"),
                   "MODEL_BACKEND": "local", "MODEL_PATH": str(tmp_path / "m.tar.gz"), "FEATURE_SET": "v1"}


def test_the_1_week_aggregates_file_fills_the_batch_group(tmp_path):
    rows = [{c.CC_NUM: CARD + i, c.TRANS_TIME: 1_699_920_000.0, c.LAST_TRANS_TIME: T - 86_400,
             **dict.fromkeys(c.DAY_COUNTS, 1), **dict.fromkeys(c.DAY_SUMS, 10.5)} for i in range(3)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "batch_aggregates.parquet")
    store = EmbeddedOnlineStore(tmp_path / "s.sqlite")
    assert load_batch_aggregates(tmp_path / "batch_aggregates.parquet", store) == 3
    assert store.get_records({c.BATCH_FEATURE_GROUP: [CARD + 2]})[c.BATCH_FEATURE_GROUP][CARD + 2] == rows[2]
