"""Score batch-transform output against held-out labels: F1, accuracy, AUC, confusion matrix, PR curve (PNG).

Pure numpy + Pillow. Binary problems also get a threshold sweep on the positive class's probability, so the report
shows the F1 at the model's own decision and at the best threshold for these labels.
"""

from __future__ import annotations

import ast
import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np


def parse_output(text: str, keys: Sequence[str], accept: str = "text/csv") -> list[dict[str, Any]]:
    """Transform output (one line per input row) -> one dict per row with the response keys."""
    rows: list[dict[str, Any]] = []
    if accept == "application/jsonlines":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    for number, values in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not values:
            continue
        if len(values) != len(keys):
            raise ValueError(f"output line {number}: {len(values)} values for the {len(keys)} keys {list(keys)}")
        row: dict[str, Any] = {}
        for key, value in zip(keys, values, strict=True):
            if key in ("labels", "probabilities"):
                row[key] = ast.literal_eval(value) if value.startswith("[") else json.loads(value)
            elif key == "probability":
                row[key] = float(value)
            else:
                row[key] = value
        rows.append(row)
    return rows


def positive_scores(rows: list[dict[str, Any]], positive: str) -> np.ndarray | None:
    """P(positive) per row, from ``labels``+``probabilities`` or, for binary answers, ``probability``."""
    scores = []
    for row in rows:
        if "labels" in row and "probabilities" in row:
            labels = [str(x) for x in row["labels"]]
            if positive not in labels:
                return None
            scores.append(float(row["probabilities"][labels.index(positive)]))
        elif "probability" in row:
            # Autopilot (hyperparameter-search mode): a binary model's probability is the positive class's.
            scores.append(float(row["probability"]))
        else:
            return None
    return np.asarray(scores, dtype=float)


def _f1(tp: float, fp: float, fn: float) -> float:
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC by ranks (ties averaged); None when only one class is present."""
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score), dtype=float)
    sorted_scores = score[order]
    start = 0
    while start < len(score):
        end = start
        while end + 1 < len(score) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def pr_curve(y: np.ndarray, score: np.ndarray) -> list[dict[str, float]]:
    """Precision/recall/F1 at every distinct score threshold (predict positive when score >= threshold)."""
    points = []
    for threshold in sorted(set(score.tolist()), reverse=True):
        predicted = score >= threshold
        tp = float(np.sum(predicted & (y == 1)))
        fp = float(np.sum(predicted & (y == 0)))
        fn = float(np.sum(~predicted & (y == 1)))
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        points.append({"threshold": threshold, "precision": precision, "recall": recall, "f1": _f1(tp, fp, fn)})
    return points


def evaluate(truth: Sequence[str], rows: list[dict[str, Any]], positive: str | None = None) -> dict[str, Any]:
    """Metrics of predictions ``rows`` (parsed output) against ``truth`` (labels as strings, same order)."""
    if len(truth) != len(rows):
        raise ValueError(f"{len(rows)} predictions for {len(truth)} labels: the output lost or added rows")
    truth = [str(t) for t in truth]
    predicted = [str(r["predicted_label"]) for r in rows]
    classes = sorted(set(truth) | set(predicted))
    matrix = [
        [sum(1 for t, p in zip(truth, predicted, strict=True) if t == a and p == b) for b in classes] for a in classes
    ]
    report: dict[str, Any] = {
        "rows": len(truth),
        "classes": classes,
        "confusion_matrix": {"labels": classes, "matrix": matrix},  # rows: truth, columns: predicted
        "accuracy": float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)])),
    }
    per_class = {}
    for c in classes:
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == c and p == c)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if t != c and p == c)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == c and p != c)
        per_class[c] = {"f1": _f1(tp, fp, fn), "support": sum(1 for t in truth if t == c)}
    report["f1_macro"] = float(np.mean([v["f1"] for v in per_class.values()]))
    report["per_class"] = per_class
    if len(classes) <= 2:
        positive = positive if positive is not None else _default_positive(classes)
        report["positive_label"] = positive
        report["f1"] = per_class.get(positive, {"f1": 0.0})["f1"]
        scores = positive_scores(rows, positive)
        if scores is not None:
            y = np.asarray([t == positive for t in truth], dtype=int)
            report["auc"] = auc(y, scores)
            curve = pr_curve(y, scores)
            best = max(curve, key=lambda p: (p["f1"], p["threshold"]))
            report["pr_curve"] = curve
            report["best_threshold"] = best
    return report


def _default_positive(classes: list[str]) -> str:
    """The minority-looking label: "1", "True", "True.", "yes" ... if present, else the last in sort order."""
    for candidate in ("1", "True.", "True", "true", "yes", "Yes"):
        if candidate in classes:
            return candidate
    return classes[-1]


def pr_curve_png(report: dict[str, Any], title: str, width: int = 640, height: int = 480) -> bytes:
    """The precision-recall curve with the model's own decision point and the best-F1 threshold marked."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    left, top, right, bottom = 60, 40, width - 20, height - 50
    draw.rectangle((left, top, right, bottom), outline="black")
    draw.text((left, 10), title, fill="black", font=font)
    draw.text(((left + right) // 2 - 20, bottom + 20), "recall", fill="black", font=font)
    draw.text((5, (top + bottom) // 2), "precision", fill="black", font=font)
    for tick in (0.0, 0.5, 1.0):
        x = left + tick * (right - left)
        y = bottom - tick * (bottom - top)
        draw.text((x - 8, bottom + 4), f"{tick:.1f}", fill="black", font=font)
        draw.text((left - 30, y - 7), f"{tick:.1f}", fill="black", font=font)

    def xy(recall: float, precision: float) -> tuple[float, float]:
        return left + recall * (right - left), bottom - precision * (bottom - top)

    curve = report.get("pr_curve") or []
    if curve:
        draw.line([xy(p["recall"], p["precision"]) for p in curve], fill=(31, 119, 180), width=2)
        best = report["best_threshold"]
        bx, by = xy(best["recall"], best["precision"])
        draw.ellipse((bx - 5, by - 5, bx + 5, by + 5), fill=(214, 39, 40))
        label = f"best F1 {best['f1']:.3f} at threshold {best['threshold']:.3f}"
        draw.text((left + 10, top + 10), label, fill=(214, 39, 40), font=font)
    draw.text((left + 10, top + 30), f"model's own decision: F1 {report.get('f1', 0):.3f}", fill="black", font=font)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
