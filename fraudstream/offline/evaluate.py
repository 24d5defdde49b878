"""Evaluation on the hold-out period: classification metrics and how early fraud chains are caught."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

from fraudstream import contract as c

# Consecutive fraudulent transactions of one card this close together belong to one chain.
CHAIN_BREAK_SECONDS = c.WINDOW_10M_SECONDS


def classification_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """ROC AUC, PR AUC, and precision, recall, F1 and the confusion matrix at ``threshold``.

    A transaction is flagged when its score is above the threshold. AUCs are None when the
    labels hold a single class (they are undefined then).
    """
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    flagged = scores > threshold
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(labels, flagged, labels=[0, 1]).ravel())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    both_classes = 0 < labels.sum() < len(labels)
    return {
        "transactions": int(len(labels)),
        "fraudulent": int(labels.sum()),
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else None,
        "pr_auc": float(average_precision_score(labels, scores)) if both_classes else None,
        "threshold": threshold,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "confusion_matrix": {"true_negative": tn, "false_positive": fp, "false_negative": fn, "true_positive": tp},
    }


def chain_positions(cc_num: np.ndarray, trans_ts: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every row: the id of its fraud chain (-1 for legitimate rows) and its 1-based position.

    A chain is a run of a card's fraudulent transactions, each within CHAIN_BREAK_SECONDS of the
    one before. Rows may come in any order.
    """
    n = len(labels)
    chain = np.full(n, -1, dtype=np.int64)
    position = np.zeros(n, dtype=np.int64)
    fraud = np.flatnonzero(np.asarray(labels) == 1)
    if not len(fraud):
        return chain, position
    fraud = fraud[np.lexsort((trans_ts[fraud], cc_num[fraud]))]
    cards, times = cc_num[fraud], trans_ts[fraud]
    starts = np.r_[True, (cards[1:] != cards[:-1]) | (np.diff(times) > CHAIN_BREAK_SECONDS)]
    ids = np.cumsum(starts) - 1
    first_row = np.flatnonzero(starts)
    chain[fraud] = ids
    position[fraud] = np.arange(len(fraud)) - first_row[ids] + 1
    return chain, position


def chain_metrics(cc_num, trans_ts, labels, scores, threshold: float) -> dict:
    """How many fraud chains are flagged at all and by their third transaction, and where each first is."""
    cc_num, trans_ts = np.asarray(cc_num), np.asarray(trans_ts, dtype=float)
    chain, position = chain_positions(cc_num, trans_ts, np.asarray(labels))
    flagged = np.asarray(scores, dtype=float) > threshold
    chains = []
    for chain_id in range(int(chain.max()) + 1 if (chain >= 0).any() else 0):
        rows = np.flatnonzero(chain == chain_id)
        rows = rows[np.argsort(position[rows])]
        hits = position[rows][flagged[rows]]
        chains.append(
            {
                "card": c.mask_card(int(cc_num[rows[0]])),
                "start_ts": float(trans_ts[rows[0]]),
                "length": int(len(rows)),
                "first_flagged": int(hits[0]) if len(hits) else None,
            }
        )
    total = len(chains)
    firsts = [ch["first_flagged"] for ch in chains]
    histogram = {str(p): firsts.count(p) for p in sorted({f for f in firsts if f is not None})}
    histogram["never"] = firsts.count(None)
    caught = sum(f is not None for f in firsts)
    by_third = sum(f is not None and f <= 3 for f in firsts)
    return {
        "chains": total,
        "caught": caught,
        "caught_share": caught / total if total else None,
        "caught_by_third": by_third,
        "caught_by_third_share": by_third / total if total else None,
        "first_flagged_histogram": histogram,
        "per_chain": chains,
    }


def evaluate(cc_num, trans_ts, labels, scores, threshold: float) -> dict:
    """The full hold-out report for one model."""
    return {
        **classification_metrics(labels, scores, threshold),
        "chains": chain_metrics(cc_num, trans_ts, labels, scores, threshold),
    }
