"""The transactions archive (the nightly batch job's input), on real Flink 1.20.

The job runs as on the managed service (one job: the aggregation and the archive INSERT), reading the
Kafka topic through the same table definitions, with a local directory in place of s3://.
"""

from __future__ import annotations

import json

from fraudstream import contract as c
from tests.flink.conftest import run_bounded
from tests.support.kafka import produce


def test_every_valid_transaction_lands_in_its_utc_day_partition(kafka_broker, flink_app, topics, tmp_path):
    # Given transactions on both sides of a UTC midnight, and a malformed value
    midnight = 1_653_004_800.0  # 2022-05-20T00:00:00Z
    rows = [{"cc_num": 4111, "amount": 12.5, "trans_ts": midnight - 1.0, "merchant": "m", "zip_code": "z"},
            {"cc_num": 4111, "amount": 3.25, "trans_ts": midnight, "merchant": "m", "zip_code": "z"},
            {"cc_num": 4222, "amount": 99.0, "trans_ts": midnight + 7200.5, "merchant": "m", "zip_code": "z"}]
    produce(kafka_broker.bootstrap, topics.transactions, [*rows, b"{not json"], keys=[4111, 4111, 4222, 1])
    archive = tmp_path / "archive"
    # When the job runs with an archive path
    run_bounded(flink_app, topics.properties(tmp_path, archive_path=archive.as_uri(), bounded="true"))
    # Then each transaction is in the partition of its UTC day, with the columns the batch job reads
    found = {}
    for day in sorted(p.name for p in archive.iterdir() if p.name.startswith("dt=")):
        files = [f for f in (archive / day).iterdir() if not f.name.startswith((".", "_"))]
        found[day] = sorted((m[c.CC_NUM], float(m[c.AMOUNT]), m[c.TRANS_TS]) for f in files
                            for m in map(json.loads, f.read_text().splitlines()))
    assert found == {"dt=2022-05-19": [(4111, 12.5, midnight - 1.0)],
                     "dt=2022-05-20": [(4111, 3.25, midnight), (4222, 99.0, midnight + 7200.5)]}
