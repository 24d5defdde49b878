"""`fraudstream`: the command-line tool. Subcommands parse arguments and call one function each."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

from fraudstream import contract as c
from fraudstream.files import InputError

PROG = "fraudstream"


class Progress:
    """Prints each step of a long command to stderr with the time since the command started."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2022-05-15, got {text!r}") from None


def cmd_generate(args: argparse.Namespace) -> None:
    from fraudstream import generate
    from fraudstream.files import write_parquet

    scale = generate.SCALES[args.scale]
    config = generate.GeneratorConfig(
        cards=args.cards or scale.cards,
        transactions=args.transactions or scale.transactions,
        fraud_ratio=args.fraud_ratio,
        seed=args.seed,
        start=datetime.combine(args.start, datetime.min.time(), tzinfo=timezone.utc),
        end=datetime.combine(args.end, datetime.min.time(), tzinfo=timezone.utc),
    )
    progress = Progress(args.quiet)
    table = generate.generate(config, progress)
    progress(f"writing {args.out}")
    write_parquet(table, args.out)
    print(
        f"wrote {table.num_rows:,} transactions on {config.cards:,} cards "
        f"({config.fraud_transactions:,} fraudulent) to {args.out}"
    )


def _on_sagemaker(args: argparse.Namespace, run) -> None:
    from fraudstream import deployed

    deployment = deployed.find(args.stack, args.region)
    print(run(args, deployment, log=Progress(args.quiet)))


def cmd_features(args: argparse.Namespace) -> None:
    from fraudstream import features

    if args.on == "sagemaker":
        from fraudstream.sagemaker_jobs import run_features

        return _on_sagemaker(args, run_features)
    if args.out is None:
        raise InputError("--out DIR is required to compute features on this machine")
    if str(args.transactions).startswith("s3://"):
        raise InputError(f"{args.transactions}: S3 input needs --on sagemaker")
    paths = features.run(args.transactions, args.out, Progress(args.quiet))
    print(f"wrote {paths['features']} and {paths['batch_aggregates']}")


def cmd_train(args: argparse.Namespace) -> None:
    from fraudstream import train
    from fraudstream.train_config import TrainConfig

    if args.on == "sagemaker":
        from fraudstream.sagemaker_jobs import run_training

        args.out = Path(args.out) / train.MODEL_ARTIFACT
        return _on_sagemaker(args, run_training)
    config = TrainConfig(
        feature_set=args.feature_set,
        train_start=args.train_start,
        holdout_start=args.holdout_start,
        validation_fraction=args.validation_fraction,
        threshold=args.threshold,
        rounds=args.rounds,
        seed=args.seed,
    )
    metrics = train.run(args.features, args.out, config, None if args.quiet else Progress())
    print("\n".join(train.summary_lines(metrics)))
    print(f"wrote {Path(args.out) / train.MODEL_ARTIFACT}, {Path(args.out) / train.METRICS_FILE} and plots")


def cmd_scenario(args: argparse.Namespace) -> None:
    from fraudstream import replay

    lines = replay.seed_scenario(args.transactions, args.seed)
    replay.write_scenario(lines, args.out)
    print(f"wrote the seed scenario ({len(lines)} transactions on 4 hold-out cards) to {args.out}")


def cmd_replay(args: argparse.Namespace) -> int:
    from fraudstream import replay
    from fraudstream.local_pipeline import LocalPipeline, true_10m_counts

    lines, problems = replay.read_scenario(args.file)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not lines:
        raise InputError(f"{args.file}: no valid transaction to replay")
    for path, what in ((args.model, "run `fraudstream train` (or `make demo`)"),
                       (args.batch_aggregates, "run `fraudstream features` (or `make demo`)")):
        if not Path(path).is_file():
            raise InputError(f"{path}: no such file; {what}")
    progress = Progress(args.quiet)
    pipeline = LocalPipeline(args.workdir, args.model, time_mode=args.time_mode,
                             on_verdict=lambda v: print(v.message, flush=True), log=progress)
    with pipeline:
        pipeline.start(args.batch_aggregates)
        progress(f"replaying {len(lines)} transactions from {args.file}")
        result = replay.run(lines, pipeline, sys.stdout, verdict_timeout=args.timeout)
    verdicts = [v for v in result["verdicts"] if v is not None]
    fraud = sum(v.fields["verdict"] == "FRAUD" for v in verdicts)
    print(f"\n{len(lines)} transactions sent, {len(verdicts)} verdicts ({fraud} FRAUD)")
    if result["latencies"]:
        lat = result["latencies"]
        print(f"send to verdict: p50 {lat[len(lat) // 2]:.2f} s, max {lat[-1]:.2f} s")
    truth = true_10m_counts(result["messages"])
    behind = sum(v is not None and v.fields["features"][c.NUM_TRANS_LAST_10M] < n for v, n in zip(result["verdicts"], truth))
    print(f"10-minute count below the batch definition: {behind} of {len(lines)} "
          "(the card's previous aggregate was not in the store yet)")
    print(f"logs: {pipeline.log_path}")
    if args.check_seed_outcome:
        ok, text = replay.seed_outcome([v is not None and v.fields["verdict"] == "FRAUD" for v in result["verdicts"]])
        print(f"expected outcome {text}")
        if not ok:
            return 1
    if not result["complete"]:
        print(f"{PROG} replay: error: {len(lines) - len(verdicts)} transaction(s) got no verdict within "
              f"{args.timeout:g} s", file=sys.stderr)
        return 1
    return 0


