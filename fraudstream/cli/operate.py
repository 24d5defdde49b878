"""The verbs against a deployed stack: `simulate`, `verify`, `logs`, `load-batch-features`, `cleanup`, `consistency`
(docs/operate.md: "Operate it on AWS"; `consistency --local` reads a local run instead).

The parsers and their defaults live here; each command reads its input first (bad input fails before
anything touches AWS), finds the stack, and calls one function of fraudstream/operate with typed values.
Keyword arguments of the command functions are the tests' seams (a fake producer, an injected clock).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from fraudstream import contract as c
from fraudstream.checks import InputError
from fraudstream.cli.args import add_stack_arguments, duration, moment, positive_seconds
from fraudstream.cli.progress import Progress

SIMULATE_TIMEOUT_S = 30.0
LOGS_SINCE = "15m"
LOGS_INTERVAL_S = 5.0
LOAD_CONCURRENCY = 8
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def add_parsers(sub, quiet: argparse.ArgumentParser) -> None:
    _simulate_parser(sub, quiet)
    _verify_parser(sub, quiet)
    _logs_parser(sub)
    _load_parser(sub, quiet)
    _cleanup_parser(sub, quiet)
    _consistency_parser(sub)


# --- simulate ---------------------------------------------------------------------------------------

SIMULATE_HELP = "send a scenario's transactions to the deployed stack's Kafka topic"
SIMULATE_DESCRIPTION = (
    "Send transactions to the transactions topic of a deployed stack, from anywhere your AWS credentials "
    "work: the command invokes the stack's producer function (output ProducerFunctionName), which sends them "
    "from inside the VPC, so this machine needs no network path to the brokers; your credentials need "
    "lambda:InvokeFunction on that function. --direct connects to the brokers itself instead (from inside "
    "the VPC, IAM over SASL/OAUTHBEARER and TLS; your credentials then need kafka-cluster:Connect, "
    "DescribeTopic and WriteData on the cluster and topic, and port 9098 must be reachable). "
    "By default it sends the AWS sample's demo scenario: one transaction on each of three cards, "
    "then a ten-transaction attack on a fourth card, 1-2 s apart, on cards of the hold-out period of "
    "--transactions. --scenario FILE sends a JSON-lines file instead (the format of `fraudstream "
    "replay`: cc_num, amount, optional merchant, zip_code, delay_s); invalid lines are reported with "
    "their number and skipped. Each message is keyed by card number and stamped with the time it is "
    "sent. Prints one line per transaction with its partition and offset; exits 1 if any transaction "
    "was not delivered, listing each one. The scenario is checked before anything is sent. The verdicts "
    "appear on the verdicts topic and in the predict function's log group (`fraudstream logs`)."
)


def add_scenario_arguments(parser: argparse.ArgumentParser) -> None:
    """What to send: a scenario file, or the AWS sample's scenario on hold-out cards (simulate, verify)."""
    parser.add_argument("--scenario", type=Path, metavar="FILE.jsonl",
                        help="JSON-lines scenario to send, as for `fraudstream replay` "
                        "(default: the seed's scenario, from --transactions and --seed)")
    parser.add_argument("--transactions", type=Path, default=Path("data/transactions.parquet"), metavar="TX.parquet",
                        help="transactions the AWS sample's scenario picks its hold-out cards from "
                        "(default: data/transactions.parquet)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the seed scenario (default: 0)")


def _simulate_parser(sub, quiet: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("simulate", parents=[quiet], help=SIMULATE_HELP, description=SIMULATE_DESCRIPTION)
    add_stack_arguments(parser)
    add_scenario_arguments(parser)
    parser.add_argument("--no-delay", action="store_true",
                        help="send every transaction at once, ignoring delay_s (the attack then lands in one burst)")
    parser.add_argument("--timeout", type=positive_seconds(3600), default=SIMULATE_TIMEOUT_S, metavar="S",
                        help="seconds allowed to connect, to fetch the topic's metadata and to deliver each "
                        f"message, retries included (default: {SIMULATE_TIMEOUT_S:g})")
    parser.add_argument("--direct", action="store_true",
                        help="connect to the stack's brokers from this machine (inside the VPC) instead of "
                        "sending through the stack's producer function")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print kafka-python's log (connections, authentication) to stderr")
    broker = parser.add_argument_group("a Kafka broker instead of a stack (such as the local pipeline's)")
    broker.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]",
                        help="send here instead of to the stack's brokers (--stack and --region are then not used)")
    broker.add_argument("--security", choices=["plaintext", "ssl"], default="plaintext",
                        help="with --bootstrap-servers: plaintext, or TLS (default: plaintext)")
    broker.add_argument("--ssl-cafile", type=Path, metavar="CA.pem",
                        help="with --security ssl: the CA that signed the broker's certificate (default: the system's)")
    broker.add_argument("--topic", default=c.TRANSACTIONS_TOPIC,
                        help=f"with --bootstrap-servers: the topic (default: {c.TRANSACTIONS_TOPIC})")
    parser.set_defaults(func=cmd_simulate)


