"""Small model.tar.gz files for tests and benchmarks: a real XGBoost model on random rows, saved as training saves it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xgboost as xgb

from fraudstream import contract as c
from fraudstream.offline.model_artifact import save_artifact


def write_model(path: Path, feature_set: str = c.DEFAULT_FEATURE_SET, rows: int = 300, rounds: int = 5,
                max_depth: int = 6) -> Path:
    """A model of ``feature_set`` at ``path`` (label: the first feature above 0.5, so scores spread over 0-1)."""
    names = list(c.feature_names(feature_set))
    x = np.random.default_rng(0).random((rows, len(names)))
    booster = xgb.train({"objective": "binary:logistic", "max_depth": max_depth},
                        xgb.DMatrix(x, label=x[:, 0] > 0.5, feature_names=names), rounds)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_artifact(booster, feature_set, path)
    return path
