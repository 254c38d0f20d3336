"""Amazon Textract document analysis: StartDocumentAnalysis / GetDocumentAnalysis (async) and AnalyzeDocument.

The work is real: ``localcloud/src/localcloud/engines/ocr`` reads the words (rapidocr) and finds tables and key-value
pairs, and its output is Textract's own Block structure. Each analysis runs in a process of its own, started
from a small worker pool (``LOCALCLOUD_TEXTRACT_WORKERS``, default 1: OCR already uses every core), so request
threads stay free; the job's state lives in SQLite and its pages in ``<data>/textract-jobs/<JobId>/``.

- Jobs in progress (queued or running) are capped at ``LOCALCLOUD_TEXTRACT_MAX_JOBS`` (default 4), like
  Textract's concurrent-job quota: one more StartDocumentAnalysis gets LimitExceededException, which botocore
  retries as throttling. Synchronous AnalyzeDocument calls have a cap of the same size and answer
  ProvisionedThroughputExceededException beyond it.
- A job that was running when the server stopped resumes when it starts again, from its first unfinished page
  (the document was linked into the job's directory at start, so later S3 writes cannot change it). One that
  cannot resume ends FAILED with the reason; none is left IN_PROGRESS.
- ClientRequestToken makes StartDocumentAnalysis idempotent: the same token with the same request returns the
  same JobId; with a different request it is IdempotentParameterMismatchException.
- OutputConfig: when the job ends, its GetDocumentAnalysis response pages are also written to
  ``s3://S3Bucket/<S3Prefix or textract_output>/<JobId>/1, /2, ...`` as Textract does.
- Accepted and ignored, with nothing to notify or encrypt locally: NotificationChannel (no SNS here; poll
  GetDocumentAnalysis, as the Airflow sensors do), KMSKeyId, S3Object.Version (localcloud's S3 keeps one
  version), AnalyzeDocument's HumanLoopConfig (start human loops through sagemaker-a2i-runtime).
- Refused with InvalidParameterException: FeatureTypes QUERIES, SIGNATURES and LAYOUT, and adapters.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from localcloud.core import AwsError, RequestContext, ensure_dir
from localcloud.engines.ocr.document import BAD, DocumentError, open_document
from localcloud.engines.ocr.job import PAGES, RESULT, SPEC, read_blocks, write_json
from localcloud.services.s3.backend import S3Backend
from localcloud.services.textract import process
from localcloud.store import SqliteStore

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, region TEXT NOT NULL, token TEXT, fingerprint TEXT NOT NULL, tag TEXT,
    status TEXT NOT NULL, message TEXT, created REAL NOT NULL, ended REAL, pages INTEGER NOT NULL,
    bucket TEXT NOT NULL, key TEXT NOT NULL, features TEXT NOT NULL, output TEXT, job_dir TEXT NOT NULL,
    pid INTEGER, warnings TEXT NOT NULL DEFAULT '[]'
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_token ON jobs (region, token) WHERE token IS NOT NULL;
"""
SUPPORTED_FEATURES = ("TABLES", "FORMS")
MODEL_VERSION = "1.0"
MAX_RESULTS = 1000
# Textract's documented limits.
MAX_SYNC_BYTES = 10 * 1024 * 1024
MAX_ASYNC_IMAGE_BYTES = 10 * 1024 * 1024
MAX_ASYNC_BYTES = 500 * 1024 * 1024
MAX_ASYNC_PAGES = 3000
SYNC_TIMEOUT_S = 600
DEFAULT_OUTPUT_PREFIX = "textract_output"
UNSUPPORTED_MESSAGE = "Request has unsupported document format"


def _settings() -> tuple[int, int]:
    """(in-flight job cap, worker processes at once), from the server's environment."""
    return (
        max(int(os.environ.get("LOCALCLOUD_TEXTRACT_MAX_JOBS", "4")), 1),
        max(int(os.environ.get("LOCALCLOUD_TEXTRACT_WORKERS", "1")), 1),
    )