def scenario_lines(scenario: Path | None, transactions: Path, seed: int, err: TextIO | None = None):
    """The lines to send and where they come from: a scenario file (invalid lines reported and skipped)
    or the AWS sample's scenario on hold-out cards of ``transactions``."""
    from fraudstream.local.scenario import read_scenario, seed_scenario

    if scenario is None:
        return seed_scenario(transactions, seed), f"the AWS sample's scenario (cards from {transactions}, seed {seed})"
    lines, problems = read_scenario(scenario)
    for problem in problems:
        print(problem, file=err or sys.stderr)
    if not lines:
        raise InputError(f"{scenario}: no valid transaction to send")
    return lines, str(scenario)


def cmd_simulate(args: argparse.Namespace, producer_factory: Callable[..., Any] | None = None,
                 function_client: Any = None) -> int:
    """``producer_factory`` and ``function_client`` are for tests: a fake producer, a stubbed Lambda client."""
    from fraudstream.operate import deployed, simulator

    if args.ssl_cafile and (args.security != "ssl" or not args.bootstrap_servers):
        raise InputError("--ssl-cafile goes with --bootstrap-servers and --security ssl")
    if args.ssl_cafile and not args.ssl_cafile.is_file():
        raise InputError(f"{args.ssl_cafile}: no such file")
    lines, source = scenario_lines(args.scenario, args.transactions, args.seed)
    if args.bootstrap_servers:
        brokers = tuple(b.strip() for b in args.bootstrap_servers.split(",") if b.strip())
        target = simulator.Target(brokers, args.topic, args.security,
                                  ssl_cafile=str(args.ssl_cafile) if args.ssl_cafile else None, name=",".join(brokers))
    elif not args.direct:
        return simulator.simulate_through_stack(deployed.find(args.stack, args.region), lines, source,
                                                delays=not args.no_delay, log=Progress(args.quiet),
                                                client=function_client)
    else:
        target = simulator.stack_target(deployed.find(args.stack, args.region))
    with simulator.kafka_log_to_stderr(args.verbose):
        return simulator.simulate(target, lines, source, timeout_s=args.timeout, delays=not args.no_delay,
                                  log=Progress(args.quiet),
                                  producer_factory=producer_factory or simulator.default_producer_factory)


# --- verify -----------------------------------------------------------------------------------------

VERIFY_HELP = "send a scenario through a deployed stack and check its verdicts and features end to end"
VERIFY_DESCRIPTION = (
    "Does the deployed pipeline work? Sends the AWS sample's scenario (or --scenario FILE) through the stack's "
    "producer function as `fraudstream simulate` does, reads each transaction's verdict back from the predict "
    "function's log group (progress on stderr, up to --timeout), prints them, judges the outcome (the AWS "
    "sample's scenario: one-offs NOT FRAUD, the attack flagged by its third transaction and FRAUD from then "
    "on; another scenario: a verdict for every transaction), waits until Flink's archive holds the "
    "transactions and runs `fraudstream consistency` over the verdicts' time range. Exits 0 only if every "
    "step holds. Your credentials need lambda:InvokeFunction on the producer function, logs:FilterLogEvents "
    "on the predict log group, and s3:ListBucket and s3:GetObject on the data bucket."
)
VERIFY_TIMEOUT_S = 900.0  # Flink's archive commits a file per checkpoint (a minute on the managed service)


def _verify_parser(sub, quiet: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("verify", parents=[quiet], help=VERIFY_HELP, description=VERIFY_DESCRIPTION)
    add_stack_arguments(parser)
    add_scenario_arguments(parser)
    parser.add_argument("--timeout", type=positive_seconds(7200), default=VERIFY_TIMEOUT_S, metavar="S",
                        help=f"seconds to wait for the verdicts and the archive (default: {VERIFY_TIMEOUT_S:g})")
    parser.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace, clients: Any = None, stdout: TextIO | None = None,
               sleep: Callable[[float], None] | None = None, clock: Callable[[], float] | None = None) -> int:
    """``clients``, ``sleep`` and ``clock`` are the tests' seams (verify.Clients over moto and a stubbed Lambda
    client; a clock that waits take no time on)."""
    import time

    from fraudstream.operate import deployed, verify

    lines, source = scenario_lines(args.scenario, args.transactions, args.seed)
    return verify.verify(deployed.find(args.stack, args.region), lines, source, seed=args.scenario is None,
                         timeout_s=args.timeout, clients=clients, out_stream=stdout or sys.stdout,
                         progress=Progress(args.quiet), sleep=sleep or time.sleep, clock=clock or time.time)


