"""Tabular AutoML engine: what localcloud's SageMaker ``CreateAutoMLJob`` runs (Autopilot's HPO mode, offline).

Knows nothing of AWS or HTTP. Contract (the API service builds on it):

``run(spec, workdir, progress=None) -> dict`` trains and ranks candidates. ``spec`` keys: ``train_csv`` (path, with
header), ``target``, ``job_name`` ("automl-job"), ``problem_type`` ("auto" | "BinaryClassification" |
"MulticlassClassification" | "Regression"), ``objective`` (an AutoMLJobObjective MetricName, or that object;
None: F1 binary, Accuracy multiclass, MSE regression), ``max_candidates`` (250), ``max_runtime_seconds`` (30 days),
``max_runtime_per_candidate_seconds`` (None), ``seed`` (0), ``validation_fraction`` (0.2), ``validation_csv``
(None: split the training data), ``min_rows`` (500, AWS's minimum), ``positive_class`` (None: inferred),
``explainability`` (True). ``progress(secondary_status, info)`` is called with "AnalyzingData",
"FeatureEngineering", "ModelTuning" (again after each candidate, ``info["event"]`` "candidate" /
"candidate_failed"), "GeneratingExplainabilityReport", then the end: "MaxCandidatesReached",
"MaxAutoMLJobRuntimeReached", "Completed" or "Stopped" (after the callback raised ``StopJob``).

The result: ``job_name``, ``problem_type``, ``objective`` ({MetricName, Type}), ``target``, ``labels`` (binary:
[negative, positive]), ``positive_class``, ``feature_columns`` (what inference rows carry), ``dropped_columns``
({column: {reason, detail}}), ``candidates`` (best first: CandidateName, Algorithm, ObjectiveValue, Metrics,
Hyperparameters, Threshold, ModelDir, TrainingSeconds), ``failed_candidates``, ``best``, ``secondary_status``,
``explainability_report``, ``data`` (row counts), ``threads``, ``elapsed_seconds``.

Layout of ``workdir``: ``analysis.json`` (column types, dropped columns, rows), ``candidates/<CandidateName>/``
(``model.joblib``: the whole scikit-learn pipeline, raw CSV cells in; ``metadata.json``), ``explainability/
feature_importance.json`` and ``result.json`` (the returned dict). Bad input raises ``AutoMLError(code, message)``.

``load(model_dir) -> Predictor``; ``Predictor.predict_csv_rows(rows, keys) -> list[dict]``;
``format_output(results, keys, accept)`` gives the body Autopilot's containers return for those keys.

Threads: ``LOCALCLOUD_AUTOML_THREADS`` (default 1). The heavy names load lazily so that importing the errors or the
output formatter does not pull in scikit-learn and XGBoost.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from localcloud.engines.automl.errors import AutoMLError, InferenceError, StopJob
from localcloud.engines.automl.output import RESPONSE_KEYS, format_output

_LAZY = {
    "run": "job",
    "candidate_name": "job",
    "load": "inference",
    "Predictor": "inference",
}

__all__ = ["AutoMLError", "InferenceError", "RESPONSE_KEYS", "StopJob", "format_output", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
