"""The response bodies of Autopilot's inference containers, for each ``SAGEMAKER_INFERENCE_OUTPUT`` key set.

AWS's documented example for a binary model with the keys ``predicted_label,probability,probabilities,labels`` is the
CSV line ``1,0.1,"[0.9, 0.1]","['1', '0']"``: scalars as they are, lists in Python's bracketed form (floats as
numbers, labels as quoted strings), quoted by the CSV writer because they contain commas. JSON lines carry one
object per record with the same keys; ``application/json`` wraps those objects in ``{"predictions": [...]}``.

Pure Python, so the service can format without importing scikit-learn.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from localcloud.engines.automl.errors import InferenceError

RESPONSE_KEYS = ("predicted_label", "probability", "probabilities", "labels")
CSV = "text/csv"
JSON_LINES = "application/jsonlines"
JSON = "application/json"
# Content types SageMaker clients send for JSON lines, all answered with the same body.
JSON_LINES_ALIASES = {"application/jsonlines", "application/jsonl", "application/x-jsonlines"}
ACCEPTS = (CSV, JSON_LINES, JSON)


def _csv_value(key: str, value: Any) -> str:
    if key == "probabilities":
        return "[" + ", ".join(repr(float(p)) for p in value) + "]"
    if key == "labels":
        return repr([str(label) for label in value])
    if isinstance(value, float):
        return repr(value)
    return str(value)


def normalize_accept(accept: str | None) -> str:
    """The canonical content type for an Accept value (parameters such as ``; charset=utf-8`` ignored)."""
    base = (accept or CSV).split(";")[0].strip().lower()
    if base in ("", "*/*", CSV):
        return CSV
    if base in JSON_LINES_ALIASES:
        return JSON_LINES
    if base == JSON:
        return JSON
    raise InferenceError(f"Unsupported accept type {accept!r}; supported: {', '.join(ACCEPTS)}")


def format_output(results: Sequence[dict[str, Any]], keys: Sequence[str], accept: str = CSV) -> str:
    """The response body for ``results`` (from ``Predictor.predict_csv_rows``), values in ``keys`` order."""
    kind = normalize_accept(accept)
    keys = list(keys)
    if kind == CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for result in results:
            writer.writerow([_csv_value(key, result[key]) for key in keys])
        return buffer.getvalue()
    records = [{key: result[key] for key in keys} for result in results]
    if kind == JSON:
        return json.dumps({"predictions": records})
    return "".join(json.dumps(record) + "\n" for record in records)
