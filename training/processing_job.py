"""The batch job at scale: SageMaker Processing (Spark 3.5) runs the project's batch SQL over S3.

One entry for two uses, with the same code as `fraudstream features` (fraudstream/offline/sql, through
fraudstream/offline/spark.py):
- `fraudstream features --on sagemaker`: labelled transactions (Parquet from `fraudstream generate`)
  -> features, 1-week aggregates, and the train/validation CSV the built-in XGBoost container
  trains on (label first, features in model order, no header);
- the nightly refresh: the transactions Flink archived from the topic (JSON lines, unlabelled)
  -> 1-week aggregates, loaded into the batch feature group.

Inputs and outputs are local directories that SageMaker fills from and uploads to S3
(/opt/ml/processing/...). The fraudstream modules it imports arrive as a zip on --py-files
(fraudstream/packaging/job_code.py builds it from this file's imports).
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date, datetime, timezone

from fraudstream import contract as c
from fraudstream.offline import spark as spark_sql
from fraudstream.offline.train_config import DEFAULT_SPLIT, TrainConfig, utc_epoch
from fraudstream.online.backends import bulk_feature_store

LOG = logging.getLogger("fraudstream.processing")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    split = TrainConfig()  # the same fraction and seed as `fraudstream train`; the dates of generate's default period
    train_start, holdout_start = DEFAULT_SPLIT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", required=True, help="directory of Parquet or JSON-lines transactions")
    parser.add_argument("--format", choices=["parquet", "json"], default="parquet",
                        help="parquet: labelled, from `fraudstream generate`; json: archived from the topic by Flink")
    parser.add_argument("--output", required=True,
                        help="directory for features/, batch_aggregates/ and csv/<feature set>/{train,validation}/")
    parser.add_argument("--feature-set", choices=sorted(c.FEATURE_SETS), default=c.DEFAULT_FEATURE_SET)
    parser.add_argument("--train-start", type=date.fromisoformat, default=train_start)
    parser.add_argument("--holdout-start", type=date.fromisoformat, default=holdout_start)
    parser.add_argument("--validation-fraction", type=float, default=split.validation_fraction)
    parser.add_argument("--seed", type=int, default=split.seed)
    parser.add_argument("--cutoff-date", type=date.fromisoformat,
                        help="the 1-week records' cutoff (YYYY-MM-DD, UTC): day tiles cover the days before it (default: "
                        "with --format json, the day the job runs, so that today's partial archive is left out; "
                        "with parquet, the day after the newest transaction)")
    parser.add_argument("--feature-group", help="also load the 1-week aggregates into this feature group")
    parser.add_argument("--region", help="region of the feature group (default: the job's)")
    parser.add_argument("--concurrency", type=int, default=16, help="PutRecord calls in flight when loading")
    parser.add_argument("--allow-empty", action="store_true",
                        help="succeed when there are no transactions (by default that fails the job, so the nightly "
                        "refresh of a stack whose archive stopped growing raises the failed-job alert)")
    return parser.parse_args(argv)


def read_transactions(spark, path: str, fmt: str):
    """Transactions with the columns the batch SQL reads; archived ones get a tid and a 0 label."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType
    from pyspark.sql.utils import AnalysisException

    if fmt == "parquet":
        return spark.read.parquet(path)
    schema = StructType([StructField(c.CC_NUM, LongType()), StructField(c.AMOUNT, DoubleType()),
                         StructField(c.TRANS_TS, DoubleType())])
    try:  # one message per line, as Flink archived them
        raw = spark.read.schema(schema).json(path)
    except AnalysisException as error:  # nothing archived yet (a new stack's first night)
        if "PATH_NOT_FOUND" not in str(error) and "Path does not exist" not in str(error):
            raise
        LOG.warning("no archived transactions under %s", path)
        raw = spark.createDataFrame([], schema)
    raw = raw.where(F.col(c.CC_NUM).isNotNull() & F.col(c.TRANS_TS).isNotNull() & F.col(c.AMOUNT).isNotNull())
    return raw.select(
        F.sha2(F.concat_ws("|", F.col(c.CC_NUM), F.col(c.TRANS_TS), F.col(c.AMOUNT), F.monotonically_increasing_id()), 256)
        .substr(1, 16).alias(c.TID),
        F.timestamp_micros((F.col(c.TRANS_TS) * 1_000_000).cast("long")).alias(c.DATETIME),
        F.col(c.CC_NUM).cast("long").alias(c.CC_NUM),
        F.col(c.AMOUNT).cast("double").alias(c.AMOUNT),
        F.lit(0).cast("byte").alias(c.FRAUD_LABEL),
    )


