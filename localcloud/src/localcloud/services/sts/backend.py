"""STS: who the caller is, and temporary credentials for IAM roles (AssumeRole).

The local admin credentials are the account's principal, ``arn:aws:iam::<account>:root``. AssumeRole
checks the role's trust policy against the caller, then issues temporary credentials (``ASIA...`` key id,
secret, session token) kept in ``sts.sqlite`` until they expire. The server accepts requests signed with
them (see :meth:`StsBackend.session`), and the role's policies decide what those requests may do.
Services that run work as a user's role (Glue job runs) get their sessions from
:meth:`StsBackend.assume_role_for_service`, which checks the trust policy for the service principal instead.

``LOCALCLOUD_STS_MAX_SESSION_SECONDS`` is a localcloud-only testing hook: it caps every session's lifetime
(and the Expiration reported) so that expiry can be tested without waiting the 15-minute minimum.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from localcloud.core import AwsError, RequestContext
from localcloud.iam_policy import PolicyError, Principal, parse_policy, trust_allows
from localcloud.services.iam.backend import IamBackend, new_id, role_arn
from localcloud.store import SqliteStore

MAX_SESSION_ENV = "LOCALCLOUD_STS_MAX_SESSION_SECONDS"
DEFAULT_DURATION = 3600
CHAINED_MAX_DURATION = 3600  # a role session assuming another role gets at most an hour
SERVICE_MIN_DURATION, SERVICE_MAX_DURATION = 900, 43200  # STS's bounds for any role session
PACKED_POLICY_MAX = 2048  # the session policy's size budget; PackedPolicySize is a percentage of it

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    access_key_id TEXT PRIMARY KEY, secret TEXT NOT NULL, token TEXT NOT NULL, role_arn TEXT NOT NULL,
    role_name TEXT NOT NULL, role_id TEXT NOT NULL, session_name TEXT NOT NULL, policy TEXT,
    source_identity TEXT, issued TEXT NOT NULL, expires TEXT NOT NULL
);
"""
# Parameters AWS accepts that localcloud cannot honour yet: refused, never silently ignored.
_UNSUPPORTED = ("PolicyArns", "Tags", "TransitiveTagKeys", "SerialNumber", "TokenCode", "ProvidedContexts")


@dataclass(frozen=True)
class Session:
    """A set of temporary credentials and the role session they stand for."""

    principal: Principal
    secret_access_key: str
    session_token: str
    expires: datetime


def unknown_token(service: str) -> AwsError:
    """A wrong session token for a known temporary key: each service family words it its own way."""
    if service == "s3":
        return AwsError("InvalidToken", "The provided token is malformed or otherwise invalid.", 400)
    if service in ("sts", "iam"):
        return AwsError("InvalidClientTokenId", "The security token included in the request is invalid.", 403)
    return AwsError("UnrecognizedClientException", "The security token included in the request is invalid.", 400)


def expired_token(service: str) -> AwsError:
    # botocore's refreshable credentials and retry logic key on these codes.
    if service == "s3":
        return AwsError("ExpiredToken", "The provided token has expired.", 400)
    if service in ("sts", "iam"):
        return AwsError("ExpiredToken", "The security token included in the request is expired", 403)
    return AwsError("ExpiredTokenException", "The security token included in the request is expired", 400)


