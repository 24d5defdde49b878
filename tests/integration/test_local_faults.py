"""Faults on the local pipeline, now that its parts are real: Flink killed or hung mid-stream, the broker restarted.

Every transaction must still get exactly one verdict (a duplicate would be counted: the trigger is at-least-once),
and Flink, restarted from its latest checkpoint, must keep counting where it was.
"""

from __future__ import annotations

import time

import pytest

from fraudstream import contract as c
from fraudstream.local.pipeline import LocalPipeline, PipelineOptions
from fraudstream.online.stores import EmbeddedOnlineStore
from tests.support.kafka import verdict_sources
from tests.support.models import write_model
from tests.support.wait import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.flink]

CARD = 4111111111111111
# What a wait after a fault may take: the supervisor's next check, a Flink start (the pipeline allows it 180 s, which
# two busy cores can use up) and the records' way through. A passing run returns as soon as the condition holds.
AFTER_A_FAULT = 300


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("model") / "model.tar.gz")


def send(pipeline: LocalPipeline, count: int, start: float) -> list:
    return [pipeline.send({c.CC_NUM: CARD, c.AMOUNT: 1.0 + i, c.TRANS_TS: start + i}) for i in range(count)]




def checkpoint_number(pipeline: LocalPipeline) -> int:
    """The number of the Flink job's newest completed checkpoint (0: none yet)."""
    done = (pipeline.flink.directory / "checkpoints").glob("*/chk-*/_metadata")
    return max((int(meta.parent.name.removeprefix("chk-")) for meta in done), default=0)


def wait_for_a_checkpoint_from_now(pipeline: LocalPipeline) -> None:
    """Until a checkpoint started after this call has completed: the second to complete from now (the first may
    have started before)."""
    now = checkpoint_number(pipeline)
    wait_for(lambda: checkpoint_number(pipeline) >= now + 2, message="no checkpoint completed")


def stored_count(pipeline: LocalPipeline) -> int:
    record = EmbeddedOnlineStore(pipeline.store_path).get_records({c.STREAMING_FEATURE_GROUP: [CARD]})
    found = record[c.STREAMING_FEATURE_GROUP][CARD]
    return 0 if found is None else found[c.NUM_TRANS_LAST_10M]


def test_flink_killed_mid_stream_restarts_from_its_checkpoint_and_every_transaction_gets_one_verdict(tmp_path, model):
    with LocalPipeline(tmp_path / "work", model) as pipeline:
        pipeline.start()
        now = time.time()
        first = send(pipeline, 10, now)
        wait_for(lambda: pipeline.aggregates_consumed >= 10 and stored_count(pipeline) == 10)
        wait_for_a_checkpoint_from_now(pipeline)  # one that holds the ten
        # When the Flink job dies without warning
        pipeline.flink.kill()
        second = send(pipeline, 10, now + 10)
        assert pipeline.wait_for_verdicts(20, timeout=AFTER_A_FAULT)
        # Then it was restarted, resumed its window state, and counted on from ten
        wait_for(lambda: stored_count(pipeline) == 20, timeout=AFTER_A_FAULT)
        assert pipeline.flink.restarts == 1
        assert set(pipeline.verdicts) == set(first + second) and pipeline.duplicates == 0
        # and the verdicts topic holds each transaction once
        assert sorted(verdict_sources(pipeline.broker.bootstrap)) == sorted(first + second)
    assert "resumed from" in (tmp_path / "work" / "logs" / "flink.log").read_text()


def test_a_hung_flink_job_is_noticed_and_restarted(tmp_path, model):
    with LocalPipeline(tmp_path / "work", model, PipelineOptions(flink_hung_seconds=5)) as pipeline:
        pipeline.start()
        now = time.time()
        send(pipeline, 3, now)
        wait_for(lambda: stored_count(pipeline) == 3)
        wait_for_a_checkpoint_from_now(pipeline)
        # When its JVM stops answering while transactions keep coming
        pipeline.flink.pause()
        send(pipeline, 3, now + 3)
        wait_for(lambda: pipeline.flink.restarts == 1, timeout=AFTER_A_FAULT)
        # Then the restarted job catches up
        wait_for(lambda: stored_count(pipeline) == 6, timeout=AFTER_A_FAULT)
        assert pipeline.wait_for_verdicts(6, timeout=60) and pipeline.duplicates == 0


def test_a_broker_restarted_mid_stream_loses_nothing(tmp_path, model):
    with LocalPipeline(tmp_path / "work", model) as pipeline:
        pipeline.start()
        now = time.time()
        first = send(pipeline, 5, now)
        assert pipeline.wait_for_verdicts(5, timeout=60)
        # When the broker goes away and comes back on the same ports and data
        pipeline.broker.stop()
        pipeline.broker.start()
        second = send(pipeline, 5, now + 5)
        # Then producers, both triggers and Flink reconnect, and every transaction gets its verdict and aggregate
        assert pipeline.wait_for_verdicts(10, timeout=AFTER_A_FAULT)
        wait_for(lambda: stored_count(pipeline) == 10, timeout=AFTER_A_FAULT)
        assert set(pipeline.verdicts) == set(first + second)
        assert sorted(verdict_sources(pipeline.broker.bootstrap)) == sorted(first + second)
        pipeline.check()
