"""One AutoML job, as SageMaker Autopilot runs it in HPO mode: analyse, engineer features, search, explain.

The search trains candidates of the three Autopilot HPO families (XGBoost, linear learner, MLP) on the training part
and ranks them by the job's objective on the validation part. The first three candidates are each family's
defaults, the rest random draws; the draws depend on the seed only, so the same seed gives the same candidate
names in the same order, however many of them the time budget lets through. The binary decision threshold is tuned
on the validation part (for F1 unless the objective is Accuracy or BalancedAccuracy).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import time
import warnings
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
import xgboost
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from localcloud.engines.automl import families, metrics
from localcloud.engines.automl.data import (
    BINARY,
    MIN_ROWS,
    REGRESSION,
    Dataset,
    load_dataset,
    read_csv,
    split,
)
from localcloud.engines.automl.errors import AutoMLError, StopJob
from localcloud.engines.automl.features import TabularFeaturizer

Progress = Callable[[str, dict[str, Any]], None]

CANDIDATE_SCHEMA = "localcloud-automl-candidate/1"
MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
RESULT_FILE = "result.json"
ANALYSIS_FILE = "analysis.json"
EXPLAINABILITY_FILE = "explainability/feature_importance.json"
THREADS_ENV = "LOCALCLOUD_AUTOML_THREADS"
# CreateAutoMLJob's defaults: 250 candidates in HPO mode, 30 days.
DEFAULTS: dict[str, Any] = {
    "job_name": "automl-job",
    "problem_type": "auto",
    "objective": None,
    "max_candidates": 250,
    "max_runtime_seconds": 30 * 24 * 3600,
    "max_runtime_per_candidate_seconds": None,
    "seed": 0,
    "validation_fraction": 0.2,
    "validation_csv": None,
    "min_rows": MIN_ROWS,
    "positive_class": None,
    "explainability": True,
}
# Share of the runtime budget (at most EXPLAIN_RESERVE_MAX seconds) kept back for the explainability report.
EXPLAIN_RESERVE_SHARE = 0.05
EXPLAIN_RESERVE_MAX = 10.0
EXPLAIN_ROWS = 1000
EXPLAIN_REPEATS = 3


def threads() -> int:
    """Worker threads for training (``LOCALCLOUD_AUTOML_THREADS``, default 1: the service shares the machine)."""
    try:
        return max(1, int(os.environ.get(THREADS_ENV, "1")))
    except ValueError:
        return 1


def _config(spec: dict[str, Any]) -> dict[str, Any]:
    # None means "not given": the default applies, as for an omitted member of the API request.
    cfg = {**DEFAULTS, **{k: v for k, v in spec.items() if v is not None}}
    if isinstance(cfg["objective"], dict):  # the API's AutoMLJobObjective shape
        cfg["objective"] = cfg["objective"].get("MetricName")
    for key in ("train_csv", "target"):
        if not cfg.get(key):
            raise AutoMLError("ValidationException", f"The job specification needs {key!r}.")

    def integer(key: str, low: int) -> int:
        try:
            value = int(cfg[key])
        except (TypeError, ValueError):
            raise AutoMLError("ValidationException", f"{key} must be an integer, not {cfg[key]!r}.") from None
        if value < low:
            raise AutoMLError("ValidationException", f"{key} must be at least {low}, not {value}.")
        return value

    cfg["max_candidates"] = integer("max_candidates", 1)
    cfg["max_runtime_seconds"] = integer("max_runtime_seconds", 1)
    cfg["seed"] = integer("seed", 0)
    cfg["min_rows"] = integer("min_rows", 1)
    if cfg["max_runtime_per_candidate_seconds"] is not None:
        cfg["max_runtime_per_candidate_seconds"] = integer("max_runtime_per_candidate_seconds", 1)
    try:
        fraction = float(cfg["validation_fraction"])
    except (TypeError, ValueError):
        fraction = -1.0
    if not 0.0 < fraction < 1.0:
        raise AutoMLError(
            "ValidationException", f"validation_fraction must be between 0 and 1, not {cfg['validation_fraction']!r}."
        )
    cfg["validation_fraction"] = fraction
    job = re.sub(r"[^A-Za-z0-9-]+", "-", str(cfg["job_name"])).strip("-") or "automl-job"
    # Candidate names are training-job names: at most 63 characters, so the job part is cut to 32 (its own limit).
    cfg["job_name"] = job[:32].rstrip("-")
    return cfg


def candidate_name(job_name: str, index: int, family: str, hyperparameters: dict[str, Any], seed: int) -> str:
    """``<job>-<family>-<nnn>-<hash8>``, the hash over what defines the candidate, as Autopilot's names end."""
    digest = hashlib.sha256(
        json.dumps([job_name, seed, index, family, hyperparameters], sort_keys=True).encode()
    ).hexdigest()
    return f"{job_name}-{family}-{index:03d}-{digest[:8]}"