def _sagemaker_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    from fraudstream.deployed import add_stack_arguments

    parser.add_argument("--on", choices=["local", "sagemaker"], default="local",
                        help=f"where to run (default: local). sagemaker: {what}")
    add_stack_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Streaming fraud detection with aggregated features: the batch ML pipeline, the local "
        "pipeline, and the commands that operate a deployed stack.",
        epilog="Typical run: fraudstream generate --out data/transactions.parquet && "
        "fraudstream features data/transactions.parquet --out data && "
        "fraudstream train data/features.parquet --out data",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("-q", "--quiet", action="store_true", help="do not print progress to stderr")

    from fraudstream.generate import SCALES, GeneratorConfig

    defaults = GeneratorConfig()
    gen = sub.add_parser(
        "generate",
        parents=[quiet],
        help="synthetic card transactions with fraud chain attacks",
        description="Generate synthetic card transactions with fraud chain attacks, as the seed's data notebook "
        "did: amounts in five buckets, and a share of transactions fraudulent, in chains of 3-10 "
        "transactions on one card 30-120 s apart. Deterministic for a given --seed. Writes Parquet with "
        f"columns {', '.join(c.TRANSACTION_COLUMNS)}.",
    )
    gen.add_argument("--out", required=True, type=Path, metavar="TX.parquet", help="output Parquet file")
    gen.add_argument("--cards", type=_positive_int, metavar="N", help="number of distinct cards (default: from --scale)")
    size = gen.add_mutually_exclusive_group()
    size.add_argument("--transactions", type=_positive_int, metavar="N", help="number of transactions")
    size.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="demo",
        help="preset size: "
        + "; ".join(f"{name} = {s.cards:,} cards, {s.transactions:,} transactions" for name, s in SCALES.items())
        + " (default: demo)",
    )
    gen.add_argument("--fraud-ratio", type=float, default=defaults.fraud_ratio, metavar="R",
                     help=f"share of fraudulent transactions, in [0, 1) (default: {defaults.fraud_ratio})")
    gen.add_argument("--seed", type=int, default=defaults.seed, metavar="S", help=f"random seed (default: {defaults.seed})")
    gen.add_argument("--start", type=_date, default=defaults.start.date(), metavar="DATE",
                     help=f"first day of the period (default: {defaults.start.date()})")
    gen.add_argument("--end", type=_date, default=defaults.end.date(), metavar="DATE",
                     help=f"day after the period (default: {defaults.end.date()})")
    gen.set_defaults(func=cmd_generate)

    feat = sub.add_parser(
        "features",
        parents=[quiet],
        help="batch aggregates and ratio features (DuckDB)",
        description="Compute, for every transaction, the card's count and average amount over the last 10 "
        "minutes and the last week (event time, the transaction included), the seconds since its previous "
        "transaction and the ratio features. Writes DIR/features.parquet (the training table) and "
        f"DIR/batch_aggregates.parquet (each card's latest 1-week aggregates: the rows of {c.BATCH_FEATURE_GROUP}).",
    )
    feat.add_argument("transactions", metavar="TX.parquet",
                      help="transactions from `fraudstream generate` (with --on sagemaker: a local file to upload, "
                      "or an s3:// prefix of Parquet files)")
    feat.add_argument("--out", type=Path, metavar="DIR", help="output directory (on this machine)")
    _sagemaker_arguments(feat, "a SageMaker Processing job (Spark 3.5) runs the same SQL over S3, writes features, "
                         "1-week aggregates and the training CSV to the stack's data bucket, and loads the aggregates "
                         "into the stack's batch feature group")
    feat.add_argument("--feature-set", choices=sorted(c.FEATURE_SETS), default=c.DEFAULT_FEATURE_SET,
                      help=f"with --on sagemaker: the feature set of the training CSV (default: {c.DEFAULT_FEATURE_SET})")
    feat.add_argument("--instance-count", type=_positive_int, default=2, metavar="N",
                      help="with --on sagemaker: processing instances (default: 2)")
    feat.set_defaults(func=cmd_features)

    from fraudstream.train_config import TrainConfig

    tdefaults = TrainConfig()
    tr = sub.add_parser(
        "train",
        parents=[quiet],
        help="train the XGBoost model and write the evaluation report",
        description="Train XGBoost with the seed's hyperparameters on the training period, evaluate on the "
        "hold-out period, and report the trained feature set beside v1 (the seed's). Writes DIR/model.tar.gz "
        "(for the SageMaker XGBoost 3.0-5 container), DIR/metrics.json and PNG plots.",
    )
    tr.add_argument("features", metavar="features.parquet",
                    help="from `fraudstream features` (with --on sagemaker: the s3:// output it printed)")
    _sagemaker_arguments(tr, "a SageMaker training job with the built-in XGBoost 3.0-5 container and the seed's "
                         "hyperparameters trains on the features job's CSV; the model is downloaded to DIR/model.tar.gz "
                         "with its feature set recorded, ready for `-c modelArtifact=DIR/model.tar.gz`")
    tr.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    tr.add_argument("--feature-set", choices=sorted(c.FEATURE_SETS), default=tdefaults.feature_set,
                    help="model inputs: " + "; ".join(f"{k} = {', '.join(v)}" for k, v in c.FEATURE_SETS.items())
                    + f" (default: {tdefaults.feature_set})")
    tr.add_argument("--threshold", type=float, default=tdefaults.threshold,
                    help=f"score above which a transaction is FRAUD (default: {tdefaults.threshold})")
    tr.add_argument("--train-start", type=_date, default=tdefaults.train_start, metavar="DATE",
                    help=f"first day of the training period (default: {tdefaults.train_start})")
    tr.add_argument("--holdout-start", type=_date, default=tdefaults.holdout_start, metavar="DATE",
                    help=f"first day of the hold-out period (default: {tdefaults.holdout_start})")
    tr.add_argument("--validation-fraction", type=float, default=tdefaults.validation_fraction, metavar="F",
                    help=f"share of the training period held out for validation (default: {tdefaults.validation_fraction})")
    tr.add_argument("--rounds", type=_positive_int, default=tdefaults.rounds, metavar="N",
                    help=f"boosting rounds (default: {tdefaults.rounds}, the seed's)")
    tr.add_argument("--seed", type=int, default=tdefaults.seed, metavar="S",
                    help=f"seed of the validation split and of XGBoost's row sampling (default: {tdefaults.seed})")
    tr.set_defaults(func=cmd_train)

    sc = sub.add_parser(
        "scenario",
        parents=[quiet],
        help="write the seed notebook's demo scenario for `replay`",
        description="Write the seed's scenario as a replay file: one transaction on each of three cards "
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
        help="replay a scenario through the local pipeline (Flink + both handlers)",
        description="Start the local pipeline (local topics, Flink 1.20 running flink_sql/, the two Lambda "
        "handlers with the embedded store and the in-process model), load the 1-week aggregates, and send the "
        "scenario's transactions, printing each prediction line. FILE is JSON lines, one transaction each: "
        "cc_num, amount, optional merchant, zip_code, and delay_s (seconds to wait after the previous one). "
        "Invalid lines are reported with their number and skipped. Exits 0 when every transaction got a verdict.",
    )
    rp.add_argument("file", type=Path, metavar="FILE", help="scenario, JSON lines")
    rp.add_argument("--model", type=Path, default=Path("data/model.tar.gz"), help="default: data/model.tar.gz")
    rp.add_argument("--batch-aggregates", type=Path, default=Path("data/batch_aggregates.parquet"),
                    help="1-week aggregates to load (default: data/batch_aggregates.parquet)")
    rp.add_argument("--workdir", type=Path, default=Path("data/local"),
                    help="local topics, embedded store and logs (default: data/local)")
    rp.add_argument("--time-mode", choices=["processing", "event"], default="processing",
                    help="time attribute of the Flink window (default: processing; README explains)")
    rp.add_argument("--timeout", type=float, default=60.0, metavar="S",
                    help="seconds to wait for the last verdicts (default: 60)")
    rp.add_argument("--check-seed-outcome", action="store_true",
                    help="also check the seed scenario's expected outcome, and exit 1 if it is not met")
    rp.set_defaults(func=cmd_replay)

    # Commands against a deployed stack (README: "Operate it on AWS"). Each module defines its own
    # arguments (configure_parser) and its entry (run(args) -> exit code).
    from fraudstream import batch_loader, log_viewer, simulator

    for name, module in (("simulate", simulator), ("logs", log_viewer), ("load-batch-features", batch_loader)):
        command = sub.add_parser(name, help=module.HELP, description=module.DESCRIPTION)
        module.configure_parser(command)
        command.set_defaults(func=module.run)
    return parser


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt  # so `finally` blocks stop the processes a command started


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = args.func(args)
    except (InputError, ValueError, OSError, RuntimeError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
