"""Batch transform: CreateTransformJob, DescribeTransformJob, ListTransformJobs, StopTransformJob.

The inference is real: the model's artifact is loaded by localcloud's AutoML engine and every record of
every input object is predicted, in a process of the job's own (:mod:`runner`, :mod:`batch`). Each input
object ``<folder>/<name>`` gives ``<S3OutputPath>/<name>.out``, as on SageMaker.

- Statuses: ``InProgress`` then ``Completed``, ``Failed`` (with a ``FailureReason``) or, after
  StopTransformJob, ``Stopping`` then ``Stopped``. Names are unique per region (``ResourceInUse``); an
  unknown name answers ``ValidationException: Could not find requested job``, as AWS does.
- The model artifact must be one this server's AutoML wrote: its signature (:mod:`signing`) is checked before
  the job's process starts, and any other artifact (changed, re-packed, or signed by another localcloud's data
  dir) fails the job with a ``ClientError`` reason before anything in it is unpickled.
- Inputs and the model artifact are frozen when the job is created (see :mod:`jobs`); the model is read
  from its configuration then too, so deleting it later does not disturb the job. No input objects under
  the prefix fails the job with SageMaker's "No S3 objects found under S3 URL" reason.
- Outputs are uploaded when the job ends, one object per input object. A job that fails (a record with the
  wrong number of columns, say: the reason names the object and line) still uploads the outputs of the
  objects it had finished, as SageMaker writes each object's output when that object is done; it writes no
  output for the object that failed nor for the ones after it. A stopped job uploads nothing, as on AWS.
- A job interrupted by a restart of localcloud resumes when it starts again, skipping the objects it had
  finished (nothing of it is in S3 yet, so the rerun cannot duplicate anything).
- Supported: CSV input (``ContentType`` text/csv or unset), ``CompressionType`` None or Gzip, ``SplitType``
  Line or None, ``Accept`` text/csv, application/jsonlines or application/json, ``AssembleWith`` Line or
  None, and ``DataProcessing`` (see :mod:`batch`). ``MaxPayloadInMB`` (default 6; 0: no bound) bounds an
  object sent whole (SplitType None). Accepted and ignored: ``TransformResources`` (jobs share this machine),
  ``MaxConcurrentTransforms``, ``BatchStrategy``, ``ModelClientConfig``, KMS keys, ``DataCaptureConfig``,
  ``ExperimentConfig``.

``LOCALCLOUD_SAGEMAKER_TRANSFORM_WORKERS`` (default 2) caps the transform processes at once; jobs beyond it
wait ``InProgress``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from localcloud.core import AwsError, RequestContext, ensure_dir
from localcloud.services.s3.backend import S3Backend
from localcloud.services.sagemaker import batch, jobs, listing, signing
from localcloud.services.sagemaker.models import DEFAULT_OUTPUT, serving
from localcloud.store import SqliteStore

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS transform_jobs (
    arn TEXT PRIMARY KEY, region TEXT NOT NULL, name TEXT NOT NULL, created REAL NOT NULL, modified REAL NOT NULL,
    started REAL, ended REAL, status TEXT NOT NULL, failure_reason TEXT, config TEXT NOT NULL,
    job_dir TEXT NOT NULL, pid INTEGER, UNIQUE (region, name)
);
"""
ACTIVE = ("InProgress", "Stopping")
DEFAULT_MAX_PAYLOAD_MB = 6
_ECHOED = (
    "ModelName",
    "MaxConcurrentTransforms",
    "ModelClientConfig",
    "MaxPayloadInMB",
    "BatchStrategy",
    "Environment",
    "TransformInput",
    "TransformOutput",
    "DataCaptureConfig",
    "TransformResources",
    "DataProcessing",
    "ExperimentConfig",
)


def _workers() -> int:
    return max(int(os.environ.get("LOCALCLOUD_SAGEMAKER_TRANSFORM_WORKERS", "2")), 1)


