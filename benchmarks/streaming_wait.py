"""What the predict handler's bounded wait (STREAMING_WAIT_MS) buys and costs, on the real local pipeline.

For each wait, a fresh pipeline (Kafka, Flink in processing time, both handlers) gets two loads:
- steady: --steady transactions at --rate per second on --cards cards (the issue's 75 tx/s on 50 cards);
- burst: --burst transactions sent at once on the same cards.
and reports per load the exactness (share of verdicts whose 10-minute count and average equal the batch
definition over the transactions sent) and the send-to-verdict latency p50 / p99. One line per wait and
load on stdout; progress on stderr.

Usage: python benchmarks/streaming_wait.py [--model data/model.tar.gz] [--waits 0,250,500,1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fraudstream import contract as c
from fraudstream.local.pipeline import LocalPipeline


def batch_definition(sent: list[dict]) -> list[tuple[int, float]]:
    """Each transaction's 10-minute count and average over the transactions sent before it (itself included)."""
    out = []
    for i, tx in enumerate(sent):
        window = [o[c.AMOUNT] for o in sent[: i + 1] if o[c.CC_NUM] == tx[c.CC_NUM]
                  and tx[c.TRANS_TS] - c.WINDOW_10M_SECONDS <= o[c.TRANS_TS] <= tx[c.TRANS_TS]]
        out.append((len(window), sum(window) / len(window)))
    return out


def measure(pipeline, sent: list[dict], keys: list, sent_at: dict, start: int = 0) -> tuple[float, float, float, int]:
    """(exact share, p50, p99, verdicts) over keys[start:], the batch definition counting everything sent."""
    truth = batch_definition(sent)[start:]
    exact = got = 0
    for key, (count, average) in zip(keys[start:], truth):
        verdict = pipeline.verdicts.get(key)
        if verdict is None:
            continue
        got += 1
        exact += (verdict.features[c.NUM_TRANS_LAST_10M] == count
                  and abs(verdict.features[c.AVG_AMT_LAST_10M] - average) <= 1e-6 * max(1.0, average))
    latencies = np.array([pipeline.arrival[k] - sent_at[k] for k in keys[start:] if k in pipeline.arrival])
    return exact / max(got, 1), float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99)), got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("data/model.tar.gz"))
    parser.add_argument("--waits", default="0,250,500,1000", help="milliseconds, comma-separated")
    parser.add_argument("--cards", type=int, default=50)
    parser.add_argument("--rate", type=float, default=75.0)
    parser.add_argument("--steady", type=int, default=600)
    parser.add_argument("--burst", type=int, default=2_000)
    args = parser.parse_args()
    if not args.model.is_file():
        raise SystemExit(f"{args.model}: no such file; run `make demo` (or fraudstream train) first")
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    rng = np.random.default_rng(3)
    cards = [int(x) for x in 4 * 10**15 + rng.choice(10**15, size=args.cards, replace=False)]
    print(f"wait_ms load transactions exact_share p50_s p99_s  ({args.cards} cards; steady {args.rate:g} tx/s)")
    for wait in (int(w) for w in args.waits.split(",")):
        with tempfile.TemporaryDirectory() as tmp, LocalPipeline(Path(tmp), args.model, log=lambda m: None,
                                                                 streaming_wait_ms=wait) as pipeline:
            pipeline.start()
            sent, keys, sent_at = [], [], {}
            log(f"wait {wait} ms: steady phase")
            next_send = time.monotonic()
            for card in rng.choice(cards, args.steady):
                next_send += 1 / args.rate
                time.sleep(max(0.0, next_send - time.monotonic()))
                message = {c.CC_NUM: int(card), c.AMOUNT: float(round(rng.uniform(1, 500), 2)), c.TRANS_TS: time.time()}
                key = pipeline.send(message)
                sent_at[key] = time.monotonic()
                sent.append(message)
                keys.append(key)
            pipeline.wait_for_verdicts(len(keys), timeout=300)
            steady = measure(pipeline, sent, keys, sent_at)
            log(f"wait {wait} ms: burst phase")
            now = time.time()
            burst = [{c.CC_NUM: int(card), c.AMOUNT: float(round(rng.uniform(1, 500), 2)), c.TRANS_TS: now}
                     for card in rng.choice(cards, args.burst)]
            at = time.monotonic()
            burst_keys = pipeline.send_many(burst)
            for key in burst_keys:
                sent_at[key] = at
            pipeline.wait_for_verdicts(len(keys) + len(burst_keys), timeout=600)
            flood = measure(pipeline, sent + burst, keys + list(burst_keys), sent_at, start=len(keys))
        for name, (share, p50, p99, got) in (("steady", steady), ("burst", flood)):
            print(f"{wait} {name} {got} {share:.3f} {p50:.3f} {p99:.3f}", flush=True)


if __name__ == "__main__":
    main()
