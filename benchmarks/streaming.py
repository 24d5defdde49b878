"""Local pipeline throughput and latency: transactions through Flink and both handlers.

Sends N transactions (default 100,000, on 10,000 cards) to the local transactions topic in
segments of --segment, as fast as it can, and reports:
- throughput: transactions per second until every transaction has its verdict, and until
  every aggregate Flink emitted has been written to the embedded store;
- latency: from a transaction's send to its prediction line, p50 and p99, under that flood
  (mostly queueing) and at a steady --rate afterwards (what one transaction waits).

Usage: python benchmarks/streaming.py [--transactions 100000] [--model data/model.tar.gz]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from fraudstream import contract as c
from fraudstream.local.pipeline import LocalPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--segment", type=int, default=1_000, help="transactions per topic segment (default 1,000)")
    parser.add_argument("--model", type=Path, default=Path("data/model.tar.gz"))
    parser.add_argument("--rate", type=float, default=50, help="steady-rate phase: transactions per second (default 50)")
    parser.add_argument("--steady", type=int, default=500, help="steady-rate phase: transactions (default 500)")
    args = parser.parse_args()
    if not args.model.is_file():
        raise SystemExit(f"{args.model}: no such file; run `make demo` (or fraudstream train) first")

    rng = np.random.default_rng(1)
    cards = 4 * 10**15 + rng.choice(10**15, size=args.cards, replace=False)
    with tempfile.TemporaryDirectory() as tmp, LocalPipeline(Path(tmp), args.model) as pipeline:
        pipeline.start()
        sent_at: list[float] = []
        started = time.monotonic()
        for first in range(0, args.transactions, args.segment):
            size = min(args.segment, args.transactions - first)
            now = time.time()
            pipeline.send_many([{c.CC_NUM: int(card), c.AMOUNT: float(amount), c.TRANS_TS: now}
                                for card, amount in zip(rng.choice(cards, size), np.round(rng.uniform(1, 500, size), 2))])
            sent_at.extend([time.monotonic()] * size)
        if not pipeline.wait_for_verdicts(args.transactions, timeout=1800):
            raise SystemExit(f"only {len(pipeline.verdicts)} of {args.transactions} verdicts within 30 minutes")
        verdicts_done = time.monotonic() - started
        while pipeline.aggregates_consumed < args.transactions and time.monotonic() - started < 1800:
            time.sleep(0.1)
        aggregates_done = time.monotonic() - started
        latencies = np.array([pipeline.arrival[o] - sent_at[o] for o in range(args.transactions)])
        for _ in range(args.steady):  # one transaction at a time, at a rate the pipeline sustains
            time.sleep(1 / args.rate)
            pipeline.send({c.CC_NUM: int(rng.choice(cards)), c.AMOUNT: 10.0, c.TRANS_TS: time.time()})
            sent_at.append(time.monotonic())
        pipeline.wait_for_verdicts(args.transactions + args.steady, timeout=300)
        steady = np.array([pipeline.arrival[o] - sent_at[o] for o in range(args.transactions, len(sent_at))])
    print(f"transactions={args.transactions} cards={args.cards} segment={args.segment}")
    print(f"verdicts: {args.transactions / verdicts_done:.0f} tx/s ({verdicts_done:.1f} s for all)")
    print(f"aggregates through Flink into the store: {pipeline.aggregates_consumed / aggregates_done:.0f} tx/s "
          f"({pipeline.aggregates_consumed:,} in {aggregates_done:.1f} s)")
    print(f"send to prediction line, flood: p50 {np.percentile(latencies, 50):.2f} s, p99 {np.percentile(latencies, 99):.2f} s")
    print(f"send to prediction line, {args.rate:g} tx/s: p50 {np.percentile(steady, 50) * 1000:.0f} ms, "
          f"p99 {np.percentile(steady, 99) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