def _parse_role_arn(arn: str) -> tuple[str, str, str] | None:
    """(account, path, name) of ``arn:aws:iam::<account>:role/<path...>/<name>``, or None."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "iam"] or not parts[5].startswith("role/"):
        return None
    full = parts[5][len("role") :]
    path, _, name = full.rpartition("/")
    return (parts[4], path + "/", name) if name else None


class StsBackend:
    def __init__(self, data_dir: Path, iam: IamBackend, clock: Callable[[], datetime] | None = None) -> None:
        self.store = SqliteStore(Path(data_dir) / "sts.sqlite", SCHEMA)
        self.iam = iam
        # Tests may move time; the server itself always uses the real clock.
        self.clock = clock or (lambda: datetime.now(UTC))

    def close(self) -> None:
        self.store.close()

    def now(self) -> datetime:
        return self.clock()

    def check_session_token(self, service: str, session: Session, token: str) -> None:
        """A request signed with temporary credentials must carry their session token, before they expire; the
        error is worded as ``service`` words it."""
        if not hmac.compare_digest(token, session.session_token):
            raise unknown_token(service)
        if self.now() >= session.expires:
            raise expired_token(service)

    def session(self, access_key_id: str) -> Session | None:
        """The session a temporary access key id belongs to (expired ones included; the caller checks)."""
        rows = self.store.query("SELECT * FROM sessions WHERE access_key_id = ?", (access_key_id,))
        if not rows:
            return None
        row = rows[0]
        account = row["role_arn"].split(":")[4]
        principal = Principal(
            arn=f"arn:aws:sts::{account}:assumed-role/{row['role_name']}/{row['session_name']}",
            role_arn=row["role_arn"],
            role_name=row["role_name"],
            role_id=row["role_id"],
            session_name=row["session_name"],
            access_key_id=row["access_key_id"],
            account=account,
            session_policy=row["policy"],
            source_identity=row["source_identity"],
        )
        return Session(principal, row["secret"], row["token"], datetime.fromisoformat(row["expires"]))

    # -- operations --------------------------------------------------------------------------------------
    def get_caller_identity(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        principal: Principal | None = ctx.principal
        if principal is not None:
            return {"UserId": principal.user_id, "Account": principal.account, "Arn": principal.arn}
        return {
            "UserId": ctx.access_key_id,
            "Account": ctx.account_id,
            "Arn": f"arn:aws:iam::{ctx.account_id}:root",
        }

    def assume_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        for name in _UNSUPPORTED:
            if params.get(name):
                raise AwsError("NotImplemented", f"localcloud's sts does not support AssumeRole's {name} yet.", 501)
        caller: Principal | None = ctx.principal
        caller_arn = caller.arn if caller else f"arn:aws:iam::{ctx.account_id}:root"
        arn, session_name = params["RoleArn"], params["RoleSessionName"]
        # AWS answers a role that does not exist exactly like one that does not trust the caller.
        denied = AwsError(
            "AccessDenied", f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {arn}", 403
        )
        parsed = _parse_role_arn(arn)
        if parsed is None:
            raise AwsError("ValidationError", f"{arn} is invalid")
        account, path, role_name = parsed
        row = self.iam.role_row(role_name)
        if account != ctx.account_id or row is None or row["path"] != path or row["name"] != role_name:
            raise denied
        context = {
            "aws:PrincipalArn": caller.role_arn if caller else caller_arn,
            "aws:PrincipalAccount": ctx.account_id,
            "aws:PrincipalType": "AssumedRole" if caller else "Account",
            "sts:RoleSessionName": session_name,
            "sts:ExternalId": params.get("ExternalId"),
            "sts:SourceIdentity": params.get("SourceIdentity"),
        }
        callers = [caller_arn, caller.role_arn] if caller else [caller_arn]
        if not trust_allows(parse_policy(row["trust"], "trust"), callers, ctx.account_id, context):
            raise denied
        duration = params.get("DurationSeconds", DEFAULT_DURATION)
        if caller is not None and duration > CHAINED_MAX_DURATION:
            raise AwsError(
                "ValidationError",
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
            )
        if duration > row["max_session"]:
            raise AwsError(
                "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            )
        policy = params.get("Policy")
        packed = None
        if policy is not None:
            try:
                parse_policy(policy, "session")
            except PolicyError as exc:
                raise AwsError("MalformedPolicyDocument", str(exc)) from None
            packed = len(json.dumps(json.loads(policy), separators=(",", ":"))) * 100 // PACKED_POLICY_MAX
            if packed > 100:
                raise AwsError(
                    "PackedPolicyTooLarge", f"Packed size of consumed provided policies exceeds 100% ({packed}%)."
                )
        out = self._issue(row, arn, session_name, duration, ctx.account_id, policy, params.get("SourceIdentity"))
        if packed is not None:
            out["PackedPolicySize"] = packed
        if params.get("SourceIdentity"):
            out["SourceIdentity"] = params["SourceIdentity"]
        return out

    def _issue(
        self,
        row: Any,
        arn: str,
        session_name: str,
        duration: int,
        account: str,
        policy: str | None = None,
        source_identity: str | None = None,
    ) -> dict[str, Any]:
        """Store a new session for the role ``row`` and answer AssumeRole's Credentials and AssumedRoleUser."""
        cap = os.environ.get(MAX_SESSION_ENV)
        lifetime = min(duration, int(cap)) if cap else duration
        now = self.now()
        expires = now + timedelta(seconds=lifetime)  # reported to the second, below, and never later
        key = new_id("ASIA", 20)
        secret = base64.b64encode(secrets.token_bytes(30)).decode()  # 40 characters, like AWS's
        token = "IQoJb3JpZ2luX2Vj" + base64.b64encode(secrets.token_bytes(240)).decode()
        with self.store.transaction() as db:
            # Keep the table small: a day after expiry nobody can use a session any more.
            db.execute("DELETE FROM sessions WHERE expires < ?", ((now - timedelta(days=1)).isoformat(),))
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    secret,
                    token,
                    arn,
                    row["name"],
                    row["role_id"],
                    session_name,
                    policy,
                    source_identity,
                    now.isoformat(),
                    expires.isoformat(),
                ),
            )
        return {
            "Credentials": {
                "AccessKeyId": key,
                "SecretAccessKey": secret,
                "SessionToken": token,
                "Expiration": expires.replace(microsecond=0),
            },
            "AssumedRoleUser": {
                "AssumedRoleId": f"{row['role_id']}:{session_name}",
                "Arn": f"arn:aws:sts::{account}:assumed-role/{row['name']}/{session_name}",
            },
        }

    def assume_role_for_service(
        self,
        role: str,
        service: str,
        session_name: str,
        duration: int,
        account: str,
        context: dict[str, Any] | None = None,
        policy: str | None = None,
    ) -> dict[str, Any]:
        """Credentials for ``role`` (a role ARN, or a bare name as Glue accepts) issued to an AWS service
        principal (``glue.amazonaws.com``) that runs work as the role, the way AWS services assume a user's
        role on their behalf. The role's trust policy must allow that service principal. A session ``policy``
        (Glue's ExecutionRoleSessionPolicy) narrows the session as AssumeRole's Policy does; the caller checks it.

        ``duration`` is clamped to STS's 15 minutes .. 12 hours, not to the role's MaxSessionDuration: on AWS
        the service refreshes its session for as long as the work runs, here one session covers it all.
        Raises AccessDenied, with the reason in the message, when the role is missing or does not trust the
        service.
        """
        if role.startswith("arn:"):
            parsed = _parse_role_arn(role)
            if parsed is None:
                raise AwsError("ValidationError", f"{role} is not a valid IAM role ARN.")
            role_account, path, role_name = parsed
        else:
            role_account, path, role_name = account, None, role
        row = self.iam.role_row(role_name)
        if role_account != account or row is None or (path is not None and row["path"] != path):
            raise AwsError("AccessDenied", f"The role {role} does not exist in account {account}.", 403)
        arn = role_arn(account, row["path"], row["name"])
        trust_context = {"aws:PrincipalServiceName": service, "aws:SourceAccount": account, **(context or {})}
        if not trust_allows(parse_policy(row["trust"], "trust"), [], account, trust_context, service=service):
            raise AwsError(
                "AccessDenied",
                f"Service {service} is not authorized to perform: sts:AssumeRole on resource: {arn}: the role's "
                f'trust policy must allow {{"Principal": {{"Service": "{service}"}}, "Action": "sts:AssumeRole"}}.',
                403,
            )
        lifetime = max(min(duration, SERVICE_MAX_DURATION), SERVICE_MIN_DURATION)
        return self._issue(row, arn, session_name, lifetime, account, policy)
