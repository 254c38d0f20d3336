"""The Custom Labels evaluation gate, as pure functions: the gate operator and the DAGs' ledger both decide with it.

Free of Airflow and boto3, so include/custom_labels (which already imports this provider) records exactly the
verdict the operator enforces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def label_f1(summary: Mapping[str, Any]) -> dict[str, float]:
    """Per-label F1 from Rekognition's evaluation summary file (``LabelEvaluationResults``)."""
    return {r["Label"]: r["Metrics"]["F1Score"] for r in summary.get("LabelEvaluationResults", [])}


def thresholds(min_f1: Any, min_label_f1: Any = None) -> tuple[float, float | None]:
    """The gate's thresholds as numbers; they may arrive as text rendered from params (``"None"`` = no label gate)."""
    return float(min_f1), None if min_label_f1 in (None, "", "None") else float(min_label_f1)


def gate_decision(f1: float, labels: Mapping[str, float], min_f1: Any, min_label_f1: Any = None) -> dict[str, Any]:
    """Whether a version passes: overall F1 >= ``min_f1`` and, when given, every label's F1 >= ``min_label_f1``.

    Returns ``{"passed", "min_f1", "min_label_f1", "failures"}``, the failures in label order.
    """
    min_f1, min_label_f1 = thresholds(min_f1, min_label_f1)
    failures = [f"F1 {f1:.3f} < {min_f1}"] if f1 < min_f1 else []
    if min_label_f1 is not None:
        failures += [f"{n} F1 {v:.3f} < {min_label_f1}" for n, v in sorted(labels.items()) if v < min_label_f1]
    return {"passed": not failures, "min_f1": min_f1, "min_label_f1": min_label_f1, "failures": failures}
