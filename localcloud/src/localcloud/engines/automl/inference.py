"""A trained candidate answering CSV records the way Autopilot's inference containers do.

Requests carry the feature columns only, in the training file's order without the target (what batch transform
sends). Response keys (``SAGEMAKER_INFERENCE_OUTPUT``): classification ``predicted_label``, ``probability``,
``probabilities``, ``labels``; regression ``predicted_label`` only (the regression score). As in Autopilot's HPO
containers, binary ``probability`` is that of the positive class (the second of ``labels``), multiclass that of the
predicted label; binary ``predicted_label`` applies the candidate's tuned threshold to it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from localcloud.engines.automl.data import BINARY, REGRESSION
from localcloud.engines.automl.errors import InferenceError
from localcloud.engines.automl.job import METADATA_FILE, MODEL_FILE
from localcloud.engines.automl.output import RESPONSE_KEYS, format_output

DEFAULT_KEYS = ("predicted_label",)


class Predictor:
    """A loaded candidate: the fitted pipeline (features + model) and its metadata."""

    def __init__(self, pipeline: Any, metadata: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.metadata = metadata
        self.problem_type: str = metadata["problem_type"]
        self.feature_columns: list[str] = list(metadata["feature_columns"])
        self.labels: list[str] = list(metadata.get("labels") or [])
        self.threshold: float | None = metadata.get("threshold")

    @property
    def supported_keys(self) -> tuple[str, ...]:
        return ("predicted_label",) if self.problem_type == REGRESSION else RESPONSE_KEYS

    def check_keys(self, keys: Sequence[str] | None) -> list[str]:
        """``keys`` validated for this model (the default, as in Autopilot, is ``predicted_label`` alone)."""
        keys = list(keys) if keys else list(DEFAULT_KEYS)
        bad = [key for key in keys if key not in self.supported_keys]
        if bad:
            raise InferenceError(
                f"Unsupported inference response key(s) {bad} for {self.problem_type}; "
                f"supported: {list(self.supported_keys)}"
            )
        return keys

    def _cells(self, rows: Sequence[Sequence[str]]) -> np.ndarray:
        width = len(self.feature_columns)
        for number, row in enumerate(rows, start=1):
            if len(row) != width:
                raise InferenceError(
                    f"Record {number} has {len(row)} columns; the model expects {width} "
                    f"({', '.join(self.feature_columns)}), without the target column."
                )
        cells = np.empty((len(rows), width), dtype=object)
        for i, row in enumerate(rows):
            cells[i, :] = [str(value) for value in row]
        return cells

    def predict_csv_rows(
        self, rows: Sequence[Sequence[str]], keys: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """One dict per row with ``keys`` (in that order); InferenceError for a row of the wrong width."""
        keys = self.check_keys(keys)
        if not rows:
            return []
        cells = self._cells(rows)
        if self.problem_type == REGRESSION:
            return [{"predicted_label": float(v)} for v in self.pipeline.predict(cells)]
        proba = self.pipeline.predict_proba(cells)
        if self.problem_type == BINARY:
            chosen = (proba[:, 1] >= self.threshold).astype(int)
            probability = proba[:, 1]
        else:
            chosen = np.argmax(proba, axis=1)
            probability = proba[np.arange(len(proba)), chosen]
        results = []
        for i in range(len(cells)):
            values = {
                "predicted_label": self.labels[chosen[i]],
                "probability": float(probability[i]),
                "probabilities": [float(p) for p in proba[i]],
                "labels": list(self.labels),
            }
            results.append({key: values[key] for key in keys})
        return results

    def predict_csv(self, body: str, keys: Sequence[str] | None = None, accept: str = "text/csv") -> str:
        """A whole CSV request body (no header) in, the response body out: what an endpoint does per request."""
        rows = [row for row in csv.reader(io.StringIO(body)) if row]
        keys = self.check_keys(keys)
        return format_output(self.predict_csv_rows(rows, keys), keys, accept)


def load(model_dir: str | Path) -> Predictor:
    """The candidate saved in ``model_dir`` (``model.joblib`` + ``metadata.json``)."""
    model_dir = Path(model_dir)
    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    pipeline = joblib.load(model_dir / metadata.get("model_file", MODEL_FILE))
    return Predictor(pipeline, metadata)
