"""The evaluation pictures say what a reader needs: where the threshold puts the model, and how much each feature counts."""

from __future__ import annotations

import numpy as np
import xgboost as xgb

from fraudstream.offline import plots


def test_the_pr_curve_marks_the_point_the_threshold_gives():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.05, 0.3])
    # FRAUD above 0.5: two of three frauds caught, one false alarm among three flagged
    assert plots.operating_point(labels, scores, 0.5) == (2 / 3, 2 / 3)
    fig = plots.pr_curves(labels, {"v2": scores}, 0.5)
    (marker,) = [line for line in fig.axes[0].lines if line.get_marker() == "o"]
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == (2 / 3, 2 / 3)
    assert "v2 at threshold 0.5: precision 0.67, recall 0.67" in [t.get_text() for t in fig.axes[0].get_legend().texts]


def test_feature_importance_writes_each_share_and_keeps_small_ones_visible_when_one_dominates():
    rng = np.random.default_rng(0)
    x = rng.random((2000, 3))
    y = (x[:, 0] > 0.5).astype(int)  # feature a decides almost everything
    y[rng.random(2000) < 0.05] ^= 1
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(x, label=y, feature_names=["a", "b", "c"]), 10)
    fig = plots.feature_importance(booster, "v2")
    ax = fig.axes[0]
    gain = booster.get_score(importance_type="gain")
    shares = {name: 100 * value / sum(gain.values()) for name, value in gain.items()}
    written = sorted(t.get_text() for t in ax.texts)
    assert written == sorted(f"{share:.1f}%" for share in shares.values())
    assert max(shares.values()) / min(shares.values()) > 20 and ax.get_xscale() == "log"
