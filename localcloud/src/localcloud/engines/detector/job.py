"""One training job, run as its own process: ``python -m localcloud.engines.detector.job JOB_DIR``.

``JOB_DIR/spec.json`` holds the samples (image paths, boxes, labels), the class names and the TrainConfig; the
job trains, evaluates on the test samples and writes ``JOB_DIR/result.json`` (atomically) with either the
evaluation summary or the reason it failed. The caller only ever reads that file, so a crash of the caller
cannot leave the job's outcome half-written.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from localcloud.engines.detector.samples import Sample

SPEC, RESULT, MODEL = "spec.json", "result.json", "model"


def _samples(rows: list[dict[str, Any]]) -> list[Sample]:
    return [Sample(Path(r["image"]), r["boxes"], r["labels"]) for r in rows]


def _write_result(job_dir: Path, result: dict[str, Any]) -> None:
    tmp = job_dir / f"{RESULT}.tmp"
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
    os.replace(tmp, job_dir / RESULT)


def run(job_dir: Path) -> dict[str, Any]:
    from localcloud.engines.detector import TrainConfig, evaluate, load, train

    spec = json.loads((job_dir / SPEC).read_text())
    known = {f.name for f in fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in spec["config"].items() if k in known})
    class_names = {int(k): v for k, v in spec["class_names"].items()}
    trained = train(_samples(spec["train"]), len(class_names), config, job_dir / MODEL)
    summary = evaluate(load(job_dir / MODEL), _samples(spec["test"]), class_names)
    return {"status": "ok", "summary": summary, "training": {**asdict(trained), "model_path": str(trained.model_path)}}


def main(argv: list[str]) -> int:
    job_dir = Path(argv[0])
    try:
        result = run(job_dir)
    except Exception as exc:  # the outcome must reach the caller in every case
        traceback.print_exc()
        result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    _write_result(job_dir, result)
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
