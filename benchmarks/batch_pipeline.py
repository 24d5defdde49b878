"""Time the batch pipeline at seed scale: wall time and peak memory of each step, hold-out metrics.

Each step runs as its own `fraudstream` process, exactly as a user runs it, so its peak resident
memory is its own. Usage: python benchmarks/batch_pipeline.py [--scale seed|demo] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FRAUDSTREAM = str(Path(sys.executable).with_name("fraudstream"))


def run_step(args: list[str]) -> tuple[float, float]:
    """Run one command; return its wall seconds and peak resident memory in MiB."""
    start = time.perf_counter()
    process = subprocess.Popen([FRAUDSTREAM, *args, "--quiet"], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"step failed: fraudstream {' '.join(args)}")
    return wall, usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["seed", "demo"], default="seed")
    parser.add_argument("--out", type=Path, help="keep the data here (default: a temporary directory)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.out or Path(tmp)
        steps = [
            ("generate", ["generate", "--scale", args.scale, "--out", str(data / "transactions.parquet")]),
            ("features", ["features", str(data / "transactions.parquet"), "--out", str(data)]),
            ("train", ["train", str(data / "features.parquet"), "--out", str(data)]),
        ]
        print(f"batch pipeline at {args.scale} scale on {os.cpu_count()} cores")
        print(f"{'step':<10}{'wall s':>10}{'peak MiB':>12}")
        total = 0.0
        for name, step_args in steps:
            wall, peak = run_step(step_args)
            total += wall
            print(f"{name:<10}{wall:>10.1f}{peak:>12.0f}", flush=True)
        print(f"{'total':<10}{total:>10.1f}")

        metrics = json.loads((data / "metrics.json").read_text())
        print(f"\nhold-out from {metrics['split']['holdout_start']} ({metrics['split']['rows']['holdout']:,} rows), "
              f"threshold {metrics['threshold']}")
        print(f"{'set':<5}{'ROC AUC':>9}{'PR AUC':>8}{'prec':>7}{'recall':>8}{'F1':>7}{'FP':>6}{'chains':>8}"
              f"{'caught':>8}{'by 3rd':>8}")
        for feature_set, r in metrics["holdout"].items():
            ch = r["chains"]
            print(f"{feature_set:<5}{r['roc_auc']:>9.3f}{r['pr_auc']:>8.3f}{r['precision']:>7.3f}{r['recall']:>8.3f}"
                  f"{r['f1']:>7.3f}{r['confusion_matrix']['false_positive']:>6}{ch['chains']:>8}"
                  f"{ch['caught_share']:>8.1%}{ch['caught_by_third_share']:>8.1%}")


if __name__ == "__main__":
    main()
