"""The transactions archive (the nightly batch job's input), on real Flink 1.20.

The job runs as on the managed service (one job: the aggregation and the archive INSERT, each through its
own source), reading the Kafka topic through the same table definitions, with a local directory in place of
s3://.
"""

from __future__ import annotations

import pytest

import json

from fraudstream import contract as c
from tests.support.flink_job import run_bounded, start_unbounded
from tests.support.kafka import produce, read_all
from tests.support.wait import wait_for

pytestmark = [pytest.mark.flink, pytest.mark.kafka]


def test_every_valid_transaction_lands_in_its_utc_day_partition_with_its_place_in_the_topic(
        kafka_broker, flink_app, topics, tmp_path):
    # Given transactions on both sides of a UTC midnight (one without a tid), and a malformed value
    midnight = 1_653_004_800.0  # 2022-05-20T00:00:00Z
    rows = [{"cc_num": 4111, "amount": 12.5, "trans_ts": midnight - 1.0, "merchant": "m", "zip_code": "z", "tid": "t1"},
            {"cc_num": 4111, "amount": 3.25, "trans_ts": midnight, "merchant": "m", "zip_code": "z", "tid": "t2"},
            {"cc_num": 4222, "amount": 99.0, "trans_ts": midnight + 7200.5, "merchant": "m", "zip_code": "z"}]
    places = produce(kafka_broker.bootstrap, topics.transactions, [*rows, b"{not json"], keys=[4111, 4111, 4222, 1])
    archive = tmp_path / "archive"
    # When the job runs with an archive path
    run_bounded(flink_app, topics.properties(tmp_path, archive_path=archive.as_uri(), bounded="true"))
    # Then each transaction is in the partition of its UTC day, with the columns the batch job reads and the
    # record's topic, partition and offset (what `fraudstream consistency` joins the verdicts on)
    found = {}
    for day in sorted(p.name for p in archive.iterdir() if p.name.startswith("dt=")):
        files = [f for f in (archive / day).iterdir() if not f.name.startswith((".", "_"))]
        found[day] = sorted((m[c.CC_NUM], float(m[c.AMOUNT]), m[c.TRANS_TS], m.get(c.TID), m["topic"], m["partition"],
                             m["offset"]) for f in files for m in map(json.loads, f.read_text().splitlines()))
    where = [(topics.transactions, partition, offset) for partition, offset in places]
    assert found == {"dt=2022-05-19": [(4111, 12.5, midnight - 1.0, "t1", *where[0])],
                     "dt=2022-05-20": [(4111, 3.25, midnight, "t2", *where[1]), (4222, 99.0, midnight + 7200.5, None, *where[2])]}


def test_an_archive_that_cannot_be_written_never_restarts_the_features(kafka_broker, flink_app, topics, tmp_path):
    # Given an archive path under a regular file: every write to it fails (as S3 would, unreachable or denied)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    properties = topics.properties(tmp_path, archive_path=(blocker / "archive").as_uri())
    job = start_unbounded(flink_app, properties, tmp_path / "flink.log")
    sent = [{"cc_num": 4111, "amount": float(i + 1), "trans_ts": 1_653_000_000.0 + i, "merchant": "m",
             "zip_code": "z"} for i in range(6)]
    try:
        # When transactions arrive one by one while the archive keeps failing and restarting
        for i, message in enumerate(sent):
            produce(kafka_broker.bootstrap, topics.transactions, [message], keys=[4111])
            wait_for(lambda n=i + 1: job.running and len(read_all(kafka_broker.bootstrap, topics.features)) >= n,
                     message=f"no features for transaction {i}; see {tmp_path / 'flink.log'}")
        # Each transaction's features come after any replay the archive's failure on the one before could cause (a
        # card's messages keep their order): the six messages say whether the first five failures replayed any.
        received = [r["value"] for r in read_all(kafka_broker.bootstrap, topics.features)]
    finally:
        job.stop()
    # Then the features ran through, each transaction counted once: no restart replayed it
    assert [m[c.NUM_TRANS_LAST_10M] for m in received] == [1, 2, 3, 4, 5, 6]
    # and nothing was archived: the archive's pipeline failed on every write (Flink's log shows its task
    # "switched from RUNNING to FAILED" and restarting, alone)
    assert not any(f.is_file() for f in tmp_path.rglob("part-*"))
