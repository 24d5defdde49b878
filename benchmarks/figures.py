"""Write docs/figures.md: every figure the README cites, as the benchmarks print it, so none can go stale.

Runs each measurement as its make target would, captures what it prints on stdout (progress stays on the
terminal), and writes one section per measurement with the command, the date, the machine and the wall
time. `--only NAME` measures one section again and keeps the others as they were. `make figures` runs
them all (about 15 minutes on 2 cores); `make figures ONLY=handlers` one.

Usage: python benchmarks/figures.py [--only demo|batch|handlers|streaming|holdout|flood ...] [--data data] [--out docs/figures.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from fraudstream.files import atomic_path
from fraudstream.paths import REPO

PYTHON = sys.executable
OUT = REPO / "docs" / "figures.md"
HEADER = """# Measured figures

Written by `make figures` (benchmarks/figures.py) from what each command prints; do not edit by hand.
Each section names its command, when and where it ran, and how long it took. The README and the docs cite
these sections instead of copying their numbers.
"""


@dataclass(frozen=True)
class Measurement:
    name: str
    title: str
    target: str  # the make target a user runs for it
    command: tuple[str, ...]  # with {data} for the data directory


MEASUREMENTS = (
    Measurement("demo", "The whole pipeline on this machine", "make demo",
                ("make", "-s", "demo", "DATA={data}")),
    Measurement("batch", "The batch pipeline at the AWS sample's scale", "make benchmark",
                (PYTHON, "benchmarks/batch_pipeline.py")),
    Measurement("handlers", "Handler speed, cold start, asset size and memory", "make benchmark-handlers",
                (PYTHON, "benchmarks/handlers.py", "--model", "{data}/model.tar.gz")),
    Measurement("streaming", "The local pipeline's throughput and latency", "make benchmark-streaming",
                (PYTHON, "benchmarks/streaming.py", "--model", "{data}/model.tar.gz")),
    Measurement("holdout", "The hold-out period through the streaming path", "make benchmark-holdout",
                (PYTHON, "benchmarks/online_holdout.py", "--data", "{data}")),
    Measurement("flood", "The hold-out period as one flood, with only the first night's records",
                "make benchmark-flood", (PYTHON, "benchmarks/online_holdout.py", "--data", "{data}", "--flood")),
)
BY_NAME = {m.name: m for m in MEASUREMENTS}
_SECTION = re.compile(r"^<!-- figures:(\w+) -->$", re.MULTILINE)


def machine() -> str:
    """Cores, memory and Python of this machine, for the reader to compare with theirs."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}, {platform.machine()}"


def measure(measurement: Measurement, data: str) -> str:
    """Run one measurement; its section of the file (RuntimeError naming the command when it fails)."""
    command = [part.format(data=data) for part in measurement.command]
    print(f"measuring {measurement.name}: {' '.join(command)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{measurement.name}: `{' '.join(command)}` exited with {result.returncode}")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!-- figures:{measurement.name} -->\n## {measurement.title}: `{measurement.target}`\n\n"
            f"Measured {when} on {machine()}, in {seconds / 60:.1f} min.\n\n```\n{result.stdout.rstrip()}\n```\n")


def sections(text: str) -> dict[str, str]:
    """The sections of an existing figures file, by name."""
    marks = list(_SECTION.finditer(text))
    return {m.group(1): text[m.start(): marks[i + 1].start() if i + 1 < len(marks) else len(text)].rstrip() + "\n"
            for i, m in enumerate(marks)}


def write(out: Path, found: dict[str, str]) -> None:
    body = "\n".join(found[m.name] for m in MEASUREMENTS if m.name in found)
    with atomic_path(out) as tmp:
        tmp.write_text(HEADER + "\n" + body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(BY_NAME), metavar="NAME",
                        help=f"measure these again ({', '.join(BY_NAME)}); default: all, in that order")
    parser.add_argument("--data", default="data", help="make demo's data directory (default: data)")
    parser.add_argument("--out", type=Path, default=OUT, help="default: docs/figures.md")
    args = parser.parse_args(argv)
    found = sections(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    for name in args.only or list(BY_NAME):
        try:
            found[name] = measure(BY_NAME[name], args.data)
        except RuntimeError as error:
            print(f"figures: error: {error}; the other sections are kept", file=sys.stderr)
            return 1
        write(args.out, found)  # after each one: an interrupted run keeps what it measured
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