def _invalid(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def _name_taken(arn: str) -> AwsError:
    return AwsError(
        "ResourceInUse",
        f"Job name must be unique within an AWS account and region, and a job with this name already exists ({arn})",
    )


def _settings(params: dict[str, Any], environment: dict[str, str]) -> dict[str, Any]:
    """The runner's :class:`batch.Settings` for a request, checked as far as it can be before the job runs."""
    source = params["TransformInput"]
    content_type = batch.media_type(source.get("ContentType"))
    if content_type not in (None, batch.CSV):
        raise _invalid(f"localcloud's batch transform reads text/csv input; ContentType is {source['ContentType']!r}.")
    if (source.get("SplitType") or "None") not in ("None", "Line"):
        raise _invalid(f"localcloud's batch transform splits by Line or None, not {source['SplitType']}.")
    output = params["TransformOutput"]
    accept = batch.media_type(output.get("Accept")) or batch.media_type(
        environment.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")
    )
    accept = {"application/jsonl": "application/jsonlines", "application/x-jsonlines": "application/jsonlines"}.get(
        accept or batch.CSV, accept or batch.CSV
    )
    if accept not in batch.ACCEPTED:
        raise _invalid(f"Accept must be one of {', '.join(batch.ACCEPTED)}; got {output['Accept']!r}.")
    processing = params.get("DataProcessing") or {}
    for member in ("InputFilter", "OutputFilter"):
        try:
            batch.parse_path(processing.get(member))
        except batch.PathError as exc:
            raise _invalid(f"DataProcessing.{member}: {exc}") from exc
    keys = [
        k.strip() for k in (environment.get("SAGEMAKER_INFERENCE_OUTPUT") or DEFAULT_OUTPUT).split(",") if k.strip()
    ]
    supported = environment.get("SAGEMAKER_INFERENCE_SUPPORTED")
    if supported:
        unsupported = [k for k in keys if k not in [s.strip() for s in supported.split(",")]]
        if unsupported:
            raise _invalid(
                f"SAGEMAKER_INFERENCE_OUTPUT asks for {', '.join(unsupported)}, which this model does not support "
                f"(SAGEMAKER_INFERENCE_SUPPORTED: {supported})."
            )
    return {
        "keys": keys,
        "accept": accept,
        "split": source.get("SplitType") or "None",
        "assemble": output.get("AssembleWith") or "None",
        "input_filter": processing.get("InputFilter"),
        "output_filter": processing.get("OutputFilter"),
        "join": processing.get("JoinSource") == "Input",
    }


class TransformJobs:
    """Mixed into :class:`SageMakerBackend`, which owns ``_store``, ``_s3`` and ``_jobs_dir``."""

    _store: SqliteStore
    _s3: S3Backend
    _jobs_dir: Path
    _model_key: bytes

    model_config: Callable[[RequestContext, str], dict[str, Any]]  # from Models

    # -- lifecycle -----------------------------------------------------------------------------------
    def _init_transforms(self) -> None:
        self._transform_pool = ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="sagemaker-transform")
        self._transform_closing = threading.Event()
        for row in self._store.query("SELECT * FROM transform_jobs WHERE status IN ('InProgress', 'Stopping')"):
            job_dir = Path(row["job_dir"])
            jobs.end_orphans(row["pid"], job_dir)  # left by a server that died without closing
            if row["status"] == "Stopping":
                self._end_transform(row["arn"], "Stopped", None)
            elif not (job_dir / jobs.SPEC).exists():
                self._end_transform(
                    row["arn"], "Failed", "InternalServerError: localcloud restarted and the job's files are gone."
                )
            else:
                log.info("resuming transform job %s, interrupted by a restart", row["name"])
                self._transform_pool.submit(self._run_transform, row["arn"])

    def _close_transforms(self) -> None:
        # Jobs stay InProgress in the store: the next start resumes them.
        self._transform_closing.set()
        for row in self._store.query(
            "SELECT pid, job_dir FROM transform_jobs WHERE status IN ('InProgress', 'Stopping')"
        ):
            jobs.kill(row["pid"], Path(row["job_dir"]))
        self._transform_pool.shutdown(wait=True, cancel_futures=True)

    # -- state ---------------------------------------------------------------------------------------
    def _transform_row(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        rows = self._store.query("SELECT * FROM transform_jobs WHERE region = ? AND name = ?", (ctx.region, name))
        if not rows:
            raise _invalid(f"Could not find requested job with name {name}")
        return dict(rows[0])

    def _transform_status(self, arn: str) -> str:
        return self._store.query("SELECT status FROM transform_jobs WHERE arn = ?", (arn,))[0]["status"]

    def _set_transform(self, arn: str, **columns: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._store.transaction() as db:
            db.execute(f"UPDATE transform_jobs SET {assignments} WHERE arn = ?", (*columns.values(), arn))

    def _end_transform(self, arn: str, status: str, reason: str | None) -> None:
        """Record how a job ended, unless it already has (a stop that came first wins)."""
        reason = jobs.failure_reason(reason)
        stamp = jobs.now()
        with self._store.transaction() as db:
            cursor = db.execute(
                "UPDATE transform_jobs SET status = ?, failure_reason = ?, ended = ?, modified = ?, pid = NULL "
                "WHERE arn = ? AND status IN ('InProgress', 'Stopping')",
                (status, reason, stamp, stamp, arn),
            )
            ended = cursor.rowcount > 0
            (job_dir,) = db.execute("SELECT job_dir FROM transform_jobs WHERE arn = ?", (arn,)).fetchone()
        if ended:
            jobs.tidy(Path(job_dir))

    # -- API -----------------------------------------------------------------------------------------
    def create_transform_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["TransformJobName"]
        jobs.check_name(name, "transformJobName", 63)
        arn = f"arn:aws:sagemaker:{ctx.region}:{ctx.account_id}:transform-job/{name.lower()}"
        if self._store.query("SELECT 1 FROM transform_jobs WHERE region = ? AND name = ?", (ctx.region, name)):
            raise _name_taken(arn)
        model = self.model_config(ctx, params["ModelName"])
        artifact_uri, environment = serving(model)
        environment = {**environment, **(params.get("Environment") or {})}
        settings = _settings(params, environment)
        source = params["TransformInput"]
        s3_source = source["DataSource"]["S3DataSource"]
        if s3_source["S3DataType"] not in ("S3Prefix", "ManifestFile"):
            raise _invalid(
                f"localcloud's batch transform reads S3Prefix and ManifestFile inputs, not {s3_source['S3DataType']}."
            )
        jobs.split_s3_uri(s3_source["S3Uri"], "TransformInput.DataSource.S3DataSource.S3Uri")
        jobs.split_s3_uri(params["TransformOutput"]["S3OutputPath"], "TransformOutput.S3OutputPath")
        max_payload = params.get("MaxPayloadInMB")
        max_payload = DEFAULT_MAX_PAYLOAD_MB if max_payload is None else max_payload

        stamp = jobs.now()
        job_dir = ensure_dir(self._jobs_dir / f"transform-{name}-{int(stamp * 1000)}")
        bucket, key = jobs.split_s3_uri(artifact_uri, "ModelDataUrl")
        spec: dict[str, Any] = {
            "kind": "transform",
            "settings": settings,
            "gzip": source.get("CompressionType") == "Gzip",
            "max_payload_mb": max_payload,
            "model": {"uri": artifact_uri, "artifact": str(job_dir / "model.tar.gz"), "name": params["ModelName"]},
        }
        try:
            jobs.link(self._s3.object_file(bucket, key), job_dir / "model.tar.gz")
        except AwsError as exc:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise _invalid(f"Could not find model data at {artifact_uri}.") from exc
        try:
            found = jobs.resolve_inputs(self._s3, ctx.region, s3_source["S3DataType"], s3_source["S3Uri"])
            spec["inputs"] = jobs.freeze_inputs(self._s3, found, job_dir / "input")
        except jobs.InputError as exc:
            spec["inputs"], spec["input_error"] = [], f"ClientError: {exc}"
        jobs.write_json(job_dir / jobs.SPEC, spec)
        config = {k: params[k] for k in _ECHOED if params.get(k) is not None}
        try:
            with self._store.transaction() as db:
                db.execute(
                    "INSERT INTO transform_jobs (arn, region, name, created, modified, status, config, job_dir) "
                    "VALUES (?, ?, ?, ?, ?, 'InProgress', ?, ?)",
                    (arn, ctx.region, name, stamp, stamp, json.dumps(config), str(job_dir)),
                )
        except sqlite3.IntegrityError as exc:  # an identical request won the race
            shutil.rmtree(job_dir, ignore_errors=True)
            raise _name_taken(arn) from exc
        self._transform_pool.submit(self._run_transform, arn)
        return {"TransformJobArn": arn}

    def describe_transform_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._transform_row(ctx, params["TransformJobName"])
        config = json.loads(row["config"])
        return {
            "TransformJobName": row["name"],
            "TransformJobArn": row["arn"],
            "TransformJobStatus": row["status"],
            "FailureReason": row["failure_reason"],
            **config,
            "CreationTime": jobs.ts(row["created"]),
            "TransformStartTime": jobs.ts(row["started"]),
            "TransformEndTime": jobs.ts(row["ended"]),
        }

    def list_transform_jobs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rows = [dict(r) for r in self._store.query("SELECT * FROM transform_jobs WHERE region = ?", (ctx.region,))]
        taken, more = listing.job_page(rows, params, default_sort="CreationTime")
        summaries = [
            {
                "TransformJobName": r["name"],
                "TransformJobArn": r["arn"],
                "CreationTime": jobs.ts(r["created"]),
                "TransformEndTime": jobs.ts(r["ended"]),
                "LastModifiedTime": jobs.ts(r["modified"]),
                "TransformJobStatus": r["status"],
                "FailureReason": r["failure_reason"],
            }
            for r in taken
        ]
        return {"TransformJobSummaries": summaries, **more}

    def stop_transform_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._transform_row(ctx, params["TransformJobName"])
        if row["status"] == "Stopping":
            return {}
        if row["status"] != "InProgress":
            raise _invalid(
                f"The transform job {row['name']} is {row['status']}; only a job in progress can be stopped."
            )
        self._set_transform(row["arn"], status="Stopping", modified=jobs.now())
        jobs.kill(row["pid"], Path(row["job_dir"]))
        return {}

    # -- the job -------------------------------------------------------------------------------------
    def _run_transform(self, arn: str) -> None:
        """Supervise one job's process and publish its outputs (unless the server is stopping: it resumes)."""
        rows = self._store.query("SELECT * FROM transform_jobs WHERE arn = ?", (arn,))
        if not rows or self._transform_closing.is_set():
            return
        row = dict(rows[0])
        if row["status"] == "Stopping":
            self._end_transform(arn, "Stopped", None)
            return
        if row["status"] != "InProgress":
            return
        job_dir = Path(row["job_dir"])
        try:
            spec = jobs.read_json(job_dir / jobs.SPEC)
            problem = spec.get("input_error") or jobs.output_problem(
                self._s3, row["region"], json.loads(row["config"])["TransformOutput"]["S3OutputPath"]
            )
            if problem:
                self._end_transform(arn, "Failed", problem)
                return
            problem = self._verify_model(job_dir, spec)
            if problem:
                self._end_transform(arn, "Failed", problem)
                return
            (job_dir / jobs.RESULT).unlink(missing_ok=True)
            proc = jobs.start(job_dir)
            self._set_transform(arn, pid=proc.pid, started=row["started"] or jobs.now(), modified=jobs.now())
            # A stop that came before the pid was recorded could not kill the process; this catches it.
            jobs.wait(proc, job_dir, kill_when=lambda: self._transform_status(arn) == "Stopping")
            if self._transform_closing.is_set():
                return
            if self._transform_status(arn) == "Stopping":
                self._end_transform(arn, "Stopped", None)
                return
            result = jobs.read_json(job_dir / jobs.RESULT)
            if result is None:
                self._end_transform(
                    arn,
                    "Failed",
                    f"AlgorithmError: The transform process ended without a result (exit status {proc.returncode}).",
                )
                return
            failure = self._publish_outputs(row, spec)
            if result["status"] != "ok":
                self._end_transform(arn, "Failed", result["reason"])
            elif failure:
                self._end_transform(arn, "Failed", failure)
            else:
                self._end_transform(arn, "Completed", None)
        except Exception as exc:  # never leave a job in progress
            log.exception("transform job %s failed", arn)
            self._end_transform(arn, "Failed", f"InternalServerError: {exc}")

    def _verify_model(self, job_dir: Path, spec: dict[str, Any]) -> str | None:
        """Extract the model if this server's AutoML signed it, else the failure reason; before every run.

        Checked here, in the server, so that the key stays in this process; the job's process gets the digests of
        the files verified and checks them before it unpickles anything. A job resumed after a restart is checked
        again, since what its process will load is extracted again.
        """
        model = spec["model"]
        try:
            digests = signing.extract_verified(Path(model["artifact"]), job_dir / "model", self._model_key)
        except signing.ArtifactRejected as exc:
            return (
                f"ClientError: The model data at {model['uri']} was not written by this localcloud's AutoML ({exc}). "
                "localcloud's batch transform loads only the model artifacts its own AutoML jobs signed, and "
                "unpickles nothing else."
            )
        jobs.write_json(job_dir / jobs.SPEC, {**spec, "model": {**model, "sha256": digests}})
        return None

    def _publish_outputs(self, row: dict[str, Any], spec: dict[str, Any]) -> str | None:
        """Upload each finished object's output; the failure reason when S3 refuses one."""
        output_path = json.loads(row["config"])["TransformOutput"]["S3OutputPath"]
        for index, item in enumerate(spec["inputs"]):
            path = Path(row["job_dir"]) / "out" / f"{index:05d}.out"
            if not path.exists():
                continue
            uri = jobs.join_s3(output_path, f"{item['relative']}.out")
            try:
                jobs.upload(self._s3, row["region"], uri, path)
            except AwsError as exc:
                return f"ClientError: Could not write {uri}: {exc.code}: {exc.message}"
        return None
