"""The processing job's write to the 1-week feature group, through the store it builds on SageMaker.

No Spark here: run() hands this store every card's aggregates; this checks the requests it sends (botocore's
Stubber validates them against the API model) and records them for tests/infrastructure/test_calls_granted.py.
"""

from __future__ import annotations

import importlib.util

import pytest
from botocore.stub import ANY, Stubber

from fraudstream import contract as c
from fraudstream.paths import PROCESSING_JOB

spec = importlib.util.spec_from_file_location("processing_job_store", PROCESSING_JOB)
job = importlib.util.module_from_spec(spec)
spec.loader.exec_module(job)


@pytest.mark.aws_component("processing_job")
def test_the_job_writes_each_cards_aggregates_to_the_group_it_is_given():
    # Given the job's own Feature Store client, stubbed
    store = job.bulk_feature_store("us-east-1")
    rows = [{c.CC_NUM: card, c.TRANS_TIME: 1_653_004_800.0, c.LAST_TRANS_TIME: 1_653_000_000.0,
             **dict.fromkeys(c.DAY_COUNTS, 3), **dict.fromkeys(c.DAY_SUMS, 10.5)} for card in (4111, 4222)]
    with Stubber(store.client) as stubber:
        for row in rows:
            # (the values' encoding is tests/unit/online/test_stores.py's concern)
            stubber.add_response("put_record", {}, {"FeatureGroupName": c.BATCH_FEATURE_GROUP, "Record": ANY})
        # When it loads the aggregates (one at a time, so the stubbed answers come in order)
        result = store.put_records(c.BATCH_FEATURE_GROUP, rows, concurrency=1)
        # Then every card is written to the batch group, none failed
        stubber.assert_no_pending_responses()
    assert (result.written, result.failed) == (2, [])
