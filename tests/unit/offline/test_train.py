"""fraudstream train: the seed's split and hyperparameters, both feature sets side by side."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest

from fraudstream import contract as c
from fraudstream.checks import InputError
from fraudstream.offline import features, train
from fraudstream.offline import model_artifact as model
from fraudstream.offline.train_config import (
    SEED_HYPERPARAMETERS,
    TrainConfig,
    utc_epoch,
)
from fraudstream.online.scorers import to_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def features_file(small_transactions_file, tmp_path_factory):
    return features.run(small_transactions_file, tmp_path_factory.mktemp("features"))["features"]


@pytest.fixture(scope="module")
def trained(features_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    metrics = train.run(features_file, out, TrainConfig(rounds=20))
    return out, metrics


def test_the_split_follows_the_seed_periods_and_validation_share(features_file):
    config, (training, validation, holdout) = train.load_splits(features_file, TrainConfig())
    # Derived from the data's days (2022-01-01..2022-05-31): the AWS sample's dates.
    assert (config.train_start, config.holdout_start) == (date(2022, 1, 15), date(2022, 5, 15))
    start, holdout_start = utc_epoch(config.train_start), utc_epoch(config.holdout_start)
    assert training.columns[c.TRANS_TS].min() >= start and training.columns[c.TRANS_TS].max() < holdout_start
    assert validation.columns[c.TRANS_TS].max() < holdout_start
    assert holdout.columns[c.TRANS_TS].min() >= holdout_start
    assert len(validation) / (len(training) + len(validation)) == pytest.approx(0.3, abs=0.01)


def test_training_writes_the_artifact_the_report_and_three_plots(trained):
    out, _ = trained
    for name in ("pr_curve.png", "score_distribution.png", "feature_importance.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC), name
    assert model.feature_set_of(model.load_artifact(out / "model.tar.gz")) == "v2"
    assert json.loads((out / "metrics.json").read_text()) == trained[1]


def test_the_report_shows_v1_beside_the_trained_set_on_the_same_hold_out(trained):
    _, metrics = trained
    assert metrics["feature_set"] == "v2" and metrics["features"] == list(c.feature_names("v2"))
    assert set(metrics["holdout"]) == {"v1", "v2"}
    v1, v2 = metrics["holdout"]["v1"], metrics["holdout"]["v2"]
    assert v1["transactions"] == v2["transactions"] == metrics["split"]["rows"]["holdout"]
    assert v1["fraudulent"] == v2["fraudulent"] > 0
    for report in (v1, v2):
        assert {"roc_auc", "pr_auc", "precision", "recall", "f1", "confusion_matrix", "chains"} <= set(report)
        assert report["chains"]["chains"] == len(report["chains"]["per_chain"]) > 0
    assert metrics["hyperparameters"] == {**SEED_HYPERPARAMETERS, "num_round": 20}


def test_the_artifact_reproduces_the_reported_hold_out_scores(trained, features_file):
    out, metrics = trained
    booster = model.load_artifact(out / "model.tar.gz")
    _, (_, _, holdout) = train.load_splits(features_file, TrainConfig())
    scores = np.array(model.score_csv(booster, to_csv(holdout.matrix("v2"))))
    flagged = scores > metrics["threshold"]
    cm = metrics["holdout"]["v2"]["confusion_matrix"]
    assert int((flagged & (holdout.labels == 1)).sum()) == cm["true_positive"]
    assert int((flagged & (holdout.labels == 0)).sum()) == cm["false_positive"]


def test_training_twice_gives_the_same_report(trained, features_file, tmp_path):
    again = train.run(features_file, tmp_path, TrainConfig(rounds=20))
    assert again == trained[1]


def test_feature_set_v1_reproduces_the_seeds_model_alone(features_file, tmp_path):
    metrics = train.run(features_file, tmp_path, TrainConfig(feature_set="v1", rounds=5))
    assert set(metrics["holdout"]) == {"v1"}
    assert model.feature_set_of(model.load_artifact(tmp_path / "model.tar.gz")) == "v1"


def test_a_period_without_data_is_a_clear_error(features_file, tmp_path):
    config = TrainConfig(train_start=date(2023, 1, 1), holdout_start=date(2023, 2, 1))
    with pytest.raises(InputError, match=r"no fraudulent transactions to train on in 2023-01-01..2023-02-01; the data "
                                         r"spans 2022-01-0\d..2022-05-3\d"):
        train.run(features_file, tmp_path, config)
    assert list(tmp_path.iterdir()) == []


def test_the_split_of_data_from_another_period_is_derived_from_its_days():
    from fraudstream.offline.train_config import DEFAULT_SPLIT, derived_split

    assert DEFAULT_SPLIT == (date(2022, 1, 15), date(2022, 5, 15))  # generate's default period
    assert derived_split(date(2024, 3, 1), date(2024, 8, 31)) == (date(2024, 3, 15), date(2024, 8, 12))
    assert derived_split(date(2024, 3, 1), date(2024, 3, 10)) == (date(2024, 3, 3), date(2024, 3, 10))  # short data
    given = TrainConfig(holdout_start=date(2024, 6, 1)).for_data(date(2024, 3, 1), date(2024, 8, 31))
    assert (given.train_start, given.holdout_start) == (date(2024, 3, 15), date(2024, 6, 1))  # a given date stays


def test_training_on_data_outside_2022_needs_no_dates(tmp_path):
    from datetime import datetime, timezone

    from fraudstream.files import write_parquet
    from fraudstream.offline.generate import GeneratorConfig, generate

    config = GeneratorConfig(cards=20, transactions=20_000, fraud_ratio=0.01, seed=5,
                             start=datetime(2024, 3, 1, tzinfo=timezone.utc), end=datetime(2024, 5, 1, tzinfo=timezone.utc))
    write_parquet(generate(config), tmp_path / "tx.parquet")
    features_path = features.run(tmp_path / "tx.parquet", tmp_path)["features"]
    metrics = train.run(features_path, tmp_path / "model", TrainConfig(rounds=3))
    assert (metrics["split"]["train_start"], metrics["split"]["holdout_start"]) == ("2024-03-15", "2024-04-24")
    assert metrics["split"]["rows"]["holdout"] > 0


def test_a_transactions_file_is_not_a_features_file(small_transactions_file, tmp_path):
    with pytest.raises(InputError, match="missing column"):
        train.run(small_transactions_file, tmp_path, TrainConfig())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"feature_set": "v3"}, "unknown feature set"),
        ({"threshold": 1.5}, "--threshold"),
        ({"rounds": 0}, "--rounds"),
        ({"validation_fraction": 1.0}, "--validation-fraction"),
        ({"train_start": date(2022, 1, 15), "holdout_start": date(2022, 1, 1)}, "--holdout-start"),
    ],
)
def test_nonsense_training_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)
