"""AWS Glue on localcloud: job definitions, and job runs that really run their script on this machine, as the
job's IAM role.

Jobs
    CreateJob, GetJob, GetJobs, ListJobs, UpdateJob (which replaces the whole definition, as Glue's does),
    DeleteJob, and GetTags / TagResource / UntagResource on ``arn:aws:glue:<region>:<account>:job/<name>``.
    Definitions are echoed with Glue's defaults filled in (Timeout 2880 minutes, MaxConcurrentRuns 1, MaxRetries
    0, MaxCapacity 0.0625 DPU for Python shell jobs and 10 for Spark ones). Worker and capacity settings are
    checked and echoed; every run shares this machine.

Job runs
    StartJobRun, GetJobRun, GetJobRuns, BatchStopJobRun. ``STARTING`` (the role is assumed, and the
    ``Command.ScriptLocation`` object read with its session into ``<data>/glue-jobs/<runId>/``) ``-> RUNNING`` (the
    script runs) ``-> SUCCEEDED | FAILED | STOPPED | TIMEOUT``; BatchStopJobRun goes through ``STOPPING`` and
    kills the script's process group. The script runs as
    ``<this python> <script> --JOB_NAME <job> --JOB_RUN_ID <runId> --<key> <value> ...`` with the job's
    DefaultArguments, overridden by the run's Arguments, then NonOverridableArguments (a run may not name one of
    those) as ``--key value`` pairs, keys as given. It runs in a process group of its own, with the working
    directory its job directory, stdout and stderr kept there as ``output`` and ``error``; a failed run's
    ErrorMessage quotes the tail of ``error``. A run still going after its Timeout (the run's, else the job's)
    is killed and ends TIMEOUT. ExecutionProperty.MaxConcurrentRuns is enforced (ConcurrentRunsExceededException),
    and a job's MaxRetries starts new attempts of a FAILED run (``<runId>_attempt_<n>``, with PreviousRunId).

    ``pythonshell`` and ``glueetl`` commands run; both are plain Python with this environment's packages (pyspark
    included), so a PySpark script starts a local Spark session. The ``awsglue`` libraries (GlueContext,
    DynamicFrame, getResolvedOptions) do not exist here, and Spark is not configured for ``s3://`` paths: read
    and write S3 with boto3, or set Hadoop's ``spark.hadoop.fs.s3a.*`` conf yourself. Glue's special
    arguments (``--extra-py-files``, ``--additional-python-modules`` ...) reach the script but are not acted on.
    ``gluestreaming`` and ``glueray`` jobs can be defined but not run (InvalidInputException), and so are runs
    with JobRunQueuingEnabled: localcloud does not queue them.

As the role
    Each run gets temporary credentials of the job's ``Role`` (an ARN or a role name), issued by localcloud's STS
    to the service principal ``glue.amazonaws.com``, whose trust policy must allow it
    (``{"Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}``); a run's
    ExecutionRoleSessionPolicy narrows the session. A missing role or one that does not trust Glue fails the run
    with an ErrorMessage that says so: nothing runs with localcloud's admin credentials. The script's environment
    carries the session (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``),
    ``AWS_ENDPOINT_URL`` (this localcloud) and the region; every other ``AWS_*``, ``LOCALCLOUD_*`` and
    ``AIRFLOW_CONN_*`` variable of localcloud's own environment is removed, and the shared AWS config files are
    hidden, so the script cannot act as anyone else. Sessions last the run's Timeout plus a margin (15 minutes
    to 12 hours, STS's bounds).

Restarts
    State lives in SQLite. A run that was active when localcloud stopped is FAILED (STOPPED if it was being
    stopped) with an ErrorMessage saying so, and its processes are killed, orphans of a crash included.

``LOCALCLOUD_GLUE_TIMEOUT_MINUTE_SECONDS`` (default 60) is a localcloud-only testing hook: how many seconds a
Timeout minute lasts, so that timeouts can be tested without waiting minutes. ``LOCALCLOUD_GLUE_WORKERS``
(default 8) job runs are supervised at once; later ones wait STARTING.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from localcloud import jobprocs
from localcloud.core import AwsError, RequestContext, ensure_dir
from localcloud.iam_policy import PolicyError, parse_policy
from localcloud.services.sts.backend import StsBackend
from localcloud.store import SqliteStore

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    region TEXT NOT NULL, name TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    definition TEXT NOT NULL, tags TEXT NOT NULL, PRIMARY KEY (region, name)
);
CREATE TABLE IF NOT EXISTS job_runs (
    run_id TEXT PRIMARY KEY, region TEXT NOT NULL, account TEXT NOT NULL, job_name TEXT NOT NULL,
    state TEXT NOT NULL, error TEXT, created REAL NOT NULL, started REAL, updated REAL NOT NULL, completed REAL,
    attempt INTEGER NOT NULL, previous_run_id TEXT, arguments TEXT NOT NULL, definition TEXT NOT NULL,
    settings TEXT NOT NULL, endpoint TEXT NOT NULL, job_dir TEXT NOT NULL, script TEXT, pid INTEGER
);
CREATE INDEX IF NOT EXISTS job_runs_by_job ON job_runs (region, job_name, created);
"""
SERVICE_PRINCIPAL = "glue.amazonaws.com"
SESSION_NAME = "GlueJobRunnerSession"  # the session name Glue's own role sessions carry
OUTPUT, ERROR = "output", "error"
ACTIVE_STATES = ("STARTING", "RUNNING", "STOPPING")
TERMINAL_STATES = ("STOPPED", "SUCCEEDED", "FAILED", "TIMEOUT", "ERROR", "EXPIRED")
KNOWN_COMMANDS = ("glueetl", "pythonshell", "gluestreaming", "glueray")
RUNNABLE_COMMANDS = ("glueetl", "pythonshell")
PYTHON_SHELL_CAPACITIES = (0.0625, 1.0)
DEFAULT_TIMEOUT_MINUTES = 2880
DEFAULT_SPARK_CAPACITY = 10.0
SESSION_MARGIN_SECONDS = 300
JOBS_PAGE, RUNS_PAGE = 100, 100
ERROR_TAIL_LINES, ERROR_TAIL_CHARS = 20, 2048
# Run settings StartJobRun may override for one run.
RUN_SETTINGS = (
    "Timeout",
    "MaxCapacity",
    "AllocatedCapacity",
    "WorkerType",
    "NumberOfWorkers",
    "SecurityConfiguration",
    "NotificationProperty",
    "ExecutionClass",
    "ExecutionRoleSessionPolicy",
)
_CAPACITY = ("MaxCapacity", "AllocatedCapacity")
_WORKERS = ("WorkerType", "NumberOfWorkers")
# What must never reach a script from localcloud's own environment: credentials of anyone but the role.
_SECRET_PREFIXES = ("AWS_", "LOCALCLOUD_", "AIRFLOW_CONN_")


