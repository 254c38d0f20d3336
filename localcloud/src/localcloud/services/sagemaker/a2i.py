"""SageMaker's side of Augmented AI: human task UIs (worker templates) and flow definitions (human review
workflows). The human loops that run on them belong to the ``sagemaker-a2i-runtime`` service.

A flow definition is created ``Initializing`` and becomes ``Active`` once its human task UI has been checked
(after ``LOCALCLOUD_A2I_ACTIVATION_SECONDS``, 1 s by default), or ``Failed`` with a ``FailureReason`` when
that UI does not exist: the same asynchronous validation AWS does, so a DAG must wait for ``Active`` here as
it must there. Names are unique per region: a second create answers ``ResourceInUse``, and an unknown name
``ResourceNotFound``, which is what an idempotent "describe, create when missing" task relies on. Deleting a
flow definition that still has human loops in progress answers ``ResourceInUse``; stop them first.

Work teams are accepted as given: localcloud's only workforce is whoever opens the reviewer page.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from localcloud.core import AwsError, RequestContext
from localcloud.services.sagemaker import paging
from localcloud.store import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS human_task_uis (
    arn TEXT PRIMARY KEY, region TEXT NOT NULL, name TEXT NOT NULL, created REAL NOT NULL,
    content TEXT NOT NULL, sha256 TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '[]', UNIQUE (region, name)
);
CREATE TABLE IF NOT EXISTS flow_definitions (
    arn TEXT PRIMARY KEY, region TEXT NOT NULL, name TEXT NOT NULL, created REAL NOT NULL, status TEXT NOT NULL,
    failure_reason TEXT, config TEXT NOT NULL, UNIQUE (region, name)
);
"""
# SageMaker's resource names; the model's patterns are not checked by botocore's validator.
_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")
_S3_PATH = re.compile(r"^s3://([^/]+)/?(.*)$")
UI_TEMPLATE_ROUTE = "/_localcloud/sagemaker/human-task-uis/"


def activation_seconds() -> float:
    return float(os.environ.get("LOCALCLOUD_A2I_ACTIVATION_SECONDS", "1.0"))


def created_now() -> float:
    """Now, to the millisecond AWS reports: a CreationTime read back and sent as a filter then compares equal."""
    return round(time.time(), 3)


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _check_name(value: str, what: str) -> None:
    if not _NAME.match(value):
        raise AwsError(
            "ValidationException",
            f"1 validation error detected: Value '{value}' at '{what}' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern: ^[a-z0-9](-*[a-z0-9]){0,62}",
        )


def split_s3_path(path: str) -> tuple[str, str]:
    """(bucket, prefix without a trailing slash) of an S3OutputPath."""
    match = _S3_PATH.match(path)
    if not match:
        raise AwsError("ValidationException", f"localcloud writes A2I output to s3:// paths only; got {path!r}.")
    return match.group(1), match.group(2).strip("/")


