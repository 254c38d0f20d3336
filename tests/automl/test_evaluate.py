"""Evaluation numbers on tiny cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from include.automl import evaluate

KEYS = ["predicted_label", "probability", "labels", "probabilities"]


def test_binary_metrics_on_a_known_case():
    truth = ["1", "0", "1", "0", "1", "0"]
    # probability is the positive class's, as Autopilot's binary models answer
    rows = [
        {"predicted_label": "1", "probability": 0.9},
        {"predicted_label": "1", "probability": 0.6},  # false positive
        {"predicted_label": "0", "probability": 0.3},  # false negative
        {"predicted_label": "0", "probability": 0.2},
        {"predicted_label": "1", "probability": 0.55},
        {"predicted_label": "0", "probability": 0.05},
    ]
    report = evaluate.evaluate(truth, rows, positive="1")
    # tp=2 fp=1 fn=1 -> F1 = 4 / (4 + 1 + 1)
    assert report["f1"] == pytest.approx(2 / 3)
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["confusion_matrix"] == {"labels": ["0", "1"], "matrix": [[2, 1], [1, 2]]}
    # P(1): 0.9, 0.6, 0.3, 0.2, 0.55, 0.05 -> positives 0.9, 0.3, 0.55 vs negatives 0.6, 0.2, 0.05:
    # pairs won: 0.9 beats 3, 0.3 beats 2, 0.55 beats 2 -> 7 of 9
    assert report["auc"] == pytest.approx(7 / 9)
    best = report["best_threshold"]
    assert best["f1"] == pytest.approx(max(p["f1"] for p in report["pr_curve"]))
    assert report["pr_curve"][0]["threshold"] == pytest.approx(0.9)


def test_auc_ties_and_degenerate_cases():
    assert evaluate.auc(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert evaluate.auc(np.array([1, 1]), np.array([0.1, 0.9])) is None


def test_parse_csv_output_for_each_key_set():
    assert evaluate.parse_output("1\n0\n", ["predicted_label"]) == [{"predicted_label": "1"}, {"predicted_label": "0"}]
    rows = evaluate.parse_output("1,0.8,\"['0', '1']\",\"[0.2, 0.8]\"\n", KEYS)
    assert rows == [{"predicted_label": "1", "probability": 0.8, "labels": ["0", "1"], "probabilities": [0.2, 0.8]}]
    assert evaluate.positive_scores(rows, "1").tolist() == [0.8]
    with pytest.raises(ValueError, match="2 values for the 4 keys"):
        evaluate.parse_output("1,0.8\n", KEYS)
    with pytest.raises(ValueError, match="lost or added rows"):
        evaluate.evaluate(["1", "0"], [{"predicted_label": "1"}])


def test_multiclass_gets_macro_f1_and_the_png_renders():
    report = evaluate.evaluate(
        ["a", "b", "c"], [{"predicted_label": "a"}, {"predicted_label": "c"}, {"predicted_label": "c"}]
    )
    assert report["accuracy"] == pytest.approx(2 / 3) and "auc" not in report
    assert report["per_class"]["c"]["f1"] == pytest.approx(2 / 3)
    binary = evaluate.evaluate(
        ["1", "0"], [{"predicted_label": "1", "probability": 0.9}, {"predicted_label": "0", "probability": 0.9}]
    )
    assert evaluate.pr_curve_png(binary, "t")[:4] == b"\x89PNG"
