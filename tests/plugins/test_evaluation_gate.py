"""aws_ml.evaluation: the one F1 gate, used by the gate operator and the Custom Labels ledger."""

from __future__ import annotations

import pytest
from aws_ml.evaluation import gate_decision, label_f1, thresholds


def test_label_f1_reads_the_summary_file() -> None:
    summary = {
        "LabelEvaluationResults": [
            {"Label": "b", "Metrics": {"F1Score": 0.5}},
            {"Label": "a", "Metrics": {"F1Score": 0.9}},
        ]
    }
    assert label_f1(summary) == {"b": 0.5, "a": 0.9}
    assert label_f1({}) == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [((0.8, None), (0.8, None)), (("0.8", "None"), (0.8, None)), (("0", ""), (0.0, None)), (("1", "0.5"), (1.0, 0.5))],
)
def test_thresholds_accept_rendered_params(raw, expected) -> None:
    assert thresholds(*raw) == expected


def test_gate_passes_at_the_threshold_and_fails_below() -> None:
    assert gate_decision(0.8, {"a": 0.1}, 0.8) == {"passed": True, "min_f1": 0.8, "min_label_f1": None, "failures": []}
    decision = gate_decision(0.79, {}, "0.8")
    assert not decision["passed"] and decision["failures"] == ["F1 0.790 < 0.8"]


def test_label_gate_lists_every_label_below_in_label_order() -> None:
    decision = gate_decision(0.9, {"z": 0.2, "a": 0.4, "m": 0.95}, 0.5, "0.5")
    assert decision["failures"] == ["a F1 0.400 < 0.5", "z F1 0.200 < 0.5"]
    assert decision["min_label_f1"] == 0.5 and not decision["passed"]
