"""XGBoost training with the seed's hyperparameters and split, and the hold-out evaluation report.

The trained feature set (v2 by default) is always reported beside v1, the seed's set, trained on
the same rows, so every report shows what the newer features buy.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import xgboost as xgb
from tqdm import tqdm

from fraudstream import contract as c
from fraudstream import evaluate, model, plots
from fraudstream.files import InputError, atomic_path, check_parquet

# From the seed's training notebook (DESIGN.md).
SEED_HYPERPARAMETERS = {
    "objective": "binary:logistic",
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4,
    "min_child_weight": 6,
    "subsample": 0.7,
}
SEED_ROUNDS = 100
BASELINE_FEATURE_SET = "v1"

MODEL_ARTIFACT = "model.tar.gz"
METRICS_FILE = "metrics.json"

FEATURES_SCHEMA = {
    c.TID: "string",
    c.CC_NUM: "integer",
    c.TRANS_TS: "number",
    c.FRAUD_LABEL: "integer",
    **{name: "number" for name in c.ALL_FEATURES},
}


@dataclass(frozen=True)
class TrainConfig:
    feature_set: str = c.DEFAULT_FEATURE_SET
    train_start: date = date(2022, 1, 15)  # the first two weeks only warm up the 1-week window
    holdout_start: date = date(2022, 5, 15)
    validation_fraction: float = 0.3
    threshold: float = c.DEFAULT_THRESHOLD
    rounds: int = SEED_ROUNDS
    seed: int = 42
    hyperparameters: dict = field(default_factory=lambda: dict(SEED_HYPERPARAMETERS))

    def __post_init__(self) -> None:
        c.feature_names(self.feature_set)  # unknown set: clear error
        if self.holdout_start <= self.train_start:
            raise ValueError(f"--holdout-start ({self.holdout_start}) must be after --train-start ({self.train_start})")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"--validation-fraction must be in (0, 1), got {self.validation_fraction}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"--threshold must be in (0, 1), got {self.threshold}")
        if self.rounds < 1:
            raise ValueError(f"--rounds must be at least 1, got {self.rounds}")


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


def _epoch(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def load_splits(features_path: str | os.PathLike, config: TrainConfig) -> tuple[Split, Split, Split]:
    """Train, validation and hold-out rows, in a fixed order so a run is reproducible.

    Rows before train_start are dropped, rows from holdout_start on are the hold-out, and the
    rest is split at random (seeded) into train and validation.
    """
    check_parquet(features_path, FEATURES_SCHEMA)
    columns = [c.CC_NUM, c.TRANS_TS, c.FRAUD_LABEL, *c.ALL_FEATURES]  # sorted by tid too, not fetched
    con = duckdb.connect()
    path = str(features_path).replace("'", "''")
    result = con.execute(
        f"SELECT {', '.join(columns)} FROM read_parquet('{path}') WHERE {c.TRANS_TS} >= ? "
        f"ORDER BY {c.TRANS_TS}, {c.CC_NUM}, {c.TID}",
        [_epoch(config.train_start)],
    ).fetchnumpy()
    data = {name: np.asarray(result[name]) for name in columns}
    holdout = data[c.TRANS_TS] >= _epoch(config.holdout_start)
    validation = ~holdout & (np.random.default_rng(config.seed).random(len(holdout)) < config.validation_fraction)
    train = ~holdout & ~validation
    splits = tuple(
        Split(name, {k: v[mask] for k, v in data.items()})
        for name, mask in (("train", train), ("validation", validation), ("holdout", holdout))
    )
    period = f"{config.train_start}..{config.holdout_start}"
    if not len(splits[0]) or not splits[0].labels.any():
        raise InputError(f"{features_path}: no fraudulent transactions to train on in {period} (see --train-start, --holdout-start)")
    if not len(splits[2]):
        raise InputError(f"{features_path}: no transactions on or after the hold-out start {config.holdout_start}")
    return splits


class _ProgressBar(xgb.callback.TrainingCallback):
    """A tqdm bar over boosting rounds."""

    def __init__(self, rounds: int, label: str) -> None:
        self.bar = tqdm(total=rounds, desc=f"training {label}", unit="round", leave=False)

    def after_iteration(self, model, epoch, evals_log) -> bool:
        self.bar.update(1)
        return False

    def after_training(self, model):
        self.bar.close()
        return model


def fit(train: Split, feature_set: str, config: TrainConfig) -> xgb.Booster:
    """One XGBoost model on ``feature_set``.

    No per-round evaluation: on a million validation rows it costs twice the training itself.
    The validation set is scored once, after training, for the report.
    """
    names = list(c.feature_names(feature_set))
    dtrain = xgb.DMatrix(train.matrix(feature_set), label=train.labels, feature_names=names)
    params = {**config.hyperparameters, "seed": config.seed, "tree_method": "hist", "nthread": os.cpu_count() or 1}
    return xgb.train(params, dtrain, num_boost_round=config.rounds, callbacks=[_ProgressBar(config.rounds, feature_set)])


def score(booster: xgb.Booster, split: Split, feature_set: str) -> np.ndarray:
    names = list(c.feature_names(feature_set))
    return booster.predict(xgb.DMatrix(split.matrix(feature_set), feature_names=names))


def run(features_path: str | os.PathLike, out_dir: str | os.PathLike, config: TrainConfig, progress=None) -> dict:
    """``fraudstream train``: fit the chosen set (and v1 to compare), evaluate, write artifact and report."""
    step = progress or (lambda _msg: None)
    out = Path(out_dir)
    step(f"loading {features_path}")
    train, validation, holdout = load_splits(features_path, config)
    step(f"split: {len(train):,} train, {len(validation):,} validation, {len(holdout):,} hold-out rows")
    feature_sets = list(dict.fromkeys([BASELINE_FEATURE_SET, config.feature_set]))
    boosters, scores, reports, validation_reports = {}, {}, {}, {}
    for feature_set in feature_sets:
        step(f"training {feature_set} ({', '.join(c.feature_names(feature_set))})")
        boosters[feature_set] = fit(train, feature_set, config)
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
    model.save_artifact(boosters[config.feature_set], config.feature_set, out / MODEL_ARTIFACT)
    plots.write_all(out, holdout.labels, scores, boosters[config.feature_set], config.feature_set)
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

