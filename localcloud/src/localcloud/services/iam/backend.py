"""IAM roles and their inline policies, in SQLite.

Enough of IAM for role-based access: roles with a trust policy (who may assume them), inline policies
(what their sessions may do) and tags. Policy documents are validated as IAM does when they are stored
(``MalformedPolicyDocument``), and returned URL-encoded as IAM returns them (botocore decodes them back).
Role names are unique regardless of case, as on AWS.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from localcloud.core import AwsError, RequestContext
from localcloud.iam_policy import PolicyError, PolicyKind, parse_policy
from localcloud.store import SqliteStore

# IAM's limits: aggregate inline policy size per role, session duration bounds, tags per role.
MAX_INLINE_POLICY_BYTES = 10_240
DEFAULT_MAX_SESSION_DURATION = 3600
MAX_TAGS = 50
DEFAULT_MAX_ITEMS = 100
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

SCHEMA = """
CREATE TABLE IF NOT EXISTS roles (
    name TEXT PRIMARY KEY COLLATE NOCASE, role_id TEXT NOT NULL, path TEXT NOT NULL, created TEXT NOT NULL,
    trust TEXT NOT NULL, description TEXT, max_session INTEGER NOT NULL, tags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS role_policies (
    role_name TEXT NOT NULL COLLATE NOCASE, policy_name TEXT NOT NULL, document TEXT NOT NULL,
    PRIMARY KEY (role_name, policy_name)
);
"""


def new_id(prefix: str, length: int = 21) -> str:
    """An IAM-style unique id (``AROA...`` for roles), 21 characters like AWS's."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length - len(prefix)))


def role_arn(account: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role{path}{name}"


def _no_such_role(name: str) -> AwsError:
    return AwsError("NoSuchEntity", f"The role with name {name} cannot be found.", 404)


def _malformed(exc: PolicyError) -> AwsError:
    return AwsError("MalformedPolicyDocument", str(exc), 400)


def _validated(document: str, kind: PolicyKind) -> str:
    """Validate ``document`` and return it as sent (IAM keeps the text, whitespace included)."""
    try:
        parse_policy(document, kind)
    except PolicyError as exc:
        raise _malformed(exc) from None
    return document


def _page(items: list[Any], params: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """IAM's Marker/MaxItems paging; the marker is the index of the next item."""
    start = 0
    if params.get("Marker"):
        try:
            start = int(params["Marker"])
        except ValueError:
            raise AwsError("ValidationError", "Invalid Marker.") from None
    size = int(params.get("MaxItems") or DEFAULT_MAX_ITEMS)
    page = items[start : start + size]
    more = start + size < len(items)
    return page, ({"IsTruncated": True, "Marker": str(start + size)} if more else {"IsTruncated": False})


class IamBackend:
    def __init__(self, data_dir: Path) -> None:
        self.store = SqliteStore(Path(data_dir) / "iam.sqlite", SCHEMA)

    def close(self) -> None:
        self.store.close()

    # -- what STS and the authorizer read ---------------------------------------------------------------
    def role_row(self, name: str) -> sqlite3.Row | None:
        rows = self.store.query("SELECT * FROM roles WHERE name = ?", (name,))
        return rows[0] if rows else None

    def role_policy_documents(self, name: str, role_id: str) -> list[str]:
        """The inline policies of the role ``name`` if it is still the role ``role_id`` (a role deleted and
        created again under the same name is a different role, and its policies do not apply to old sessions)."""
        row = self.role_row(name)
        if row is None or row["role_id"] != role_id:
            return []
        return [
            r["document"] for r in self.store.query("SELECT document FROM role_policies WHERE role_name = ?", (name,))
        ]

    # -- roles -------------------------------------------------------------------------------------------
    def _role(self, ctx: RequestContext, row: sqlite3.Row, *, with_tags: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Path": row["path"],
            "RoleName": row["name"],
            "RoleId": row["role_id"],
            "Arn": role_arn(ctx.account_id, row["path"], row["name"]),
            "CreateDate": datetime.fromisoformat(row["created"]),
            "AssumeRolePolicyDocument": quote(row["trust"]),
            "MaxSessionDuration": row["max_session"],
        }
        if row["description"] is not None:
            out["Description"] = row["description"]
        tags = json.loads(row["tags"])
        if with_tags and tags:
            out["Tags"] = tags
        return out

    def _existing(self, name: str) -> sqlite3.Row:
        row = self.role_row(name)
        if row is None:
            raise _no_such_role(name)
        return row

    def create_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["RoleName"]
        path = params.get("Path") or "/"
        if not (path.startswith("/") and path.endswith("/")):
            raise AwsError("ValidationError", "The specified value for path is invalid. It must begin and end with /.")
        if params.get("PermissionsBoundary"):
            raise AwsError("NotImplemented", "localcloud's iam does not evaluate permissions boundaries yet.", 501)
        trust = _validated(params["AssumeRolePolicyDocument"], "trust")
        max_session = params.get("MaxSessionDuration", DEFAULT_MAX_SESSION_DURATION)
        tags = self._checked_tags(params.get("Tags") or [])
        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        with self.store.transaction() as db:
            if db.execute("SELECT 1 FROM roles WHERE name = ?", (name,)).fetchone():
                raise AwsError("EntityAlreadyExists", f"Role with name {name} already exists.", 409)
            db.execute(
                "INSERT INTO roles VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, new_id("AROA"), path, now, trust, params.get("Description"), max_session, json.dumps(tags)),
            )
        return {"Role": self._role(ctx, self._existing(name))}

    def get_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Role": self._role(ctx, self._existing(params["RoleName"]))}

    def list_roles(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        rows = [r for r in self.store.query("SELECT * FROM roles ORDER BY name") if r["path"].startswith(prefix)]
        page, more = _page(rows, params)
        # ListRoles leaves tags out, as AWS does (ListRoleTags/GetRole carry them).
        return {"Roles": [self._role(ctx, r, with_tags=False) for r in page], **more}

    def update_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._existing(params["RoleName"])
        with self.store.transaction() as db:
            db.execute(
                "UPDATE roles SET description = ?, max_session = ? WHERE name = ?",
                (
                    params.get("Description", row["description"]),
                    params.get("MaxSessionDuration", row["max_session"]),
                    row["name"],
                ),
            )
        return {}

    def update_assume_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._existing(params["RoleName"])
        trust = _validated(params["PolicyDocument"], "trust")
        with self.store.transaction() as db:
            db.execute("UPDATE roles SET trust = ? WHERE name = ?", (trust, row["name"]))
        return {}

    def delete_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["RoleName"]
        with self.store.transaction() as db:
            if not db.execute("SELECT 1 FROM roles WHERE name = ?", (name,)).fetchone():
                raise _no_such_role(name)
            if db.execute("SELECT 1 FROM role_policies WHERE role_name = ?", (name,)).fetchone():
                raise AwsError("DeleteConflict", "Cannot delete entity, must delete policies first.", 409)
            db.execute("DELETE FROM roles WHERE name = ?", (name,))
        return {}

    # -- inline policies ---------------------------------------------------------------------------------
    def put_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._existing(params["RoleName"])
        document = _validated(params["PolicyDocument"], "identity")
        policy = params["PolicyName"]
        with self.store.transaction() as db:
            others = db.execute(
                "SELECT document FROM role_policies WHERE role_name = ? AND policy_name != ?", (row["name"], policy)
            ).fetchall()
            # IAM counts the aggregate size without whitespace.
            total = sum(len("".join(r["document"].split())) for r in others) + len("".join(document.split()))
            if total > MAX_INLINE_POLICY_BYTES:
                raise AwsError(
                    "LimitExceeded",
                    f"Maximum policy size of {MAX_INLINE_POLICY_BYTES} bytes exceeded for role {row['name']}",
                    409,
                )
            db.execute(
                "INSERT INTO role_policies VALUES (?, ?, ?) "
                "ON CONFLICT (role_name, policy_name) DO UPDATE SET document = excluded.document",
                (row["name"], policy, document),
            )
        return {}

    def get_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._existing(params["RoleName"])
        found = self.store.query(
            "SELECT document FROM role_policies WHERE role_name = ? AND policy_name = ?",
            (row["name"], params["PolicyName"]),
        )
        if not found:
            raise AwsError(
                "NoSuchEntity",
                f"The role policy with name {params['PolicyName']} cannot be found.",
                404,
            )
        return {
            "RoleName": row["name"],
            "PolicyName": params["PolicyName"],
            "PolicyDocument": quote(found[0]["document"]),
        }

    def delete_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._existing(params["RoleName"])
        with self.store.transaction() as db:
            gone = db.execute(
                "DELETE FROM role_policies WHERE role_name = ? AND policy_name = ?", (row["name"], params["PolicyName"])
            ).rowcount
        if not gone:
            raise AwsError("NoSuchEntity", f"The role policy with name {params['PolicyName']} cannot be found.", 404)
        return {}

    def list_role_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._existing(params["RoleName"])
        names = [
            r["policy_name"]
            for r in self.store.query(
                "SELECT policy_name FROM role_policies WHERE role_name = ? ORDER BY policy_name", (row["name"],)
            )
        ]
        page, more = _page(names, params)
        return {"PolicyNames": page, **more}

    # -- tags --------------------------------------------------------------------------------------------
    @staticmethod
    def _checked_tags(tags: list[dict[str, str]], existing: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
        merged = {t["Key"]: t["Value"] for t in existing or []}
        keys = [t["Key"] for t in tags]
        if len(set(k.lower() for k in keys)) != len(keys):
            raise AwsError("InvalidInput", "Duplicate tag keys found. Please note that Tag keys are case insensitive.")
        merged.update({t["Key"]: t["Value"] for t in tags})
        if len(merged) > MAX_TAGS:
            raise AwsError("LimitExceeded", f"The number of tags has reached the maximum limit of {MAX_TAGS}.", 409)
        return [{"Key": k, "Value": v} for k, v in merged.items()]

    def tag_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._existing(params["RoleName"])
        tags = self._checked_tags(params["Tags"], json.loads(row["tags"]))
        with self.store.transaction() as db:
            db.execute("UPDATE roles SET tags = ? WHERE name = ?", (json.dumps(tags), row["name"]))
        return {}

    def untag_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._existing(params["RoleName"])
        drop = set(params["TagKeys"])
        tags = [t for t in json.loads(row["tags"]) if t["Key"] not in drop]
        with self.store.transaction() as db:
            db.execute("UPDATE roles SET tags = ? WHERE name = ?", (json.dumps(tags), row["name"]))
        return {}

    def list_role_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._existing(params["RoleName"])
        page, more = _page(json.loads(row["tags"]), params)
        return {"Tags": page, **more}
