"""The evaluation report's pictures: PR curves, score distribution by label, feature importance."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xgboost as xgb  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    average_precision_score,
    precision_recall_curve,
)

from fraudstream.files import atomic_path  # noqa: E402

PR_CURVE = "pr_curve.png"
SCORE_DISTRIBUTION = "score_distribution.png"
FEATURE_IMPORTANCE = "feature_importance.png"


def write_all(
    out: Path, labels: np.ndarray, scores: dict[str, np.ndarray], booster: xgb.Booster, feature_set: str, threshold: float
) -> None:
    _save(pr_curves(labels, scores), out / PR_CURVE)
    _save(score_distribution(labels, scores[feature_set], feature_set, threshold), out / SCORE_DISTRIBUTION)
    _save(feature_importance(booster, feature_set), out / FEATURE_IMPORTANCE)


def pr_curves(labels: np.ndarray, scores: dict[str, np.ndarray]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 5))
    for feature_set, set_scores in scores.items():
        if 0 < labels.sum() < len(labels):
            precision, recall, _ = precision_recall_curve(labels, set_scores)
            ax.plot(recall, precision, label=f"{feature_set} (PR AUC {average_precision_score(labels, set_scores):.3f})")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall on the hold-out period", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    return fig


def score_distribution(labels: np.ndarray, scores: np.ndarray, feature_set: str, threshold: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 5))
    bins = np.linspace(0, 1, 51)
    ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label="legitimate", log=True)
    ax.hist(scores[labels == 1], bins=bins, alpha=0.6, label="fraudulent", log=True)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold}")
    ax.set(xlabel="fraud score", ylabel="transactions (log scale)", title=f"Hold-out scores by label ({feature_set})")
    ax.legend()
    return fig


def feature_importance(booster: xgb.Booster, feature_set: str) -> plt.Figure:
    gain = booster.get_score(importance_type="gain")
    names = sorted(gain, key=gain.get)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.barh(names, [gain[n] for n in names])
    ax.set(xlabel="average gain per split", title=f"Feature importance ({feature_set})")
    fig.tight_layout()
    return fig


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
