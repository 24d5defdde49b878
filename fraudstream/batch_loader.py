"""Load 1-week aggregates (batch_aggregates.parquet) into the batch feature group of a deployed stack.

PutRecord per card, a bounded number in flight, each retried by botocore's adaptive mode on
throttling; a card that still fails is reported, not fatal to the others. Loading twice is safe:
a record with the same event time replaces itself, and the online store keeps the newest.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudstream import contract as c
from fraudstream import stack_outputs as out

HELP = "load 1-week aggregates into the deployed stack's batch feature group"
DESCRIPTION = (
    "Write each card's 1-week aggregates from FILE (batch_aggregates.parquet, from `fraudstream features`) "
    "to the batch feature group of the stack (output BatchFeatureGroupName) with PutRecord: a bounded number of "
    "writes in flight, throttled calls retried, a progress bar. Idempotent: loading the same file again "
    "leaves the group as it was. Prints how many records were written and how many failed; exits 1 if any failed."
)
DEFAULT_CONCURRENCY = 8
SHOWN_FAILURES = 10


@dataclass
class LoadResult:
    written: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)


def read_aggregates(path: str | Path) -> list[dict[str, Any]]:
    """Rows of batch_aggregates.parquet with exactly the batch group's features."""
    import pyarrow.parquet as pq

    from fraudstream.files import check_parquet

    check_parquet(path, {name: "number" for name in c.BATCH_FEATURE_GROUP_COLUMNS})
    return pq.read_table(path, columns=list(c.BATCH_FEATURE_GROUP_COLUMNS)).to_pylist()


def load(rows: Iterable[Mapping[str, Any]], put: Callable[[Mapping[str, Any]], None], concurrency: int = DEFAULT_CONCURRENCY,
         on_done: Callable[[], None] = lambda: None) -> LoadResult:
    """Call ``put`` on every row with at most ``concurrency`` calls in flight; failures are collected per card."""
    result = LoadResult()
    pending: dict[Future, int] = {}

    def settle(done: Iterable[Future]) -> None:
        for future in done:
            card = pending.pop(future)
            error = future.exception()
            if error is None:
                result.written += 1
            else:
                result.failed.append((card, f"{type(error).__name__}: {error}"))
            on_done()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for row in rows:
            if len(pending) >= concurrency:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                settle(done)
            pending[pool.submit(put, row)] = row[c.CC_NUM]
        settle(wait(pending).done)
    return result


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from fraudstream.deployed import add_stack_arguments

    parser.add_argument("file", type=Path, metavar="FILE", help="batch_aggregates.parquet")
    add_stack_arguments(parser)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, choices=range(1, 65), metavar="N",
                        help=f"writes in flight, 1-64 (default: {DEFAULT_CONCURRENCY})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fraudstream import aws, deployed
    from fraudstream.stores import FeatureStoreOnlineStore

    rows = read_aggregates(args.file)  # bad input fails before anything touches AWS
    deployment = deployed.find(args.stack, args.region)
    group = deployment.output(out.BATCH_FEATURE_GROUP)
    store = FeatureStoreOnlineStore(aws.new_client("sagemaker-featurestore-runtime", session=deployment.session))
    with deployed.aws_errors():  # credentials that expire mid-way fail each write: check them once first
        deployment.client("sts").get_caller_identity()
    with tqdm(total=len(rows), unit="card", disable=args.quiet, file=sys.stderr) as bar:
        result = load(rows, lambda row: store.put_record(group, row), args.concurrency, on_done=bar.update)
    print(f"{group}: {result.written:,} records written, {len(result.failed):,} failed")
    for card, error in result.failed[:SHOWN_FAILURES]:
        print(f"  card {c.mask_card(card)}: {error}", file=sys.stderr)
    if len(result.failed) > SHOWN_FAILURES:
        print(f"  ... and {len(result.failed) - SHOWN_FAILURES:,} more", file=sys.stderr)
    return 1 if result.failed else 0