class A2IResources:
    """Flow definitions and human task UIs; mixed into :class:`SageMakerBackend`, which owns ``_store``."""

    _store: SqliteStore
    # Other services say here whether a flow definition is in use (the A2I runtime: loops in progress).
    flow_definition_users: list[Callable[[str], str | None]]

    # -- human task UIs ----------------------------------------------------------------------------
    def _ui_row(self, region: str, name: str) -> dict[str, Any]:
        rows = self._store.query("SELECT * FROM human_task_uis WHERE region = ? AND name = ?", (region, name))
        if not rows:
            raise AwsError("ResourceNotFound", f"Human task UI {name} does not exist.")
        return dict(rows[0])

    def create_human_task_ui(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, content = params["HumanTaskUiName"], params["UiTemplate"]["Content"]
        _check_name(name, "humanTaskUiName")
        if len(content) > 128_000:
            raise AwsError("ValidationException", "UiTemplate.Content must be at most 128000 characters.")
        arn = f"arn:aws:sagemaker:{ctx.region}:{ctx.account_id}:human-task-ui/{name}"
        digest = hashlib.sha256(content.encode()).hexdigest()
        with self._store.transaction() as db:
            if db.execute("SELECT 1 FROM human_task_uis WHERE region = ? AND name = ?", (ctx.region, name)).fetchone():
                raise AwsError("ResourceInUse", f"Human task UI {arn} already exists.")
            db.execute(
                "INSERT INTO human_task_uis VALUES (?, ?, ?, ?, ?, ?, ?)",
                (arn, ctx.region, name, created_now(), content, digest, json.dumps(params.get("Tags") or [])),
            )
        return {"HumanTaskUiArn": arn}

    def describe_human_task_ui(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._ui_row(ctx.region, params["HumanTaskUiName"])
        # Where the template can be read back as text (AWS answers an S3 URL); served by this service's web route.
        url = f"http://{ctx.host or '127.0.0.1'}{UI_TEMPLATE_ROUTE}{row['region']}/{row['name']}"
        return {
            "HumanTaskUiArn": row["arn"],
            "HumanTaskUiName": row["name"],
            "HumanTaskUiStatus": "Active",
            "CreationTime": _ts(row["created"]),
            "UiTemplate": {"Url": url, "ContentSha256": row["sha256"]},
        }

    def list_human_task_uis(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rows = [dict(r) for r in self._store.query("SELECT * FROM human_task_uis WHERE region = ?", (ctx.region,))]
        taken, more = paging.page(rows, params)
        summaries = [
            {"HumanTaskUiName": r["name"], "HumanTaskUiArn": r["arn"], "CreationTime": _ts(r["created"])} for r in taken
        ]
        return {"HumanTaskUiSummaries": summaries, **more}

    def delete_human_task_ui(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._ui_row(ctx.region, params["HumanTaskUiName"])
        with self._store.transaction() as db:
            db.execute("DELETE FROM human_task_uis WHERE arn = ?", (row["arn"],))
        return {}

    def human_task_ui_content(self, region: str, name: str) -> str | None:
        """The stored template text, for the web route that serves ``UiTemplate.Url``."""
        rows = self._store.query("SELECT content FROM human_task_uis WHERE region = ? AND name = ?", (region, name))
        return rows[0]["content"] if rows else None

    # -- flow definitions --------------------------------------------------------------------------
    def _settle_flow_definitions(self) -> None:
        """Finish the asynchronous validation of flow definitions whose time has come."""
        due = time.time() - activation_seconds()
        with self._store.transaction() as db:
            pending = db.execute(
                "SELECT arn, region, config FROM flow_definitions WHERE status = 'Initializing' AND created <= ?",
                (due,),
            ).fetchall()
            for row in pending:
                ui_arn = json.loads(row["config"])["HumanLoopConfig"]["HumanTaskUiArn"]
                if db.execute("SELECT 1 FROM human_task_uis WHERE arn = ?", (ui_arn,)).fetchone():
                    db.execute("UPDATE flow_definitions SET status = 'Active' WHERE arn = ?", (row["arn"],))
                else:
                    db.execute(
                        "UPDATE flow_definitions SET status = 'Failed', failure_reason = ? WHERE arn = ?",
                        (f"The human task UI {ui_arn} does not exist.", row["arn"]),
                    )

    def _flow_row(self, region: str, name: str) -> dict[str, Any]:
        self._settle_flow_definitions()
        rows = self._store.query("SELECT * FROM flow_definitions WHERE region = ? AND name = ?", (region, name))
        if not rows:
            raise AwsError("ResourceNotFound", f"Flow definition {name} does not exist.")
        return dict(rows[0])

    def create_flow_definition(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["FlowDefinitionName"]
        _check_name(name, "flowDefinitionName")
        if not params.get("HumanLoopConfig"):
            raise AwsError("ValidationException", "HumanLoopConfig is required.")
        split_s3_path(params["OutputConfig"]["S3OutputPath"])
        arn = f"arn:aws:sagemaker:{ctx.region}:{ctx.account_id}:flow-definition/{name}"
        config = {
            key: params[key]
            for key in (
                "HumanLoopRequestSource",
                "HumanLoopActivationConfig",
                "HumanLoopConfig",
                "OutputConfig",
                "RoleArn",
                "Tags",
            )
            if params.get(key) is not None
        }
        with self._store.transaction() as db:
            if db.execute(
                "SELECT 1 FROM flow_definitions WHERE region = ? AND name = ?", (ctx.region, name)
            ).fetchone():
                raise AwsError("ResourceInUse", f"Flow definition {arn} already exists.")
            db.execute(
                "INSERT INTO flow_definitions VALUES (?, ?, ?, ?, 'Initializing', NULL, ?)",
                (arn, ctx.region, name, created_now(), json.dumps(config)),
            )
        return {"FlowDefinitionArn": arn}

    @staticmethod
    def _describe_flow(row: dict[str, Any]) -> dict[str, Any]:
        config = json.loads(row["config"])
        return {
            "FlowDefinitionArn": row["arn"],
            "FlowDefinitionName": row["name"],
            "FlowDefinitionStatus": row["status"],
            "CreationTime": _ts(row["created"]),
            "FailureReason": row["failure_reason"],
            **{k: v for k, v in config.items() if k != "Tags"},
        }

    def describe_flow_definition(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._describe_flow(self._flow_row(ctx.region, params["FlowDefinitionName"]))

    def list_flow_definitions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._settle_flow_definitions()
        rows = [dict(r) for r in self._store.query("SELECT * FROM flow_definitions WHERE region = ?", (ctx.region,))]
        taken, more = paging.page(rows, params)
        summaries = [
            {
                "FlowDefinitionName": r["name"],
                "FlowDefinitionArn": r["arn"],
                "FlowDefinitionStatus": r["status"],
                "CreationTime": _ts(r["created"]),
                "FailureReason": r["failure_reason"],
            }
            for r in taken
        ]
        return {"FlowDefinitionSummaries": summaries, **more}

    def delete_flow_definition(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._flow_row(ctx.region, params["FlowDefinitionName"])
        for in_use in self.flow_definition_users:
            reason = in_use(row["arn"])
            if reason:
                raise AwsError("ResourceInUse", f"Flow definition {row['arn']} is in use: {reason}")
        with self._store.transaction() as db:
            db.execute("DELETE FROM flow_definitions WHERE arn = ?", (row["arn"],))
        return {}

    def flow_definition(self, arn: str) -> dict[str, Any] | None:
        """A flow definition as DescribeFlowDefinition tells it, by ARN, for the A2I runtime; None if unknown."""
        self._settle_flow_definitions()
        rows = self._store.query("SELECT * FROM flow_definitions WHERE arn = ?", (arn,))
        return self._describe_flow(dict(rows[0])) if rows else None
