"""The local pipeline's own parts: triggers that feed the real handlers from the topics, verdicts collected from
the handler's log, and a process left as it was. Flink is stood in for by writing aggregate messages
directly; tests/integration/test_local_pipeline.py runs the whole thing with real Flink."""

from __future__ import annotations

import json
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudstream import contract as c
from fraudstream.local import pipeline as local_pipeline
from fraudstream.local.pipeline import (
    LocalPipeline,
    handler_environment,
    load_batch_aggregates,
)
from fraudstream.online.stores import EmbeddedOnlineStore
from fraudstream.online.telemetry import logger
from tests.support.models import write_model

CARD = 4111111111111111
T = 1_700_000_000.0


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("model") / "model.tar.gz", "v2")


@pytest.fixture
def no_flink(monkeypatch):
    """Flink's process is not started; the test writes its output itself."""
    for name in ("start", "check", "stop"):
        monkeypatch.setattr(local_pipeline.FlinkJob, name, lambda self, *args, **kwargs: None)


def test_transactions_and_aggregates_reach_the_handlers_and_each_verdict_is_collected_once(tmp_path, model, no_flink):
    shown = []
    stream_before = logger.registered_handler.stream
    metrics_disabled_before = os.environ.get("POWERTOOLS_METRICS_DISABLED")
    with LocalPipeline(tmp_path / "work", model, on_verdict=shown.append) as pipeline:
        pipeline.start()
        # Given the card's 10-minute aggregate, as Flink would write it
        pipeline.aggregates.send([{c.CC_NUM: CARD, c.NUM_TRANS_LAST_10M: 2, c.AVG_AMT_LAST_10M: 15.0,
                                   c.TRANS_TS: T - 30, c.PREV_TRANS_TS: T - 90}])
        _wait(lambda: pipeline.aggregates_consumed == 1)
        # When a transaction of the card arrives
        offset = pipeline.send({c.CC_NUM: CARD, c.AMOUNT: 30.0, c.TRANS_TS: T, "merchant": "m", "zip_code": "z"})
        assert pipeline.wait_for_verdicts(1, timeout=30)
    # Then its verdict folds it into the stored aggregate, and was shown and logged once
    verdict = pipeline.verdicts[offset]
    assert (verdict.features[c.NUM_TRANS_LAST_10M], verdict.features[c.AVG_AMT_LAST_10M]) == (3, 20.0)
    assert verdict.features[c.SECS_SINCE_PREV_TX] == 30.0
    assert shown == [verdict]
    logged = [json.loads(line) for line in pipeline.log_path.read_text().splitlines()]
    assert [r["offset"] for r in logged if "verdict" in r] == [offset]
    # And the process is as it was: the logger writes where it did, the pipeline's variables are gone
    assert logger.registered_handler.stream is stream_before
    assert not any(isinstance(h, local_pipeline.VerdictCollector) for h in logger.handlers)
    assert os.environ.get("POWERTOOLS_METRICS_DISABLED") == metrics_disabled_before


def test_a_handler_that_raises_is_reported_by_the_wait_not_lost(tmp_path, model, no_flink, monkeypatch):
    # Given a predict handler that fails every batch
    real_load = local_pipeline.load_handler

    def load(name, env):
        module = real_load(name, env)
        if name == local_pipeline.PREDICT_HANDLER:
            def fail(event, context):
                raise RuntimeError("endpoint down")
            module.lambda_handler = fail
        return module

    monkeypatch.setattr(local_pipeline, "load_handler", load)
    with LocalPipeline(tmp_path / "work", model) as pipeline:
        pipeline.start()
        pipeline.send({c.CC_NUM: CARD, c.AMOUNT: 1.0, c.TRANS_TS: T})
        # When the caller waits for the verdict, then the failure surfaces with its cause
        with pytest.raises(RuntimeError, match="a local consumer failed") as raised:
            pipeline.wait_for_verdicts(1, timeout=30)
    assert "endpoint down" in str(raised.value.__cause__)


def test_the_handlers_environment_selects_the_embedded_store_and_the_in_process_model(tmp_path):
    env = handler_environment(tmp_path / "s.sqlite", tmp_path / "m.tar.gz", "v1")
    assert env == {"FEATURE_STORE_BACKEND": "embedded", "EMBEDDED_STORE_PATH": str(tmp_path / "s.sqlite"),
                   "MODEL_BACKEND": "local", "MODEL_PATH": str(tmp_path / "m.tar.gz"), "FEATURE_SET": "v1"}


def test_the_1_week_aggregates_file_fills_the_batch_group(tmp_path):
    rows = [{c.CC_NUM: CARD + i, c.NUM_TRANS_LAST_1W: 5, c.AVG_AMT_LAST_1W: 10.0, c.TRANS_TIME: T} for i in range(3)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "batch_aggregates.parquet")
    store = EmbeddedOnlineStore(tmp_path / "s.sqlite")
    assert load_batch_aggregates(tmp_path / "batch_aggregates.parquet", store) == 3
    assert store.get_records({c.BATCH_FEATURE_GROUP: [CARD + 2]})[c.BATCH_FEATURE_GROUP][CARD + 2] == rows[2]


def _wait(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)

