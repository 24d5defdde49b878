"""model.tar.gz: loaded as the SageMaker XGBoost container loads it, it scores exactly as trained."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
import xgboost as xgb

from fraudstream import contract as c
from fraudstream.offline import model_artifact as model
from fraudstream.online.scorers import to_csv


@pytest.fixture(scope="module")
def booster_and_rows():
    rng = np.random.default_rng(0)
    rows = rng.random((500, len(c.feature_names("v2")))) * [5000, 3, 3, 1, 10, 604800]
    labels = (rows[:, 4] > 6).astype(int)
    dtrain = xgb.DMatrix(rows.astype(np.float32), label=labels, feature_names=list(c.feature_names("v2")))
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "seed": 1}, dtrain, num_boost_round=10)
    return booster, rows


def test_the_archive_holds_exactly_one_file_named_xgboost_model(booster_and_rows, tmp_path):
    booster, _ = booster_and_rows
    model.save_artifact(booster, "v2", tmp_path / "model.tar.gz")
    with tarfile.open(tmp_path / "model.tar.gz") as archive:
        assert [m.name for m in archive.getmembers() if m.isfile()] == ["xgboost-model"]


def test_the_loaded_artifact_scores_identically_and_records_its_feature_set(booster_and_rows, tmp_path):
    booster, rows = booster_and_rows
    model.save_artifact(booster, "v2", tmp_path / "model.tar.gz")
    loaded = model.load_artifact(tmp_path / "model.tar.gz")
    names = list(c.feature_names("v2"))
    expected = booster.predict(xgb.DMatrix(rows.astype(np.float32), feature_names=names))
    np.testing.assert_array_equal(loaded.predict(xgb.DMatrix(rows.astype(np.float32)), validate_features=False), expected)
    assert model.feature_set_of(loaded) == "v2"
    assert loaded.attr(model.ATTR_FEATURE_NAMES) == '["amount", "amt_ratio1", "amt_ratio2", "count_ratio", "num_trans_last_10m", "secs_since_prev_tx"]'


def test_csv_rows_score_as_the_in_memory_matrix_does(booster_and_rows, tmp_path):
    booster, rows = booster_and_rows
    model.save_artifact(booster, "v2", tmp_path / "model.tar.gz")
    loaded = model.load_artifact(tmp_path / "model.tar.gz")
    expected = booster.predict(xgb.DMatrix(rows.astype(np.float32), feature_names=list(c.feature_names("v2"))))
    np.testing.assert_array_equal(model.score_csv(loaded, to_csv(rows)), expected)
    assert model.score_csv(loaded, to_csv(rows[:1])) == pytest.approx([float(expected[0])])


def test_an_archive_with_more_than_one_file_is_refused(booster_and_rows, tmp_path):
    booster, _ = booster_and_rows
    model.save_artifact(booster, "v2", tmp_path / "model.tar.gz")
    extra = tmp_path / "notes.txt"
    extra.write_text("hello")
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as archive:
        archive.add(extra, arcname="notes.txt")
        archive.add(extra, arcname="xgboost-model")
    with pytest.raises(ValueError, match="exactly one model file"):
        model.load_artifact(tmp_path / "model.tar.gz")


def test_a_model_without_a_recorded_feature_set_is_a_clear_error(booster_and_rows):
    booster, _ = booster_and_rows
    with pytest.raises(ValueError, match="does not record its feature set"):
        model.feature_set_of(xgb.Booster(model_file=bytearray(booster.save_raw())))