# --- logs -------------------------------------------------------------------------------------------

LOGS_HELP = "show the deployed predict function's verdicts from CloudWatch Logs"
LOGS_DESCRIPTION = f"""\
Read the prediction lines of the deployed predict function from its CloudWatch log group (stack
output PredictLogGroupName) and print one row per transaction: time (UTC, the transaction's event
time), card (masked), amount, score, verdict, and the 10-minute count and average amount it was
scored with. Other lines of the function and unreadable lines are skipped and counted on stderr.

Time range: the last --since (default {LOGS_SINCE}), or --start to --end (ISO 8601; no offset means UTC;
--since with --end counts back from --end). Events are selected by when they were logged.

--local [DIR] reads the verdict log of a local run instead (what `fraudstream replay` and `make demo`
leave in DIR, default data/local: logs/verdicts.jsonl), with the same filters and output; without a
time option it shows the whole run."""
LOGS_EPILOG = """\
examples:
  fraudstream logs                                  last 15 minutes, as a table
  fraudstream logs --since 2h --fraud-only          FRAUD verdicts of the last two hours
  fraudstream logs --start 2026-11-28T10:00 --end 2026-11-28T11:00Z --json | jq .score
  fraudstream logs --follow --interval 2            keep printing new verdicts; Ctrl-C stops (exit 0)
  fraudstream logs --since 1h --url                 CloudWatch console link to the same events
  fraudstream logs --local --fraud-only             FRAUD verdicts of the last local run (data/local)

exit status: 0 on success (also when --follow is stopped with Ctrl-C), 1 when the stack, its
outputs, the log group or the AWS credentials cannot be used (one line on stderr), 2 on bad options."""


