"""The batch pipeline end to end through the installed `fraudstream` command, at demo scale.

This is what `make demo` runs. It also checks the claim the product makes over the seed: on the
same hold-out, feature set v2 beats v1 (the seed's) clearly and catches chains early.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fraudstream import contract as c

pytestmark = pytest.mark.slow

FRAUDSTREAM = str(Path(sys.executable).with_name("fraudstream"))


def _run(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([FRAUDSTREAM, *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo")
    generated = _run("generate", "--scale", "demo", "--out", str(data / "transactions.parquet"))
    _run("features", str(data / "transactions.parquet"), "--out", str(data))
    trained = _run("train", str(data / "features.parquet"), "--out", str(data))
    return data, generated, trained


def test_every_step_writes_its_outputs_and_reports_progress(pipeline):
    data, generated, trained = pipeline
    assert "wrote 540,000 transactions on 1,000 cards (1,350 fraudulent)" in generated.stdout
    assert "drawing amounts" in generated.stderr  # progress goes to stderr
    for name in ("transactions.parquet", "features.parquet", "batch_aggregates.parquet", "model.tar.gz",
                 "metrics.json", "pr_curve.png", "score_distribution.png", "feature_importance.png"):
        assert (data / name).stat().st_size > 0, name
    assert "v1: PR AUC" in trained.stdout and "v2: PR AUC" in trained.stdout


def test_the_batch_feature_group_has_one_row_per_card(pipeline):
    data, _, _ = pipeline
    aggregates = pq.read_table(data / "batch_aggregates.parquet")
    assert tuple(aggregates.column_names) == c.BATCH_FEATURE_GROUP_COLUMNS
    assert aggregates.num_rows == 1_000


def test_v2_beats_the_seeds_v1_on_the_same_hold_out(pipeline):
    data, _, _ = pipeline
    holdout = json.loads((data / "metrics.json").read_text())["holdout"]
    v1, v2 = holdout["v1"], holdout["v2"]
    assert v2["pr_auc"] >= v1["pr_auc"] + 0.05
    assert v2["chains"]["caught_by_third_share"] >= 0.9
    assert v2["confusion_matrix"]["false_positive"] <= v1["confusion_matrix"]["false_positive"]
