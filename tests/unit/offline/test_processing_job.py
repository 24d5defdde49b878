"""The SageMaker Processing entry (training/processing_job.py), run here on local Spark."""

from __future__ import annotations

import importlib.util
import json
from datetime import date

import numpy as np
import pyarrow.parquet as pq
import pytest

from fraudstream import contract as c
from fraudstream.files import write_parquet
from fraudstream.offline import features
from fraudstream.offline.generate import generate
from fraudstream.offline.generate_config import GeneratorConfig
from fraudstream.online.stores import EmbeddedOnlineStore
from fraudstream.paths import PROCESSING_JOB

pytestmark = pytest.mark.spark
ENTRY = PROCESSING_JOB
spec = importlib.util.spec_from_file_location("processing_job", ENTRY)
job = importlib.util.module_from_spec(spec)
spec.loader.exec_module(job)


@pytest.fixture(scope="module")
def transactions_dir(tmp_path_factory):
    table = generate(GeneratorConfig(cards=40, transactions=8_000, fraud_ratio=0.02, seed=5))
    directory = tmp_path_factory.mktemp("input")
    write_parquet(table, directory / "part-0.parquet")
    return directory


def test_labelled_transactions_give_features_aggregates_and_xgboost_csv(spark, transactions_dir, tmp_path):
    # Given labelled transactions, as `fraudstream generate` writes them
    args = job.parse_args(["--transactions", str(transactions_dir), "--output", str(tmp_path), "--feature-set", "v1",
                           "--train-start", "2022-01-15", "--holdout-start", "2022-05-15"])
    # When the job runs
    summary = job.run(args, spark)
    # Then the aggregates equal DuckDB's for every card
    expected = features.compute_batch_aggregates(
        features.connect(), features.compute_features(features.connect(), str(transactions_dir / "part-0.parquet")))
    got = pq.read_table(tmp_path / "batch_aggregates").sort_by(c.CC_NUM)
    assert summary["cards"] == expected.num_rows == got.num_rows == 40
    for name in c.BATCH_FEATURE_GROUP_COLUMNS:
        np.testing.assert_allclose(got[name].to_numpy(), expected.sort_by(c.CC_NUM)[name].to_numpy(), rtol=1e-9)
    # and the CSVs hold the label first, then the v1 features in model order, no header
    rows = np.vstack([np.loadtxt(p, delimiter=",", ndmin=2) for p in (tmp_path / "csv" / "v1" / "train").glob("part-*.csv")
                      if p.stat().st_size])
    assert rows.shape[1] == 1 + len(c.feature_names("v1"))
    assert set(np.unique(rows[:, 0])) <= {0.0, 1.0} and rows[:, 0].sum() > 0
    assert summary["train_rows"] == len(rows) and summary["validation_rows"] > 0
    assert summary["train_rows"] + summary["validation_rows"] < summary["transactions"]  # hold-out and warm-up left out
    assert not list(tmp_path.rglob("_SUCCESS"))  # the XGBoost container would read the marker as data


def test_archived_messages_refresh_the_batch_group(spark, tmp_path):
    # Given JSON-lines messages as Flink archives them from the topic (no label, no tid)
    archive = tmp_path / "archive" / "dt=2022-05-20"
    archive.mkdir(parents=True)
    messages = [{c.CC_NUM: 4111, c.AMOUNT: 10.0, c.MERCHANT: "m", c.ZIP_CODE: "z", c.TRANS_TS: 1_653_000_000.0 + i * 3600}
                for i in range(3)] + [{c.CC_NUM: 4222, c.AMOUNT: 99.5, c.MERCHANT: "m", c.ZIP_CODE: "z",
                                       c.TRANS_TS: 1_653_000_500.0}]
    (archive / "part-0.json").write_text("".join(json.dumps(m) + "\n" for m in messages))
    store = EmbeddedOnlineStore(tmp_path / "store.sqlite")
    args = job.parse_args(["--transactions", str(tmp_path / "archive"), "--format", "json", "--output",
                           str(tmp_path / "out"), "--feature-group", c.BATCH_FEATURE_GROUP, "--cutoff-date", "2022-05-21"])
    # When the nightly job runs for 2022-05-21
    summary = job.run(args, spark, store=store)
    # Then each card's 1-week record as of that midnight is in the batch group: 2022-05-20 in tile 1 (4111's
    # transaction at 00:40), 2022-05-19 in tile 2 (its two of 22:40 and 23:40, and 4222's of 22:48)
    assert (summary["cards"], summary["loaded"], summary["failed"]) == (2, 2, 0)
    records = store.get_records({c.BATCH_FEATURE_GROUP: [4111, 4222]})[c.BATCH_FEATURE_GROUP]
    empty = {**dict.fromkeys(c.DAY_COUNTS[2:], 0), **dict.fromkeys(c.DAY_SUMS[2:], 0.0)}
    assert records[4111] == {c.CC_NUM: 4111, c.TRANS_TIME: 1_653_091_200.0, c.LAST_TRANS_TIME: 1_653_007_200.0,
                             c.DAY_COUNTS[0]: 1, c.DAY_SUMS[0]: 10.0, c.DAY_COUNTS[1]: 2, c.DAY_SUMS[1]: 20.0, **empty}
    assert (records[4222][c.DAY_COUNTS[0]], records[4222][c.DAY_COUNTS[1]], records[4222][c.DAY_SUMS[1]]) == (0, 1, 99.5)
    assert not (tmp_path / "out" / "csv").exists()  # unlabelled: nothing to train on


def test_the_nightly_cutoff_is_the_day_the_job_runs_unless_named():
    # Archive input: today's partial day is left out of the tiles; labelled input: the day after the newest
    archive = job.parse_args(["--transactions", "t", "--format", "json", "--output", "o"])
    assert job.cutoff_day(archive, today=date(2022, 5, 21)) == 19_133
    assert job.cutoff_day(job.parse_args(["--transactions", "t", "--output", "o"])) is None
    named = job.parse_args(["--transactions", "t", "--format", "json", "--output", "o", "--cutoff-date", "2022-05-20"])
    assert job.cutoff_day(named, today=date(2030, 1, 1)) == 19_132


def test_a_night_with_nothing_archived_fails_so_the_alert_fires(spark, tmp_path):
    # Given no archive at all (Flink stopped archiving, or never started)
    store = EmbeddedOnlineStore(tmp_path / "store.sqlite")
    argv = ["--transactions", str(tmp_path / "no-archive-yet"), "--format", "json", "--output", str(tmp_path / "out"),
            "--feature-group", c.BATCH_FEATURE_GROUP]
    args = job.parse_args(argv)
    # When the job runs
    summary = job.run(args, spark, store=store)
    # Then nothing is loaded and the job fails, unless told an empty night is fine
    assert (summary["cards"], summary["loaded"], summary["failed"]) == (0, 0, 0)
    assert job.exit_code(summary, args) == 1
    assert job.exit_code(summary, job.parse_args(argv + ["--allow-empty"])) == 0