def _logs_parser(sub) -> None:
    parser = sub.add_parser("logs", help=LOGS_HELP, description=LOGS_DESCRIPTION, epilog=LOGS_EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_arguments(parser)
    parser.add_argument("--local", nargs="?", const=Path("data/local"), type=Path, metavar="DIR",
                        help="a local run's work directory instead of a stack (default when given alone: data/local)")
    when = parser.add_argument_group("time range (UTC unless an offset is given)")
    first = when.add_mutually_exclusive_group()
    first.add_argument("--since", type=duration, metavar="DURATION",
                       help=f"how far back from --end or now: 90s, 15m, 2h, 1d (default: {LOGS_SINCE})")
    first.add_argument("--start", type=moment, metavar="TIME",
                       help="first log time, ISO 8601: 2026-11-28T10:00, 2026-11-28T10:00Z, ...+01:00")
    when.add_argument("--end", type=moment, metavar="TIME", help="last log time, ISO 8601 (default: now)")
    what = parser.add_argument_group("output")
    what.add_argument("--fraud-only", action="store_true", help="only FRAUD verdicts")
    what.add_argument("--json", action="store_true",
                      help="one JSON object per prediction, as the function logged it (for jq and scripts)")
    what.add_argument("--url", action="store_true",
                      help="print the CloudWatch console link to the same log events instead of reading them")
    what.add_argument("--follow", "-f", action="store_true",
                      help="after the range, keep polling for new verdicts until Ctrl-C (exit 0)")
    what.add_argument("--interval", type=positive_seconds(), default=LOGS_INTERVAL_S, metavar="SECONDS",
                      help=f"--follow: seconds between polls (default: {LOGS_INTERVAL_S:g})")
    parser.set_defaults(func=cmd_logs, logs_parser=parser)


def time_range(since: timedelta, start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """[start, end]: --start (else --end or now minus --since) to --end (else now)."""
    end = end or now
    return (start or end - since), end


def _check_logs_options(args: argparse.Namespace, start: datetime, end: datetime) -> None:
    """Combinations argparse cannot express: a usage error (exit 2), before anything touches AWS."""
    problems = [
        (args.local is not None and args.url, "--url links to CloudWatch: it cannot be combined with --local"),
        (args.follow and args.end is not None, "--follow reads up to now: it cannot be combined with --end"),
        (args.url and args.follow, "--url prints a link: it cannot be combined with --follow"),
        (args.url and args.json, "--url prints a link: it cannot be combined with --json"),
        (start >= end, f"the range is empty: start {start.strftime(TIME_FORMAT)} is not before end "
                       f"{end.strftime(TIME_FORMAT)} UTC"),
    ]
    for failed, message in problems:
        if failed:
            args.logs_parser.error(message)


def cmd_logs(args: argparse.Namespace, now: datetime | None = None, **seams) -> int:
    """``seams`` (sleep, max_polls, page_size, stdout, stderr) go to operate.log_viewer.run, for tests."""
    from fraudstream.operate import deployed, log_viewer

    ranged = args.since or args.start or args.end
    start, end = time_range(args.since or duration(LOGS_SINCE), args.start, args.end, now or datetime.now(timezone.utc))
    _check_logs_options(args, start, end)
    if args.local is not None:
        from fraudstream.local.workdir import WorkDir

        if not args.local.is_dir():
            raise InputError(f"{args.local}: no such directory (a local run's work directory, such as data/local)")
        files = WorkDir(args.local)
        files.read_run()  # a local run's directory, or one line saying it is not
        log = files.verdict_log
        return log_viewer.run_local(log, start if ranged else None, end if ranged else None, follow_log=args.follow,
                                    fraud_only=args.fraud_only, as_json=args.json, interval=args.interval,
                                    **{k: v for k, v in seams.items() if k != "page_size"})
    deployment = deployed.find(args.stack, args.region)
    return log_viewer.run(deployment, start, None if args.follow else end, fraud_only=args.fraud_only,
                          as_json=args.json, url=args.url, interval=args.interval, **seams)


# --- load-batch-features ----------------------------------------------------------------------------

LOAD_HELP = "load 1-week aggregates into the deployed stack's batch feature group"
LOAD_DESCRIPTION = (
    "Write each card's 1-week aggregates from FILE (batch_aggregates.parquet, from `fraudstream features`) "
    "to the batch feature group of the stack (output BatchFeatureGroupName) with PutRecord: a bounded number of "
    "writes in flight, throttled calls retried, a progress bar. Idempotent: loading the same file again "
    "leaves the group as it was. Prints how many records were written and how many failed; exits 1 if any failed."
)


def _load_parser(sub, quiet: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("load-batch-features", parents=[quiet], help=LOAD_HELP, description=LOAD_DESCRIPTION)
    parser.add_argument("file", type=Path, metavar="FILE", help="batch_aggregates.parquet")
    add_stack_arguments(parser)
    parser.add_argument("--concurrency", type=int, default=LOAD_CONCURRENCY, choices=range(1, 65), metavar="N",
                        help=f"writes in flight, 1-64 (default: {LOAD_CONCURRENCY})")
    parser.set_defaults(func=cmd_load_batch_features)


def cmd_load_batch_features(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fraudstream.offline.features import read_batch_aggregates
    from fraudstream.operate import deployed, load_batch_features

    rows = read_batch_aggregates(args.file)  # bad input fails before anything touches AWS
    deployment = deployed.find(args.stack, args.region)
    with tqdm(total=len(rows), unit="card", disable=args.quiet, file=sys.stderr) as bar:
        group, result = load_batch_features.load(deployment, rows, args.concurrency, on_done=bar.update)
    return load_batch_features.report(group, result)


# --- cleanup ----------------------------------------------------------------------------------------

CLEANUP_HELP = "finish deleting a stack whose deletion stopped (make destroy runs it)"
CLEANUP_DESCRIPTION = (
    "When `cdk destroy` leaves the stack DELETE_FAILED, empty each bucket CloudFormation could not delete "
    "(every version of every object: S3 delivers access logs late, so the log bucket can fill again after it "
    "was emptied), print every other resource that did not go with CloudFormation's reason, delete the stack "
    "again (which resumes where it stopped, and waits again for Lambda to release its network interfaces) and "
    "wait until it is gone, up to an hour. Exits 0 when the stack is gone (also when there was nothing to do), "
    "1 when it is still there. Your credentials need the permissions `cdk destroy` uses."
)


def _cleanup_parser(sub, quiet: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("cleanup", parents=[quiet], help=CLEANUP_HELP, description=CLEANUP_DESCRIPTION)
    add_stack_arguments(parser)
    parser.set_defaults(func=cmd_cleanup)


def cmd_cleanup(args: argparse.Namespace, stdout: TextIO | None = None, **seams) -> int:
    """``seams`` (session, wait) go to operate.cleanup.run, for tests."""
    from fraudstream.operate import cleanup

    return cleanup.run(args.stack, args.region, stdout or sys.stdout, **seams)


# --- consistency ------------------------------------------------------------------------------------

CONSISTENCY_HELP = "recompute the features the predict handler served with the batch SQL, and report mismatches"
CONSISTENCY_DESCRIPTION = (
    "Training/serving parity, measured: read the verdicts the predict handler logged (each carries its "
    "features and score) and the transactions Flink archived, recompute every verdict's features with the "
    "batch SQL training used (the history before them included) and report, per feature, how many values "
    "are exact (relative 1e-9), unverifiable (different, and the history the check needs is missing) and "
    "unexplained (different: a defect, or a late transaction, named as such); then, with the model, the score "
    "difference and the verdicts that would flip. "
    "--local reads a local run's work directory (what `fraudstream replay` leaves: verdict log, archive, "
    "history, model); --stack reads the predict function's log group over --start/--end and "
    "the archive in the stack's data bucket. Missing log fields, transactions absent from the archive and "
    "an empty window are counted and named. Exits 1 when any value is unexplained or any verdict would flip, so "
    "it can guard a deployment."
)


def _consistency_parser(sub) -> None:
    parser = sub.add_parser("consistency", help=CONSISTENCY_HELP, description=CONSISTENCY_DESCRIPTION)
    where = parser.add_argument_group("what to read")
    where.add_argument("--local", nargs="?", const=Path("data/local"), type=Path, metavar="DIR",
                       help="a local run's work directory (default when given alone: data/local)")
    add_stack_arguments(where)
    where.add_argument("--start", type=moment, metavar="TIME", help="with --stack: first log time, ISO 8601 (UTC)")
    where.add_argument("--end", type=moment, metavar="TIME", help="with --stack: last log time (default: now)")
    where.add_argument("--history", type=Path, metavar="TX.parquet",
                       help="transactions before the archived ones, in `fraudstream generate`'s format (the 1-week "
                       "windows need them; a local run remembers the one replay was given)")
    where.add_argument("--model", type=Path, metavar="model.tar.gz",
                       help="model to rerun on the batch definition's vectors (default: a local run's own; "
                       "with --stack none, and scores are not compared)")
    where.add_argument("--threshold", type=float, default=c.DEFAULT_THRESHOLD, metavar="P",
                       help=f"with --stack: the function's FRAUD threshold (default: {c.DEFAULT_THRESHOLD:g})")
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="the report as one JSON object instead of the table")
    output.add_argument("--png", type=Path, metavar="FILE.png", help="also draw the per-feature mismatch rates here")
    parser.set_defaults(func=cmd_consistency, consistency_parser=parser)


def cmd_consistency(args: argparse.Namespace, now: datetime | None = None, stdout: TextIO | None = None,
                    deployment: Any = None) -> int:
    """``deployment`` is the tests' seam (a Deployment over moto)."""
    import json

    from fraudstream.operate import consistency, deployed

    stdout = stdout or sys.stdout
    for path, what in ((args.history, "--history"), (args.model, "--model")):
        if path is not None and not path.is_file():
            raise InputError(f"{what} {path}: no such file")
    if args.local is not None:
        if args.start or args.end:
            args.consistency_parser.error("--start and --end select log times of a stack: not with --local")
        if not args.local.is_dir():
            raise InputError(f"{args.local}: no such directory (a local run's work directory, such as data/local)")
        report = consistency.check_local_run(args.local, history=args.history, model=args.model)
    else:
        if args.start is None:
            args.consistency_parser.error("give --local [DIR], or --start (and --end) for a deployed stack")
        end = args.end or now or datetime.now(timezone.utc)
        if args.start >= end:
            args.consistency_parser.error(f"the range is empty: start {args.start:%Y-%m-%d %H:%M:%S} is not before end "
                                          f"{end:%Y-%m-%d %H:%M:%S} UTC")
        deployment = deployment or deployed.find(args.stack, args.region)
        report = consistency.check_stack(deployment, args.start, end, history=args.history, model=args.model,
                                   threshold=args.threshold)
    print(json.dumps(report.as_dict(), indent=2) if args.json else consistency.table(report), file=stdout)
    if args.png:
        consistency.write_png(report, args.png)
        if not args.json:
            print(f"mismatch rates drawn in {args.png}", file=stdout)
    return 0 if report.consistent else 1
