"""Amazon A2I runtime on localcloud: human loops on SageMaker flow definitions, reviewed by a person through the
reviewer page (:mod:`.review`), with the output written to S3 in A2I's format.

Life of a loop, as AWS documents it:

- StartHumanLoop needs an ``Active`` flow definition; the loop snapshots what it needs of it (output path, task
  count, time limits), so later changes to the flow definition do not touch it. A retried start (same name, same
  input, still in progress) returns the same loop; the same name with other input while it is active answers
  ``ConflictException``, and the name of a finished loop that was not deleted ``ValidationException``.
- Each of ``TaskCount`` reviewers accepts a task (opening the loop on the page) and submits an answer. When the
  last one submits, ``<S3OutputPath>/<flow definition>/<YYYY>/<MM>/<DD>/<hh>/<mm>/<ss>/<loop>/output.json`` is
  written (the loop's creation time, UTC) and the loop is ``Completed``.
- A task not submitted within ``TaskTimeLimitInSeconds`` of its acceptance is released for another reviewer; a
  loop not completed within ``TaskAvailabilityLifetimeInSeconds`` of its creation fails with ``Expired``.
- StopHumanLoop stops a loop at once when no reviewer is working on it; otherwise it is ``Stopping`` until those
  reviewers submit (their answers are written to S3 as output) or their time runs out, then ``Stopped``.
- DeleteHumanLoop refuses a loop that is ``InProgress`` or ``Stopping``: stop it first.

Everything lives in ``a2i-runtime.sqlite`` in the data dir; time-driven transitions are applied whenever state is
read, so a restarted server tells the same story.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcloud.core import AwsError, RequestContext, ensure_dir
from localcloud.services.a2i_runtime import contract
from localcloud.services.s3.backend import S3Backend
from localcloud.services.sagemaker import paging
from localcloud.services.sagemaker.a2i import created_now, split_s3_path
from localcloud.services.sagemaker.backend import SageMakerBackend
from localcloud.store import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS human_loops (
    arn TEXT PRIMARY KEY, region TEXT NOT NULL, name TEXT NOT NULL, flow_arn TEXT NOT NULL,
    flow_name TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL, input TEXT NOT NULL,
    task_count INTEGER NOT NULL, task_time_limit INTEGER NOT NULL, availability INTEGER NOT NULL,
    output_path TEXT NOT NULL, config TEXT NOT NULL, stopped REAL, failure_code TEXT, failure_reason TEXT,
    output_uri TEXT, UNIQUE (region, name)
);
CREATE TABLE IF NOT EXISTS human_loop_tasks (
    loop_arn TEXT NOT NULL, worker_id TEXT NOT NULL, reviewer TEXT NOT NULL, accepted REAL NOT NULL,
    submitted REAL, answer TEXT, PRIMARY KEY (loop_arn, worker_id)
);
"""
_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")
MAX_INPUT_CHARS = 3_145_728
# AWS's defaults when a flow definition leaves them out.
DEFAULT_TASK_TIME_LIMIT = 3600
DEFAULT_AVAILABILITY = 864_000
ACTIVE = ("InProgress", "Stopping")