def training_splits(features_df, feature_set: str, train_start: date, holdout_start: date,
                    validation_fraction: float, seed: int):
    """(train, validation) DataFrames as the XGBoost container reads CSV: label, then features in model order."""
    from pyspark.sql import functions as F

    columns = [F.col(c.FRAUD_LABEL).cast("int")] + [F.col(name).cast("double") for name in c.feature_names(feature_set)]
    period = features_df.where((F.col(c.TRANS_TS) >= utc_epoch(train_start)) & (F.col(c.TRANS_TS) < utc_epoch(holdout_start)))
    marked = period.withColumn("_u", F.rand(seed))
    train = marked.where(F.col("_u") >= validation_fraction).select(*columns)
    validation = marked.where(F.col("_u") < validation_fraction).select(*columns)
    return train, validation


def csv_prefix(output: str, feature_set: str, split: str) -> str:
    """Where the training CSV of one feature set goes: the training job's channel reads this prefix."""
    return f"{output}/csv/{feature_set}/{split}"


def cutoff_day(args: argparse.Namespace, today: date | None = None) -> int | None:
    """The cutoff as days since 1970-01-01 UTC: the one asked for, else the nightly run's day (archive input),
    else None (the day after the newest transaction)."""
    chosen = args.cutoff_date or (today or datetime.now(timezone.utc).date() if args.format == "json" else None)
    return None if chosen is None else (chosen - date(1970, 1, 1)).days


def run(args: argparse.Namespace, spark, store=None) -> dict:
    # No _SUCCESS files: the XGBoost container reads every file of a channel, markers included.
    spark.sparkContext._jsc.hadoopConfiguration().set("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
    transactions = read_transactions(spark, args.transactions, args.format)
    features = spark_sql.compute_features(spark, transactions).cache()
    aggregates = spark_sql.compute_batch_aggregates(spark, features, cutoff_day(args)).cache()
    features.write.mode("overwrite").parquet(f"{args.output}/features")
    aggregates.write.mode("overwrite").parquet(f"{args.output}/batch_aggregates")
    summary = {"transactions": features.count(), "cards": aggregates.count()}
    if args.format == "parquet":
        train, validation = training_splits(features, args.feature_set, args.train_start, args.holdout_start,
                                            args.validation_fraction, args.seed)
        for name, frame in (("train", train), ("validation", validation)):
            frame.write.mode("overwrite").option("header", "false").csv(csv_prefix(args.output, args.feature_set, name))
            summary[f"{name}_rows"] = frame.count()
    if args.feature_group:
        store = store or bulk_feature_store(args.region)
        rows = (row.asDict() for row in aggregates.toLocalIterator())
        result = store.put_records(args.feature_group, rows, args.concurrency)
        summary.update(loaded=result.written, failed=len(result.failed))
        for card, error in result.failed[:10]:
            LOG.error("card %s: %s: %s", c.mask_card(card), type(error).__name__, error)
    LOG.info("summary %s", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    from pyspark.sql import SparkSession

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = parse_args(argv)
    spark = (SparkSession.builder.appName("fraudstream-batch").config("spark.sql.session.timeZone", "UTC")
             .getOrCreate())
    return exit_code(run(args, spark), args)


def exit_code(summary: dict, args: argparse.Namespace) -> int:
    """Non-zero when records failed to load, or when there was nothing to process (unless allowed)."""
    if summary.get("failed"):
        LOG.error("%d cards could not be loaded into %s", summary["failed"], args.feature_group)
        return 1
    if summary["transactions"] == 0 and not args.allow_empty:
        LOG.error("no transactions under %s: is the Flink application archiving them?", args.transactions)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
