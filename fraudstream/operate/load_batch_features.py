"""Load 1-week aggregates (batch_aggregates.parquet) into the batch feature group of a deployed stack.

PutRecord per card, a bounded number in flight (online/stores.py), each retried by
botocore's adaptive mode on throttling; a card that still fails is reported, not fatal to the others.
Loading twice is safe: a record with the same event time replaces itself, and the online store keeps
the newest.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from fraudstream import contract as c
from fraudstream import stack_outputs as out
from fraudstream.online import aws
from fraudstream.feature_puts import PutResult
from fraudstream.online.stores import FeatureStoreOnlineStore
from fraudstream.operate.deployed import Deployment, aws_errors

SHOWN_FAILURES = 10


def load(deployment: Deployment, rows: list[Mapping[str, Any]], concurrency: int,
         on_done: Callable[[], None] = lambda: None) -> tuple[str, PutResult]:
    """Write ``rows`` to the stack's batch feature group; returns the group's name and what happened."""
    group = deployment.output(out.BATCH_FEATURE_GROUP)
    store = FeatureStoreOnlineStore(aws.new_client("sagemaker-featurestore-runtime", session=deployment.session))
    with aws_errors():  # credentials that expire mid-way fail each write: check them once first
        deployment.client("sts").get_caller_identity()
    return group, store.put_records(group, rows, concurrency, on_done)


def report(group: str, result: PutResult, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Counts on stdout, the first failed cards on stderr; exit code 1 if any failed."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    print(f"{group}: {result.written:,} records written, {len(result.failed):,} failed", file=stdout)
    for card, error in result.failed[:SHOWN_FAILURES]:
        print(f"  card {c.mask_card(card)}: {type(error).__name__}: {error}", file=stderr)
    if len(result.failed) > SHOWN_FAILURES:
        print(f"  ... and {len(result.failed) - SHOWN_FAILURES:,} more", file=stderr)
    return 1 if result.failed else 0
