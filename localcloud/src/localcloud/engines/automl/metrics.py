"""Autopilot's objective metrics: which apply to which problem type, their direction, and the binary threshold."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm

from localcloud.engines.automl.data import BINARY, MULTICLASS, REGRESSION
from localcloud.engines.automl.errors import AutoMLError

# AutoMLJobObjective.MetricName values for tabular jobs (the API's enum), in the API's order.
METRIC_NAMES = (
    "Accuracy",
    "MSE",
    "F1",
    "F1macro",
    "AUC",
    "RMSE",
    "MAE",
    "R2",
    "BalancedAccuracy",
    "Precision",
    "PrecisionMacro",
    "Recall",
    "RecallMacro",
)
OBJECTIVES = {
    BINARY: ("F1", "Accuracy", "AUC", "BalancedAccuracy", "Precision", "Recall"),
    MULTICLASS: ("Accuracy", "BalancedAccuracy", "F1macro", "PrecisionMacro", "RecallMacro"),
    REGRESSION: ("MSE", "RMSE", "MAE", "R2"),
}
# Autopilot's defaults when AutoMLJobObjective is not given.
DEFAULT_OBJECTIVE = {BINARY: "F1", MULTICLASS: "Accuracy", REGRESSION: "MSE"}
MINIMIZE = frozenset({"MSE", "RMSE", "MAE", "LogLoss"})
# Objectives whose best threshold is a real optimum; Precision / Recall would be maximised by a degenerate threshold
# and AUC does not depend on one, so those tune the threshold for F1.
THRESHOLD_METRICS = ("F1", "Accuracy", "BalancedAccuracy")


def objective_type(metric: str) -> str:
    return "Minimize" if metric in MINIMIZE else "Maximize"


def resolve_objective(metric: str | None, problem_type: str) -> str:
    """The objective metric for the job: the default for the problem type when none is given."""
    if not metric:
        return DEFAULT_OBJECTIVE[problem_type]
    if metric not in METRIC_NAMES:
        raise AutoMLError(
            "ValidationException",
            f"Value {metric!r} at 'autoMLJobObjective.metricName' failed to satisfy constraint: Member must satisfy "
            f"enum value set: [{', '.join(METRIC_NAMES)}]",
        )
    if metric not in OBJECTIVES[problem_type]:
        raise AutoMLError(
            "ValidationException",
            f"The objective metric {metric} is not supported for problem type {problem_type}; "
            f"use one of {', '.join(OBJECTIVES[problem_type])}.",
        )
    return metric


def sort_key(value: float, metric: str) -> float:
    """Ascending sort key that puts the best objective value first (NaN last)."""
    if value is None or np.isnan(value):
        return np.inf
    return value if metric in MINIMIZE else -value


def threshold_metric(objective: str) -> str:
    return objective if objective in THRESHOLD_METRICS else "F1"


def tune_threshold(y: np.ndarray, p: np.ndarray, metric: str = "F1") -> float:
    """The probability cut (predict positive when p >= cut) that maximises ``metric`` on (y, p).

    Every distinct probability is a candidate cut; the cut returned lies halfway to the next lower probability so
    that unseen scores close to a boundary fall on the side they are nearer to.
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    n = len(ps)
    positives = ys.sum()
    negatives = n - positives
    k = np.arange(0, n + 1)  # predicting the top k as positive
    tp = np.r_[0, np.cumsum(ys)]
    fp = k - tp
    if metric == "F1":
        score = np.where(k + positives > 0, 2 * tp / np.maximum(k + positives, 1), 0.0)
    elif metric == "Accuracy":
        score = (tp + negatives - fp) / n
    elif metric == "BalancedAccuracy":
        score = 0.5 * (tp / max(positives, 1) + (negatives - fp) / max(negatives, 1))
    else:
        raise ValueError(f"cannot tune a threshold for {metric}")
    # Only cuts between distinct probabilities are realisable: ties go to the same side.
    realisable = np.r_[True, ps[:-1] > ps[1:], True]
    score = np.where(realisable, score, -np.inf)
    best = int(np.argmax(score))
    if best == 0:
        return float(np.nextafter(ps[0], np.inf)) if n else 0.5
    if best == n:
        return float(ps[-1] / 2)
    return float((ps[best - 1] + ps[best]) / 2)


def _clip(p: np.ndarray) -> np.ndarray:
    return np.clip(p, 1e-15, 1 - 1e-15)


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Autopilot's binary candidate metrics; label-based ones at ``threshold`` on p = P(positive)."""
    pred = (p >= threshold).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "F1": float(skm.f1_score(y, pred, zero_division=0)),
            "Accuracy": float(skm.accuracy_score(y, pred)),
            "AUC": float(skm.roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan"),
            "BalancedAccuracy": float(skm.balanced_accuracy_score(y, pred)),
            "Precision": float(skm.precision_score(y, pred, zero_division=0)),
            "Recall": float(skm.recall_score(y, pred, zero_division=0)),
            "LogLoss": float(skm.log_loss(y, _clip(p), labels=[0, 1])),
        }


def multiclass_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Autopilot's multiclass candidate metrics; the predicted class is the most probable one."""
    pred = np.argmax(proba, axis=1)
    labels = list(range(proba.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "Accuracy": float(skm.accuracy_score(y, pred)),
            "BalancedAccuracy": float(skm.balanced_accuracy_score(y, pred)),
            "F1macro": float(skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
            "PrecisionMacro": float(skm.precision_score(y, pred, labels=labels, average="macro", zero_division=0)),
            "RecallMacro": float(skm.recall_score(y, pred, labels=labels, average="macro", zero_division=0)),
            "LogLoss": float(skm.log_loss(y, _clip(proba), labels=labels)),
        }


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    mse = float(skm.mean_squared_error(y, pred))
    return {
        "MSE": mse,
        "RMSE": float(np.sqrt(mse)),
        "MAE": float(skm.mean_absolute_error(y, pred)),
        "R2": float(skm.r2_score(y, pred)),
    }
