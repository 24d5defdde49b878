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
    _save(pr_curves(labels, scores, threshold), out / PR_CURVE)
    _save(score_distribution(labels, scores[feature_set], feature_set, threshold), out / SCORE_DISTRIBUTION)
    _save(feature_importance(booster, feature_set), out / FEATURE_IMPORTANCE)


def operating_point(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """(recall, precision) of the verdicts at ``threshold`` (FRAUD above it, as the predict handler decides)."""
    flagged = scores > threshold
    caught = int((flagged & (labels == 1)).sum())
    return caught / max(1, int((labels == 1).sum())), caught / max(1, int(flagged.sum()))


def pr_curves(labels: np.ndarray, scores: dict[str, np.ndarray], threshold: float) -> plt.Figure:
    """Each feature set's curve, with the point the threshold puts it at: what the deployed model gives."""
    fig, ax = plt.subplots(figsize=(6, 5))
    for feature_set, set_scores in scores.items():
        if 0 < labels.sum() < len(labels):
            precision, recall, _ = precision_recall_curve(labels, set_scores)
            (line,) = ax.plot(recall, precision,
                              label=f"{feature_set} (PR AUC {average_precision_score(labels, set_scores):.3f})")
            at_recall, at_precision = operating_point(labels, set_scores, threshold)
            ax.plot([at_recall], [at_precision], "o", color=line.get_color(), markeredgecolor="black",
                    label=f"{feature_set} at threshold {threshold:g}: precision {at_precision:.2f}, recall {at_recall:.2f}")
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
    """Each feature's share of the total gain, written beside its bar; a log axis when one feature dominates, so
    the others stay visible."""
    gain = booster.get_score(importance_type="gain")
    total = sum(gain.values()) or 1.0
    names = sorted(gain, key=gain.get)
    shares = [100 * gain[n] / total for n in names]
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.barh(names, shares)
    ax.bar_label(bars, labels=[f"{share:.1f}%" for share in shares], padding=3)
    if shares and min(shares) > 0 and max(shares) / min(shares) > 20:
        ax.set_xscale("log")
        ax.set_xlim(min(shares) / 2, max(shares) * 4)
    else:
        ax.set_xlim(0, max(shares, default=1) * 1.2)
    ax.set(xlabel="share of the total gain, %" + (" (log scale)" if ax.get_xscale() == "log" else ""),
           title=f"Feature importance ({feature_set})")
    fig.tight_layout()
    return fig


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
