"""The batch verbs: `generate`, `features`, `train` (each on this machine, the last two also on SageMaker).

Parsers import only light modules (contract, the two config modules); each command imports the step it
runs, so `fraudstream --help` starts without numpy, xgboost or boto3.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from fraudstream import contract as c
from fraudstream.checks import InputError
from fraudstream.cli.args import add_stack_arguments, day, output_file, positive_int
from fraudstream.cli.progress import Progress
from fraudstream.offline.generate_config import SCALES, GeneratorConfig
from fraudstream.offline.train_config import (
    DEFAULT_SPLIT,
    HOLDOUT_SHARE,
    METRICS_FILE,
    MODEL_ARTIFACT,
    WARM_UP_DAYS,
    TrainConfig,
)


def add_parsers(sub, quiet: argparse.ArgumentParser) -> None:
    _generate_parser(sub, quiet)
    _features_parser(sub, quiet)
    _train_parser(sub, quiet)


# --- generate ---------------------------------------------------------------------------------------


def _generate_parser(sub, quiet: argparse.ArgumentParser) -> None:
    defaults = GeneratorConfig()
    gen = sub.add_parser(
        "generate",
        parents=[quiet],
        help="synthetic card transactions with fraud chain attacks",
        description="Generate synthetic card transactions with fraud chain attacks, as the data notebook of the "
        "AWS sample this project replaces did: amounts in five buckets, and a share of transactions fraudulent, in chains of 3-10 "
        "transactions on one card 30-120 s apart. Deterministic for a given --seed. Writes Parquet with "
        f"columns {', '.join(c.TRANSACTION_COLUMNS)}.",
    )
    gen.add_argument("--out", required=True, type=output_file(".parquet"), metavar="TX.parquet", help="output Parquet file")
    gen.add_argument("--cards", type=positive_int, metavar="N",
                     help="number of distinct cards (default: from --scale; with --transactions, the demo scale's "
                     f"{SCALES['demo'].transactions // SCALES['demo'].cards} transactions per card)")
    size = gen.add_mutually_exclusive_group()
    size.add_argument("--transactions", type=positive_int, metavar="N", help="number of transactions")
    size.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="demo",
        help="preset size: "
        + "; ".join(f"{name} = {s.cards:,} cards, {s.transactions:,} transactions" for name, s in SCALES.items())
        + " (seed is the size of the AWS sample's data, demo a tenth of it; default: demo)",
    )
    gen.add_argument("--fraud-ratio", type=float, default=defaults.fraud_ratio, metavar="R",
                     help=f"share of fraudulent transactions, in [0, 1) (default: {defaults.fraud_ratio})")
    gen.add_argument("--seed", type=int, default=defaults.seed, metavar="S", help=f"random seed (default: {defaults.seed})")
    gen.add_argument("--start", type=day, default=defaults.start.date(), metavar="DATE",
                     help=f"first day of the period (default: {defaults.start.date()})")
    gen.add_argument("--end", type=day, default=defaults.end.date(), metavar="DATE",
                     help=f"day after the period (default: {defaults.end.date()})")
    gen.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> None:
    from fraudstream.files import write_parquet
    from fraudstream.offline import generate

    scale = SCALES[args.scale]
    transactions = args.transactions or scale.transactions
    config = GeneratorConfig(
        cards=args.cards or scale.cards_for(transactions),
        transactions=transactions,
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
        f"wrote {table.num_rows:,} transactions on {config.cards:,} card{'s' if config.cards != 1 else ''} "
        f"({config.fraud_transactions:,} fraudulent) to {args.out}"
    )


# --- features ---------------------------------------------------------------------------------------


def _sagemaker_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--on", choices=["local", "sagemaker"], default="local",
                        help=f"where to run (default: local). sagemaker: {what}")
    add_stack_arguments(parser)


def _features_parser(sub, quiet: argparse.ArgumentParser) -> None:
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
    feat.add_argument("--instance-count", type=positive_int, default=2, metavar="N",
                      help="with --on sagemaker: processing instances (default: 2)")
    feat.set_defaults(func=cmd_features)


def cmd_features(args: argparse.Namespace) -> None:
    if args.on == "sagemaker":
        from fraudstream.operate import deployed, sagemaker

        progress = Progress(args.quiet)
        deployment = deployed.find(args.stack, args.region)
        print(sagemaker.run_features(deployment, str(args.transactions), args.feature_set, args.instance_count,
                                     log=progress))
        return
    from fraudstream.offline import features

    if args.out is None:
        raise InputError("--out DIR is required to compute features on this machine")
    if str(args.transactions).startswith("s3://"):
        raise InputError(f"{args.transactions}: S3 input needs --on sagemaker")
    paths = features.run(args.transactions, args.out, Progress(args.quiet))
    print(f"wrote {paths['features']} and {paths['batch_aggregates']}")


# --- train ------------------------------------------------------------------------------------------


def _train_parser(sub, quiet: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    tr = sub.add_parser(
        "train",
        parents=[quiet],
        help="train the XGBoost model and write the evaluation report",
        description="Train XGBoost with the AWS sample's hyperparameters on the training period, evaluate on the "
        "hold-out period, and report the trained feature set beside v1 (the AWS sample's). Writes DIR/model.tar.gz "
        "(for the SageMaker XGBoost 3.0-5 container), DIR/metrics.json and PNG plots.",
    )
    tr.add_argument("features", metavar="features.parquet",
                    help="from `fraudstream features` (with --on sagemaker: the s3:// output it printed)")
    _sagemaker_arguments(tr, "a SageMaker training job with the built-in XGBoost 3.0-5 container and the AWS sample's "
                         "hyperparameters trains on the features job's CSV; the model is downloaded to DIR/model.tar.gz "
                         "with its feature set recorded, ready for `-c modelArtifact=DIR/model.tar.gz`")
    tr.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    tr.add_argument("--feature-set", choices=sorted(c.FEATURE_SETS), default=defaults.feature_set,
                    help="model inputs: " + "; ".join(f"{k} = {', '.join(v)}" for k, v in c.FEATURE_SETS.items())
                    + f" (default: {defaults.feature_set})")
    tr.add_argument("--threshold", type=float, default=defaults.threshold,
                    help=f"score above which a transaction is FRAUD (default: {defaults.threshold})")
    tr.add_argument("--train-start", type=day, metavar="DATE",
                    help=f"first day of the training period (default: the data's first day plus {WARM_UP_DAYS} days, "
                    f"which warm up the 1-week window; {DEFAULT_SPLIT[0]} for generate's default period)")
    tr.add_argument("--holdout-start", type=day, metavar="DATE",
                    help=f"first day of the hold-out period (default: the last {HOLDOUT_SHARE * 100:.0f}%% of the data's days; "
                    f"{DEFAULT_SPLIT[1]} for generate's default period)")
    tr.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction, metavar="F",
                    help=f"share of the training period held out for validation (default: {defaults.validation_fraction})")
    tr.add_argument("--rounds", type=positive_int, default=defaults.rounds, metavar="N",
                    help=f"boosting rounds (default: {defaults.rounds}, the AWS sample's)")
    tr.add_argument("--seed", type=int, default=defaults.seed, metavar="S",
                    help=f"seed of the validation split and of XGBoost's row sampling (default: {defaults.seed})")
    tr.set_defaults(func=cmd_train)


# Options `train --on sagemaker` cannot honour: the features job fixes the split, the stack the threshold.
LOCAL_ONLY_TRAIN_OPTIONS = ("train_start", "holdout_start", "validation_fraction", "threshold")


def cmd_train(args: argparse.Namespace) -> None:
    if args.on == "sagemaker":
        from fraudstream.operate import deployed, sagemaker

        defaults = TrainConfig()
        ignored = [f"--{name.replace('_', '-')}" for name in LOCAL_ONLY_TRAIN_OPTIONS
                   if getattr(args, name) != getattr(defaults, name)]
        if ignored:
            raise ValueError(f"{', '.join(ignored)}: not used with --on sagemaker (the features job fixes the split "
                             f"with its defaults; the stack's fraudThreshold sets the threshold)")
        progress = Progress(args.quiet)
        deployment = deployed.find(args.stack, args.region)
        print(sagemaker.run_training(deployment, args.features, args.feature_set, args.rounds, args.seed,
                                     Path(args.out) / MODEL_ARTIFACT, log=progress))
        return
    from fraudstream.offline import train

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
    print(f"wrote {Path(args.out) / MODEL_ARTIFACT}, {Path(args.out) / METRICS_FILE} and plots")
