"""Object detection engine: train torchvision SSDlite on labelled boxes, predict, and score like Rekognition.

Knows nothing of AWS or HTTP. The torch-backed names load lazily so that importing the data types and metrics
(e.g. while Airflow parses DAGs) does not pull in torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from localcloud.engines.detector.evaluation import evaluate, evaluate_predictions, match_detections
from localcloud.engines.detector.samples import Detection, Sample

_LAZY = {
    "TrainConfig": "training",
    "TrainResult": "training",
    "train": "training",
    "Detector": "inference",
    "load": "inference",
}

__all__ = ["Detection", "Sample", "evaluate", "evaluate_predictions", "match_detections", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
