"""What SageMaker's long jobs (AutoML, batch transform) share: their processes, their files, their S3 inputs.

Each job runs ``python -m localcloud.services.sagemaker.runner JOB_DIR`` in a process group of its
own, so a request thread never trains or predicts and a stop kills everything the job started. The server
and the job talk through files only, each written atomically: ``spec.json`` (what to do, written before
the start), ``progress.json`` (the job's latest secondary status) and ``result.json`` (the outcome, the last
thing a job writes). A crash on either side therefore never leaves an outcome half-read.

A job's S3 inputs are hard-linked into its directory when it is created (S3 replaces an object by renaming
a new file over it, so the link keeps the bytes the job was created with), and its outputs are uploaded by
the server once the job has finished, through the S3 backend like any PutObject.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcloud import jobprocs
from localcloud.core import AwsError, RequestContext
from localcloud.services.s3.backend import S3Backend

RUNNER = "localcloud.services.sagemaker.runner"
SPEC, RESULT, PROGRESS, LOG = "spec.json", "result.json", "progress.json", "job.log"
_S3_URI = re.compile(r"^s3://([^/]+)/?(.*)$")
# SageMaker's job and model names (the models' patterns are not checked by botocore's validator).
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")


class InputError(Exception):
    """The job's input cannot be read; the message is the job's FailureReason."""


@dataclass(frozen=True)
class S3Input:
    uri: str  # s3://bucket/key of the object
    relative: str  # the key relative to the input's "folder", which names the transform output
    size: int


def ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def now() -> float:
    """Now, to the millisecond AWS reports, so that a time read back and sent as a filter compares equal."""
    return round(time.time(), 3)


def check_name(value: str, member: str, longest: int) -> None:
    if len(value) > longest or not _NAME.match(value):
        raise AwsError(
            "ValidationException",
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must "
            f"satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){{0,{longest - 1}}}",
        )


def split_s3_uri(uri: str, member: str) -> tuple[str, str]:
    """(bucket, key or prefix) of an s3:// URI; anything else is refused as AWS refuses it."""
    match = _S3_URI.match(uri or "")
    if not match or not match.group(1):
        raise AwsError("ValidationException", f"{member} must be an s3:// URI; got {uri!r}.")
    return match.group(1), match.group(2)


def join_s3(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p)])


def failure_reason(reason: str | None) -> str | None:
    """``reason`` within FailureReason's 1024 characters."""
    return reason if reason is None or len(reason) <= 1024 else reason[:1021] + "..."


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":"), default=str))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def link(source: Path, target: Path) -> None:
    """``source`` frozen at ``target``: a hard link where possible, else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


# -- S3 inputs ---------------------------------------------------------------------------------------
def _keys(s3: S3Backend, region: str, bucket: str, prefix: str) -> list[tuple[str, int]]:
    ctx, token, keys = RequestContext(region=region), None, []
    while True:
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 1000}
        if token:
            params["ContinuationToken"] = token
        page = s3.list_objects_v2(ctx, params)
        keys += [(c["Key"], c["Size"]) for c in page.get("Contents") or [] if not c["Key"].endswith("/")]
        token = page.get("NextContinuationToken")
        if not token:
            return keys


def _folder(prefix: str) -> str:
    """The "folder" of an S3 prefix: what SageMaker strips from keys to name a transform's outputs."""
    return prefix[: prefix.rfind("/") + 1]


def resolve_inputs(s3: S3Backend, region: str, data_type: str, uri: str) -> list[S3Input]:
    """Every object an S3Prefix or ManifestFile data source names, in key (or manifest) order."""
    bucket, prefix = split_s3_uri(uri, "S3Uri")
    not_found = (
        f'No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure that the bucket '
        "exists in the selected region, that objects exist under that S3 prefix, and that the role has "
        f'"s3:ListBucket" permissions on bucket "{bucket}".'
    )
    try:
        if data_type == "S3Prefix":
            found = [
                S3Input(f"s3://{bucket}/{key}", key[len(_folder(prefix)) :], size)
                for key, size in _keys(s3, region, bucket, prefix)
            ]
        elif data_type == "ManifestFile":
            found = _manifest(s3, bucket, prefix, uri)
        else:
            raise InputError(f"localcloud reads S3Prefix and ManifestFile data sources, not {data_type}.")
    except AwsError as exc:
        if exc.code in ("NoSuchBucket", "NoSuchKey"):
            raise InputError(not_found if data_type == "S3Prefix" else f"The manifest {uri} does not exist.") from exc
        raise
    if not found:
        raise InputError(not_found)
    return found


