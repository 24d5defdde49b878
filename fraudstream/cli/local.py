"""The local verbs: `scenario` (write the AWS sample's scenario) and `replay` (a scenario through the local pipeline)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fraudstream import contract as c
from fraudstream import flink_properties as flink
from fraudstream.cli.args import out_of_orderness, positive_seconds, tick_delay
from fraudstream.cli.progress import Progress



def add_parsers(sub, quiet: argparse.ArgumentParser) -> None:
    sc = sub.add_parser(
        "scenario",
        parents=[quiet],
        help="write the AWS sample's demo scenario (\"the seed scenario\") for `replay`",
        description="Write the AWS sample's demo scenario (called the seed scenario here) as a replay file: one transaction on each of three cards "
        "(amounts 100-5000), then a ten-transaction attack on a fourth card (amounts 1-50, 1-2 s apart), "
        "on cards that have transactions in the hold-out period.",
    )
    sc.add_argument("--transactions", type=Path, default=Path("data/transactions.parquet"), metavar="TX.parquet",
                    help="transactions to pick the cards from (default: data/transactions.parquet)")
    sc.add_argument("--out", required=True, type=Path, metavar="FILE.jsonl", help="scenario file to write")
    sc.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    sc.set_defaults(func=cmd_scenario)

    rp = sub.add_parser(
        "replay",
        parents=[quiet],
        help="replay a scenario through the local pipeline (Kafka, Flink and both handlers)",
        description="Start the local pipeline (a Kafka broker, Flink 1.20 running the application zip of "
        "flink_sql/, the two Lambda handlers behind local MSK triggers, with the embedded store and the in-process "
        "model), load the 1-week aggregates, and send the scenario's transactions, printing each prediction line. FILE is JSON lines, one transaction each: "
        "cc_num, amount, optional merchant, zip_code, and delay_s (seconds to wait after the previous one). "
        "Invalid lines are reported with their number and skipped. Exits 0 when every transaction got a verdict.",
    )
    rp.add_argument("file", type=Path, metavar="FILE", help="scenario, JSON lines")
    rp.add_argument("--model", type=Path, default=Path("data/model.tar.gz"), help="default: data/model.tar.gz")
    rp.add_argument("--batch-aggregates", type=Path, default=Path("data/batch_aggregates.parquet"),
                    help="1-week aggregates to load (default: data/batch_aggregates.parquet)")
    rp.add_argument("--history", type=Path, metavar="TX.parquet",
                    help="the transactions the 1-week aggregates came from, remembered for `fraudstream consistency` "
                    "(default: transactions.parquet beside --batch-aggregates, when there)")
    rp.add_argument("--history-to-today", action="store_true",
                    help="move --history by whole days to end at today's 00:00 UTC and load the 1-week records a "
                    "nightly run at midnight would have written from it, instead of --batch-aggregates: the "
                    "scenario's cards then have real 1-week history at the time it is sent (what make demo does)")
    rp.add_argument("--workdir", type=Path, default=Path("data/local"),
                    help="the broker's data, embedded store, failed batches and logs; one pipeline at a time "
                    "(default: data/local)")
    rp.add_argument("--timeout", type=positive_seconds(), default=60.0, metavar="S",
                    help="seconds to wait for the last verdicts (default: 60)")
    rp.add_argument("--no-delay", action="store_true",
                    help="send every transaction at once, ignoring the lines' delay_s: the scenario as one burst")
    default = flink.EventTime()
    rp.add_argument("--max-out-of-orderness", type=out_of_orderness, default=default.max_out_of_orderness_s,
                    metavar="S", help="how far behind the newest transaction one may be stamped and still be on time, "
                    "0-60 s; each transaction then waits that long for its features on a quiet stream (default: "
                    f"{default.max_out_of_orderness_s:g}, as the stack's maxOutOfOrdernessSeconds)")
    rp.add_argument("--tick-delay-ms", type=tick_delay, default=default.tick_delay_ms, metavar="MS",
                    help="how far apart a burst may land on its partitions and still be on time, a multiple of 100 "
                    f"up to 60000 (default: {default.tick_delay_ms}, as the stack's tickDelayMs)")
    rp.add_argument("--check-seed-outcome", action="store_true",
                    help="also check the outcome the AWS sample's scenario expects (the three one-offs NOT FRAUD, the attack "
                    "flagged by its third transaction and FRAUD from then on), and exit 1 if it is not met")
    rp.set_defaults(func=cmd_replay)


def cmd_scenario(args: argparse.Namespace) -> None:
    from fraudstream.local import scenario

    lines = scenario.seed_scenario(args.transactions, args.seed)
    scenario.write_scenario(lines, args.out)
    print(f"wrote the AWS sample's scenario ({len(lines)} transactions on 4 hold-out cards) to {args.out}")


def cmd_replay(args: argparse.Namespace) -> int:
    from fraudstream.local.replay import ARCHIVE_WAIT_S, ReplayOptions, replay

    options = ReplayOptions(scenario=Path(args.file), model=Path(args.model), workdir=Path(args.workdir),
                            batch_aggregates=Path(args.batch_aggregates), history=args.history and Path(args.history),
                            history_to_today=args.history_to_today, no_delay=args.no_delay, verdict_timeout=args.timeout,
                            event_time=flink.EventTime(args.max_out_of_orderness, args.tick_delay_ms))
    done = replay(options, on_verdict=lambda v: print(v.message(), flush=True), progress=Progress(args.quiet),
                  warn=lambda problem: print(problem, file=sys.stderr))
    result = done.result
    if done.archive_missing:
        print(f"{done.archive_missing} of {len(result.keys)} transactions not in the archive after {ARCHIVE_WAIT_S:g} s "
              f"(`fraudstream consistency --local {args.workdir}` names them)", file=sys.stderr)
    print()
    print(f"model: {args.model} (feature set {done.feature_set}, FRAUD above {done.threshold:g}); "
          f"1-week records: {done.batch_aggregates}")
    print("\n".join(result.summary_lines()))
    print(f"verdicts: {done.verdict_log} (fraudstream logs --local {args.workdir}); other handler records: "
          f"{done.handler_log}; {done.published:,} on the verdicts topic {c.VERDICTS_TOPIC} (one per transaction)")
    print(f"check the features served: fraudstream consistency --local {args.workdir}")
    if result.interrupted:
        return 130
    if args.check_seed_outcome:
        ok, text = result.seed_outcome()
        print(f"expected outcome {text}")
        if not ok:
            return 1
    if not result.complete:
        print(f"fraudstream replay: error: {len(result.messages) - len(result.received)} transaction(s) got no verdict within "
              f"{args.timeout:g} s (the lines above say why)", file=sys.stderr)
        return 1
    return 0
