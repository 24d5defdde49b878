"""XGBoost training with the seed's hyperparameters and split, and the hold-out evaluation report.

The trained feature set (v2 by default) is always reported beside v1, the seed's set, trained on
the same rows, so every report shows what the newer features buy.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import xgboost as xgb
from tqdm import tqdm

from fraudstream import contract as c
from fraudstream.checks import InputError
from fraudstream.files import atomic_path, check_parquet
from fraudstream.offline import evaluate, model_artifact, plots
from fraudstream.offline.train_config import (
    BASELINE_FEATURE_SET,
    FEATURES_SCHEMA,
    METRICS_FILE,
    MODEL_ARTIFACT,
    TrainConfig,
    utc_epoch,
)


@dataclass
class Split:
    """Columns of the rows of one split, as numpy arrays keyed by column name."""

    name: str
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns[c.FRAUD_LABEL])

    def matrix(self, feature_set: str) -> np.ndarray:
        return np.column_stack([self.columns[f] for f in c.feature_names(feature_set)]).astype(np.float32)

    @property
    def labels(self) -> np.ndarray:
        return self.columns[c.FRAUD_LABEL]


def load_splits(features_path: str | os.PathLike, config: TrainConfig) -> tuple[TrainConfig, tuple[Split, Split, Split]]:
    """The config with its split dates (those not given derived from the data's days), and the train, validation and
    hold-out rows, in a fixed order so a run is reproducible.

    Rows before train_start are dropped, rows from holdout_start on are the hold-out, and the
    rest is split at random (seeded) into train and validation.
    """
    check_parquet(features_path, FEATURES_SCHEMA)
    columns = [c.CC_NUM, c.TRANS_TS, c.FRAUD_LABEL, *c.ALL_FEATURES]
    con = duckdb.connect()
    path = str(features_path).replace("'", "''")
    first, last = con.execute(f"SELECT min({c.TRANS_TS}), max({c.TRANS_TS}) FROM read_parquet('{path}')").fetchone()
    if first is None:
        raise InputError(f"{features_path}: no transactions")
    first_day, last_day = (datetime.fromtimestamp(t, tz=timezone.utc).date() for t in (first, last))
    config = config.for_data(first_day, last_day)
    span = f"the data spans {first_day}..{last_day}"
    # features.parquet has no row order, and XGBoost's row sampling depends on it. Rows equal in
    # (time, card, amount, label) are equal in every loaded column, so this order is total enough,
    # and a numeric sort costs a second less than one on tid at seed scale.
    result = con.execute(
        f"SELECT {', '.join(columns)} FROM read_parquet('{path}') WHERE {c.TRANS_TS} >= ? "
        f"ORDER BY {c.TRANS_TS}, {c.CC_NUM}, {c.AMOUNT}, {c.FRAUD_LABEL}",
        [utc_epoch(config.train_start)],
    ).fetchnumpy()
    data = {name: np.asarray(result[name]) for name in columns}
    holdout = data[c.TRANS_TS] >= utc_epoch(config.holdout_start)
    validation = ~holdout & (np.random.default_rng(config.seed).random(len(holdout)) < config.validation_fraction)
    train = ~holdout & ~validation
    splits = tuple(
        Split(name, {k: v[mask] for k, v in data.items()})
        for name, mask in (("train", train), ("validation", validation), ("holdout", holdout))
    )
    period = f"{config.train_start}..{config.holdout_start}"
    if not len(splits[0]) or not splits[0].labels.any():
        raise InputError(f"{features_path}: no fraudulent transactions to train on in {period}; {span} "
                         "(see --train-start, --holdout-start, or leave them out to split the data's own days)")
    if not len(splits[2]):
        raise InputError(f"{features_path}: no transactions on or after the hold-out start {config.holdout_start}; "
                         f"{span}")
    return config, splits


class _ProgressBar(xgb.callback.TrainingCallback):
    """A tqdm bar over boosting rounds."""

    def __init__(self, rounds: int, label: str, show: bool) -> None:
        # disable=None: shown on a terminal only, so logs and CI output stay clean.
        self.bar = tqdm(total=rounds, desc=f"training {label}", unit="round", leave=False, disable=None if show else True)

    def after_iteration(self, model, epoch, evals_log) -> bool:
        self.bar.update(1)
        return False

    def after_training(self, model):
        self.bar.close()
        return model


def fit(train: Split, feature_set: str, config: TrainConfig, show_progress: bool = True) -> xgb.Booster:
    """One XGBoost model on ``feature_set``.

    No per-round evaluation: on a million validation rows it costs twice the training itself.
    The validation set is scored once, after training, for the report.
    """
    names = list(c.feature_names(feature_set))
    dtrain = xgb.DMatrix(train.matrix(feature_set), label=train.labels, feature_names=names)
    params = {**config.hyperparameters, "seed": config.seed, "tree_method": "hist", "nthread": os.cpu_count() or 1}
    return xgb.train(params, dtrain, num_boost_round=config.rounds, callbacks=[_ProgressBar(config.rounds, feature_set, show_progress)])


def score(booster: xgb.Booster, split: Split, feature_set: str) -> np.ndarray:
    names = list(c.feature_names(feature_set))
    return booster.predict(xgb.DMatrix(split.matrix(feature_set), feature_names=names))


def run(features_path: str | os.PathLike, out_dir: str | os.PathLike, config: TrainConfig, progress=None) -> dict:
    """``fraudstream train``: fit the chosen set (and v1 to compare), evaluate, write artifact and report.

    ``progress``, if given, is called with a message per step and also turns on the round bars.
    """
    step = progress or (lambda _msg: None)
    out = Path(out_dir)
    step(f"loading {features_path}")
    config, (train, validation, holdout) = load_splits(features_path, config)
    step(f"split: {len(train):,} train, {len(validation):,} validation, {len(holdout):,} hold-out rows")
    feature_sets = list(dict.fromkeys([BASELINE_FEATURE_SET, config.feature_set]))
    boosters, scores, reports, validation_reports = {}, {}, {}, {}
    for feature_set in feature_sets:
        step(f"training {feature_set} ({', '.join(c.feature_names(feature_set))})")
        boosters[feature_set] = fit(train, feature_set, config, show_progress=progress is not None)
        validation_reports[feature_set] = evaluate.classification_metrics(
            validation.labels, score(boosters[feature_set], validation, feature_set), config.threshold
        )
        scores[feature_set] = score(boosters[feature_set], holdout, feature_set)
        reports[feature_set] = evaluate.evaluate(
            holdout.columns[c.CC_NUM], holdout.columns[c.TRANS_TS], holdout.labels, scores[feature_set], config.threshold
        )
    metrics = {
        "feature_set": config.feature_set,
        "features": list(c.feature_names(config.feature_set)),
        "threshold": config.threshold,
        "xgboost_version": xgb.__version__,
        "hyperparameters": {**config.hyperparameters, "num_round": config.rounds},
        "split": {
            "train_start": str(config.train_start),
            "holdout_start": str(config.holdout_start),
            "validation_fraction": config.validation_fraction,
            "seed": config.seed,
            "rows": {"train": len(train), "validation": len(validation), "holdout": len(holdout)},
        },
        "validation": validation_reports,
        "holdout": reports,
    }
    step(f"writing {out / MODEL_ARTIFACT}, {out / METRICS_FILE} and plots")
    out.mkdir(parents=True, exist_ok=True)
    model_artifact.save_artifact(boosters[config.feature_set], config.feature_set, out / MODEL_ARTIFACT)
    plots.write_all(out, holdout.labels, scores, boosters[config.feature_set], config.feature_set, config.threshold)
    with atomic_path(out / METRICS_FILE) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics


def summary_lines(metrics: dict) -> list[str]:
    """The hold-out comparison as a few readable lines."""
    lines = [f"hold-out from {metrics['split']['holdout_start']}, threshold {metrics['threshold']}:"]
    for feature_set, report in metrics["holdout"].items():
        cm, chains = report["confusion_matrix"], report["chains"]
        pr_auc = "n/a" if report["pr_auc"] is None else f"{report['pr_auc']:.3f}"
        by_third = "n/a" if chains["caught_by_third_share"] is None else f"{chains['caught_by_third_share']:.1%}"
        lines.append(
            f"  {feature_set}: PR AUC {pr_auc}, precision {report['precision']:.3f}, recall {report['recall']:.3f}, "
            f"false positives {cm['false_positive']}, chains flagged by their 3rd transaction {by_third} "
            f"of {chains['chains']}"
        )
    return lines

