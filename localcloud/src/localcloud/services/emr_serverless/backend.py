"""EMR Serverless on localcloud: applications and Spark job runs that really run, with spark-submit on this machine.

Applications
    CreateApplication, GetApplication, ListApplications, StartApplication, StopApplication, DeleteApplication.
    States follow AWS: ``CREATING -> CREATED``, ``STARTING -> STARTED``, ``STOPPING -> STOPPED``, ``TERMINATED``
    once deleted (only a CREATED or STOPPED application can be). Each transition takes
    ``LOCALCLOUD_EMR_SERVERLESS_TRANSITION_SECONDS`` (default 1). A job run submitted to a CREATED or STOPPED
    application starts it (``autoStartConfiguration``, on by default); a STARTED application with no job run
    left stops after its ``autoStopConfiguration.idleTimeoutMinutes`` (default 15). StopApplication refuses
    while job runs are active, as AWS does (Airflow's ``force_stop`` cancels them first). Capacity, network,
    image and architecture settings are stored and echoed: every job shares this machine.

Job runs
    StartJobRun, GetJobRun, ListJobRuns, CancelJobRun. ``SUBMITTED -> PENDING`` (the entry point and its
    dependencies are fetched from localcloud's S3) ``-> SCHEDULED`` (the application is STARTED) ``-> RUNNING``
    (spark-submit runs, see :mod:`submit` and :mod:`driver`) ``-> SUCCESS | FAILED | CANCELLED``; CancelJobRun goes
    through ``CANCELLING``. A failed run's stateDetails quotes the driver's last exceptions, as EMR's does. A run
    still going after ``executionTimeoutMinutes`` (default 720; 0: none) is cancelled. The driver's stdout and
    stderr are written to ``<data>/emr-serverless-jobs/<jobRunId>/`` and, with an S3 ``logUri`` (the job's
    ``monitoringConfiguration`` or the application's), copied to
    ``<logUri>/applications/<appId>/jobs/<jobRunId>/SPARK_DRIVER/stdout.gz`` and ``stderr.gz`` before the run
    reports its final state. Only ``sparkSubmit`` job drivers run (a Hive application's runs are refused).
    ``LOCALCLOUD_EMR_SERVERLESS_WORKERS`` (default 2) job runs go at once; later ones wait SUBMITTED.

Restarts
    State lives in SQLite. A run that had not started its driver when localcloud stopped starts when it is back;
    one whose driver was running is FAILED with a stateDetails saying so (its processes are killed, orphans of a
    crash included), unless the driver had finished and left its exit code.

Also: clientToken makes CreateApplication and StartJobRun idempotent (reused with another request:
ConflictException); TagResource, UntagResource and ListTagsForResource work on applications and job runs;
executionRoleArn must be a well-formed role ARN, and is not assumed (S3A uses localcloud's local keys).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import string
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcloud import jobprocs
from localcloud.core import AwsError, RequestContext, ensure_dir
from localcloud.services.emr_serverless import driver, releases, submit
from localcloud.services.s3.backend import S3Backend
from localcloud.store import SqliteStore

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS applications (
    app_id TEXT PRIMARY KEY, region TEXT NOT NULL, name TEXT, release_label TEXT NOT NULL, type TEXT NOT NULL,
    state TEXT NOT NULL, details TEXT, due REAL, started REAL, created REAL NOT NULL, updated REAL NOT NULL,
    config TEXT NOT NULL, tags TEXT NOT NULL, token TEXT NOT NULL, fingerprint TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS applications_token ON applications (region, token);
CREATE TABLE IF NOT EXISTS job_runs (
    job_id TEXT PRIMARY KEY, app_id TEXT NOT NULL, region TEXT NOT NULL, name TEXT, state TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '', created REAL NOT NULL, updated REAL NOT NULL, started REAL, ended REAL,
    request TEXT NOT NULL, tags TEXT NOT NULL, token TEXT NOT NULL, fingerprint TEXT NOT NULL,
    endpoint TEXT NOT NULL, created_by TEXT NOT NULL, job_dir TEXT NOT NULL, pid INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS job_runs_token ON job_runs (app_id, token);
CREATE INDEX IF NOT EXISTS job_runs_by_app ON job_runs (app_id, created);
"""
DRIVER = "localcloud.services.emr_serverless.driver"
DRIVER_LOG = "driver.log"
DEFAULTS_FILE = "spark-defaults.conf"
# Transitional application states and where each leads.
_SETTLES = {"CREATING": "CREATED", "STARTING": "STARTED", "STOPPING": "STOPPED"}
ACTIVE_JOB_STATES = ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "CANCELLING", "QUEUED")
TERMINAL_JOB_STATES = ("SUCCESS", "FAILED", "CANCELLED")
DEFAULT_IDLE_MINUTES = 15
DEFAULT_TIMEOUT_MINUTES = 720
MAX_RESULTS = 50
MAX_DETAILS = 256
_ID_ALPHABET = string.digits + string.ascii_lowercase
_ARN = re.compile(
    r"^arn:aws[a-zA-Z0-9-]*:emr-serverless:([^:]+):(\d{12}):/applications/([0-9a-z]+)(?:/jobruns/([0-9a-z]+))?$"
)
_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception|Exit)\b[^\n]*")
# The Application members that CreateApplication's request echoes as given.
_ECHOED_CONFIG = (
    "initialCapacity",
    "maximumCapacity",
    "networkConfiguration",
    "architecture",
    "imageConfiguration",
    "workerTypeSpecifications",
    "runtimeConfiguration",
    "monitoringConfiguration",
    "diskEncryptionConfiguration",
    "interactiveConfiguration",
    "schedulerConfiguration",
    "identityCenterConfiguration",
    "jobLevelCostAllocationConfiguration",
    "autoStartConfiguration",
    "autoStopConfiguration",
)


