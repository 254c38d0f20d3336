"""SageMaker notebook instances and their lifecycle configurations, with the tags the autostop DAG reads.

A notebook instance here is a record and a state machine, not a machine: nothing runs Jupyter and no lifecycle
script is executed (the scripts are stored and handed back, byte for byte, as AWS does). The states are AWS's:

    CreateNotebookInstance  -> Pending  -> InService
    StopNotebookInstance    (InService)          -> Stopping -> Stopped
    StartNotebookInstance   (Stopped, Failed)    -> Pending  -> InService
    UpdateNotebookInstance  (Stopped, Failed)    -> Updating -> Stopped
    DeleteNotebookInstance  (Stopped, Failed)    -> Deleting -> gone (DescribeNotebookInstance: RecordNotFound)

Each transition takes ``LOCALCLOUD_NOTEBOOK_TRANSITION_SECONDS`` (1 s by default). A transition's end is stored
as a due time and applied on the next read, so it survives a restart and needs no thread; LastModifiedTime is
the moment of the last state change, which is what AWS's own idle-stop sample reads as "last started".

Errors carry AWS's codes and wording where it is known: a transition from the wrong state answers
``ValidationException: Status (Stopped) not in ([InService]). Unable to transition to (Stopping) for Notebook
Instance (arn:...)``; an unknown instance ``ValidationException: RecordNotFound`` (what the botocore
``NotebookInstanceDeleted`` waiter waits for); an unknown lifecycle configuration ``ValidationException: Unable to
describe Notebook Instance Lifecycle Config '<arn>'. (Details: Notebook Instance Lifecycle Config does not
exist.)``. UpdateNotebookInstance's wrong-state wording and CreateNotebookInstance's answer for an unknown
lifecycle configuration follow the same patterns but are not confirmed against AWS. Deleting a lifecycle
configuration that instances still name is allowed, as nothing here says AWS refuses it.

Limits botocore's validator leaves to the service are checked here as AWS words them: name patterns, at most one
OnCreate and one OnStart hook, and a hook's (base64) content of at most 16384 characters.

ARNs are lower-cased, as AWS's are, so names differing only in case are the same resource.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sqlite3
import time
from typing import Any

from localcloud.core import AwsError, RequestContext, not_implemented
from localcloud.services.sagemaker import listing
from localcloud.services.sagemaker.jobs import check_name, now, ts
from localcloud.store import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS notebook_instances (
    arn TEXT PRIMARY KEY, region TEXT NOT NULL, name TEXT NOT NULL, created REAL NOT NULL, modified REAL NOT NULL,
    status TEXT NOT NULL, due REAL, lifecycle_config TEXT, config TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS notebook_lifecycle_configs (
    arn TEXT PRIMARY KEY, region TEXT NOT NULL, name TEXT NOT NULL, created REAL NOT NULL, modified REAL NOT NULL,
    on_create TEXT NOT NULL, on_start TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '[]'
);
"""
MAX_CONTENT = 16384  # characters of one hook's base64 content
# What the transient states settle into once their time is up (Deleting removes the row instead).
_SETTLES = {"Pending": "InService", "Stopping": "Stopped", "Updating": "Stopped"}
_CONFIG_KEYS = (
    "InstanceType",
    "RoleArn",
    "SubnetId",
    "SecurityGroupIds",
    "IpAddressType",
    "KmsKeyId",
    "DirectInternetAccess",
    "VolumeSizeInGB",
    "AcceleratorTypes",
    "DefaultCodeRepository",
    "AdditionalCodeRepositories",
    "RootAccess",
    "PlatformIdentifier",
    "InstanceMetadataServiceConfiguration",
)
_DEFAULTS = {
    "DirectInternetAccess": "Enabled",
    "VolumeSizeInGB": 5,
    "RootAccess": "Enabled",
    "IpAddressType": "ipv4",
    "PlatformIdentifier": "notebook-al2023-v1",
}
# UpdateNotebookInstance's Disassociate* flags and the members each one clears.
_DISASSOCIATE = {
    "DisassociateAcceleratorTypes": "AcceleratorTypes",
    "DisassociateDefaultCodeRepository": "DefaultCodeRepository",
    "DisassociateAdditionalCodeRepositories": "AdditionalCodeRepositories",
}
_INSTANCE_KEYS: dict[str, listing.Key] = {
    "Name": lambda r: (r["name"].lower(),),
    "CreationTime": lambda r: (r["created"],),
    "Status": lambda r: (r["status"],),
}
_CONFIG_SORT_KEYS: dict[str, listing.Key] = {
    "Name": lambda r: (r["name"].lower(),),
    "CreationTime": lambda r: (r["created"],),
    "LastModifiedTime": lambda r: (r["modified"],),
}