class _Deadline(xgboost.callback.TrainingCallback):
    """Stops boosting at a wall-clock deadline; the rounds done so far make a valid (smaller) model."""

    def __init__(self, at: float) -> None:
        super().__init__()
        self.at = at

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        return time.monotonic() >= self.at


def _cost_units(family: str, hp: dict[str, Any], n_features: int) -> float:
    """A rough size of the training work, to predict a candidate's time from its family's earlier ones."""
    if family == families.XGBOOST:
        return float(hp["num_round"] * hp["max_depth"])
    if family == families.MLP:
        sizes = [n_features, *hp["hidden_layer_sizes"]]
        return float(sum(a * b for a, b in zip(sizes, sizes[1:], strict=False)) + sizes[-1])
    return 1.0


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "xgboost": xgboost.__version__,
    }


def _validation_cells(path: str, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Cells and encoded target of a separate validation channel (same header as the training data)."""
    header, rows = read_csv(path)
    if header != dataset.header:
        raise AutoMLError("ValidationException", "The validation data's header differs from the training data's.")
    t = header.index(dataset.target)
    rows = [row for row in rows if row[t].strip()]
    if not rows:
        raise AutoMLError("ValidationException", "The validation data has no rows with a target value.")
    values = [row[t].strip() for row in rows]
    if dataset.problem_type == REGRESSION:
        try:
            y = np.array([float(v) for v in values])
        except ValueError as exc:
            raise AutoMLError("ValidationException", f"The validation target is not numeric: {exc}") from exc
    else:
        index = {label: i for i, label in enumerate(dataset.labels)}
        unseen = sorted(set(values) - set(index))
        if unseen:
            raise AutoMLError(
                "ValidationException", f"The validation data has target values the training data lacks: {unseen[:10]}"
            )
        y = np.array([index[v] for v in values], dtype=np.int64)
    cells = np.array([[v for i, v in enumerate(row) if i != t] for row in rows], dtype=object)
    return cells, y


def _explain(
    pipeline: Pipeline,
    cells: np.ndarray,
    y: np.ndarray,
    dataset: Dataset,
    objective: str,
    threshold: float | None,
    seed: int,
) -> dict[str, Any]:
    """Permutation importance of each used input column for the objective on (a sample of) the validation part."""
    rng = np.random.default_rng(seed)
    if len(y) > EXPLAIN_ROWS:
        pick = np.sort(rng.choice(len(y), EXPLAIN_ROWS, replace=False))
        cells, y = cells[pick], y[pick]

    def score(x: np.ndarray) -> float:
        if dataset.problem_type == REGRESSION:
            return metrics.regression_metrics(y, pipeline.predict(x))[objective]
        proba = pipeline.predict_proba(x)
        if dataset.problem_type == BINARY:
            return metrics.binary_metrics(y, proba[:, 1], threshold)[objective]
        return metrics.multiclass_metrics(y, proba)[objective]

    sign = -1.0 if objective in metrics.MINIMIZE else 1.0
    base = score(cells)
    importances = []
    for column in dataset.used:
        drops = []
        for _ in range(EXPLAIN_REPEATS):
            shuffled = cells.copy()
            shuffled[:, column.index] = rng.permutation(shuffled[:, column.index])
            drops.append(sign * (base - score(shuffled)))
        importances.append({"column": column.name, "importance": float(np.mean(drops)), "std": float(np.std(drops))})
    importances.sort(key=lambda item: -item["importance"])
    return {
        "method": "permutation",
        "metric": objective,
        "baseline": base,
        "rows": int(len(y)),
        "repeats": EXPLAIN_REPEATS,
        "importances": importances,
    }


def run(spec: dict[str, Any], workdir: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Run the AutoML job ``spec`` in ``workdir``; returns the leaderboard (see the package docstring)."""
    started = time.monotonic()
    cfg = _config(spec)
    workdir = Path(workdir)
    (workdir / "candidates").mkdir(parents=True, exist_ok=True)
    deadline = started + cfg["max_runtime_seconds"]
    stop_requested = False

    def emit(status: str, info: dict[str, Any]) -> None:
        nonlocal stop_requested
        if progress is None:
            return
        try:
            progress(status, info)
        except StopJob:
            stop_requested = True

    n_threads = threads()
    with threadpool_limits(limits=n_threads), warnings.catch_warnings():
        # Convergence chatter from MLP / saga is expected in a random search; the validation score judges it.
        warnings.simplefilter("ignore")
        emit("AnalyzingData", {"train_csv": str(cfg["train_csv"]), "target": cfg["target"]})
        dataset = load_dataset(
            cfg["train_csv"], cfg["target"], cfg["problem_type"], cfg["min_rows"], cfg["positive_class"]
        )
        objective = metrics.resolve_objective(cfg["objective"], dataset.problem_type)
        objective_spec = {"MetricName": objective, "Type": metrics.objective_type(objective)}
        if cfg["validation_csv"]:
            train_cells, y_train = dataset.features, dataset.y
            valid_cells, y_valid = _validation_cells(cfg["validation_csv"], dataset)
        else:
            train_idx, valid_idx = split(dataset, cfg["validation_fraction"], cfg["seed"])
            train_cells, y_train = dataset.features[train_idx], dataset.y[train_idx]
            valid_cells, y_valid = dataset.features[valid_idx], dataset.y[valid_idx]
        data_info = {
            "rows": int(len(dataset.y)),
            "rows_missing_target": dataset.rows_missing_target,
            "train_rows": int(len(y_train)),
            "validation_rows": int(len(y_valid)),
        }
        analysis = {
            "problem_type": dataset.problem_type,
            "problem_type_inferred": cfg["problem_type"] == "auto",
            "objective": objective_spec,
            "target": dataset.target,
            "labels": dataset.labels,
            "positive_class": dataset.positive_class,
            "columns": [c.summary() for c in dataset.columns],
            "dropped_columns": dataset.dropped,
            **data_info,
        }
        (workdir / ANALYSIS_FILE).write_text(json.dumps(analysis, indent=2))

        emit(
            "FeatureEngineering",
            {"problem_type": dataset.problem_type, "objective": objective_spec, "dropped_columns": dataset.dropped},
        )
        by_kind = {kind: tuple(c.index for c in dataset.used if c.kind == kind) for kind in ("numeric", "boolean")}
        featurizer = TabularFeaturizer(
            n_columns=len(dataset.feature_names),
            numeric=by_kind["numeric"],
            boolean=by_kind["boolean"],
            categorical=tuple(c.index for c in dataset.used if c.kind == "categorical"),
            column_names=tuple(dataset.feature_names),
        ).fit(train_cells)
        # Features are computed once: every candidate trains on the same matrices.
        x_train, x_valid = featurizer.transform(train_cells), featurizer.transform(valid_cells)

        emit(
            "ModelTuning",
            {"max_candidates": cfg["max_candidates"], "max_runtime_seconds": cfg["max_runtime_seconds"]},
        )
        reserve = (
            min(EXPLAIN_RESERVE_MAX, EXPLAIN_RESERVE_SHARE * cfg["max_runtime_seconds"]) if cfg["explainability"] else 0
        )
        rng = np.random.default_rng(cfg["seed"])
        rates: dict[str, list[float]] = {f: [] for f in families.FAMILIES}
        candidates: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        status = "Completed"
        n_classes = len(dataset.labels)
        for index in count(1):
            if stop_requested:
                status = "Stopped"
                break
            if index > cfg["max_candidates"]:
                status = "MaxCandidatesReached"
                break
            family, hp = families.plan(index, dataset.problem_type, rng)
            units = _cost_units(family, hp, x_train.shape[1])
            # The slowest recent rate, not the typical one: overrunning the budget is worse than one candidate fewer.
            estimate = max(rates[family][-5:]) * units if rates[family] else 0.0
            now = time.monotonic()
            if index > 1 and now + estimate > deadline - reserve:
                status = "MaxAutoMLJobRuntimeReached"
                break
            name = candidate_name(cfg["job_name"], index, family, hp, cfg["seed"])
            model_seed = (cfg["seed"] * 1000 + index) % 2**32  # scikit-learn wants seeds below 2**32
            estimator = families.build(family, dataset.problem_type, hp, n_classes, model_seed, n_threads)
            stop_at = deadline - reserve
            if cfg["max_runtime_per_candidate_seconds"]:
                stop_at = min(stop_at, now + cfg["max_runtime_per_candidate_seconds"])
            if family == families.XGBOOST:
                estimator.set_params(callbacks=[_Deadline(stop_at)])
            try:
                estimator.fit(x_train, y_train)
                seconds = time.monotonic() - now
                threshold = None
                if dataset.problem_type == REGRESSION:
                    scores = metrics.regression_metrics(y_valid, estimator.predict(x_valid))
                else:
                    proba = estimator.predict_proba(x_valid)
                    if dataset.problem_type == BINARY:
                        p = proba[:, 1]
                        threshold = metrics.tune_threshold(y_valid, p, metrics.threshold_metric(objective))
                        scores = metrics.binary_metrics(y_valid, p, threshold)
                    else:
                        scores = metrics.multiclass_metrics(y_valid, proba)
                if not np.isfinite(scores[objective]):
                    raise ValueError(f"the validation {objective} is not a number")
            except Exception as exc:  # a candidate that fails is reported and the search goes on, as in Autopilot
                failed.append(
                    {"CandidateName": name, "Algorithm": family, "FailureReason": f"{type(exc).__name__}: {exc}"}
                )
                emit("ModelTuning", {"event": "candidate_failed", "candidate": failed[-1]})
                continue
            if family == families.XGBOOST:
                estimator.set_params(callbacks=None)
            rates[family].append(seconds / units)
            pipeline = Pipeline([("features", featurizer), ("model", estimator)])
            model_dir = workdir / "candidates" / name
            model_dir.mkdir(parents=True, exist_ok=True)
            joblib.dump(pipeline, model_dir / MODEL_FILE)
            metadata = {
                "schema": CANDIDATE_SCHEMA,
                "candidate_name": name,
                "job_name": cfg["job_name"],
                "index": index,
                "seed": cfg["seed"],
                "algorithm": family,
                "hyperparameters": hp,
                "problem_type": dataset.problem_type,
                "objective": {**objective_spec, "Value": scores[objective]},
                "metrics": scores,
                "threshold": threshold,
                "target": dataset.target,
                "labels": dataset.labels,
                "positive_class": dataset.positive_class,
                # AWS's HPO containers: binary `probability` is the positive (second) class's, multiclass the
                # predicted label's.
                "probability": "positive_class" if dataset.problem_type == BINARY else "predicted_label",
                "feature_columns": dataset.feature_names,
                "used_columns": [c.name for c in dataset.used],
                "dropped_columns": dataset.dropped,
                "training_seconds": seconds,
                "train_rows": int(len(y_train)),
                "validation_rows": int(len(y_valid)),
                "model_file": MODEL_FILE,
                "versions": _versions(),
            }
            (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
            candidate = {
                "CandidateName": name,
                "Algorithm": family,
                "ObjectiveValue": scores[objective],
                "Metrics": scores,
                "Hyperparameters": hp,
                "Threshold": threshold,
                "ModelDir": str(model_dir),
                "TrainingSeconds": round(seconds, 3),
            }
            candidates.append(candidate)
            emit("ModelTuning", {"event": "candidate", "candidate": candidate, "completed": len(candidates)})

        if not candidates and status != "Stopped":
            reasons = "; ".join(f["FailureReason"] for f in failed[:3])
            raise AutoMLError("InternalFailure", f"No candidate could be trained: {reasons}")
        # Ties go to the earlier candidate: the defaults, then the draws in order.
        order = {c["CandidateName"]: i for i, c in enumerate(candidates)}
        candidates.sort(key=lambda c: (metrics.sort_key(c["ObjectiveValue"], objective), order[c["CandidateName"]]))
        best = candidates[0]["CandidateName"] if candidates else None

        report_path = None
        if best and cfg["explainability"] and status != "Stopped":
            emit("GeneratingExplainabilityReport", {"candidate": best})
            pipeline = joblib.load(Path(candidates[0]["ModelDir"]) / MODEL_FILE)
            report = _explain(
                pipeline, valid_cells, y_valid, dataset, objective, candidates[0]["Threshold"], cfg["seed"]
            )
            report["candidate"] = best
            report_path = workdir / EXPLAINABILITY_FILE
            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.write_text(json.dumps(report, indent=2))

    result = {
        "job_name": cfg["job_name"],
        "problem_type": dataset.problem_type,
        "objective": objective_spec,
        "target": dataset.target,
        "labels": dataset.labels,
        "positive_class": dataset.positive_class,
        "feature_columns": dataset.feature_names,
        "dropped_columns": dataset.dropped,
        "candidates": candidates,
        "failed_candidates": failed,
        "best": best,
        "secondary_status": status,
        "explainability_report": str(report_path) if report_path else None,
        "data": data_info,
        "threads": n_threads,
        "elapsed_seconds": round(time.monotonic() - started, 3),
    }
    (workdir / RESULT_FILE).write_text(json.dumps(result, indent=2))
    emit(status, {"best": best, "candidates": len(candidates), "elapsed_seconds": result["elapsed_seconds"]})
    return result
