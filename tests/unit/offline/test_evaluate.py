"""Hold-out metrics, checked against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from fraudstream.offline.evaluate import (
    chain_metrics,
    chain_positions,
    classification_metrics,
)

LABELS = np.array([0, 0, 0, 1, 1, 0, 1, 0])
SCORES = np.array([0.1, 0.3, 0.2, 0.9, 0.2, 0.6, 0.8, 0.05])


def test_classification_metrics_at_the_threshold_equal_hand_computed_values():
    m = classification_metrics(LABELS, SCORES, threshold=0.25)
    # Flagged (score > 0.25): rows 1, 3, 5, 6. Frauds: rows 3, 4, 6.
    assert m["confusion_matrix"] == {"true_negative": 3, "false_positive": 2, "false_negative": 1, "true_positive": 2}
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(4 / 7)
    # 15 (fraud, legit) pairs: 0.9 and 0.8 beat all 5, 0.2 beats 2 and ties 1 -> 12.5 / 15.
    assert m["roc_auc"] == pytest.approx(12.5 / 15)
    # Recall steps of 1/3 at precisions 1, 1 and (at score 0.2) 3/6.
    assert m["pr_auc"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert (m["transactions"], m["fraudulent"]) == (8, 3)


def test_a_score_equal_to_the_threshold_is_not_flagged():
    m = classification_metrics(np.array([1, 0]), np.array([0.25, 0.25]), threshold=0.25)
    assert m["confusion_matrix"]["true_positive"] == 0 and m["confusion_matrix"]["false_positive"] == 0


def test_aucs_are_none_when_only_one_class_is_present():
    m = classification_metrics(np.zeros(4, dtype=int), np.array([0.1, 0.2, 0.3, 0.4]), threshold=0.25)
    assert m["roc_auc"] is None and m["pr_auc"] is None
    assert m["confusion_matrix"]["false_positive"] == 2


# Card 1: a chain at 100/160/250 s, a legitimate transaction at 200 s, a second chain from 5000 s.
# Card 2: a chain at 1000/1050/1100 s that is never flagged. Rows deliberately out of order.
CARDS = np.array([1, 2, 1, 1, 2, 1, 1, 2, 1, 1])
TIMES = np.array([250, 1050, 100, 5040, 1000, 160, 200, 1100, 5000, 5100], dtype=float)
CHAIN_LABELS = np.array([1, 1, 1, 1, 1, 1, 0, 1, 1, 1])
CHAIN_SCORES = np.array([0.9, 0.1, 0.1, 0.2, 0.1, 0.5, 0.9, 0.1, 0.7, 0.3])


def test_chain_positions_number_each_chains_transactions_in_time_order():
    chain, position = chain_positions(CARDS, TIMES, CHAIN_LABELS)
    assert chain[6] == -1 and position[6] == 0  # the legitimate transaction
    assert position.tolist() == [3, 2, 1, 2, 1, 2, 0, 3, 1, 3]
    assert len({chain[i] for i in (2, 5, 0)}) == 1
    assert len({chain[i] for i in (8, 3, 9)}) == 1
    assert len(set(chain[CHAIN_LABELS == 1])) == 3


def test_chain_metrics_report_the_first_flagged_position_of_every_chain():
    m = chain_metrics(CARDS, TIMES, CHAIN_LABELS, CHAIN_SCORES, threshold=0.25)
    assert (m["chains"], m["caught"], m["caught_by_third"]) == (3, 2, 2)
    assert m["caught_share"] == pytest.approx(2 / 3)
    assert m["first_flagged_histogram"] == {"1": 1, "2": 1, "never": 1}
    by_start = {ch["start_ts"]: ch for ch in m["per_chain"]}
    assert by_start[100.0]["first_flagged"] == 2  # the flagged legitimate row at 200 s does not count
    assert by_start[5000.0]["first_flagged"] == 1
    assert by_start[1000.0]["first_flagged"] is None
    assert all(ch["length"] == 3 for ch in m["per_chain"])
    assert by_start[100.0]["card"] == "*"  # numbers too short to mask safely are hidden whole