def _manifest(s3: S3Backend, bucket: str, key: str, uri: str) -> list[S3Input]:
    """A manifest: ``[{"prefix": "s3://bucket/folder/"}, "relative/key", ...]``, as SageMaker defines it."""
    try:
        entries = json.loads(s3.object_file(bucket, key).read_text())
        base = entries[0]["prefix"]
        relatives = entries[1:]
        if not all(isinstance(r, str) for r in relatives):
            raise TypeError("entries after the prefix must be strings")
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError) as exc:
        raise InputError(f"The manifest {uri} is not valid: {exc}") from exc
    base_bucket, base_prefix = split_s3_uri(base, "prefix")
    found = []
    for relative in relatives:
        target = f"{base_prefix}{relative}"
        try:
            size = s3.object_file(base_bucket, target).stat().st_size
        except AwsError as exc:
            raise InputError(
                f"The object s3://{base_bucket}/{target} listed in the manifest {uri} does not exist."
            ) from exc
        found.append(S3Input(f"s3://{base_bucket}/{target}", relative, size))
    return found


def freeze_inputs(s3: S3Backend, inputs: list[S3Input], folder: Path) -> list[dict[str, Any]]:
    """Link each input object into ``folder``; the spec entries the runner reads them by."""
    entries = []
    for index, item in enumerate(inputs):
        bucket, key = split_s3_uri(item.uri, "S3Uri")
        target = folder / f"{index:05d}"
        link(s3.object_file(bucket, key), target)
        entries.append({"path": str(target), "uri": item.uri, "relative": item.relative, "size": item.size})
    return entries


def output_problem(s3: S3Backend, region: str, uri: str) -> str | None:
    """Why nothing can be written under the S3 output path ``uri``, checked before a job spends its time."""
    bucket, _ = split_s3_uri(uri, "S3OutputPath")
    try:
        s3.head_bucket(RequestContext(region=region), {"Bucket": bucket})
    except AwsError as exc:
        return f"ClientError: The S3 output path {uri} cannot be written: {exc.code}: {exc.message}"
    return None


def upload(s3: S3Backend, region: str, uri: str, path: Path) -> None:
    bucket, key = split_s3_uri(uri, "S3OutputPath")
    with open(path, "rb") as body:
        s3.put_object(RequestContext(region=region), {"Bucket": bucket, "Key": key, "Body": body})


def tidy(job_dir: Path) -> None:
    """Free an ended job's data (inputs, models, outputs: S3 has what was published), keeping what explains it."""
    if not job_dir.is_dir():
        return
    for entry in job_dir.iterdir():
        if entry.name in (SPEC, RESULT, PROGRESS, LOG):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


# -- processes ---------------------------------------------------------------------------------------
def start(job_dir: Path) -> subprocess.Popen:
    """The job in its own process group, so that stopping it stops everything it started."""
    return jobprocs.start(RUNNER, job_dir, LOG)


def end_orphans(pid: int | None, job_dir: Path) -> None:
    """After a crash: stop every process of the job, recorded (``pid``) or not."""
    jobprocs.end(RUNNER, pid, job_dir)


def kill(pid: int | None, job_dir: Path) -> None:
    """Stop the job process ``pid`` if it is still the one working on ``job_dir`` (pids get reused)."""
    jobprocs.kill(pid, job_dir)


def wait(
    proc: subprocess.Popen,
    job_dir: Path,
    *,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    deadline: float | None = None,
    kill_when: Callable[[], bool] | None = None,
    poll: float = 0.25,
) -> str:
    """Wait for ``proc``, passing each new ``progress.json`` on.

    Returns "exited", or "deadline" / "killed" when it was killed for running past ``deadline`` (monotonic) or
    because ``kill_when()`` said so.
    """
    seen = None
    while True:
        try:
            proc.wait(timeout=poll)
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
        if on_progress is not None:
            progress = read_json(job_dir / PROGRESS)
            if progress and progress != seen:
                seen = progress
                on_progress(progress)
        if finished:
            return "exited"
        why = "deadline" if deadline is not None and time.monotonic() > deadline else None
        if why is None and kill_when is not None and kill_when():
            why = "killed"
        if why:
            kill(proc.pid, job_dir)
            proc.wait()
            return why
