"""The model artifact: model.tar.gz holding one `xgboost-model`, as SageMaker's XGBoost container loads it.

The built-in container (3.0-5, xgboost 3.0.5) extracts model.tar.gz, loads every regular file
in it with ``xgb.Booster().load_model`` and averages them, then scores CSV rows with
``validate_features=False``. So the archive must hold exactly one file, and the feature names
and set travel as Booster attributes inside it.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import xgboost as xgb

from fraudstream import contract as c
from fraudstream.files import atomic_path

MODEL_FILE = "xgboost-model"
ATTR_FEATURE_SET = "feature_set"
ATTR_FEATURE_NAMES = "feature_names"


def save_artifact(booster: xgb.Booster, feature_set: str, path: str | os.PathLike) -> None:
    """Write ``booster`` as model.tar.gz, recording its feature set and names inside the model."""
    booster = booster.copy()  # leave the caller's booster as it was
    booster.set_attr(**{ATTR_FEATURE_SET: feature_set, ATTR_FEATURE_NAMES: json.dumps(c.feature_names(feature_set))})
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / f"{MODEL_FILE}.ubj"  # the extension picks the format, UBJSON
        booster.save_model(model_path)
        with atomic_path(path) as tmp_archive, tarfile.open(tmp_archive, "w:gz") as archive:
            archive.add(model_path, arcname=MODEL_FILE)


def load_artifact(path: str | os.PathLike) -> xgb.Booster:
    """Load model.tar.gz the way the SageMaker XGBoost container does; ValueError naming the file when it is not one."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with tarfile.open(path, "r:gz") as archive:
                archive.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError) as error:  # not gzip, not tar, cut short
            raise ValueError(f"{path}: not a model archive (model.tar.gz from `fraudstream train`): "
                             f"{error}") from None
        models = [Path(tmp) / name for name in sorted(os.listdir(tmp)) if (Path(tmp) / name).is_file()]
        if len(models) != 1:
            raise ValueError(f"{path}: expected exactly one model file, found {len(models)}")
        booster = xgb.Booster()
        booster.load_model(models[0])
    booster.set_param("nthread", 1)
    return booster


def feature_set_of(booster: xgb.Booster) -> str:
    """The feature set the model was trained on (recorded by save_artifact)."""
    feature_set = booster.attr(ATTR_FEATURE_SET)
    if feature_set is None:
        raise ValueError("the model does not record its feature set; retrain it with `fraudstream train`")
    return feature_set


def score_csv(booster: xgb.Booster, body: str) -> list[float]:
    """Scores for a CSV body, as the container computes them (no feature-name validation)."""
    matrix = np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2, dtype=np.float32)
    return booster.predict(xgb.DMatrix(matrix), validate_features=False).tolist()


def score_rows(booster: xgb.Booster, rows) -> list[float]:
    """The scores score_csv gives for the CSV of ``rows`` (scorers.to_csv), without the text: the CSV
    carries repr(float), which reads back as the same double, and both paths then round to float32
    (tests/unit/online/test_scorers.py holds them equal)."""
    matrix = np.asarray(rows, dtype=np.float64).astype(np.float32)
    return booster.inplace_predict(matrix, validate_features=False).tolist()


def restamp(archive: str | os.PathLike, feature_set: str, target: str | os.PathLike) -> None:
    """Re-save a model.tar.gz trained elsewhere (a SageMaker training job) with ``feature_set`` recorded inside."""
    with tarfile.open(archive, "r:gz") as tar:
        if not any(member.isfile() for member in tar.getmembers()):
            raise ValueError(f"{archive}: no model file inside")
    save_artifact(load_artifact(archive), feature_set, target)