def _spec(document: Path, features: list[str]) -> dict[str, Any]:
    """The engine's job spec; ``LOCALCLOUD_TEXTRACT_DPI`` fixes the PDF rendering resolution (default: per scan)."""
    dpi = os.environ.get("LOCALCLOUD_TEXTRACT_DPI", "").strip()
    return {"document": str(document), "features": features, "dpi": float(dpi) if dpi else None}


def _features(params: dict[str, Any]) -> list[str]:
    features = list(dict.fromkeys(params.get("FeatureTypes") or []))
    if not features:
        raise AwsError("InvalidParameterException", "FeatureTypes must name at least one of TABLES, FORMS.")
    unsupported = [f for f in features if f not in SUPPORTED_FEATURES]
    if unsupported:
        raise AwsError(
            "InvalidParameterException", f"localcloud's Textract analyses TABLES and FORMS, not {unsupported}."
        )
    if params.get("AdaptersConfig"):
        raise AwsError("InvalidParameterException", "localcloud's Textract has no custom adapters.")
    return features


def _document_error(exc: DocumentError) -> AwsError:
    if exc.kind == BAD:
        return AwsError("BadDocumentException", f"Amazon Textract isn't able to read the document. {exc}")
    return AwsError("UnsupportedDocumentException", str(exc) or UNSUPPORTED_MESSAGE)


