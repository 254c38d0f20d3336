"""One SageMaker job, run as its own process: ``python -m localcloud.services.sagemaker.runner JOB_DIR``.

``JOB_DIR/spec.json`` says what to do (``"kind"``: ``automl`` or ``transform``); see :mod:`jobs` for the files
the job and the server exchange. The outcome is always written to ``result.json``, whatever happens here:
``{"status": "ok", ...}`` or ``{"status": "failed", "reason": <the job's FailureReason>}``.

AutoML: the training objects are concatenated into one CSV (the header from the first object; every other
object must start with the same header), the engine searches candidates, and each candidate's model
directory is packed as ``candidates/<name>/model.tar.gz`` for the server to upload. A ``stop`` file in the
job directory asks the engine to stop at its next progress report, keeping the candidates it has.

Transform: the model, which the server extracted after checking its signature (:mod:`signing`), is loaded only
if its files still have the digests the server verified, and each input object is transformed (:mod:`batch`) into
``out/NNNNN.out``, written whole and atomically once its object is done. A resumed job skips the objects
whose output exists; a failed job leaves the outputs of the objects it finished.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import tarfile
import time
import traceback
import zlib
from pathlib import Path
from typing import Any

from localcloud.services.sagemaker import batch, signing
from localcloud.services.sagemaker.jobs import PROGRESS, RESULT, SPEC, read_json, write_json

STOP = "stop"
GUNZIP_LIMIT = 8 * 1024**3  # a decompression bomb fails the job instead of filling the disk


class JobFailed(Exception):
    """The job cannot go on; the message is its FailureReason."""


def read_object(item: dict[str, Any], gzipped: bool) -> bytes:
    data = Path(item["path"]).read_bytes()
    if not gzipped:
        return data
    try:
        out = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise JobFailed(f"ClientError: {item['uri']} is not valid gzip data ({exc}).") from exc
    if len(out) > GUNZIP_LIMIT:
        raise JobFailed(f"ClientError: {item['uri']} decompresses to more than {GUNZIP_LIMIT} bytes.")
    return out


def error_kind(code: str) -> str:
    """SageMaker's FailureReason prefix: the data's fault (ClientError) or the training's (AlgorithmError)."""
    return "ClientError" if code == "ValidationException" else "AlgorithmError"