def transition_seconds() -> float:
    return max(float(os.environ.get("LOCALCLOUD_NOTEBOOK_TRANSITION_SECONDS", "1")), 0.0)


def instance_arn(ctx: RequestContext, name: str) -> str:
    return f"arn:aws:sagemaker:{ctx.region}:{ctx.account_id}:notebook-instance/{name.lower()}"


def lifecycle_config_arn(ctx: RequestContext, name: str) -> str:
    return f"arn:aws:sagemaker:{ctx.region}:{ctx.account_id}:notebook-instance-lifecycle-config/{name.lower()}"


def _record_not_found() -> AwsError:
    return AwsError("ValidationException", "RecordNotFound")


def _config_not_found(verb: str, arn: str) -> AwsError:
    return AwsError(
        "ValidationException",
        f"Unable to {verb} Notebook Instance Lifecycle Config '{arn}'. "
        "(Details: Notebook Instance Lifecycle Config does not exist.)",
    )


def _wrong_state(row: dict[str, Any], allowed: tuple[str, ...], target: str) -> AwsError:
    return AwsError(
        "ValidationException",
        f"Status ({row['status']}) not in ([{', '.join(allowed)}]). Unable to transition to ({target}) for "
        f"Notebook Instance ({row['arn']}).",
    )


def _check_hooks(params: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """OnCreate/OnStart as given, after the checks botocore's validator leaves to the service."""
    errors, hooks = [], {}
    for member in ("OnCreate", "OnStart"):
        given = params.get(member)
        hooks[member] = list(given or [])
        wire = member[0].lower() + member[1:]
        if given is not None and len(given) > 1:
            errors.append(
                f"Value '{given}' at '{wire}' failed to satisfy constraint: Member must have length less than or "
                "equal to 1"
            )
        for index, hook in enumerate(hooks[member], start=1):
            content = hook.get("Content", "")
            if len(content) > MAX_CONTENT:
                errors.append(
                    f"Value '{content[:32]}...' at '{wire}.{index}.member.content' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {MAX_CONTENT}"
                )
                continue
            try:
                base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                errors.append(f"Value at '{wire}.{index}.member.content' must be a base64-encoded script")
    if errors:
        count = "1 validation error" if len(errors) == 1 else f"{len(errors)} validation errors"
        raise AwsError("ValidationException", f"{count} detected: " + "; ".join(errors))
    return hooks


def _merge_tags(current: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    """AddTags: new keys are added and existing keys overwritten, keeping first-seen order."""
    merged = {t["Key"]: t.get("Value", "") for t in current}
    merged.update({t["Key"]: t.get("Value", "") for t in new})
    if len(merged) > 50:
        raise AwsError("ValidationException", "A resource can have at most 50 tags.")
    return [{"Key": k, "Value": v} for k, v in merged.items()]


class NotebookInstances:
    """Mixed into :class:`SageMakerBackend`, which owns ``_store``."""

    _store: SqliteStore

    # -- state --------------------------------------------------------------------------------------
    def _settle_notebooks(self) -> None:
        """Apply every transition whose time has come; each ends at its due time, not at this read."""
        moment = time.time()
        # Reads far outnumber transitions: take the write lock only when one is due.
        due = "SELECT 1 FROM notebook_instances WHERE due IS NOT NULL AND due <= ? LIMIT 1"
        if not self._store.query(due, (moment,)):
            return
        with self._store.transaction() as db:
            for before, after in _SETTLES.items():
                db.execute(
                    "UPDATE notebook_instances SET status = ?, modified = due, due = NULL "
                    "WHERE status = ? AND due IS NOT NULL AND due <= ?",
                    (after, before, moment),
                )
            db.execute("DELETE FROM notebook_instances WHERE status = 'Deleting' AND due <= ?", (moment,))

    def _instance(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        self._settle_notebooks()
        rows = self._store.query("SELECT * FROM notebook_instances WHERE arn = ?", (instance_arn(ctx, name),))
        if not rows:
            raise _record_not_found()
        return dict(rows[0])

    def _transition(
        self, row: dict[str, Any], allowed: tuple[str, ...], target: str, changes: dict[str, Any] | None = None
    ) -> None:
        """Move ``row`` into the transient state ``target`` if it is in one of ``allowed`` (checked atomically),
        storing ``changes`` (column: value) with it."""
        self._settle_notebooks()
        moment = now()
        with self._store.transaction() as db:
            current = db.execute("SELECT status FROM notebook_instances WHERE arn = ?", (row["arn"],)).fetchone()
            if current is None:
                raise _record_not_found()
            if current["status"] not in allowed:
                raise _wrong_state({**row, "status": current["status"]}, allowed, target)
            columns = {"status": target, "modified": moment, "due": moment + transition_seconds(), **(changes or {})}
            db.execute(
                f"UPDATE notebook_instances SET {', '.join(f'{c} = ?' for c in columns)} WHERE arn = ?",
                (*columns.values(), row["arn"]),
            )

    def _lifecycle_config(self, ctx: RequestContext, name: str, verb: str) -> dict[str, Any]:
        arn = lifecycle_config_arn(ctx, name)
        rows = self._store.query("SELECT * FROM notebook_lifecycle_configs WHERE arn = ?", (arn,))
        if not rows:
            raise _config_not_found(verb, arn)
        return dict(rows[0])

    # -- notebook instances -------------------------------------------------------------------------
    def create_notebook_instance(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["NotebookInstanceName"]
        check_name(name, "notebookInstanceName", 63)
        arn = instance_arn(ctx, name)
        lifecycle = params.get("LifecycleConfigName") or None
        if lifecycle:
            self._lifecycle_config(ctx, lifecycle, "describe")
        config = {**_DEFAULTS, **{k: params[k] for k in _CONFIG_KEYS if params.get(k) is not None}}
        moment = now()
        try:
            with self._store.transaction() as db:
                db.execute(
                    "INSERT INTO notebook_instances VALUES (?, ?, ?, ?, ?, 'Pending', ?, ?, ?, ?)",
                    (
                        arn,
                        ctx.region,
                        name,
                        moment,
                        moment,
                        moment + transition_seconds(),
                        lifecycle,
                        json.dumps(config),
                        json.dumps(_merge_tags([], params.get("Tags") or [])),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise AwsError("ValidationException", f"Cannot create a duplicate Notebook Instance ({arn})") from exc
        return {"NotebookInstanceArn": arn}

    @staticmethod
    def _url(row: dict[str, Any]) -> str:
        return f"{row['name'].lower()}.notebook.{row['region']}.sagemaker.aws"

    def describe_notebook_instance(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._instance(ctx, params["NotebookInstanceName"])
        config = json.loads(row["config"])
        security_groups = config.pop("SecurityGroupIds", None)
        return {
            "NotebookInstanceArn": row["arn"],
            "NotebookInstanceName": row["name"],
            "NotebookInstanceStatus": row["status"],
            "Url": self._url(row),
            "CreationTime": ts(row["created"]),
            "LastModifiedTime": ts(row["modified"]),
            "NotebookInstanceLifecycleConfigName": row["lifecycle_config"],
            **({"SecurityGroups": security_groups} if security_groups else {}),
            **config,
        }

    def list_notebook_instances(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._settle_notebooks()
        contains = (params.get("NameContains") or "").lower()
        config_contains = (params.get("NotebookInstanceLifecycleConfigNameContains") or "").lower()
        repo_contains = (params.get("DefaultCodeRepositoryContains") or "").lower()
        repo_equals = params.get("AdditionalCodeRepositoryEquals")
        rows = []
        for row in map(dict, self._store.query("SELECT * FROM notebook_instances WHERE region = ?", (ctx.region,))):
            config = json.loads(row["config"])
            if (
                contains in row["name"].lower()
                and params.get("StatusEquals") in (None, row["status"])
                and (not config_contains or config_contains in (row["lifecycle_config"] or "").lower())
                and (not repo_contains or repo_contains in (config.get("DefaultCodeRepository") or "").lower())
                and (repo_equals is None or repo_equals in (config.get("AdditionalCodeRepositories") or []))
                and listing.in_window(row, params)
            ):
                rows.append({**row, "config": config})
        taken, more = listing.page(rows, params, _INSTANCE_KEYS, default_sort="Name", default_order="Ascending")
        summaries = []
        for row in taken:
            config = row["config"]
            summaries.append(
                {
                    "NotebookInstanceName": row["name"],
                    "NotebookInstanceArn": row["arn"],
                    "NotebookInstanceStatus": row["status"],
                    "Url": self._url(row),
                    "InstanceType": config.get("InstanceType"),
                    "CreationTime": ts(row["created"]),
                    "LastModifiedTime": ts(row["modified"]),
                    "NotebookInstanceLifecycleConfigName": row["lifecycle_config"],
                    "DefaultCodeRepository": config.get("DefaultCodeRepository"),
                    "AdditionalCodeRepositories": config.get("AdditionalCodeRepositories"),
                }
            )
        return {"NotebookInstances": summaries, **more}

    def start_notebook_instance(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._transition(self._instance(ctx, params["NotebookInstanceName"]), ("Stopped", "Failed"), "Pending")
        return {}

    def stop_notebook_instance(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._transition(self._instance(ctx, params["NotebookInstanceName"]), ("InService",), "Stopping")
        return {}

    def delete_notebook_instance(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._transition(self._instance(ctx, params["NotebookInstanceName"]), ("Stopped", "Failed"), "Deleting")
        return {}

    def update_notebook_instance(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._instance(ctx, params["NotebookInstanceName"])
        allowed = ("Stopped", "Failed")
        if row["status"] not in allowed:
            raise _wrong_state(row, allowed, "Updating")
        lifecycle = row["lifecycle_config"]
        if params.get("DisassociateLifecycleConfig"):
            lifecycle = None
        elif params.get("LifecycleConfigName"):
            self._lifecycle_config(ctx, params["LifecycleConfigName"], "describe")
            lifecycle = params["LifecycleConfigName"]
        config = json.loads(row["config"])
        config.update({k: params[k] for k in _CONFIG_KEYS if params.get(k) is not None})
        for flag, member in _DISASSOCIATE.items():
            if params.get(flag):
                config.pop(member, None)
        self._transition(row, allowed, "Updating", {"lifecycle_config": lifecycle, "config": json.dumps(config)})
        return {}

    # -- lifecycle configurations -------------------------------------------------------------------
    def create_notebook_instance_lifecycle_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["NotebookInstanceLifecycleConfigName"]
        check_name(name, "notebookInstanceLifecycleConfigName", 63)
        hooks = _check_hooks(params)
        arn = lifecycle_config_arn(ctx, name)
        moment = now()
        try:
            with self._store.transaction() as db:
                db.execute(
                    "INSERT INTO notebook_lifecycle_configs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        arn,
                        ctx.region,
                        name,
                        moment,
                        moment,
                        json.dumps(hooks["OnCreate"]),
                        json.dumps(hooks["OnStart"]),
                        json.dumps(_merge_tags([], params.get("Tags") or [])),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise AwsError(
                "ValidationException",
                f"Unable to create Notebook Instance Lifecycle Config {arn}. "
                "(Details: Notebook Instance Lifecycle Config already exists.)",
            ) from exc
        return {"NotebookInstanceLifecycleConfigArn": arn}

    def describe_notebook_instance_lifecycle_config(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = self._lifecycle_config(ctx, params["NotebookInstanceLifecycleConfigName"], "describe")
        return {
            "NotebookInstanceLifecycleConfigArn": row["arn"],
            "NotebookInstanceLifecycleConfigName": row["name"],
            "OnCreate": json.loads(row["on_create"]),
            "OnStart": json.loads(row["on_start"]),
            "CreationTime": ts(row["created"]),
            "LastModifiedTime": ts(row["modified"]),
        }

    def update_notebook_instance_lifecycle_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._lifecycle_config(ctx, params["NotebookInstanceLifecycleConfigName"], "update")
        hooks = _check_hooks(params)
        # A hook left out of the request keeps its script; an empty list removes it.
        on_create = json.dumps(hooks["OnCreate"]) if params.get("OnCreate") is not None else row["on_create"]
        on_start = json.dumps(hooks["OnStart"]) if params.get("OnStart") is not None else row["on_start"]
        with self._store.transaction() as db:
            db.execute(
                "UPDATE notebook_lifecycle_configs SET on_create = ?, on_start = ?, modified = ? WHERE arn = ?",
                (on_create, on_start, now(), row["arn"]),
            )
        return {}

    def delete_notebook_instance_lifecycle_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._lifecycle_config(ctx, params["NotebookInstanceLifecycleConfigName"], "delete")
        with self._store.transaction() as db:
            db.execute("DELETE FROM notebook_lifecycle_configs WHERE arn = ?", (row["arn"],))
        return {}

    def list_notebook_instance_lifecycle_configs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        contains = (params.get("NameContains") or "").lower()
        rows = [
            dict(r)
            for r in self._store.query("SELECT * FROM notebook_lifecycle_configs WHERE region = ?", (ctx.region,))
            if contains in r["name"].lower()
        ]
        rows = [r for r in rows if listing.in_window(r, params)]
        taken, more = listing.page(
            rows, params, _CONFIG_SORT_KEYS, default_sort="CreationTime", default_order="Descending"
        )
        summaries = [
            {
                "NotebookInstanceLifecycleConfigName": r["name"],
                "NotebookInstanceLifecycleConfigArn": r["arn"],
                "CreationTime": ts(r["created"]),
                "LastModifiedTime": ts(r["modified"]),
            }
            for r in taken
        ]
        return {"NotebookInstanceLifecycleConfigs": summaries, **more}

    # -- tags (notebook instances and lifecycle configurations only) ---------------------------------
    def _tagged(self, ctx: RequestContext, arn: str) -> tuple[str, dict[str, Any]]:
        """(table, row) of the resource ``arn`` names; other SageMaker resources keep no tags here yet."""
        kind, _, name = arn.rpartition(":")[2].partition("/")
        if kind == "notebook-instance":
            return "notebook_instances", self._instance(ctx, name)
        if kind == "notebook-instance-lifecycle-config":
            return "notebook_lifecycle_configs", self._lifecycle_config(ctx, name, "describe")
        raise not_implemented("sagemaker", f"tags on {kind or arn} resources")

    def list_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        # At most 50 tags and MaxResults of at least 50: one page always holds them all.
        return {"Tags": json.loads(self._tagged(ctx, params["ResourceArn"])[1]["tags"])}

    def add_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        table, row = self._tagged(ctx, params["ResourceArn"])
        tags = _merge_tags(json.loads(row["tags"]), params["Tags"])
        with self._store.transaction() as db:
            db.execute(f"UPDATE {table} SET tags = ? WHERE arn = ?", (json.dumps(tags), row["arn"]))
        return {"Tags": params["Tags"]}

    def delete_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        table, row = self._tagged(ctx, params["ResourceArn"])
        tags = [t for t in json.loads(row["tags"]) if t["Key"] not in set(params["TagKeys"])]
        with self._store.transaction() as db:
            db.execute(f"UPDATE {table} SET tags = ? WHERE arn = ?", (json.dumps(tags), row["arn"]))
        return {}
