"""`fraudstream`: the command-line tool. Each verb group has its module; this one assembles them and runs one."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sqlite3
import sys
from collections.abc import Iterator

from fraudstream.checks import InputError
from fraudstream.cli import batch, local, operate
from fraudstream.cli.args import quiet_parent

PROG = "fraudstream"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Streaming fraud detection with aggregated features: the batch ML pipeline, the local "
        "pipeline, and the commands that operate a deployed stack.",
        epilog="Typical run: fraudstream generate --out data/transactions.parquet && "
        "fraudstream features data/transactions.parquet --out data && "
        "fraudstream train data/features.parquet --out data",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    quiet = quiet_parent()
    batch.add_parsers(sub, quiet)
    local.add_parsers(sub, quiet)
    # Commands against a deployed stack (docs/operate.md: "Operate it on AWS").
    operate.add_parsers(sub, quiet)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PROG)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt  # so `finally` blocks stop the processes a command started


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While the command runs, a kill or a closed terminal stops what it started; a signal the caller chose to
    ignore (nohup ignores SIGHUP) stays ignored, so `nohup fraudstream local up &` outlives its terminal as asked.
    The handlers before are put back after, so a caller of main() (a test, a script) keeps its own."""
    before = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        current = signal.getsignal(sig)
        if current is not signal.SIG_IGN:
            before[sig] = current
            signal.signal(sig, _interrupt)
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with stop_on_signals():
        try:
            code = args.func(args)
        except (InputError, ValueError, OSError, RuntimeError, sqlite3.Error) as exc:  # a broken local store too
            print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
            return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