def decode(data: bytes, uri: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JobFailed(f"ClientError: {uri} is not UTF-8 text: {exc}") from exc


# -- AutoML ------------------------------------------------------------------------------------------
def concatenate(items: list[dict[str, Any]], gzipped: bool, target: Path) -> int:
    """The objects' rows under the first object's header, in ``target``; the number of objects with data."""
    header: str | None = None
    first = ""
    used = 0
    with open(target, "w", encoding="utf-8", newline="") as out:
        for item in items:
            text = decode(read_object(item, gzipped), item["uri"])
            if not text.strip():
                continue  # an empty object (a folder marker, a placeholder) holds no rows
            line, _, rest = text.partition("\n")
            if header is None:
                header, first = line.rstrip("\r"), item["uri"]
                out.write(header + "\n")
            elif line.rstrip("\r") != header:
                raise JobFailed(
                    f"ClientError: The header of {item['uri']} does not match the header of {first}. Every input "
                    "file must start with the same header row."
                )
            rest = rest.replace("\r\n", "\n")  # the engine reads one line ending, whatever the files had
            if rest:
                out.write(rest if rest.endswith("\n") else rest + "\n")
            used += 1
    if header is None:
        raise JobFailed("ClientError: The input data is empty. Provide CSV files with a header row and data rows.")
    return used


def pack(model_dir: Path, target: Path) -> None:
    """``model_dir``'s contents at the root of a gzipped tar, as SageMaker's model.tar.gz artifacts are."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for child in sorted(model_dir.iterdir()):
            tar.add(child, arcname=child.name)
    os.replace(tmp, target)


def notebook(title: str, sections: list[tuple[str, Any]]) -> dict[str, Any]:
    """A Jupyter notebook of markdown cells: what Autopilot's generated notebooks tell, without their code."""
    cells = [{"cell_type": "markdown", "metadata": {}, "source": [f"# {title}\n"]}]
    for heading, body in sections:
        text = body if isinstance(body, str) else "```json\n" + json.dumps(body, indent=1, default=str) + "\n```"
        cells.append({"cell_type": "markdown", "metadata": {}, "source": [f"## {heading}\n\n{text}\n"]})
    return {"cells": cells, "metadata": {"localcloud": True}, "nbformat": 4, "nbformat_minor": 5}


def write_notebooks(job_dir: Path, analysis: dict[str, Any], plan: Any) -> dict[str, str]:
    folder = job_dir / "notebooks"
    folder.mkdir(exist_ok=True)
    exploration = notebook(
        "Data exploration (localcloud)",
        [
            ("Problem", {k: analysis.get(k) for k in ("problem_type", "objective", "target", "labels")}),
            ("Rows", {k: analysis.get(k) for k in ("rows", "rows_missing_target", "train_rows", "validation_rows")}),
            ("Columns", analysis.get("columns") or []),
            ("Dropped columns", analysis.get("dropped_columns") or {}),
        ],
    )
    definition = notebook("Candidate definitions (localcloud)", [("Candidates", plan)])
    paths = {
        "DataExplorationNotebookLocation": folder / "SageMakerAutopilotDataExplorationNotebook.ipynb",
        "CandidateDefinitionNotebookLocation": folder / "SageMakerAutopilotCandidateDefinitionNotebook.ipynb",
    }
    write_json(paths["DataExplorationNotebookLocation"], exploration)
    write_json(paths["CandidateDefinitionNotebookLocation"], definition)
    return {key: str(path) for key, path in paths.items()}


def define_candidates(job_dir: Path, spec: dict[str, Any], train_csv: Path) -> dict[str, Any]:
    """GenerateCandidateDefinitionsOnly: analyse the data as the job would, and describe what it would train."""
    from localcloud.engines.automl import AutoMLError, data, families, metrics

    engine_spec = spec["engine"]
    write_json(job_dir / PROGRESS, {"secondary": "AnalyzingData", "info": None, "at": time.time()})
    try:
        dataset = data.load_dataset(train_csv, engine_spec["target"], engine_spec.get("problem_type") or "auto")
        objective = metrics.resolve_objective(engine_spec.get("objective"), dataset.problem_type)
    except AutoMLError as exc:
        raise JobFailed(f"ClientError: {exc.message}") from exc
    objective_spec = {"MetricName": objective, "Type": metrics.objective_type(objective)}
    analysis = {
        "problem_type": dataset.problem_type,
        "objective": objective_spec,
        "target": dataset.target,
        "labels": dataset.labels,
        "rows": int(len(dataset.y)),
        "rows_missing_target": dataset.rows_missing_target,
        "columns": [c.summary() for c in dataset.columns],
        "dropped_columns": dataset.dropped,
    }
    plan = [
        {"algorithm": family, "default_hyperparameters": families.default_hyperparameters(family, dataset.problem_type)}
        for family in families.FAMILIES
    ]
    notebooks = write_notebooks(job_dir, analysis, plan)
    return {"status": "ok", "definitions_only": True, "result": analysis, "notebooks": notebooks}


def run_automl(job_dir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    from localcloud.engines import automl as engine

    work = job_dir / "work"
    work.mkdir(exist_ok=True)
    engine_spec = dict(spec["engine"])
    engine_spec["train_csv"] = str(work / "train.csv")
    concatenate(spec["inputs"]["training"], spec["gzip"]["training"], work / "train.csv")
    if spec["inputs"].get("validation"):
        engine_spec["validation_csv"] = str(work / "validation.csv")
        concatenate(spec["inputs"]["validation"], spec["gzip"]["validation"], work / "validation.csv")
    if spec.get("definitions_only"):
        return define_candidates(job_dir, spec, work / "train.csv")

    events: list[dict[str, Any]] = []

    def progress(secondary: str, info: Any = None) -> None:
        info = info or {}
        if info.get("event") in ("candidate", "candidate_failed"):
            # When each candidate ended: its CreationTime/EndTime (the result has only its training seconds).
            events.append({"name": info["candidate"]["CandidateName"], "at": time.time()})
        write_json(job_dir / PROGRESS, {"secondary": secondary, "info": info, "at": time.time()})
        if (job_dir / STOP).exists():
            raise engine.StopJob()

    started = time.time()
    try:
        result = engine.run(engine_spec, work, progress=progress)
    except engine.AutoMLError as exc:
        raise JobFailed(f"{error_kind(exc.code)}: {exc.message}") from exc
    artifacts = {}
    for candidate in result.get("candidates") or []:
        tar = job_dir / "candidates" / candidate["CandidateName"] / "model.tar.gz"
        pack(Path(candidate["ModelDir"]), tar)
        artifacts[candidate["CandidateName"]] = str(tar)
    analysis = read_json(work / "analysis.json") or {}
    plan = [
        {k: c.get(k) for k in ("CandidateName", "Algorithm", "Hyperparameters", "ObjectiveValue")}
        for c in result.get("candidates") or []
    ]
    return {
        "status": "ok",
        "result": result,
        "artifacts": artifacts,
        "events": events,
        "started": started,
        "notebooks": write_notebooks(job_dir, analysis, plan),
    }


# -- transform ---------------------------------------------------------------------------------------
def run_transform(job_dir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    from localcloud.engines import automl as engine

    model = spec["model"]
    model_dir = job_dir / "model"
    # The server extracted the model after checking its signature; these are the digests of what it checked.
    try:
        signing.check_digests(model_dir, model.get("sha256") or {})
    except (signing.ArtifactRejected, OSError) as exc:
        raise JobFailed(f"ClientError: The model data at {model['uri']} was not verified ({exc}).") from exc
    try:
        predictor = engine.load(model_dir)
    except Exception as exc:  # the artifact is not one of our models: the container would not start either
        raise JobFailed(f"ClientError: The model data at {model['uri']} could not be loaded: {exc}") from exc
    settings = batch.Settings(**spec["settings"])
    keys = settings.keys
    try:
        predictor.predict_csv_rows([], keys)  # checks the response keys before any record is read
    except engine.InferenceError as exc:
        raise JobFailed(f"ClientError: {exc}") from exc

    def predict(rows: list[list[str]]) -> list[dict[str, Any]]:
        return predictor.predict_csv_rows(rows, keys)

    def format_output(results: list[dict[str, Any]], accept: str) -> str:
        return engine.format_output(results, keys, accept)

    out_dir = job_dir / "out"
    out_dir.mkdir(exist_ok=True)
    limit = spec["max_payload_mb"] * 1024 * 1024
    for index, item in enumerate(spec["inputs"]):
        target = out_dir / f"{index:05d}.out"
        if target.exists():
            continue  # done before a restart
        data = read_object(item, spec["gzip"])
        if settings.split == "None" and limit and len(data) > limit:
            raise JobFailed(
                f"ClientError: {item['uri']} is {len(data)} bytes, more than MaxPayloadInMB ({spec['max_payload_mb']}"
                " MB) allows for one request. Use SplitType Line or raise MaxPayloadInMB."
            )
        try:
            body = batch.transform_text(decode(data, item["uri"]), settings, predict, format_output, item["uri"])
        except batch.TransformError as exc:
            raise JobFailed(f"ClientError: Bad input in {exc}") from exc
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, target)
        print(f"transformed {item['uri']}: {len(body)} characters", flush=True)
    return {"status": "ok", "outputs": len(spec["inputs"])}


def main(argv: list[str]) -> int:
    job_dir = Path(argv[0])
    spec = read_json(job_dir / SPEC) or {}
    try:
        if spec.get("kind") == "automl":
            result = run_automl(job_dir, spec)
        elif spec.get("kind") == "transform":
            result = run_transform(job_dir, spec)
        else:
            raise JobFailed(f"InternalServerError: unknown job kind {spec.get('kind')!r}.")
    except JobFailed as exc:
        result = {"status": "failed", "reason": str(exc)}
    except Exception as exc:  # the outcome must reach the server in every case
        traceback.print_exc()
        result = {"status": "failed", "reason": f"AlgorithmError: {type(exc).__name__}: {exc}"}
    write_json(job_dir / RESULT, result)
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
