"""Local pipeline throughput and latency: transactions through the real Kafka broker, Flink and both handlers.

Sends N transactions (default 100,000, on 10,000 cards) to the transactions topic as fast as the producer
goes, and reports:
- throughput: transactions per second from the first send until every transaction has its verdict, and
  until every aggregate Flink emitted has been written to the embedded store;
- latency: from a transaction's send to its prediction line, p50 and p99, under that flood (mostly
  queueing) and at a steady --rate afterwards (what one transaction waits);
- where the time went: the busiest threads and processes, by CPU seconds.

One figure a line on stdout; progress on stderr. The triggers use the stack's settings (batch size 100,
batching window 0), unless --batch-size says otherwise.

Usage: python benchmarks/streaming.py [--transactions 100000] [--model data/model.tar.gz] [--rate 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fraudstream import contract as c
from fraudstream.local.pipeline import AGGREGATE_TRIGGER, PREDICT_TRIGGER, LocalPipeline, PipelineOptions
from fraudstream.online import settings


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children that ended (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields[11:15]) / ticks


def group_cpu(pgid: int) -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    total += sum(int(x) for x in fields[11:13]) / os.sysconf("SC_CLK_TCK")
            except OSError:
                continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--model", type=Path, default=Path("data/model.tar.gz"))
    parser.add_argument("--rate", type=float, default=200, help="steady-rate phase: transactions per second (default 200)")
    parser.add_argument("--steady", type=int, default=2_000, help="steady-rate phase: transactions (default 2,000)")
    parser.add_argument("--batch-size", type=int, help="records per handler invocation (default: the stack's, 100)")
    args = parser.parse_args()
    if not args.model.is_file():
        raise SystemExit(f"{args.model}: no such file; run `make demo` (or fraudstream train) first")
    triggers = None
    if args.batch_size:
        triggers = {AGGREGATE_TRIGGER: dataclasses.replace(settings.AGGREGATE_TRIGGER, batch_size=args.batch_size),
                    PREDICT_TRIGGER: dataclasses.replace(settings.PREDICT_TRIGGER, batch_size=args.batch_size)}

    rng = np.random.default_rng(1)
    cards = 4 * 10**15 + rng.choice(10**15, size=args.cards, replace=False)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp, LocalPipeline(Path(tmp), args.model, PipelineOptions(triggers=triggers), log=log) as pipeline:
        pipeline.start()
        cpu_before = {"this process": cpu_seconds(os.getpid()), "Flink": group_cpu(pipeline.flink.process.process.pid),
                      "Kafka broker": group_cpu(pipeline.broker.process.process.pid)}
        log(f"sending {args.transactions:,} transactions on {args.cards:,} cards")
        amounts = np.round(rng.uniform(1, 500, args.transactions), 2)
        chosen = rng.choice(cards, args.transactions)
        started = time.monotonic()
        sent_at: dict = {}
        step = 10_000
        for first in range(0, args.transactions, step):
            now = time.time()
            messages = [{c.CC_NUM: int(card), c.AMOUNT: float(amount), c.TRANS_TS: now}
                        for card, amount in zip(chosen[first:first + step], amounts[first:first + step])]
            at = time.monotonic()
            for key in pipeline.send_many(messages):
                sent_at[key] = at
        sending_done = time.monotonic() - started
        log(f"sent in {sending_done:.1f} s; waiting for the verdicts")
        if not pipeline.wait_for_verdicts(args.transactions, timeout=1800):
            raise SystemExit(f"only {len(pipeline.verdicts)} of {args.transactions} verdicts within 30 minutes")
        verdicts_done = time.monotonic() - started
        while pipeline.aggregates_consumed < args.transactions and time.monotonic() - started < 1800:
            time.sleep(0.05)
        aggregates_done = time.monotonic() - started
        flood = np.array([pipeline.arrival[key] - sent_at[key] for key in sent_at])
        cpu_after = {"this process": cpu_seconds(os.getpid()), "Flink": group_cpu(pipeline.flink.process.process.pid),
                     "Kafka broker": group_cpu(pipeline.broker.process.process.pid)}
        log(f"steady phase: {args.steady:,} transactions at {args.rate:g} per second")
        steady_at = {}
        next_send = time.monotonic()
        for card in rng.choice(cards, args.steady):
            next_send += 1 / args.rate
            time.sleep(max(0.0, next_send - time.monotonic()))
            steady_at[pipeline.send({c.CC_NUM: int(card), c.AMOUNT: 10.0, c.TRANS_TS: time.time()})] = time.monotonic()
        pipeline.wait_for_verdicts(args.transactions + args.steady, timeout=300)
        steady = np.array([pipeline.arrival[key] - at for key, at in steady_at.items() if key in pipeline.arrival])
        duplicates = pipeline.duplicates
    print(f"transactions={args.transactions} cards={args.cards} partitions={c.TOPIC_PARTITIONS} "
          f"batch_size={args.batch_size or settings.PREDICT_TRIGGER.batch_size}")
    print(f"producer_tx_per_s={args.transactions / sending_done:.0f}")
    print(f"verdict_tx_per_s={args.transactions / verdicts_done:.0f}")
    print(f"aggregate_tx_per_s={args.transactions / aggregates_done:.0f}")
    print(f"flood_latency_p50_s={np.percentile(flood, 50):.2f}")
    print(f"flood_latency_p99_s={np.percentile(flood, 99):.2f}")
    print(f"steady_rate_tx_per_s={args.rate:g}")
    print(f"steady_latency_p50_ms={np.percentile(steady, 50) * 1000:.0f}")
    print(f"steady_latency_p99_ms={np.percentile(steady, 99) * 1000:.0f}")
    print(f"duplicate_verdicts={duplicates}")
    for name in cpu_before:
        print(f"cpu_s_flood[{name}]={cpu_after[name] - cpu_before[name]:.1f}")


if __name__ == "__main__":
    main()
