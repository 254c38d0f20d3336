"""Turning imported datasets into a training job, and supervising that job's process."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localcloud import jobprocs
from localcloud.core import AwsError
from localcloud.engines.detector.job import RESULT, SPEC
from localcloud.services.rekognition.manifest import parse_entry


def train_config() -> dict[str, Any]:
    """The engine's budget, from the server's environment: small for tests, larger for demos."""
    return {
        "image_size": int(os.environ.get("LOCALCLOUD_TRAIN_IMAGE_SIZE", "320")),
        "epochs": int(os.environ.get("LOCALCLOUD_TRAIN_EPOCHS", "30")),
        "max_seconds": float(os.environ.get("LOCALCLOUD_TRAIN_MAX_SECONDS", "600")),
        "threads": int(os.environ.get("LOCALCLOUD_TRAIN_THREADS", "1")),
        "batch_size": int(os.environ.get("LOCALCLOUD_TRAIN_BATCH_SIZE", "8")),
    }


def samples(lines: list[str], image_file: Callable[[str, str], Path], names: dict[str, int]) -> list[dict]:
    """Manifest lines -> the engine's samples (x0, y0, x1, y1 pixel boxes; class ids by label name)."""
    rows = []
    for raw in lines:
        entry = parse_entry(raw)
        rows.append(
            {
                "image": str(image_file(entry.bucket, entry.key)),
                "boxes": [list(box.corners) for box in entry.boxes],
                "labels": [names[box.label] for box in entry.boxes],
            }
        )
    return rows


def write_spec(job_dir: Path, train: list[dict], test: list[dict], label_names: list[str]) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "train": train,
        "test": test,
        "class_names": dict(enumerate(label_names)),
        "config": train_config(),
    }
    (job_dir / SPEC).write_text(json.dumps(spec))


def start(job_dir: Path) -> subprocess.Popen:
    """The job in its own process group, so that stopping it stops everything it started."""
    return jobprocs.start("localcloud.engines.detector.job", job_dir, "train.log")


def kill(pid: int | None) -> None:
    jobprocs.kill(pid)


def result(job_dir: Path) -> dict[str, Any]:
    path = job_dir / RESULT
    if not path.exists():
        raise AwsError("InternalServerError", "the training process ended without a result", 500)
    return json.loads(path.read_text())