class ReviewError(Exception):
    """A reviewer-page request that cannot be served, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _iso(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def worker_id(reviewer: str) -> str:
    """A stable opaque worker id for a reviewer name, as A2I gives each worker one."""
    return hashlib.sha256(reviewer.strip().encode()).hexdigest()[:20]


def _check_name(name: str) -> None:
    if len(name) > 63 or not _NAME.match(name):
        raise AwsError(
            "ValidationException",
            f"1 validation error detected: Value '{name}' at 'humanLoopName' failed to satisfy constraint: Member "
            "must satisfy regular expression pattern: ^[a-z0-9](-*[a-z0-9])*$ and have length <= 63",
        )


class A2IRuntimeBackend:
    def __init__(self, data_dir: Path, sagemaker: SageMakerBackend, s3: S3Backend) -> None:
        self._store = SqliteStore(ensure_dir(Path(data_dir)) / "a2i-runtime.sqlite", SCHEMA)
        self._sagemaker = sagemaker
        self._s3 = s3
        sagemaker.flow_definition_users.append(self._flow_in_use)

    def close(self) -> None:
        self._store.close()

    # -- time-driven transitions -------------------------------------------------------------------
    def _settle(self) -> None:
        now = time.time()
        with self._store.transaction() as db:
            db.execute(
                """DELETE FROM human_loop_tasks WHERE submitted IS NULL AND accepted + (
                       SELECT task_time_limit FROM human_loops WHERE arn = loop_arn) <= ?""",
                (now,),
            )
            db.execute(
                """UPDATE human_loops SET status = 'Failed', failure_code = 'Expired', failure_reason =
                       'The human loop was not completed within TaskAvailabilityLifetimeInSeconds ('
                       || availability || ' s).'
                   WHERE status = 'InProgress' AND created + availability <= ?""",
                (now,),
            )
            db.execute(
                """UPDATE human_loops SET status = 'Stopped' WHERE status = 'Stopping' AND NOT EXISTS (
                       SELECT 1 FROM human_loop_tasks WHERE loop_arn = arn AND submitted IS NULL)"""
            )

    def _flow_in_use(self, flow_arn: str) -> str | None:
        self._settle()
        (count,) = self._store.query(
            "SELECT COUNT(*) FROM human_loops WHERE flow_arn = ? AND status IN (?, ?)", (flow_arn, *ACTIVE)
        )[0]
        return f"{count} human loop(s) are in progress; stop them first." if count else None

    def _row(self, region: str, name: str) -> dict[str, Any]:
        self._settle()
        rows = self._store.query("SELECT * FROM human_loops WHERE region = ? AND name = ?", (region, name))
        if not rows:
            raise AwsError("ResourceNotFoundException", f"Human loop {name} does not exist.")
        return dict(rows[0])

    # -- the AWS API -------------------------------------------------------------------------------
    def start_human_loop(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, flow_arn = params["HumanLoopName"], params["FlowDefinitionArn"]
        _check_name(name)
        raw = params["HumanLoopInput"]["InputContent"]
        if len(raw) > MAX_INPUT_CHARS:
            raise AwsError("ValidationException", f"InputContent must be at most {MAX_INPUT_CHARS} characters.")
        try:
            content = json.loads(raw)
        except ValueError as exc:
            raise AwsError("ValidationException", "InputContent is not valid JSON.") from exc
        if not isinstance(content, dict):
            raise AwsError("ValidationException", "InputContent must be a JSON object.")
        flow = self._sagemaker.flow_definition(flow_arn)
        if flow is None or flow_arn.split(":")[3] != ctx.region:
            raise AwsError("ValidationException", f"Flow definition {flow_arn} does not exist in {ctx.region}.")
        if flow["FlowDefinitionStatus"] != "Active":
            raise AwsError(
                "ValidationException",
                f"Flow definition {flow_arn} is {flow['FlowDefinitionStatus']}, not Active.",
            )
        loop_config = flow["HumanLoopConfig"]
        arn = f"arn:aws:sagemaker:{ctx.region}:{ctx.account_id}:human-loop/{name}"
        self._settle()
        with self._store.transaction() as db:
            existing = db.execute(
                "SELECT * FROM human_loops WHERE region = ? AND name = ?", (ctx.region, name)
            ).fetchone()
            if existing is not None:
                same = existing["flow_arn"] == flow_arn and json.loads(existing["input"]) == content
                if existing["status"] in ACTIVE:
                    if same:
                        return {"HumanLoopArn": existing["arn"]}
                    raise AwsError(
                        "ConflictException",
                        f"A human loop named {name} is already active with different input data.",
                    )
                raise AwsError(
                    "ValidationException",
                    f"A human loop named {name} already exists ({existing['status']}); delete it to reuse the name.",
                )
            config = {
                "RequestSource": (flow.get("HumanLoopRequestSource") or {}).get("AwsManagedHumanLoopRequestSource"),
                "DataAttributes": params.get("DataAttributes"),
                "HumanTaskUiArn": loop_config["HumanTaskUiArn"],
                "TaskTitle": loop_config.get("TaskTitle"),
                "TaskDescription": loop_config.get("TaskDescription"),
            }
            db.execute(
                """INSERT INTO human_loops (arn, region, name, flow_arn, flow_name, status, created, input,
                       task_count, task_time_limit, availability, output_path, config)
                   VALUES (?, ?, ?, ?, ?, 'InProgress', ?, ?, ?, ?, ?, ?, ?)""",
                (
                    arn,
                    ctx.region,
                    name,
                    flow_arn,
                    flow["FlowDefinitionName"],
                    created_now(),
                    raw,
                    loop_config.get("TaskCount") or 1,
                    loop_config.get("TaskTimeLimitInSeconds") or DEFAULT_TASK_TIME_LIMIT,
                    loop_config.get("TaskAvailabilityLifetimeInSeconds") or DEFAULT_AVAILABILITY,
                    flow["OutputConfig"]["S3OutputPath"],
                    json.dumps(config),
                ),
            )
        return {"HumanLoopArn": arn}

    @staticmethod
    def _describe(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "CreationTime": datetime.fromtimestamp(row["created"], UTC),
            "FailureReason": row["failure_reason"],
            "FailureCode": row["failure_code"],
            "HumanLoopStatus": row["status"],
            "HumanLoopName": row["name"],
            "HumanLoopArn": row["arn"],
            "FlowDefinitionArn": row["flow_arn"],
            "HumanLoopOutput": {"OutputS3Uri": row["output_uri"]} if row["output_uri"] else None,
        }

    def describe_human_loop(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._describe(self._row(ctx.region, params["HumanLoopName"]))

    def list_human_loops(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        flow_arn = params["FlowDefinitionArn"]
        self._settle()
        rows = [
            dict(r)
            for r in self._store.query(
                "SELECT * FROM human_loops WHERE region = ? AND flow_arn = ?", (ctx.region, flow_arn)
            )
        ]
        if not rows and self._sagemaker.flow_definition(flow_arn) is None:
            raise AwsError("ResourceNotFoundException", f"Flow definition {flow_arn} does not exist.")
        taken, more = paging.page(rows, params, default_results=100)
        summaries = [
            {
                "HumanLoopName": r["name"],
                "HumanLoopStatus": r["status"],
                "CreationTime": datetime.fromtimestamp(r["created"], UTC),
                "FailureReason": r["failure_reason"],
                "FlowDefinitionArn": r["flow_arn"],
            }
            for r in taken
        ]
        return {"HumanLoopSummaries": summaries, **more}

    def stop_human_loop(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._row(ctx.region, params["HumanLoopName"])
        if row["status"] in ("Stopping", "Stopped"):
            return {}
        if row["status"] != "InProgress":
            raise AwsError("ValidationException", f"Human loop {row['name']} is {row['status']}; it cannot be stopped.")
        with self._store.transaction() as db:
            working = db.execute(
                "SELECT 1 FROM human_loop_tasks WHERE loop_arn = ? AND submitted IS NULL", (row["arn"],)
            ).fetchone()
            db.execute(
                "UPDATE human_loops SET status = ?, stopped = ? WHERE arn = ?",
                ("Stopping" if working else "Stopped", time.time(), row["arn"]),
            )
        return {}

    def delete_human_loop(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._row(ctx.region, params["HumanLoopName"])
        if row["status"] in ACTIVE:
            raise AwsError(
                "ValidationException", f"Human loop {row['name']} is {row['status']}; stop it before deleting it."
            )
        with self._store.transaction() as db:
            db.execute("DELETE FROM human_loop_tasks WHERE loop_arn = ?", (row["arn"],))
            db.execute("DELETE FROM human_loops WHERE arn = ?", (row["arn"],))
        return {}

    # -- the reviewer's side (the review page's API) -----------------------------------------------
    def loops(self, status: str | None = None) -> list[dict[str, Any]]:
        """Summaries of every loop (or those in ``status``), oldest first: the page's work queue."""
        self._settle()
        sql, args = "SELECT * FROM human_loops", ()
        if status:
            sql, args = sql + " WHERE status = ?", (status,)
        out = []
        for row in self._store.query(sql + " ORDER BY created, name", args):
            content = json.loads(row["input"])
            document = content.get("document") if isinstance(content.get("document"), dict) else {}
            tables = content.get("tables") if isinstance(content.get("tables"), list) else []
            out.append(
                {
                    **self._summary(dict(row)),
                    "document": {"id": document.get("id"), "name": document.get("name")},
                    "tables": len(tables),
                }
            )
        return out

    def _summary(self, row: dict[str, Any]) -> dict[str, Any]:
        answered = self._store.query(
            "SELECT COUNT(*) FROM human_loop_tasks WHERE loop_arn = ? AND submitted IS NOT NULL", (row["arn"],)
        )[0][0]
        return {
            "region": row["region"],
            "name": row["name"],
            "arn": row["arn"],
            "status": row["status"],
            "flowDefinitionArn": row["flow_arn"],
            "flowDefinitionName": row["flow_name"],
            "created": _iso(row["created"]),
            "taskCount": row["task_count"],
            "answered": answered,
            "failureReason": row["failure_reason"],
            "outputS3Uri": row["output_uri"],
        }

    def _review_row(self, region: str, name: str) -> dict[str, Any]:
        try:
            return self._row(region, name)
        except AwsError as exc:
            raise ReviewError(404, exc.message) from exc

    def loop(self, region: str, name: str) -> dict[str, Any]:
        """A loop with its parsed input, whether that input follows the table contract, and its tasks."""
        row = self._review_row(region, name)
        content = json.loads(row["input"])
        tasks = self._store.query(
            "SELECT reviewer, accepted, submitted FROM human_loop_tasks WHERE loop_arn = ? ORDER BY accepted",
            (row["arn"],),
        )
        config = json.loads(row["config"])
        return {
            **self._summary(row),
            "taskTitle": config.get("TaskTitle"),
            "taskDescription": config.get("TaskDescription"),
            "input": content,
            "problems": contract.input_problems(content),
            "tasks": [
                {
                    "reviewer": t["reviewer"],
                    "accepted": _iso(t["accepted"]),
                    "submitted": _iso(t["submitted"]) if t["submitted"] else None,
                }
                for t in tasks
            ],
        }

    def page_image(self, region: str, name: str, page: int) -> tuple[str, str]:
        """(bucket, key) of a page image the loop's input names; no other object is ever served."""
        content = json.loads(self._review_row(region, name)["input"])
        document = content.get("document") if isinstance(content, dict) else None
        for item in (document or {}).get("pages") or []:
            if isinstance(item, dict) and item.get("page") == page:
                location = contract.s3_location(item.get("image"))
                if location:
                    return location
        raise ReviewError(404, f"The loop's input names no image for page {page}.")

    def accept(self, region: str, name: str, reviewer: str) -> dict[str, Any]:
        """Take one of the loop's tasks for ``reviewer`` (again, if it is theirs already)."""
        reviewer = reviewer.strip() if isinstance(reviewer, str) else ""
        if not reviewer:
            raise ReviewError(400, "Say who is reviewing: reviewer must be a non-empty string.")
        row = self._review_row(region, name)
        worker = worker_id(reviewer)
        with self._store.transaction() as db:
            task = db.execute(
                "SELECT * FROM human_loop_tasks WHERE loop_arn = ? AND worker_id = ?", (row["arn"], worker)
            ).fetchone()
            if task is not None:
                if task["submitted"] is not None:
                    raise ReviewError(409, f"{reviewer} has already answered this loop.")
                return {"reviewer": reviewer, "accepted": _iso(task["accepted"])}
            if row["status"] != "InProgress":
                raise ReviewError(409, f"The loop is {row['status']}; it takes no new reviewers.")
            (taken,) = db.execute("SELECT COUNT(*) FROM human_loop_tasks WHERE loop_arn = ?", (row["arn"],)).fetchone()
            if taken >= row["task_count"]:
                raise ReviewError(409, f"All {row['task_count']} task(s) of this loop are taken.")
            now = time.time()
            db.execute(
                "INSERT INTO human_loop_tasks VALUES (?, ?, ?, ?, NULL, NULL)", (row["arn"], worker, reviewer, now)
            )
        return {"reviewer": reviewer, "accepted": _iso(now)}

    def submit(self, region: str, name: str, answer: Any) -> dict[str, Any]:
        """Record a reviewer's answer; the loop's last answer writes its output.json and finishes it."""
        row = self._review_row(region, name)
        content = json.loads(row["input"])
        if contract.input_problems(content):
            # Input outside the table contract: any JSON object is an answer, with the reviewer named in it.
            if not isinstance(answer, dict) or not isinstance(answer.get("reviewer"), str):
                raise ReviewError(400, "The answer must be a JSON object with a reviewer.")
        else:
            answer, problems = contract.check_answer(content, answer)
            if problems:
                raise ReviewError(400, "The answer does not follow the contract: " + "; ".join(problems))
        reviewer = answer["reviewer"].strip()
        if not reviewer:
            raise ReviewError(400, "Say who is reviewing: reviewer must be a non-empty string.")
        if row["status"] == "InProgress":
            self.accept(region, name, reviewer)  # submitting without opening first takes a task now
        worker = worker_id(reviewer)
        with self._store.transaction() as db:
            current = db.execute("SELECT * FROM human_loops WHERE arn = ?", (row["arn"],)).fetchone()
            task = db.execute(
                "SELECT * FROM human_loop_tasks WHERE loop_arn = ? AND worker_id = ?", (row["arn"], worker)
            ).fetchone()
            if current["status"] not in ACTIVE or task is None:
                raise ReviewError(409, f"The loop is {current['status']} and {reviewer} holds no task on it.")
            if task["submitted"] is not None:
                raise ReviewError(409, f"{reviewer} has already answered this loop.")
            now = time.time()
            db.execute(
                "UPDATE human_loop_tasks SET submitted = ?, answer = ? WHERE loop_arn = ? AND worker_id = ?",
                (now, json.dumps(answer), row["arn"], worker),
            )
            answers = db.execute(
                "SELECT * FROM human_loop_tasks WHERE loop_arn = ? AND submitted IS NOT NULL ORDER BY submitted",
                (row["arn"],),
            ).fetchall()
            open_tasks = db.execute(
                "SELECT COUNT(*) FROM human_loop_tasks WHERE loop_arn = ? AND submitted IS NULL", (row["arn"],)
            ).fetchone()[0]
            stopping = current["status"] == "Stopping"
            if not stopping and len(answers) < current["task_count"]:
                return {**self._summary(dict(current)), "answered": len(answers)}
            # A stopping loop's answers are output as they come, so none is lost if the other reviewers walk away.
            status = ("Stopping" if open_tasks else "Stopped") if stopping else "Completed"
            failure = None
            try:
                uri = self._write_output(dict(current), content, answers)
                db.execute("UPDATE human_loops SET status = ?, output_uri = ? WHERE arn = ?", (status, uri, row["arn"]))
            except AwsError as exc:
                # The loop fails, as on AWS, and that must be committed before the reviewer hears why.
                failure = f"A2I could not write the output under {current['output_path']}: {exc.code}: {exc.message}"
                db.execute(
                    "UPDATE human_loops SET status = 'Failed', failure_code = 'InternalError', failure_reason = ? "
                    "WHERE arn = ?",
                    (failure[:1024], row["arn"]),
                )
        if failure:
            raise ReviewError(502, failure)
        return self._summary(self._row(region, name))

    def _write_output(self, row: dict[str, Any], content: dict[str, Any], answers: list) -> str:
        bucket, prefix = split_s3_path(row["output_path"])
        stamp = datetime.fromtimestamp(row["created"], UTC).strftime("%Y/%m/%d/%H/%M/%S")
        key = "/".join(p for p in (prefix, row["flow_name"], stamp, row["name"], "output.json") if p)
        config = json.loads(row["config"])
        document: dict[str, Any] = {}
        if config.get("RequestSource"):
            document["awsManagedHumanLoopRequestSource"] = config["RequestSource"]
        document["flowDefinitionArn"] = row["flow_arn"]
        document["humanAnswers"] = [
            {
                "acceptanceTime": _iso(a["accepted"]),
                "answerContent": json.loads(a["answer"]),
                "submissionTime": _iso(a["submitted"]),
                "timeSpentInSeconds": round(a["submitted"] - a["accepted"], 3),
                "workerId": a["worker_id"],
                "workerMetadata": {
                    "identityData": {
                        "identityProviderType": "localcloud",
                        "issuer": "localcloud reviewer page",
                        "sub": a["reviewer"],
                    }
                },
            }
            for a in answers
        ]
        document["humanLoopName"] = row["name"]
        document["inputContent"] = content
        ctx = RequestContext(region=row["region"])
        body = json.dumps(document, indent=2).encode()
        self._s3.put_object(ctx, {"Bucket": bucket, "Key": key, "Body": body, "ContentType": "application/json"})
        return f"s3://{bucket}/{key}"