def _settings() -> tuple[float, int]:
    """(seconds each application transition takes, job runs at once), from the server's environment."""
    return (
        max(float(os.environ.get("LOCALCLOUD_EMR_SERVERLESS_TRANSITION_SECONDS", "1")), 0.0),
        max(int(os.environ.get("LOCALCLOUD_EMR_SERVERLESS_WORKERS", "2")), 1),
    )


def _new_id() -> str:
    # EMR Serverless ids are 16 lower-case letters and digits, starting "00".
    return "00" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


def _ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _fingerprint(params: dict[str, Any]) -> str:
    request = {k: v for k, v in params.items() if k != "clientToken"}
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def _invalid(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def _details(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAILS else text[: MAX_DETAILS - 3] + "..."


def _app_arn(region: str, account: str, app_id: str) -> str:
    return f"arn:aws:emr-serverless:{region}:{account}:/applications/{app_id}"


def _token(created: float, item_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created, item_id]).encode()).decode()


def _untoken(token: str) -> tuple[float, str]:
    try:
        created, item_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return float(created), str(item_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise _invalid("The nextToken is not valid.") from exc


def _page(rows: list[sqlite3.Row], params: dict[str, Any], id_column: str) -> tuple[list[sqlite3.Row], dict]:
    """Newest first, keyset-paged by (created, id) so pages never repeat or skip items."""
    ordered = sorted(rows, key=lambda r: (r["created"], r[id_column]), reverse=True)
    if params.get("nextToken"):
        mark = _untoken(params["nextToken"])
        ordered = [r for r in ordered if (r["created"], r[id_column]) < mark]
    limit = min(params.get("maxResults") or MAX_RESULTS, MAX_RESULTS)
    taken = ordered[:limit]
    more = {"nextToken": _token(taken[-1]["created"], taken[-1][id_column])} if len(ordered) > limit else {}
    return taken, more


def failure_details(job_dir: Path, exit_code: int | None) -> str:
    """EMR's wording for a failed driver, quoting the last exceptions it printed.

    spark-submit's PythonRunner merges the Python driver's stderr into its stdout, so a PySpark job's traceback
    is in ``stdout`` (as on EMR Serverless); the JVM's own exceptions are in ``stderr``.
    """
    found: list[str] = []
    for name in (driver.STDOUT, driver.STDERR):
        for line in reversed(jobprocs.tail_lines(job_dir / name)):
            match = _EXCEPTION_LINE.match(line.strip())
            if match and match.group(0) not in found:
                found.append(match.group(0))
                break
    text = f"Job failed, please check complete logs in configured logging destination. ExitCode: {exit_code}."
    if found:
        text += " Last few exceptions: " + " ".join(found)
    return _details(text)


def end_processes(pid: int | None, job_dir: Path) -> None:
    """Kill the job's process group: the recorded driver ``pid`` and any orphan still on ``job_dir``."""
    jobprocs.end(DRIVER, pid, job_dir)


class EmrServerlessBackend:
    def __init__(self, data_dir: Path, s3: S3Backend) -> None:
        self._store = SqliteStore(ensure_dir(Path(data_dir)) / "emr-serverless.sqlite", SCHEMA)
        self._s3 = s3
        self._jobs_dir = ensure_dir(Path(data_dir) / "emr-serverless-jobs")
        self._transition, workers = _settings()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emr-serverless-job")
        self._closing = threading.Event()
        self._processes: dict[str, subprocess.Popen] = {}
        self._recover()

    def close(self) -> None:
        """Stop every driver; a run that was going ends FAILED (one not yet started runs after the restart)."""
        self._closing.set()
        for job_id, proc in list(self._processes.items()):
            jobprocs.kill(proc.pid, self._jobs_dir / job_id)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for row in self._store.query("SELECT * FROM job_runs WHERE state IN ('SCHEDULED', 'RUNNING', 'CANCELLING')"):
            self._interrupted(dict(row), "localcloud stopped while the job run was running, and stopped its driver.")
        self._store.close()

    # -- applications --------------------------------------------------------------------------------
    def _advance(self, row: sqlite3.Row) -> dict[str, Any]:
        """The application as it stands now: transitions due by now are applied (and stored) on read."""
        app = dict(row)
        now = time.time()
        changed = False
        if app["state"] in _SETTLES and app["due"] is not None and now >= app["due"]:
            app["state"], app["updated"] = _SETTLES[app["state"]], app["due"]
            if app["state"] == "STARTED":
                app["started"] = app["due"]
            app["due"], app["details"], changed = None, None, True
        if app["state"] == "STARTED":
            stop = json.loads(app["config"]).get("autoStopConfiguration") or {}
            idle_since = self._idle_since(app)
            if stop.get("enabled", True) and idle_since is not None:
                at = idle_since + 60 * stop.get("idleTimeoutMinutes", DEFAULT_IDLE_MINUTES)
                if now >= at:
                    app["state"], app["updated"], app["started"], changed = "STOPPED", at, None, True
        if changed:
            with self._store.transaction() as db:
                db.execute(
                    "UPDATE applications SET state = ?, updated = ?, due = ?, started = ?, details = ? "
                    "WHERE app_id = ? AND state = ?",
                    (
                        app["state"],
                        app["updated"],
                        app["due"],
                        app["started"],
                        app["details"],
                        app["app_id"],
                        row["state"],
                    ),
                )
        return app

    def _idle_since(self, app: dict[str, Any]) -> float | None:
        """Since when a STARTED application has had no active job run (None: it has one)."""
        marks = ",".join("?" * len(ACTIVE_JOB_STATES))
        rows = self._store.query(
            f"SELECT COUNT(*) AS active FROM job_runs WHERE app_id = ? AND state IN ({marks})",
            (app["app_id"], *ACTIVE_JOB_STATES),
        )
        if rows[0]["active"]:
            return None
        (ended,) = self._store.query("SELECT MAX(ended) FROM job_runs WHERE app_id = ?", (app["app_id"],))[0]
        return max(app["started"] or app["updated"], ended or 0.0)

    def _app(self, app_id: str, region: str) -> dict[str, Any]:
        rows = self._store.query("SELECT * FROM applications WHERE app_id = ? AND region = ?", (app_id, region))
        if not rows:
            raise AwsError("ResourceNotFoundException", f"Application {app_id} does not exist.", 404)
        return self._advance(rows[0])

    def _set_app_state(self, app: dict[str, Any], state: str, due: float | None = None) -> None:
        """Move the application from the state ``app`` was read in (another request may have moved it since)."""
        with self._store.transaction() as db:
            db.execute(
                "UPDATE applications SET state = ?, due = ?, updated = ?, details = NULL, started = NULL "
                "WHERE app_id = ? AND state = ?",
                (state, due, time.time(), app["app_id"], app["state"]),
            )

    def _describe_app(self, app: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        config = json.loads(app["config"])
        out = {
            "applicationId": app["app_id"],
            "name": app["name"],
            "arn": _app_arn(app["region"], ctx.account_id, app["app_id"]),
            "releaseLabel": app["release_label"],
            "type": app["type"],
            "state": app["state"],
            "stateDetails": app["details"],
            "createdAt": _ts(app["created"]),
            "updatedAt": _ts(app["updated"]),
            "tags": json.loads(app["tags"]) or None,
        }
        out.update({k: config[k] for k in _ECHOED_CONFIG if config.get(k) is not None})
        return out

    def create_application(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        engine = params["type"]
        if engine.upper() not in ("SPARK", "HIVE"):
            raise _invalid(f"Unsupported engine {engine}. Supported engines are SPARK and HIVE.")
        releases.release(params["releaseLabel"])
        fingerprint = _fingerprint(params)
        config = {k: params[k] for k in _ECHOED_CONFIG if params.get(k) is not None}
        config.setdefault("architecture", "X86_64")
        config["autoStartConfiguration"] = {"enabled": True, **(params.get("autoStartConfiguration") or {})}
        config["autoStopConfiguration"] = {
            "enabled": True,
            "idleTimeoutMinutes": DEFAULT_IDLE_MINUTES,
            **(params.get("autoStopConfiguration") or {}),
        }
        now = time.time()
        app_id = _new_id()
        with self._store.transaction() as db:
            row = db.execute(
                "SELECT app_id, name, fingerprint FROM applications WHERE region = ? AND token = ?",
                (ctx.region, params["clientToken"]),
            ).fetchone()
            if row:
                if row["fingerprint"] != fingerprint:
                    raise AwsError("ConflictException", "The clientToken was already used for another request.", 409)
                app_id, name = row["app_id"], row["name"]
            else:
                name = params.get("name")
                db.execute(
                    "INSERT INTO applications (app_id, region, name, release_label, type, state, due, created, updated,"
                    " config, tags, token, fingerprint) VALUES (?, ?, ?, ?, ?, 'CREATING', ?, ?, ?, ?, ?, ?, ?)",
                    (
                        app_id,
                        ctx.region,
                        name,
                        params["releaseLabel"],
                        engine,
                        now + self._transition,
                        now,
                        now,
                        json.dumps(config),
                        json.dumps(params.get("tags") or {}),
                        params["clientToken"],
                        fingerprint,
                    ),
                )
        out = {"applicationId": app_id, "arn": _app_arn(ctx.region, ctx.account_id, app_id)}
        return {**out, "name": name} if name else out

    def get_application(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"application": self._describe_app(self._app(params["applicationId"], ctx.region), ctx)}

    def list_applications(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rows = self._store.query("SELECT * FROM applications WHERE region = ?", (ctx.region,))
        apps = [self._advance(r) for r in rows]
        wanted = set(params.get("states") or [])
        apps = [a for a in apps if not wanted or a["state"] in wanted]
        taken, more = _page(apps, params, "app_id")
        summaries = []
        for app in taken:
            full = self._describe_app(app, ctx)
            summary = {k: full.get(k) for k in ("name", "arn", "releaseLabel", "type", "state", "stateDetails")}
            summary.update(id=app["app_id"], createdAt=full["createdAt"], updatedAt=full["updatedAt"])
            summary["architecture"] = full.get("architecture")
            summaries.append(summary)
        return {"applications": summaries, **more}

    def _start(self, app: dict[str, Any]) -> None:
        """CREATED or STOPPED -> STARTING (-> STARTED after the transition time)."""
        if app["state"] in ("CREATED", "STOPPED"):
            self._set_app_state(app, "STARTING", time.time() + self._transition)

    def start_application(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        app = self._app(params["applicationId"], ctx.region)
        if app["state"] in ("CREATING", "STOPPING", "TERMINATED"):
            raise _invalid(f"Application {app['app_id']} is in {app['state']} state and cannot be started.")
        self._start(app)
        return {}

    def _active_jobs(self, app_id: str) -> int:
        marks = ",".join("?" * len(ACTIVE_JOB_STATES))
        rows = self._store.query(
            f"SELECT COUNT(*) FROM job_runs WHERE app_id = ? AND state IN ({marks})", (app_id, *ACTIVE_JOB_STATES)
        )
        return rows[0][0]

    def stop_application(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        app = self._app(params["applicationId"], ctx.region)
        if app["state"] in ("CREATING", "TERMINATED"):
            raise _invalid(f"Application {app['app_id']} is in {app['state']} state and cannot be stopped.")
        active = self._active_jobs(app["app_id"])
        if active:
            raise _invalid(
                f"Application {app['app_id']} has {active} job run(s) in progress; they must finish or be cancelled "
                "before it can be stopped."
            )
        if app["state"] in ("CREATED", "STARTING", "STARTED"):
            self._set_app_state(app, "STOPPING", time.time() + self._transition)
        return {}

    def delete_application(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        app = self._app(params["applicationId"], ctx.region)
        if app["state"] not in ("CREATED", "STOPPED"):
            raise _invalid(
                f"Application {app['app_id']} must be in one of the following statuses [CREATED, STOPPED]. "
                f"Current status: {app['state']}"
            )
        self._set_app_state(app, "TERMINATED")
        return {}

    # -- job runs ------------------------------------------------------------------------------------
    def _job(self, app_id: str, job_id: str, region: str) -> dict[str, Any]:
        rows = self._store.query(
            "SELECT * FROM job_runs WHERE job_id = ? AND app_id = ? AND region = ?", (job_id, app_id, region)
        )
        if not rows:
            raise AwsError("ResourceNotFoundException", f"Job run {job_id} does not exist.", 404)
        return dict(rows[0])

    def _job_arn(self, job: dict[str, Any], account: str) -> str:
        return f"{_app_arn(job['region'], account, job['app_id'])}/jobruns/{job['job_id']}"

    def start_job_run(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        app = self._app(params["applicationId"], ctx.region)
        driver_spec = params.get("jobDriver") or {}
        if "sparkSubmit" not in driver_spec:
            if "hive" in driver_spec:
                raise _invalid("localcloud's EMR Serverless runs sparkSubmit job drivers, not hive.")
            raise _invalid("jobDriver must have a sparkSubmit job driver.")
        if app["type"].upper() != "SPARK":
            raise _invalid(f"Job driver sparkSubmit is not supported by application type {app['type']}.")
        try:
            submit.check_parameters(driver_spec["sparkSubmit"].get("sparkSubmitParameters"))
        except submit.SubmitError as exc:
            raise _invalid(str(exc)) from exc
        if app["state"] in ("STOPPING", "TERMINATED"):
            raise _invalid(f"Application {app['app_id']} is in {app['state']} state and cannot run job runs.")
        config = json.loads(app["config"])
        if app["state"] in ("CREATED", "STOPPED") and not config["autoStartConfiguration"].get("enabled", True):
            raise _invalid(f"Application {app['app_id']} is not started and its auto-start is disabled.")

        fingerprint = _fingerprint(params)
        request = {k: v for k, v in params.items() if k not in ("clientToken", "applicationId", "tags")}
        now = time.time()
        job_id = _new_id()
        with self._store.transaction() as db:
            row = db.execute(
                "SELECT job_id, fingerprint FROM job_runs WHERE app_id = ? AND token = ?",
                (app["app_id"], params["clientToken"]),
            ).fetchone()
            if row:
                if row["fingerprint"] != fingerprint:
                    raise AwsError("ConflictException", "The clientToken was already used for another request.", 409)
                job = dict(row) | {"app_id": app["app_id"], "region": ctx.region}
                return {
                    "applicationId": app["app_id"],
                    "jobRunId": row["job_id"],
                    "arn": self._job_arn(job, ctx.account_id),
                }
            db.execute(
                "INSERT INTO job_runs (job_id, app_id, region, name, state, created, updated, request, tags, token,"
                " fingerprint, endpoint, created_by, job_dir) VALUES (?, ?, ?, ?, 'SUBMITTED', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    app["app_id"],
                    ctx.region,
                    params.get("name"),
                    now,
                    now,
                    json.dumps(request),
                    json.dumps(params.get("tags") or {}),
                    params["clientToken"],
                    fingerprint,
                    jobprocs.endpoint_for(ctx.host),
                    f"arn:aws:iam::{ctx.account_id}:root",
                    str(self._jobs_dir / job_id),
                ),
            )
        self._start(app)  # auto-start
        self._pool.submit(self._run, job_id)
        job = {"job_id": job_id, "app_id": app["app_id"], "region": ctx.region}
        return {"applicationId": app["app_id"], "jobRunId": job_id, "arn": self._job_arn(job, ctx.account_id)}

    def _describe_job(self, job: dict[str, Any], app: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        request = json.loads(job["request"])
        now = time.time()
        out: dict[str, Any] = {
            "applicationId": job["app_id"],
            "jobRunId": job["job_id"],
            "name": job["name"],
            "arn": self._job_arn(job, ctx.account_id),
            "createdBy": job["created_by"],
            "createdAt": _ts(job["created"]),
            "updatedAt": _ts(job["updated"]),
            "executionRole": request["executionRoleArn"],
            "executionIamPolicy": request.get("executionIamPolicy"),
            "state": job["state"],
            "stateDetails": job["details"],
            "releaseLabel": app["release_label"],
            "configurationOverrides": request.get("configurationOverrides"),
            "jobDriver": request.get("jobDriver"),
            "tags": json.loads(job["tags"]) or None,
            "networkConfiguration": json.loads(app["config"]).get("networkConfiguration"),
            "executionTimeoutMinutes": request.get("executionTimeoutMinutes", DEFAULT_TIMEOUT_MINUTES),
            "mode": request.get("mode", "BATCH"),
            "retryPolicy": request.get("retryPolicy"),
            "attempt": 1,
            "attemptCreatedAt": _ts(job["created"]),
            "attemptUpdatedAt": _ts(job["updated"]),
            "startedAt": _ts(job["started"]),
            "endedAt": _ts(job["ended"]),
        }
        if job["started"] is not None:
            out["totalExecutionDurationSeconds"] = int((job["ended"] or now) - job["started"])
            out["queuedDurationMilliseconds"] = int((job["started"] - job["created"]) * 1000)
        return out

    def get_job_run(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        app = self._app(params["applicationId"], ctx.region)
        job = self._job(app["app_id"], params["jobRunId"], ctx.region)
        return {"jobRun": self._describe_job(job, app, ctx)}

    def list_job_runs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rows = self._store.query(
            "SELECT * FROM job_runs WHERE app_id = ? AND region = ?", (params["applicationId"], ctx.region)
        )
        apps = self._store.query(
            "SELECT release_label, type FROM applications WHERE app_id = ?", (params["applicationId"],)
        )
        wanted = set(params.get("states") or [])
        after, before = params.get("createdAtAfter"), params.get("createdAtBefore")
        chosen = [
            r
            for r in rows
            if (not wanted or r["state"] in wanted)
            and (after is None or r["created"] > after.timestamp())
            and (before is None or r["created"] < before.timestamp())
            and (params.get("mode") is None or json.loads(r["request"]).get("mode", "BATCH") == params["mode"])
        ]
        taken, more = _page(chosen, params, "job_id")
        summaries = []
        for row in taken:
            job = dict(row)
            request = json.loads(job["request"])
            summaries.append(
                {
                    "applicationId": job["app_id"],
                    "id": job["job_id"],
                    "name": job["name"],
                    "mode": request.get("mode", "BATCH"),
                    "arn": self._job_arn(job, ctx.account_id),
                    "createdBy": job["created_by"],
                    "createdAt": _ts(job["created"]),
                    "updatedAt": _ts(job["updated"]),
                    "executionRole": request["executionRoleArn"],
                    "state": job["state"],
                    "stateDetails": job["details"],
                    "releaseLabel": apps[0]["release_label"] if apps else None,
                    "type": apps[0]["type"] if apps else None,
                    "attempt": 1,
                    "attemptCreatedAt": _ts(job["created"]),
                    "attemptUpdatedAt": _ts(job["updated"]),
                }
            )
        return {"jobRuns": summaries, **more}

    def cancel_job_run(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        app = self._app(params["applicationId"], ctx.region)
        job = self._job(app["app_id"], params["jobRunId"], ctx.region)
        out = {"applicationId": job["app_id"], "jobRunId": job["job_id"]}
        if job["state"] in TERMINAL_JOB_STATES:
            raise _invalid(f"Job run {job['job_id']} is in {job['state']} state and cannot be cancelled.")
        if job["state"] == "CANCELLING":
            return out
        with self._store.transaction() as db:
            current = db.execute("SELECT state, pid FROM job_runs WHERE job_id = ?", (job["job_id"],)).fetchone()
            state, pid = current["state"], current["pid"]
            if state == "RUNNING":
                # The driver's supervisor sees it die and records CANCELLED (after copying its logs).
                db.execute(
                    "UPDATE job_runs SET state = 'CANCELLING', details = ?, updated = ? WHERE job_id = ?",
                    ("Job run is being cancelled.", time.time(), job["job_id"]),
                )
            elif state not in TERMINAL_JOB_STATES:
                # Not running yet: its supervisor finds it cancelled and never starts the driver.
                now = time.time()
                db.execute(
                    "UPDATE job_runs SET state = 'CANCELLED', details = ?, updated = ?, ended = ? WHERE job_id = ?",
                    ("Job run was cancelled before it started.", now, now, job["job_id"]),
                )
        if state == "RUNNING":
            end_processes(pid, Path(job["job_dir"]))
        return out

    # -- running -------------------------------------------------------------------------------------
    def _recover(self) -> None:
        marks = ",".join("?" * len(ACTIVE_JOB_STATES))
        for row in self._store.query(f"SELECT * FROM job_runs WHERE state IN ({marks})", ACTIVE_JOB_STATES):
            job = dict(row)
            job_dir = Path(job["job_dir"])
            end_processes(job["pid"], job_dir)  # orphans of a server that died without closing
            if job["state"] in ("SUBMITTED", "PENDING", "QUEUED"):
                log.info("EMR Serverless job run %s had not started before the restart; starting it", job["job_id"])
                self._update_job(job["job_id"], "SUBMITTED", "", only_from=(job["state"],))
                self._pool.submit(self._run, job["job_id"])
            else:
                self._interrupted(job, "localcloud restarted while the job run was running; its driver was stopped.")

    def _interrupted(self, job: dict[str, Any], why: str) -> None:
        """End a run whose driver localcloud stopped: by its exit code if it left one, else FAILED with ``why``."""
        job_dir = Path(job["job_dir"])
        result = _read_json(job_dir / driver.RESULT)
        if job["state"] == "CANCELLING":
            state, details = "CANCELLED", "Job run was cancelled."
        elif result is not None and result.get("exit_code") == 0:
            state, details = "SUCCESS", ""
        elif result is not None:
            state, details = "FAILED", failure_details(job_dir, result.get("exit_code"))
        else:
            state, details = "FAILED", _details(f"{why} Start the job run again.")
        self._upload_logs(job)
        self._update_job(job["job_id"], state, details, only_from=ACTIVE_JOB_STATES, ended=True)

    def _update_job(
        self, job_id: str, state: str, details: str, *, only_from: tuple[str, ...], ended: bool = False, **extra: Any
    ) -> bool:
        """Move the run to ``state`` if it is still in one of ``only_from``; whether it moved."""
        now = time.time()
        sets = {"state": state, "details": details, "updated": now, **extra}
        if ended:
            sets["ended"] = now
            sets["pid"] = None
        marks = ",".join("?" * len(only_from))
        with self._store.transaction() as db:
            cursor = db.execute(
                f"UPDATE job_runs SET {', '.join(f'{k} = ?' for k in sets)} WHERE job_id = ? AND state IN ({marks})",
                (*sets.values(), job_id, *only_from),
            )
        return cursor.rowcount > 0

    def _state(self, job_id: str) -> str:
        return self._store.query("SELECT state FROM job_runs WHERE job_id = ?", (job_id,))[0]["state"]

    def _fail_early(self, job: dict[str, Any], why: str) -> None:
        """A run that never got to start its driver: the reason goes to its stderr log too."""
        job_dir = ensure_dir(Path(job["job_dir"]))
        with open(job_dir / driver.STDERR, "a") as err:
            err.write(why + "\n")
        self._upload_logs(job)
        self._update_job(job["job_id"], "FAILED", _details(why), only_from=ACTIVE_JOB_STATES, ended=True)

    def _run(self, job_id: str) -> None:
        """Supervise one job run from SUBMITTED to its final state."""
        try:
            self._supervise(job_id)
        except Exception as exc:  # never leave a run active because of a bug of ours
            log.exception("EMR Serverless job run %s failed", job_id)
            rows = self._store.query("SELECT * FROM job_runs WHERE job_id = ?", (job_id,))
            if rows and not self._closing.is_set():
                self._fail_early(dict(rows[0]), f"Internal error in localcloud: {exc}")

    def _supervise(self, job_id: str) -> None:
        if self._closing.is_set() or not self._update_job(job_id, "PENDING", "", only_from=("SUBMITTED",)):
            return
        job = dict(self._store.query("SELECT * FROM job_runs WHERE job_id = ?", (job_id,))[0])
        job_dir = Path(job["job_dir"])
        if job_dir.exists():
            shutil.rmtree(job_dir)  # what a run interrupted before its driver started left behind
        ensure_dir(job_dir)
        app = self._app(job["app_id"], job["region"])
        request = json.loads(job["request"])
        try:
            command = self._prepare(job, app, request, job_dir)
        except (submit.SubmitError, AwsError) as exc:
            self._fail_early(job, str(exc) if isinstance(exc, submit.SubmitError) else exc.message)
            return

        while True:  # the application must be STARTED before the run is scheduled
            if self._closing.is_set() or self._state(job_id) != "PENDING":
                return
            app = self._app(job["app_id"], job["region"])
            if app["state"] == "STARTED":
                break
            if app["state"] in ("CREATED", "STOPPED"):
                if not json.loads(app["config"])["autoStartConfiguration"].get("enabled", True):
                    self._fail_early(job, f"Application {app['app_id']} is not started and its auto-start is disabled.")
                    return
                self._start(app)  # auto-start of an application that was still CREATING at StartJobRun
            elif app["state"] in ("STOPPING", "TERMINATED"):
                self._fail_early(job, f"Application {app['app_id']} stopped before the job run could start.")
                return
            time.sleep(0.1)
        if not self._update_job(job_id, "SCHEDULED", "", only_from=("PENDING",)):
            return

        driver.write_spec(job_dir, command, job["region"])
        proc = jobprocs.start(DRIVER, job_dir, DRIVER_LOG)
        self._processes[job_id] = proc
        try:
            started = self._update_job(
                job_id, "RUNNING", "", only_from=("SCHEDULED",), started=time.time(), pid=proc.pid
            )
            if not started or self._closing.is_set():  # cancelled (or stopping) while the driver was starting
                jobprocs.kill(proc.pid, job_dir)
                proc.wait()
                if not self._closing.is_set():
                    self._upload_logs(job)
                return
            why = self._wait(proc, job_dir, request)
        finally:
            self._processes.pop(job_id, None)
        if why == "closing" or self._closing.is_set():
            return  # close() killed the driver and records how the run ended
        self._upload_logs(job)
        if why == "timeout":
            minutes = request.get("executionTimeoutMinutes")
            details = f"Job run exceeded its executionTimeoutMinutes ({minutes}) and was cancelled."
            self._update_job(job_id, "CANCELLED", details, only_from=("RUNNING", "CANCELLING"), ended=True)
        elif self._state(job_id) == "CANCELLING":
            self._update_job(job_id, "CANCELLED", "Job run was cancelled.", only_from=("CANCELLING",), ended=True)
        else:
            result = _read_json(job_dir / driver.RESULT) or {}
            code = result.get("exit_code", proc.returncode)
            if code == 0:
                self._update_job(job_id, "SUCCESS", "", only_from=("RUNNING",), ended=True)
            else:
                details = failure_details(job_dir, code)
                self._update_job(job_id, "FAILED", details, only_from=("RUNNING",), ended=True)
        shutil.rmtree(job_dir / driver.WORK, ignore_errors=True)
        shutil.rmtree(job_dir / "files", ignore_errors=True)

    def _prepare(
        self, job: dict[str, Any], app: dict[str, Any], request: dict[str, Any], job_dir: Path
    ) -> submit.Command:
        """The spark-submit command, with its entry point and s3:// dependencies fetched into ``job_dir``."""
        config = json.loads(app["config"])
        command = submit.build(
            request["jobDriver"]["sparkSubmit"],
            job_dir,
            release_label=app["release_label"],
            endpoint_url=job["endpoint"],
            region=job["region"],
            application_defaults=submit.spark_defaults(config.get("runtimeConfiguration")),
            job_defaults=submit.spark_defaults(
                (request.get("configurationOverrides") or {}).get("applicationConfiguration")
            ),
            app_name=job["name"],
        )
        for item in command.downloads:
            bucket, _, key = item.uri[len("s3://") :].partition("/")
            try:
                source = self._s3.object_file(bucket, key)
            except AwsError as exc:
                raise submit.SubmitError(f"{item.uri} cannot be read from S3: {exc.code}: {exc.message}") from exc
            target = Path(item.target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        return command

    def _wait(self, proc: subprocess.Popen, job_dir: Path, request: dict[str, Any]) -> str:
        """Wait for the driver: "exited", or "timeout" / "closing" when it had to be killed."""
        minutes = request.get("executionTimeoutMinutes", DEFAULT_TIMEOUT_MINUTES)
        deadline = time.monotonic() + 60 * minutes if minutes else None
        while True:
            try:
                proc.wait(timeout=0.25)
                return "exited"
            except subprocess.TimeoutExpired:
                pass
            why = "closing" if self._closing.is_set() else None
            if why is None and deadline is not None and time.monotonic() > deadline:
                why = "timeout"
            if why:
                jobprocs.kill(proc.pid, job_dir)
                proc.wait()
                return why

    def _log_uri(self, job: dict[str, Any]) -> str | None:
        request = json.loads(job["request"])
        override = (request.get("configurationOverrides") or {}).get("monitoringConfiguration") or {}
        uri = (override.get("s3MonitoringConfiguration") or {}).get("logUri")
        if uri is None:
            rows = self._store.query("SELECT config FROM applications WHERE app_id = ?", (job["app_id"],))
            config = json.loads(rows[0]["config"]) if rows else {}
            uri = ((config.get("monitoringConfiguration") or {}).get("s3MonitoringConfiguration") or {}).get("logUri")
        return uri

    def _upload_logs(self, job: dict[str, Any]) -> None:
        """Copy the driver's stdout and stderr, gzipped, to where EMR Serverless puts them under the logUri."""
        uri = self._log_uri(job)
        if not uri or not uri.startswith(("s3://", "s3a://")):
            return
        bucket, _, prefix = uri.split("://", 1)[1].partition("/")
        base = "/".join(p for p in [prefix.strip("/"), "applications", job["app_id"], "jobs", job["job_id"]] if p)
        ctx = RequestContext(region=job["region"])
        for name in (driver.STDOUT, driver.STDERR):
            path = Path(job["job_dir"]) / name
            data = path.read_bytes() if path.exists() else b""
            body = gzip.compress(data)
            try:
                self._s3.put_object(
                    ctx,
                    {
                        "Bucket": bucket,
                        "Key": f"{base}/SPARK_DRIVER/{name}.gz",
                        "Body": body,
                        "ContentType": "application/gzip",
                    },
                )
            except AwsError as exc:
                log.warning("EMR Serverless job run %s: cannot write logs to %s: %s", job["job_id"], uri, exc)
                return

    # -- tags ----------------------------------------------------------------------------------------
    def _tagged(self, arn: str, region: str) -> tuple[str, str]:
        """(table, id) of the application or job run an ARN names."""
        match = _ARN.match(arn)
        if not match or match.group(1) != region:
            raise AwsError("ResourceNotFoundException", f"Resource {arn} does not exist.", 404)
        app_id, job_id = match.group(3), match.group(4)
        if job_id:
            rows = self._store.query("SELECT 1 FROM job_runs WHERE job_id = ? AND app_id = ?", (job_id, app_id))
            table, key = ("job_runs", job_id)
        else:
            rows = self._store.query("SELECT 1 FROM applications WHERE app_id = ?", (app_id,))
            table, key = ("applications", app_id)
        if not rows:
            raise AwsError("ResourceNotFoundException", f"Resource {arn} does not exist.", 404)
        return table, key

    def _change_tags(self, arn: str, region: str, change: Any) -> None:
        table, key = self._tagged(arn, region)
        column = "job_id" if table == "job_runs" else "app_id"
        with self._store.transaction() as db:
            tags = json.loads(db.execute(f"SELECT tags FROM {table} WHERE {column} = ?", (key,)).fetchone()["tags"])
            change(tags)
            db.execute(f"UPDATE {table} SET tags = ? WHERE {column} = ?", (json.dumps(tags), key))

    def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._change_tags(params["resourceArn"], ctx.region, lambda tags: tags.update(params["tags"]))
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def drop(tags: dict[str, str]) -> None:
            for name in params["tagKeys"]:
                tags.pop(name, None)

        self._change_tags(params["resourceArn"], ctx.region, drop)
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        table, key = self._tagged(params["resourceArn"], ctx.region)
        column = "job_id" if table == "job_runs" else "app_id"
        rows = self._store.query(f"SELECT tags FROM {table} WHERE {column} = ?", (key,))
        return {"tags": json.loads(rows[0]["tags"])}


def _read_json(path: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_text())
    return None