def _settings() -> tuple[float, int]:
    """(seconds a Timeout minute lasts, runs supervised at once), from the server's environment."""
    return (
        max(float(os.environ.get("LOCALCLOUD_GLUE_TIMEOUT_MINUTE_SECONDS", "60")), 0.01),
        max(int(os.environ.get("LOCALCLOUD_GLUE_WORKERS", "8")), 1),
    )


def _invalid(message: str) -> AwsError:
    return AwsError("InvalidInputException", message)


def _not_found(message: str) -> AwsError:
    return AwsError("EntityNotFoundException", message)


def _ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _token(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _untoken(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise _invalid("Invalid NextToken.") from exc


def job_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:glue:{region}:{account}:job/{name}"


def new_run_id() -> str:
    # Glue's run ids: "jr_" and 64 hex digits.
    return "jr_" + secrets.token_hex(32)


def script_argv(script: Path, job_name: str, run_id: str, arguments: Mapping[str, str]) -> list[str]:
    """The command line a run's script gets, as Glue passes job arguments: ``--key value`` pairs."""
    argv = [sys.executable, str(script), "--JOB_NAME", job_name, "--JOB_RUN_ID", run_id]
    for key, value in arguments.items():
        argv += [key, value]
    return argv


def script_environment(
    base: Mapping[str, str], credentials: Mapping[str, str], endpoint: str, region: str
) -> dict[str, str]:
    """The script's environment: ``base`` without anyone's credentials, plus the role session's."""
    env = {k: v for k, v in base.items() if not k.startswith(_SECRET_PREFIXES)}
    env.update(
        AWS_ACCESS_KEY_ID=credentials["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=credentials["SecretAccessKey"],
        AWS_SESSION_TOKEN=credentials["SessionToken"],
        AWS_ENDPOINT_URL=endpoint,
        AWS_REGION=region,
        AWS_DEFAULT_REGION=region,
        # A developer's ~/.aws profiles (real AWS identities) must not be reachable by name either.
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYTHONUNBUFFERED="1",
    )
    # A Glue Python shell script sees its own file and the runtime's libraries, not the code of whoever deployed
    # it (that would come through --extra-py-files): no search path is inherited from the server.
    env.pop("PYTHONPATH", None)
    return env


def error_tail(path: Path) -> str:
    """The last lines the script wrote to stderr, at most ERROR_TAIL_CHARS of them."""
    text = "\n".join(line.rstrip() for line in jobprocs.tail_lines(path) if line.strip())
    text = "\n".join(text.splitlines()[-ERROR_TAIL_LINES:])
    return text if len(text) <= ERROR_TAIL_CHARS else "..." + text[-(ERROR_TAIL_CHARS - 3) :]


def _kill(pid: int | None, script: str | None) -> None:
    """Kill a run's process group. The copied script's path is the one argv item only that run has, so it
    tells a live run from a process that reused its pid after a restart."""
    if not pid or not script:
        return
    jobprocs.end(script, pid, Path(script))


def _check_definition(definition: dict[str, Any]) -> None:
    """What Glue refuses in a job definition beyond its model's constraints."""
    command = definition.get("Command") or {}
    name = command.get("Name")
    if name not in KNOWN_COMMANDS:
        raise _invalid(f"Command name {name!r} is not valid. Valid values: {', '.join(KNOWN_COMMANDS)}.")
    _check_capacity(definition, name)


def _check_capacity(settings: dict[str, Any], command: str) -> None:
    if settings.get("MaxCapacity") is not None and settings.get("AllocatedCapacity"):
        raise _invalid("Please set only Allocated Capacity or Max Capacity.")
    if (settings.get("WorkerType") is None) != (settings.get("NumberOfWorkers") is None):
        raise _invalid("Please set both Worker Type and Number of Workers.")
    if settings.get("WorkerType") is not None and settings.get("MaxCapacity") is not None:
        raise _invalid("Please do not set Max Capacity if using Worker Type and Number of Workers.")
    if command == "pythonshell":
        if settings.get("WorkerType") is not None:
            raise _invalid("Worker Type is not supported for Python shell jobs; set MaxCapacity to 0.0625 or 1.")
        capacity = settings.get("MaxCapacity")
        if capacity is not None and float(capacity) not in PYTHON_SHELL_CAPACITIES:
            raise _invalid(f"MaxCapacity {capacity} is not valid for a Python shell job: use 0.0625 or 1.")


def _effective(definition: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A run's settings: the job's, overridden by the run's. A run that picks workers drops the job's capacity,
    and one that picks a capacity drops the job's workers, so that the two never conflict."""
    out = dict(definition)
    if any(settings.get(k) is not None for k in _WORKERS):
        for key in _CAPACITY:
            out.pop(key, None)
    if any(settings.get(k) is not None for k in _CAPACITY):
        for key in _WORKERS:
            out.pop(key, None)
    out.update(settings)
    return out


def _with_defaults(definition: dict[str, Any]) -> dict[str, Any]:
    """A definition as GetJob shows it: Glue's defaults for what was not given."""
    out = dict(definition)
    command = (out.get("Command") or {}).get("Name")
    out.setdefault("JobMode", "SCRIPT")
    out.setdefault("ExecutionProperty", {"MaxConcurrentRuns": 1})
    out.setdefault("MaxRetries", 0)
    out.setdefault("Timeout", DEFAULT_TIMEOUT_MINUTES)
    if out.get("WorkerType") is None:
        if out.get("MaxCapacity") is None:
            if out.get("AllocatedCapacity"):
                out["MaxCapacity"] = float(out["AllocatedCapacity"])
            else:
                out["MaxCapacity"] = PYTHON_SHELL_CAPACITIES[0] if command == "pythonshell" else DEFAULT_SPARK_CAPACITY
        out.setdefault("AllocatedCapacity", 0 if command == "pythonshell" else int(out["MaxCapacity"]))
    return out


class _RunError(Exception):
    """Why a run could not start its script; the message becomes its ErrorMessage."""


class GlueBackend:
    def __init__(self, data_dir: Path, sts: StsBackend) -> None:
        self._store = SqliteStore(ensure_dir(Path(data_dir)) / "glue.sqlite", SCHEMA)
        self._sts = sts
        self._jobs_dir = ensure_dir(Path(data_dir) / "glue-jobs")
        self._minute, workers = _settings()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="glue-job-run")
        self._closing = threading.Event()
        self._processes: dict[str, subprocess.Popen] = {}
        self._recover()

    def close(self) -> None:
        """Kill every script; a run that was active ends FAILED (STOPPED if it was being stopped)."""
        self._closing.set()
        for proc in list(self._processes.values()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._interrupt_all("localcloud stopped while the job run was active, and stopped it.")
        self._store.close()

    def _recover(self) -> None:
        for row in self._store.query("SELECT pid, script FROM job_runs WHERE state IN (?, ?, ?)", ACTIVE_STATES):
            _kill(row["pid"], row["script"])  # orphans of a server that died without closing
        self._interrupt_all("localcloud restarted while the job run was active; its script was stopped.")

    def _interrupt_all(self, why: str) -> None:
        now = time.time()
        with self._store.transaction() as db:
            db.execute(
                "UPDATE job_runs SET state = 'STOPPED', updated = ?, completed = ?, pid = NULL "
                "WHERE state = 'STOPPING'",
                (now, now),
            )
            db.execute(
                "UPDATE job_runs SET state = 'FAILED', error = ?, updated = ?, completed = ?, pid = NULL "
                "WHERE state IN ('STARTING', 'RUNNING')",
                (f"{why} Start the job run again.", now, now),
            )

    # -- jobs ----------------------------------------------------------------------------------------------
    def _job_row(self, region: str, name: str) -> sqlite3.Row | None:
        rows = self._store.query("SELECT * FROM jobs WHERE region = ? AND name = ?", (region, name))
        return rows[0] if rows else None

    def _job(self, region: str, name: str) -> sqlite3.Row:
        row = self._job_row(region, name)
        if row is None:
            raise _not_found(f"Job {name} not found.")
        return row

    def _describe_job(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "Name": row["name"],
            **_with_defaults(json.loads(row["definition"])),
            "CreatedOn": _ts(row["created"]),
            "LastModifiedOn": _ts(row["updated"]),
        }

    def create_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        definition = {k: v for k, v in params.items() if k not in ("Name", "Tags")}
        _check_definition(definition)
        now = time.time()
        with self._store.transaction() as db:
            found = db.execute("SELECT 1 FROM jobs WHERE region = ? AND name = ?", (ctx.region, params["Name"]))
            if found.fetchone():
                raise AwsError("AlreadyExistsException", f"Job {params['Name']} already exists.")
            db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?)",
                (ctx.region, params["Name"], now, now, json.dumps(definition), json.dumps(params.get("Tags") or {})),
            )
        return {"Name": params["Name"]}

    def get_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Job": self._describe_job(self._job(ctx.region, params["JobName"]))}

    def _jobs_page(self, ctx: RequestContext, params: dict[str, Any]) -> tuple[list[sqlite3.Row], dict[str, Any]]:
        """Jobs by name, keyset-paged so that pages never repeat or skip a job."""
        after = str(_untoken(params["NextToken"])) if params.get("NextToken") else ""
        rows = self._store.query("SELECT * FROM jobs WHERE region = ? AND name > ? ORDER BY name", (ctx.region, after))
        wanted = params.get("Tags") or {}
        if wanted:
            rows = [r for r in rows if all(json.loads(r["tags"]).get(k) == v for k, v in wanted.items())]
        limit = params.get("MaxResults") or JOBS_PAGE
        taken = rows[:limit]
        return taken, ({"NextToken": _token(taken[-1]["name"])} if len(rows) > limit else {})

    def get_jobs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        taken, more = self._jobs_page(ctx, params)
        return {"Jobs": [self._describe_job(r) for r in taken], **more}

    def list_jobs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        taken, more = self._jobs_page(ctx, params)
        return {"JobNames": [r["name"] for r in taken], **more}

    def update_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, definition = params["JobName"], dict(params["JobUpdate"])
        for required in ("Role", "Command"):
            if not definition.get(required):
                raise _invalid(f"{required} is required: UpdateJob replaces the whole job definition.")
        _check_definition(definition)
        with self._store.transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET definition = ?, updated = ? WHERE region = ? AND name = ?",
                (json.dumps(definition), time.time(), ctx.region, name),
            )
            if cursor.rowcount == 0:
                raise _not_found(f"Job {name} not found.")
        return {"JobName": name}

    def delete_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """Glue answers a job that does not exist as deleted. The job's active runs are stopped first."""
        name = params["JobName"]
        with self._store.transaction() as db:
            active = db.execute(
                "SELECT run_id, pid, script FROM job_runs WHERE region = ? AND job_name = ? AND state IN (?, ?, ?)",
                (ctx.region, name, *ACTIVE_STATES),
            ).fetchall()
            db.execute("DELETE FROM jobs WHERE region = ? AND name = ?", (ctx.region, name))
            db.execute("DELETE FROM job_runs WHERE region = ? AND job_name = ?", (ctx.region, name))
        for row in active:
            _kill(row["pid"], row["script"])
        return {"JobName": name}

    # -- tags ----------------------------------------------------------------------------------------------
    def _tagged(self, ctx: RequestContext, arn: str) -> str:
        prefix = job_arn(ctx.region, ctx.account_id, "")
        name = arn[len(prefix) :] if arn.startswith(prefix) else ""
        if not name or self._job_row(ctx.region, name) is None:
            raise _not_found(f"Resource {arn} not found.")
        return name

    def _change_tags(self, ctx: RequestContext, arn: str, change: Any) -> None:
        name = self._tagged(ctx, arn)
        with self._store.transaction() as db:
            row = db.execute("SELECT tags FROM jobs WHERE region = ? AND name = ?", (ctx.region, name)).fetchone()
            tags = json.loads(row["tags"])
            change(tags)
            db.execute("UPDATE jobs SET tags = ? WHERE region = ? AND name = ?", (json.dumps(tags), ctx.region, name))

    def get_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Tags": json.loads(self._job(ctx.region, self._tagged(ctx, params["ResourceArn"]))["tags"])}

    def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._change_tags(ctx, params["ResourceArn"], lambda tags: tags.update(params["TagsToAdd"]))
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def drop(tags: dict[str, str]) -> None:
            for key in params["TagsToRemove"]:
                tags.pop(key, None)

        self._change_tags(ctx, params["ResourceArn"], drop)
        return {}

    # -- job runs ------------------------------------------------------------------------------------------
    def start_job_run(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["JobName"]
        job = self._job_row(ctx.region, name)
        if job is None:
            raise _not_found(f"Failed to start job run due to missing metadata: job {name} not found.")
        definition = json.loads(job["definition"])
        command = definition["Command"]
        if command["Name"] not in RUNNABLE_COMMANDS:
            raise _invalid(f"localcloud's Glue runs {' and '.join(RUNNABLE_COMMANDS)} jobs, not {command['Name']}.")
        location = command.get("ScriptLocation") or ""
        if not location.startswith(("s3://", "s3a://")) or "/" not in location.split("://", 1)[1]:
            raise _invalid(f"Command.ScriptLocation must be an s3:// object URI, not {location!r}.")
        if params.get("JobRunQueuingEnabled", definition.get("JobRunQueuingEnabled")):
            raise _invalid("localcloud's Glue does not queue job runs: JobRunQueuingEnabled must be false.")
        arguments = dict(params.get("Arguments") or {})
        fixed = definition.get("NonOverridableArguments") or {}
        overridden = sorted(set(arguments) & set(fixed))
        if overridden:
            raise _invalid(f"Arguments {', '.join(overridden)} are NonOverridableArguments of job {name}.")
        settings = {k: params[k] for k in RUN_SETTINGS if params.get(k) is not None}
        _check_capacity(_effective(definition, settings), command["Name"])
        if settings.get("ExecutionRoleSessionPolicy"):
            try:
                parse_policy(settings["ExecutionRoleSessionPolicy"], "session")
            except PolicyError as exc:
                raise _invalid(f"ExecutionRoleSessionPolicy: {exc}") from None
        return {"JobRunId": self._insert_run(ctx, name, arguments, settings, params.get("JobRunId"))}

    def _insert_run(
        self,
        ctx: RequestContext,
        name: str,
        arguments: dict[str, str],
        settings: dict[str, Any],
        previous: str | None,
        *,
        attempt: int | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record a STARTING run of job ``name`` (its definition as of now) and hand it to a supervisor."""
        run_id = run_id or new_run_id()
        now = time.time()
        with self._store.transaction() as db:
            job = db.execute("SELECT * FROM jobs WHERE region = ? AND name = ?", (ctx.region, name)).fetchone()
            if job is None:
                raise _not_found(f"Job {name} not found.")
            definition = json.loads(job["definition"])
            if previous is not None and attempt is None:
                prior = db.execute(
                    "SELECT attempt FROM job_runs WHERE run_id = ? AND job_name = ? AND region = ?",
                    (previous, name, ctx.region),
                ).fetchone()
                if prior is None:
                    raise _not_found(f"Job run {previous} of job {name} not found.")
                attempt = prior["attempt"] + 1
            limit = _with_defaults(definition)["ExecutionProperty"].get("MaxConcurrentRuns") or 1
            (active,) = db.execute(
                "SELECT COUNT(*) FROM job_runs WHERE region = ? AND job_name = ? AND state IN (?, ?, ?)",
                (ctx.region, name, *ACTIVE_STATES),
            ).fetchone()
            if active >= limit:
                raise AwsError("ConcurrentRunsExceededException", f"Concurrent runs exceeded for {name}")
            db.execute(
                "INSERT INTO job_runs (run_id, region, account, job_name, state, created, updated, attempt,"
                " previous_run_id, arguments, definition, settings, endpoint, job_dir)"
                " VALUES (?, ?, ?, ?, 'STARTING', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    ctx.region,
                    ctx.account_id,
                    name,
                    now,
                    now,
                    attempt or 0,
                    previous,
                    json.dumps(arguments),
                    json.dumps(definition),
                    json.dumps(settings),
                    jobprocs.endpoint_for(ctx.host),
                    str(self._jobs_dir / run_id),
                ),
            )
        self._pool.submit(self._run, run_id)
        return run_id

    def _run_row(self, run_id: str) -> sqlite3.Row | None:
        rows = self._store.query("SELECT * FROM job_runs WHERE run_id = ?", (run_id,))
        return rows[0] if rows else None

    def _describe_run(self, row: sqlite3.Row) -> dict[str, Any]:
        definition = json.loads(row["definition"])
        effective = _with_defaults(_effective(definition, json.loads(row["settings"])))
        command = definition["Command"]["Name"]
        end = row["completed"] or time.time()
        out: dict[str, Any] = {
            "Id": row["run_id"],
            "Attempt": row["attempt"],
            "PreviousRunId": row["previous_run_id"],
            "JobName": row["job_name"],
            "JobMode": definition.get("JobMode", "SCRIPT"),
            "StartedOn": _ts(row["created"]),
            "LastModifiedOn": _ts(row["updated"]),
            "CompletedOn": _ts(row["completed"]),
            "JobRunState": row["state"],
            "Arguments": json.loads(row["arguments"]),
            "ErrorMessage": row["error"],
            "PredecessorRuns": [],
            "ExecutionTime": int(end - row["started"]) if row["started"] else 0,
            "Timeout": effective["Timeout"],
            "LogGroupName": "/aws-glue/python-jobs" if command == "pythonshell" else "/aws-glue/jobs",
        }
        for key in (*RUN_SETTINGS[1:], "GlueVersion"):  # Timeout is always there
            if effective.get(key) is not None:
                out[key] = effective[key]
        return {k: v for k, v in out.items() if v is not None}

    def _job_run(self, ctx: RequestContext, name: str, run_id: str) -> sqlite3.Row:
        rows = self._store.query(
            "SELECT * FROM job_runs WHERE run_id = ? AND job_name = ? AND region = ?", (run_id, name, ctx.region)
        )
        if not rows:
            raise _not_found(f"Job run {run_id} of job {name} not found.")
        return rows[0]

    def get_job_run(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"JobRun": self._describe_run(self._job_run(ctx, params["JobName"], params["RunId"]))}

    def get_job_runs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["JobName"]
        self._job(ctx.region, name)
        rows = self._store.query(
            "SELECT * FROM job_runs WHERE region = ? AND job_name = ? ORDER BY created DESC, run_id DESC",
            (ctx.region, name),
        )
        if params.get("NextToken"):
            mark = tuple(_untoken(params["NextToken"]))
            rows = [r for r in rows if (r["created"], r["run_id"]) < mark]
        limit = params.get("MaxResults") or RUNS_PAGE
        taken = rows[:limit]
        more = {"NextToken": _token([taken[-1]["created"], taken[-1]["run_id"]])} if len(rows) > limit else {}
        return {"JobRuns": [self._describe_run(r) for r in taken], **more}

    def batch_stop_job_run(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["JobName"]
        stopped, errors = [], []
        for run_id in params["JobRunIds"]:
            with self._store.transaction() as db:
                row = db.execute(
                    "SELECT state, pid, script FROM job_runs WHERE run_id = ? AND job_name = ? AND region = ?",
                    (run_id, name, ctx.region),
                ).fetchone()
                if row is not None and row["state"] == "STARTING":
                    # Nothing runs yet, so the run is over now, whatever its supervisor is still doing: it may be
                    # queued behind busy workers or fetching the script, and when it tries to move the run to
                    # RUNNING it finds it STOPPED and kills what it started.
                    now = time.time()
                    db.execute(
                        "UPDATE job_runs SET state = 'STOPPED', updated = ?, completed = ?, pid = NULL WHERE run_id = ?",
                        (now, now, run_id),
                    )
                elif row is not None and row["state"] == "RUNNING":
                    db.execute(
                        "UPDATE job_runs SET state = 'STOPPING', updated = ? WHERE run_id = ?", (time.time(), run_id)
                    )
            if row is None:
                detail = {"ErrorCode": "EntityNotFoundException", "ErrorMessage": f"Job run {run_id} not found."}
            elif row["state"] in TERMINAL_STATES:
                detail = {
                    "ErrorCode": "InvalidInputException",
                    "ErrorMessage": f"Job run {run_id} is in {row['state']} state and cannot be stopped.",
                }
            else:
                # The supervisor sees the script die and records STOPPED; a run still STARTING never starts it.
                _kill(row["pid"], row["script"])
                stopped.append({"JobName": name, "JobRunId": run_id})
                continue
            errors.append({"JobName": name, "JobRunId": run_id, "ErrorDetail": detail})
        return {"SuccessfulSubmissions": stopped, "Errors": errors}

    # -- running -------------------------------------------------------------------------------------------
    def _update(self, run_id: str, state: str, *, only_from: tuple[str, ...], end: bool = False, **extra: Any) -> bool:
        """Move the run to ``state`` if it is still in one of ``only_from``; whether it moved."""
        now = time.time()
        sets = {"state": state, "updated": now, **extra}
        if end:
            sets.update(completed=now, pid=None)
        marks = ",".join("?" * len(only_from))
        with self._store.transaction() as db:
            cursor = db.execute(
                f"UPDATE job_runs SET {', '.join(f'{k} = ?' for k in sets)} WHERE run_id = ? AND state IN ({marks})",
                (*sets.values(), run_id, *only_from),
            )
        return cursor.rowcount > 0

    def _run(self, run_id: str) -> None:
        """Supervise one run from STARTING to its final state."""
        try:
            self._supervise(run_id)
        except Exception as exc:  # never leave a run active because of a bug of ours
            log.exception("Glue job run %s failed", run_id)
            if not self._closing.is_set():
                self._update(run_id, "FAILED", only_from=ACTIVE_STATES, end=True, error=f"Internal error: {exc}")
        if not self._closing.is_set():
            # Stopped before its script started, or while it was being started.
            self._update(run_id, "STOPPED", only_from=("STOPPING",), end=True)

    def _supervise(self, run_id: str) -> None:
        run = self._run_row(run_id)
        if run is None or run["state"] != "STARTING" or self._closing.is_set():
            return
        job_dir = Path(run["job_dir"])
        if job_dir.exists():
            shutil.rmtree(job_dir)
        ensure_dir(job_dir)
        definition = json.loads(run["definition"])
        settings = json.loads(run["settings"])
        timeout = _with_defaults(_effective(definition, settings))["Timeout"]
        try:
            credentials = self._credentials(run, definition, settings, timeout)
            script = self._fetch_script(definition["Command"]["ScriptLocation"], job_dir, credentials, run)
        except _RunError as exc:
            (job_dir / ERROR).write_text(f"{exc}\n")
            self._update(run_id, "FAILED", only_from=("STARTING",), end=True, error=str(exc))
            return
        arguments = {
            **(definition.get("DefaultArguments") or {}),
            **json.loads(run["arguments"]),
            **(definition.get("NonOverridableArguments") or {}),
        }
        argv = script_argv(script, run["job_name"], run_id, arguments)
        env = script_environment(os.environ, credentials, run["endpoint"], run["region"])
        with open(job_dir / OUTPUT, "ab") as out, open(job_dir / ERROR, "ab") as err:
            proc = subprocess.Popen(
                argv, cwd=job_dir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
            )
        self._processes[run_id] = proc
        try:
            started = self._update(
                run_id, "RUNNING", only_from=("STARTING",), started=time.time(), pid=proc.pid, script=str(script)
            )
            if not started or self._closing.is_set():  # stopped (or deleted, or closing) while starting
                _kill(proc.pid, str(script))
                proc.wait()
                return
            why = self._wait(proc, script, timeout)
        finally:
            self._processes.pop(run_id, None)
        if why == "closing" or self._closing.is_set():
            return  # close() records how the run ended
        if why == "timeout":
            message = f"Job run timed out: it ran longer than its Timeout of {timeout} minute(s) and was stopped."
            self._update(run_id, "TIMEOUT", only_from=("RUNNING", "STOPPING"), end=True, error=message)
        elif self._update(run_id, "STOPPED", only_from=("STOPPING",), end=True):
            pass
        elif proc.returncode == 0:
            self._update(run_id, "SUCCEEDED", only_from=("RUNNING",), end=True)
        else:
            tail = error_tail(job_dir / ERROR)
            message = f"Script exited with code {proc.returncode}." + (
                f" Last lines of stderr:\n{tail}" if tail else ""
            )
            if self._update(run_id, "FAILED", only_from=("RUNNING",), end=True, error=message):
                self._retry(run)

    def _retry(self, run: sqlite3.Row) -> None:
        """Glue's MaxRetries: a FAILED run starts again as a new attempt, with the same arguments."""
        definition = json.loads(run["definition"])
        if run["attempt"] >= (definition.get("MaxRetries") or 0) or self._closing.is_set():
            return
        first = run["run_id"].split("_attempt_")[0]
        ctx = RequestContext(region=run["region"], account_id=run["account"])
        attempt = run["attempt"] + 1
        with contextlib.suppress(AwsError):  # the job was deleted meanwhile: nothing to retry
            self._insert_run(
                ctx,
                run["job_name"],
                json.loads(run["arguments"]),
                json.loads(run["settings"]),
                run["run_id"],
                attempt=attempt,
                run_id=f"{first}_attempt_{attempt}",
            )

    def _fetch_script(self, location: str, job_dir: Path, credentials: Mapping[str, Any], run: sqlite3.Row) -> Path:
        """Glue reads the script with the job's role, so the role needs s3:GetObject on it: fetched through this
        localcloud's own S3 endpoint with the run's session, where that policy is enforced."""
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, _, key = location.split("://", 1)[1].partition("/")
        target = job_dir / (PurePosixPath(key).name or "script.py")
        s3 = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=run["region"],
        ).client("s3", endpoint_url=run["endpoint"], config=Config(retries={"max_attempts": 2}))
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise _RunError(
                f"Script {location} cannot be read from S3: {error.get('Code')}: {error.get('Message')} "
                "(Glue reads it as the job's role)"
            ) from None
        except BotoCoreError as exc:
            raise _RunError(f"Script {location} cannot be read from S3: {exc}") from exc
        target.write_bytes(body)
        return target

    def _credentials(
        self, run: sqlite3.Row, definition: dict[str, Any], settings: dict[str, Any], timeout: int
    ) -> dict[str, Any]:
        """The role session the script runs as: Glue assumes the job's role on the run's behalf."""
        role = definition["Role"]
        try:
            issued = self._sts.assume_role_for_service(
                role,
                SERVICE_PRINCIPAL,
                SESSION_NAME,
                60 * timeout + SESSION_MARGIN_SECONDS,
                run["account"],
                {"aws:SourceArn": job_arn(run["region"], run["account"], run["job_name"])},
                settings.get("ExecutionRoleSessionPolicy"),
            )
        except AwsError as exc:
            raise _RunError(f"Glue could not assume the job's role {role}: {exc.message}") from exc
        return issued["Credentials"]

    def _wait(self, proc: subprocess.Popen, script: Path, timeout_minutes: int) -> str:
        """Wait for the script: "exited", or "timeout" / "closing" when it had to be killed."""
        deadline = time.monotonic() + timeout_minutes * self._minute
        while True:
            try:
                proc.wait(timeout=0.1)
                return "exited"
            except subprocess.TimeoutExpired:
                pass
            why = "closing" if self._closing.is_set() else None
            if why is None and time.monotonic() > deadline:
                why = "timeout"
            if why:
                _kill(proc.pid, str(script))
                proc.wait()
                return why
