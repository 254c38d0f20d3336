"""Detection metrics in the layout of Rekognition Custom Labels' evaluation summary (numpy only).

Matching is greedy by confidence: each prediction, highest confidence first, claims the unclaimed ground-truth
box of its own label with the highest IoU, if that IoU reaches the threshold. Because the order is by
confidence, dropping every prediction below a threshold leaves the other matches unchanged, so one matching
serves the whole confidence sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from localcloud.engines.detector.samples import Detection, Sample, iou_matrix, load_rgb


@dataclass(frozen=True)
class LabelScore:
    """Precision, recall and F1 of one label at the confidence threshold that maximises F1."""

    threshold: float
    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int


def match_detections(
    pred_boxes: np.ndarray, pred_scores: np.ndarray, gt_boxes: np.ndarray, iou_threshold: float = 0.5
) -> np.ndarray:
    """True for each prediction (in input order) that matches a ground-truth box; all boxes share one label."""
    pred_scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    is_tp = np.zeros(len(pred_scores), dtype=bool)
    ious = iou_matrix(pred_boxes, gt_boxes)
    claimed = np.zeros(ious.shape[1], dtype=bool)
    for index in np.argsort(-pred_scores, kind="stable"):
        if not ious.shape[1]:
            break
        candidates = np.where(claimed, -1.0, ious[index])
        best = int(np.argmax(candidates))
        if candidates[best] >= iou_threshold:
            claimed[best] = True
            is_tp[index] = True
    return is_tp


def best_f1(scores: np.ndarray, is_tp: np.ndarray, num_ground_truth: int) -> LabelScore:
    """Sweep every distinct confidence as a threshold (keep scores >= it) and return the best F1.

    Ties in F1 go to the highest threshold: fewer detections for the same quality. When no threshold yields a
    true positive the label gets threshold 1.0 (accept nothing) and zero scores.
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    scores = np.asarray(scores, dtype=np.float64)[order]
    tp = np.cumsum(np.asarray(is_tp, dtype=bool)[order])
    fp = np.arange(1, len(scores) + 1) - tp
    # A threshold equal to a score keeps every tied score, so only the last of each run of ties is a cut.
    cuts = np.flatnonzero(np.append(scores[1:] != scores[:-1], True)) if len(scores) else np.array([], int)
    if not len(cuts) or tp[cuts[-1]] == 0:
        return LabelScore(1.0, 0.0, 0.0, 0.0, 0, 0, num_ground_truth)
    precision = tp[cuts] / (cuts + 1)
    recall = tp[cuts] / max(num_ground_truth, 1)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=tp[cuts] > 0)
    best = int(np.argmax(f1))
    cut = cuts[best]
    return LabelScore(
        threshold=float(scores[cut]),
        precision=float(precision[best]),
        recall=float(recall[best]),
        f1=float(f1[best]),
        true_positives=int(tp[cut]),
        false_positives=int(fp[cut]),
        false_negatives=int(num_ground_truth - tp[cut]),
    )


def _label_matches(
    predictions: Sequence[Sequence[Detection]], test: Sequence[Sample], label: int, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Confidences and true-positive flags of every prediction of `label` across the test set."""
    scores: list[np.ndarray] = []
    flags: list[np.ndarray] = []
    for detections, sample in zip(predictions, test, strict=True):
        mine = [d for d in detections if d.label == label]
        boxes = np.array([d.box for d in mine], dtype=np.float64).reshape(-1, 4)
        confidences = np.array([d.confidence for d in mine], dtype=np.float64)
        scores.append(confidences)
        flags.append(match_detections(boxes, confidences, sample.boxes[sample.labels == label], iou_threshold))
    return np.concatenate(scores or [np.empty(0)]), np.concatenate(flags or [np.empty(0, bool)])


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def evaluate_predictions(
    predictions: Sequence[Sequence[Detection]],
    test: Sequence[Sample],
    class_names: dict[int, str],
    iou_threshold: float = 0.5,
) -> dict:
    """Rekognition-style summary from predictions already made, one list per test sample.

    Each label is scored at its own F1-maximising threshold (what Rekognition calls the assumed threshold);
    the aggregate is micro-averaged over all labels at those thresholds. `NumberOfTestingBoxes` is our
    addition: for detection the box count says more than the image count.
    """
    per_label: list[dict] = []
    totals = np.zeros(3, dtype=np.int64)  # true positives, false positives, false negatives
    for label, name in sorted(class_names.items()):
        scores, is_tp = _label_matches(predictions, test, label, iou_threshold)
        num_boxes = int(sum((s.labels == label).sum() for s in test))
        result = best_f1(scores, is_tp, num_boxes)
        totals += [result.true_positives, result.false_positives, result.false_negatives]
        per_label.append(
            {
                "Label": name,
                "Metrics": {
                    "F1Score": result.f1,
                    "Precision": result.precision,
                    "Recall": result.recall,
                    "Threshold": result.threshold,
                },
                "NumberOfTestingImages": int(sum(bool((s.labels == label).any()) for s in test)),
                "NumberOfTestingBoxes": num_boxes,
            }
        )
    tp, fp, fn = (int(v) for v in totals)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = _f1(precision, recall)
    return {
        "Version": 1,
        "AggregatedEvaluationResults": {"F1Score": f1, "Precision": precision, "Recall": recall},
        "EvaluationDetails": {
            "Labels": [name for _, name in sorted(class_names.items())],
            "NumberOfTestingImages": len(test),
            "IoUThreshold": iou_threshold,
        },
        # Rekognition sorts the per-label results by F1.
        "LabelEvaluationResults": sorted(per_label, key=lambda r: r["Metrics"]["F1Score"], reverse=True),
        # What DescribeProjectVersions returns as EvaluationResult.F1Score.
        "EvaluationResult": {"F1Score": f1},
    }


class Predictor(Protocol):
    def predict(self, image: Image.Image) -> list[Detection]: ...


def evaluate(detector: Predictor, test: Sequence[Sample], class_names: dict[int, str], iou: float = 0.5) -> dict:
    """Run `detector` over the test images (every confidence kept, for the sweep) and summarise."""
    predictions = [detector.predict(load_rgb(sample.image_path)) for sample in test]
    return evaluate_predictions(predictions, test, class_names, iou)
