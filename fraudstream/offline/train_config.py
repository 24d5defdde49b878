"""Training settings and file names: the only copy of the split and the hyperparameters.

Apart from train.py so the CLI starts without importing xgboost, and pure Python so the SageMaker
processing job (training/processing_job.py) splits its training CSV with the same defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone

from fraudstream import contract as c
from fraudstream.offline.generate_config import GeneratorConfig

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


# The split when no date is given, from the data's first and last day: the first two weeks only warm up the 1-week
# window (a quarter of the days on data shorter than eight weeks), the last 11% of the days are the hold-out.
WARM_UP_DAYS = 14
HOLDOUT_SHARE = 0.11


def derived_split(first_day: date, last_day: date) -> tuple[date, date]:
    """(train_start, holdout_start) for data from ``first_day`` to ``last_day``, both included."""
    days = (last_day - first_day).days + 1
    if days < 2:  # one day cannot be split: all of it is hold-out (training on it fails, naming the data's span)
        return first_day - timedelta(days=1), first_day
    holdout_days = max(1, round(days * HOLDOUT_SHARE))
    return first_day + timedelta(days=min(WARM_UP_DAYS, days // 4)), last_day + timedelta(days=1 - holdout_days)


# `fraudstream generate`'s default period (2022-01-01 to 2022-05-31) gives 2022-01-15 and 2022-05-15.
DEFAULT_SPLIT = derived_split(GeneratorConfig().start.date(), GeneratorConfig().end.date() - timedelta(days=1))


@dataclass(frozen=True)
class TrainConfig:
    feature_set: str = c.DEFAULT_FEATURE_SET
    train_start: date | None = None  # None: from the data (derived_split)
    holdout_start: date | None = None
    validation_fraction: float = 0.3
    threshold: float = c.DEFAULT_THRESHOLD
    rounds: int = SEED_ROUNDS
    seed: int = 42
    hyperparameters: dict = field(default_factory=lambda: dict(SEED_HYPERPARAMETERS))

    def __post_init__(self) -> None:
        c.feature_names(self.feature_set)  # unknown set: clear error
        if self.train_start is not None and self.holdout_start is not None and self.holdout_start <= self.train_start:
            raise ValueError(f"--holdout-start ({self.holdout_start}) must be after --train-start ({self.train_start})")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"--validation-fraction must be in (0, 1), got {self.validation_fraction}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"--threshold must be in (0, 1), got {self.threshold}")
        if self.rounds < 1:
            raise ValueError(f"--rounds must be at least 1, got {self.rounds}")


    def for_data(self, first_day: date, last_day: date) -> TrainConfig:
        """This config with the dates it leaves open derived from the data's first and last day."""
        train_start, holdout_start = derived_split(first_day, last_day)
        return replace(self, train_start=self.train_start or train_start, holdout_start=self.holdout_start or holdout_start)


def utc_epoch(day: date) -> float:
    """Epoch seconds of midnight UTC starting ``day`` (split boundaries are UTC days)."""
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()