def _link(source: Path, target: Path) -> None:
    """The document, frozen for the job: a hard link where possible (S3 replaces objects by rename), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class TextractBackend:
    def __init__(self, data_dir: Path, s3: S3Backend) -> None:
        self._store = SqliteStore(ensure_dir(Path(data_dir)) / "textract.sqlite", SCHEMA)
        self._s3 = s3
        self._jobs_dir = ensure_dir(Path(data_dir) / "textract-jobs")
        self._max_jobs, workers = _settings()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="textract-job")
        self._sync_slots = threading.BoundedSemaphore(self._max_jobs)
        self._closing = threading.Event()
        self._processes: dict[str, subprocess.Popen] = {}
        self._blocks_cache: tuple[str, list[dict[str, Any]]] | None = None
        self._recover()

    def close(self) -> None:
        # Jobs stay IN_PROGRESS in the store: the next start resumes them from their last finished page.
        self._closing.set()
        for job_id, proc in list(self._processes.items()):
            process.kill(proc.pid, self._jobs_dir / job_id)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._store.close()

    # -- jobs ----------------------------------------------------------------------------------------
    def _recover(self) -> None:
        for row in self._store.query("SELECT job_id, pid, job_dir FROM jobs WHERE status = 'IN_PROGRESS'"):
            job_dir = Path(row["job_dir"])
            process.kill(row["pid"], job_dir)  # an orphan of a server that died without closing
            if not (job_dir / SPEC).exists():
                self._finish(row["job_id"], "FAILED", "localcloud restarted and the job's files are gone.")
                continue
            log.info("resuming Textract job %s, interrupted by a restart", row["job_id"])
            self._pool.submit(self._run, row["job_id"])

    def _job(self, job_id: str, region: str) -> dict[str, Any]:
        rows = self._store.query("SELECT * FROM jobs WHERE job_id = ? AND region = ?", (job_id, region))
        if not rows:
            raise AwsError("InvalidJobIdException", "An invalid job identifier was passed.")
        return dict(rows[0])

    def _finish(self, job_id: str, status: str, message: str | None, warnings: list | None = None) -> None:
        with self._store.transaction() as db:
            db.execute(
                "UPDATE jobs SET status = ?, message = ?, ended = ?, warnings = ?, pid = NULL WHERE job_id = ?",
                (status, message, time.time(), json.dumps(warnings or []), job_id),
            )

    def _source(self, s3_object: dict[str, Any]) -> Path:
        return self._s3.readable_object_file(s3_object.get("Bucket", ""), s3_object.get("Name", ""))

    def start_document_analysis(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        features = _features(params)
        s3_object = params["DocumentLocation"].get("S3Object") or {}
        output = params.get("OutputConfig")
        token = params.get("ClientRequestToken")
        request = {
            "S3Object": s3_object,
            "FeatureTypes": features,
            "OutputConfig": output,
            "JobTag": params.get("JobTag"),
        }
        fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
        if token:
            existing = self._by_token(ctx.region, token, fingerprint)
            if existing:
                return {"JobId": existing}
        source = self._source(s3_object)
        size = source.stat().st_size
        if size > MAX_ASYNC_BYTES:
            raise AwsError("DocumentTooLargeException", "The document is larger than Textract's 500 MB limit.")
        try:
            document = open_document(source)
        except DocumentError as exc:
            raise _document_error(exc) from exc
        if document.kind in ("png", "jpeg") and size > MAX_ASYNC_IMAGE_BYTES:
            raise AwsError("DocumentTooLargeException", "JPEG and PNG documents may be 10 MB at most.")
        if document.pages > MAX_ASYNC_PAGES:
            raise AwsError("DocumentTooLargeException", f"The document has {document.pages} pages; 3000 at most.")
        if output:
            try:
                self._s3.head_bucket(ctx, {"Bucket": output["S3Bucket"]})
            except AwsError as exc:
                raise AwsError("InvalidS3ObjectException", f"The output bucket is not usable ({exc.code}).") from exc

        job_id = secrets.token_hex(32)
        job_dir = ensure_dir(self._jobs_dir / job_id)
        _link(source, job_dir / "document")
        write_json(job_dir / SPEC, _spec(job_dir / "document", features))
        try:
            with self._store.transaction() as db:
                if token:  # an identical request may have raced past the check above
                    row = db.execute(
                        "SELECT job_id, fingerprint FROM jobs WHERE region = ? AND token = ?", (ctx.region, token)
                    ).fetchone()
                    if row:
                        shutil.rmtree(job_dir, ignore_errors=True)
                        return {"JobId": self._same_request(row, fingerprint)}
                (running,) = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'IN_PROGRESS'").fetchone()
                if running >= self._max_jobs:
                    raise AwsError(
                        "LimitExceededException",
                        f"An Amazon Textract service limit was exceeded: {running} jobs are in progress and "
                        f"LOCALCLOUD_TEXTRACT_MAX_JOBS is {self._max_jobs}. Retry once some have finished.",
                    )
                db.execute(
                    "INSERT INTO jobs (job_id, region, token, fingerprint, tag, status, created, pages, bucket, key,"
                    " features, output, job_dir) VALUES (?, ?, ?, ?, ?, 'IN_PROGRESS', ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        ctx.region,
                        token,
                        fingerprint,
                        params.get("JobTag"),
                        time.time(),
                        document.pages,
                        s3_object["Bucket"],
                        s3_object["Name"],
                        json.dumps(features),
                        json.dumps(output) if output else None,
                        str(job_dir),
                    ),
                )
        except AwsError:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        self._pool.submit(self._run, job_id)
        return {"JobId": job_id}

    def _by_token(self, region: str, token: str, fingerprint: str) -> str | None:
        rows = self._store.query("SELECT job_id, fingerprint FROM jobs WHERE region = ? AND token = ?", (region, token))
        return self._same_request(rows[0], fingerprint) if rows else None

    @staticmethod
    def _same_request(row: Any, fingerprint: str) -> str:
        if row["fingerprint"] != fingerprint:
            raise AwsError(
                "IdempotentParameterMismatchException",
                "The ClientRequestToken was already used for a request with other parameters.",
            )
        return row["job_id"]

    def _run(self, job_id: str) -> None:
        """Supervise one job's process; record how it ended (unless the server is stopping: it resumes later)."""
        rows = self._store.query("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        if not rows or rows[0]["status"] != "IN_PROGRESS" or self._closing.is_set():
            return
        job = dict(rows[0])
        job_dir = Path(job["job_dir"])
        try:
            (job_dir / RESULT).unlink(missing_ok=True)
            proc = process.start(job_dir)
            self._processes[job_id] = proc
            with self._store.transaction() as db:
                db.execute("UPDATE jobs SET pid = ? WHERE job_id = ?", (proc.pid, job_id))
            code = proc.wait()
            self._processes.pop(job_id, None)
            if self._closing.is_set():
                return
            if not (job_dir / RESULT).exists():
                self._finish(job_id, "FAILED", f"The analysis process ended without a result (exit status {code}).")
                return
            result = json.loads((job_dir / RESULT).read_text())
            if result["status"] != "ok":
                self._finish(job_id, "FAILED", self._failure_message(result))
                return
            failed = result.get("failed_pages") or []
            warnings = [{"ErrorCode": "BAD_PAGE", "Pages": [f["page"] for f in failed]}] if failed else []
            status = "PARTIAL_SUCCESS" if failed else "SUCCEEDED"
            if job["output"]:
                self._write_output(job, status, warnings)
            self._finish(job_id, status, None, warnings)
        except Exception as exc:  # never leave a job in progress
            log.exception("Textract job %s failed", job_id)
            self._finish(job_id, "FAILED", f"Internal error: {exc}")

    @staticmethod
    def _failure_message(result: dict[str, Any]) -> str:
        if result.get("kind") == "unsupported":
            return f"UNSUPPORTED_DOCUMENT: {result['reason']}"
        if result.get("kind") == BAD:
            return f"BAD_DOCUMENT: {result['reason']}"
        return f"INTERNAL_ERROR: {result.get('reason', 'the analysis failed')}"

    def _blocks(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        # GetDocumentAnalysis is polled page by page; keep the last job's blocks rather than re-read its files.
        cached = self._blocks_cache
        if cached and cached[0] == job["job_id"]:
            return cached[1]
        blocks = read_blocks(Path(job["job_dir"]), job["pages"])
        self._blocks_cache = (job["job_id"], blocks)
        return blocks

    def _response(self, job: dict[str, Any], status: str, warnings: list, offset: int, limit: int) -> dict[str, Any]:
        blocks = self._blocks(job)
        end = offset + limit
        response: dict[str, Any] = {
            "DocumentMetadata": {"Pages": job["pages"]},
            "JobStatus": status,
            "Blocks": blocks[offset:end],
            "AnalyzeDocumentModelVersion": MODEL_VERSION,
        }
        if warnings:
            response["Warnings"] = warnings
        if end < len(blocks):
            response["NextToken"] = _token(job["job_id"], end)
        return response

    def _write_output(self, job: dict[str, Any], status: str, warnings: list) -> None:
        output = json.loads(job["output"])
        prefix = (output.get("S3Prefix") or DEFAULT_OUTPUT_PREFIX).strip("/")
        ctx = RequestContext(region=job["region"])
        blocks, offset, part = self._blocks(job), 0, 1
        while True:
            response = self._response(job, status, warnings, offset, MAX_RESULTS)
            key = f"{prefix}/{job['job_id']}/{part}"
            body = json.dumps(response).encode()
            self._s3.put_object(ctx, {"Bucket": output["S3Bucket"], "Key": key, "Body": body})
            offset, part = offset + MAX_RESULTS, part + 1
            if offset >= len(blocks):
                break
        self._s3.put_object(ctx, {"Bucket": output["S3Bucket"], "Key": f"{prefix}/.s3_access_check", "Body": b""})

    def get_document_analysis(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job(params["JobId"], ctx.region)
        limit = min(params.get("MaxResults") or MAX_RESULTS, MAX_RESULTS)
        if job["status"] == "IN_PROGRESS":
            return {"JobStatus": "IN_PROGRESS", "AnalyzeDocumentModelVersion": MODEL_VERSION}
        if job["status"] == "FAILED":
            return {
                "DocumentMetadata": {"Pages": job["pages"]},
                "JobStatus": "FAILED",
                "StatusMessage": job["message"],
                "AnalyzeDocumentModelVersion": MODEL_VERSION,
            }
        offset = _offset(params.get("NextToken"), job["job_id"])
        if offset > len(self._blocks(job)):
            raise AwsError("InvalidParameterException", "The NextToken is not valid for this job.")
        return self._response(job, job["status"], json.loads(job["warnings"]), offset, limit)

    # -- synchronous analysis ------------------------------------------------------------------------
    def analyze_document(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        features = _features(params)
        document = params["Document"]
        if document.get("Bytes") is not None:
            data = document["Bytes"]
            if len(data) > MAX_SYNC_BYTES:
                raise AwsError("DocumentTooLargeException", "Synchronous documents may be 10 MB at most.")
            source = None
        else:
            source = self._source(document.get("S3Object") or {})
            if source.stat().st_size > MAX_SYNC_BYTES:
                raise AwsError("DocumentTooLargeException", "Synchronous documents may be 10 MB at most.")
        if not self._sync_slots.acquire(blocking=False):
            raise AwsError(
                "ProvisionedThroughputExceededException",
                f"{self._max_jobs} synchronous analyses are already running (LOCALCLOUD_TEXTRACT_MAX_JOBS).",
            )
        job_dir = ensure_dir(self._jobs_dir / f"sync-{secrets.token_hex(8)}")
        try:
            path = job_dir / "document"
            if source is None:
                path.write_bytes(data)
            else:
                _link(source, path)
            try:
                opened = open_document(path)
            except DocumentError as exc:
                raise _document_error(exc) from exc
            if opened.pages > 1:
                raise AwsError(
                    "UnsupportedDocumentException",
                    f"{UNSUPPORTED_MESSAGE}: AnalyzeDocument reads single-page documents; this one has "
                    f"{opened.pages} pages (use StartDocumentAnalysis).",
                )
            write_json(job_dir / SPEC, _spec(path, features))
            self._analyze_now(job_dir)
            blocks = read_blocks(job_dir, 1)
        finally:
            self._sync_slots.release()
            shutil.rmtree(job_dir, ignore_errors=True)
        return {"DocumentMetadata": {"Pages": 1}, "Blocks": blocks, "AnalyzeDocumentModelVersion": MODEL_VERSION}

    def _analyze_now(self, job_dir: Path) -> None:
        proc = process.start(job_dir)
        try:
            proc.wait(timeout=SYNC_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            process.kill(proc.pid, job_dir)
            raise AwsError("InternalServerError", "The analysis took too long.", 500) from exc
        if not (job_dir / RESULT).exists():
            raise AwsError("InternalServerError", "The analysis process ended without a result.", 500)
        result = json.loads((job_dir / RESULT).read_text())
        if result["status"] != "ok":
            if result.get("kind") in ("unsupported", BAD):
                raise _document_error(DocumentError(result["kind"], result["reason"]))
            raise AwsError("InternalServerError", f"Amazon Textract failed: {result.get('reason')}", 500)
        if not (job_dir / PAGES).exists() or result.get("failed_pages"):
            raise AwsError("BadDocumentException", "Amazon Textract isn't able to read the document.")


def _token(job_id: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{job_id}:{offset}".encode()).decode()


def _offset(token: str | None, job_id: str) -> int:
    if not token:
        return 0
    try:
        owner, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        value = int(offset)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AwsError("InvalidParameterException", "The NextToken is not valid.") from exc
    if owner != job_id or value < 0:
        raise AwsError("InvalidParameterException", "The NextToken belongs to another job.")
    return value
