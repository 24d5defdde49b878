"""Training settings and file names: the only copy of the split and the hyperparameters.

Apart from train.py so the CLI starts without importing xgboost, and pure Python so the SageMaker
processing job (training/processing_job.py) splits its training CSV with the same defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from fraudstream import contract as c

# From the AWS sample's training notebook.
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


def utc_epoch(day: date) -> float:
    """Epoch seconds of midnight UTC starting ``day`` (split boundaries are UTC days)."""
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()
