"""IAM policy documents for localcloud: parsing and validation, evaluation, and the mapping from an API
request to the IAM action(s) and resource ARN(s) it needs.

Requests signed with the local admin credentials are the account root and are never evaluated (so nothing
that worked before changes). Requests signed with temporary credentials from STS AssumeRole are: the role's
inline policies, intersected with the session policy when one was passed, decide; an explicit ``Deny``
anywhere wins, and nothing is allowed by default. That is AWS's evaluation logic for a same-account role
session without resource policies, permission boundaries or SCPs (which localcloud does not have).

:func:`request_targets` is pure and public so that tests can map calls they recorded (botocore's
``service``/``operation``/``params``) to the permissions those calls need, exactly as the server does.
The optional audit log (``LOCALCLOUD_IAM_AUDIT_LOG=<path>``, JSON lines) records every decision.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from localcloud import iam_mapping
from localcloud.core import DEFAULT_REGION, LOCAL_ACCOUNT_ID, AwsError
from localcloud.iam_targets import Target

AUDIT_LOG_ENV = "LOCALCLOUD_IAM_AUDIT_LOG"
VERSIONS = ("2012-10-17", "2008-10-17")
PolicyKind = Literal["identity", "trust", "session"]


class PolicyError(ValueError):
    """A policy document IAM would refuse (``MalformedPolicyDocument``); the message is AWS's wording."""


class UnmappedRequest(LookupError):
    """The request's service has no action/resource mapping yet, so it cannot be authorized."""


# -- documents ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    operator: str  # as written, e.g. "ForAnyValue:StringLikeIfExists"
    key: str  # lower-case: condition keys are case-insensitive
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] | None = None
    principals: Mapping[str, tuple[str, ...]] | None = None  # {"AWS": (...), "Service": (...)}; "*" is {"*": ("*",)}
    conditions: tuple[Condition, ...] = ()
    sid: str = ""


@dataclass(frozen=True)
class Policy:
    version: str
    statements: tuple[Statement, ...]

    @property
    def variables(self) -> bool:
        # Policy variables (${aws:userid}) are only substituted in version 2012-10-17 documents.
        return self.version == "2012-10-17"


_BASE_OPERATORS = {
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike",
    "StringNotLike", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "NumericEquals", "NumericNotEquals",
    "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals",
    "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals", "Bool",
    "IpAddress", "NotIpAddress", "Null",
}  # fmt: skip
# Operators AWS has that localcloud does not evaluate: refused when a policy is stored, never guessed at.
_UNSUPPORTED_OPERATORS = {"BinaryEquals"}
_NEGATED = {
    "StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike",
    "NumericNotEquals", "DateNotEquals", "NotIpAddress",
}  # fmt: skip
_STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal"}


def _strings(value: Any, what: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise PolicyError(f"Syntax errors in policy. {what} must be a string or a non-empty list of strings.")
    return tuple(items)


def _condition_values(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            out.append(str(item))
        else:
            raise PolicyError("Syntax errors in policy. Condition values must be strings, numbers or booleans.")
    return tuple(out)


def _split_operator(operator: str) -> tuple[str | None, str, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> ("ForAnyValue", "StringLike", True)."""
    qualifier, _, base = operator.rpartition(":")
    if qualifier and qualifier not in ("ForAnyValue", "ForAllValues"):
        raise PolicyError(f"Invalid Condition type : {operator}.")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    return qualifier or None, base, if_exists


def _parse_conditions(block: Any) -> tuple[Condition, ...]:
    if not isinstance(block, dict):
        raise PolicyError("Syntax errors in policy. Condition must be an object.")
    out = []
    for operator, entries in block.items():
        _, base, _ = _split_operator(operator)
        if base in _UNSUPPORTED_OPERATORS:
            raise PolicyError(f"localcloud does not evaluate the condition operator {base} (valid on AWS).")
        if base not in _BASE_OPERATORS:
            raise PolicyError(f"Invalid Condition type : {operator}.")
        if not isinstance(entries, dict) or not entries:
            raise PolicyError(f"Syntax errors in policy. Condition {operator} must map keys to values.")
        for key, value in entries.items():
            if ":" not in key:
                raise PolicyError("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
            out.append(Condition(operator, key.lower(), _condition_values(value)))
    return tuple(out)


def _parse_principal(value: Any) -> Mapping[str, tuple[str, ...]]:
    if value == "*":
        return {"*": ("*",)}
    if not isinstance(value, dict) or not value:
        raise PolicyError("Invalid principal in policy")
    out = {}
    for kind, ids in value.items():
        if kind not in ("AWS", "Service", "Federated", "CanonicalUser"):
            raise PolicyError(f'Invalid principal in policy: "{kind}"')
        out[kind] = _strings(ids, "Principal")
    return out


def _parse_statement(raw: Any, kind: PolicyKind) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError("Syntax errors in policy.")
    unknown = set(raw) - _STATEMENT_KEYS - {"Condition"}
    if unknown:
        raise PolicyError(f"Syntax errors in policy. Unknown field {sorted(unknown)[0]}.")
    if "Effect" not in raw:
        raise PolicyError("Missing required field Effect")
    effect = raw["Effect"]
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"Invalid effect: {effect}")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError("Missing required field Action" if "Action" not in raw else "Syntax errors in policy.")
    if "NotPrincipal" in raw:
        raise PolicyError("localcloud does not evaluate NotPrincipal (valid on AWS in some policies).")
    principals = None
    if kind == "trust":
        if "Principal" not in raw:
            raise PolicyError("Missing required field Principal")
        if "Resource" in raw or "NotResource" in raw:
            raise PolicyError("Has prohibited field Resource")
        principals = _parse_principal(raw["Principal"])
    else:
        if "Principal" in raw:
            raise PolicyError("Policy document should not specify a principal.")
        if ("Resource" in raw) == ("NotResource" in raw):
            raise PolicyError(
                "Missing required field Resource" if "Resource" not in raw else "Syntax errors in policy."
            )
    actions = _strings(raw["Action"], "Action") if "Action" in raw else ()
    not_actions = _strings(raw["NotAction"], "NotAction") if "NotAction" in raw else None
    for action in (*actions, *(not_actions or ())):
        if action != "*" and ":" not in action:
            raise PolicyError("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
    resources = _strings(raw["Resource"], "Resource") if "Resource" in raw else ()
    not_resources = _strings(raw["NotResource"], "NotResource") if "NotResource" in raw else None
    for resource in (*resources, *(not_resources or ())):
        if resource != "*" and not resource.startswith("arn:"):
            raise PolicyError(f'Resource {resource} must be in ARN format or "*".')
    sid = raw.get("Sid", "")
    if not isinstance(sid, str):
        raise PolicyError("Syntax errors in policy. Sid must be a string.")
    conditions = _parse_conditions(raw["Condition"]) if "Condition" in raw else ()
    return Statement(effect, actions, not_actions, resources, not_resources, principals, conditions, sid)


@lru_cache(maxsize=1024)
def _parse_text(text: str, kind: PolicyKind) -> Policy:
    try:
        document = json.loads(text)
    except ValueError:
        raise PolicyError("Syntax errors in policy.") from None
    if not isinstance(document, dict):
        raise PolicyError("Syntax errors in policy.")
    if set(document) - {"Version", "Id", "Statement"}:
        raise PolicyError("Syntax errors in policy.")
    # Without Version AWS applies the 2008 language (no policy variables), as here.
    version = document.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise PolicyError("The policy must contain a valid version string")
    if "Statement" not in document:
        raise PolicyError("Missing required field Statement")
    raw = document["Statement"]
    raws = [raw] if isinstance(raw, dict) else raw
    if not isinstance(raws, list) or not raws:
        raise PolicyError("Syntax errors in policy.")
    return Policy(version, tuple(_parse_statement(s, kind) for s in raws))


def parse_policy(document: str | Mapping[str, Any], kind: PolicyKind = "identity") -> Policy:
    """Parse and validate a policy document; raise :class:`PolicyError` with IAM's message when invalid.

    ``kind`` picks the grammar: ``identity`` and ``session`` policies need ``Resource`` and may not name
    a ``Principal``; ``trust`` policies (a role's AssumeRolePolicyDocument) need ``Principal`` instead.
    """
    text = document if isinstance(document, str) else json.dumps(document)
    return _parse_text(text, kind)


# -- matching ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` any one character."""
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    # Action names are case-insensitive ("s3:getobject" matches s3:GetObject).
    return glob_match(pattern, action, ignore_case=True)


def arn_matches(pattern: str, arn: str) -> bool:
    """Match an ARN pattern part by part, so that a wildcard in the service, region or account field
    does not run into the next field, while one in the resource part may span ``/`` and ``:``."""
    if pattern == "*":
        return True
    want, have = pattern.split(":", 5), arn.split(":", 5)
    if len(want) < 6 or len(have) < 6:
        return glob_match(pattern, arn)
    return all(glob_match(w, h) for w, h in zip(want, have, strict=True))


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _substitute(text: str, context: Mapping[str, Any], enabled: bool) -> str | None:
    """Replace ``${key}`` policy variables; None when one names a key the request does not have."""
    if not enabled or "${" not in text:
        return text
    missing = False

    def one(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name in ("*", "?", "$"):
            return name
        value = context.get(name.lower())
        if value is None or isinstance(value, list | tuple):
            missing = True
            return ""
        return str(value)

    out = _VARIABLE.sub(one, text)
    return None if missing else out


def _scalar_match(base: str, have: str, want: str) -> bool:
    """Does one request value satisfy one policy value under the positive form of ``base``?"""
    positive = base.replace("Not", "", 1) if base in _NEGATED else base
    if positive == "StringEquals":
        return have == want
    if positive == "StringEqualsIgnoreCase":
        return have.lower() == want.lower()
    if positive in ("StringLike",):
        return glob_match(want, have)
    if positive in ("ArnEquals", "ArnLike"):
        return arn_matches(want, have)
    if positive == "Bool":
        return have.lower() == want.lower()
    if positive.startswith("Numeric"):
        try:
            a, b = float(have), float(want)
        except ValueError:
            return False
        return _compare(positive[len("Numeric") :], a, b)
    if positive.startswith("Date"):
        try:
            a, b = _epoch(have), _epoch(want)
        except ValueError:
            return False
        return _compare(positive[len("Date") :], a, b)
    if positive == "IpAddress":
        try:
            return ipaddress.ip_address(have) in ipaddress.ip_network(want, strict=False)
        except ValueError:
            return False
    raise PolicyError(f"Invalid Condition type : {base}.")


def _compare(relation: str, a: float, b: float) -> bool:
    return {
        "Equals": a == b,
        "LessThan": a < b,
        "LessThanEquals": a <= b,
        "GreaterThan": a > b,
        "GreaterThanEquals": a >= b,
    }[relation]


def _epoch(value: str) -> float:
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def condition_matches(condition: Condition, context: Mapping[str, Any], variables: bool = True) -> bool:
    """One condition block entry against the request context, with AWS's rules for absent keys:
    an absent key fails a positive operator, satisfies a negated one, and satisfies any ``...IfExists``."""
    qualifier, base, if_exists = _split_operator(condition.operator)
    raw = context.get(condition.key)
    present = raw is not None and raw != [] and raw != ()
    if base == "Null":
        return any((v.lower() == "true") == (not present) for v in condition.values)
    if not present:
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return if_exists or base in _NEGATED
    have = [
        str(v).lower() if isinstance(v, bool) else str(v) for v in (raw if isinstance(raw, list | tuple) else [raw])
    ]
    wants = [w for w in (_substitute(v, context, variables) for v in condition.values) if w is not None]

    def satisfied(value: str) -> bool:
        hit = any(_scalar_match(base, value, w) for w in wants)
        return not hit if base in _NEGATED else hit

    if qualifier == "ForAllValues":
        return all(satisfied(v) for v in have)
    if base in _NEGATED and qualifier is None:
        # A negated operator on a (possibly multi-valued) key: no request value may match a policy value.
        return all(satisfied(v) for v in have)
    return any(satisfied(v) for v in have)


def statement_applies(statement: Statement, policy: Policy, action: str, resource: str, context: Mapping) -> bool:
    """Public: does one statement of ``policy`` match ``action`` on ``resource`` under the request ``context``
    (its Action/NotAction, Resource/NotResource with policy variables substituted, and Condition)? The effect is
    not considered: callers that hold a policy to an audit log ask this of each Allow statement."""
    if statement.not_actions is not None:
        if any(action_matches(p, action) for p in statement.not_actions):
            return False
    elif not any(action_matches(p, action) for p in statement.actions):
        return False
    if statement.principals is None:  # identity and session policies: the resource must match
        patterns = statement.not_resources if statement.not_resources is not None else statement.resources
        hit = any(
            (p := _substitute(r, context, policy.variables)) is not None and arn_matches(p, resource) for r in patterns
        )
        if hit == (statement.not_resources is not None):
            return False
    return all(condition_matches(c, context, policy.variables) for c in statement.conditions)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # AWS's tail of the AccessDenied message, or why it was allowed


def evaluate(
    identity: Sequence[Policy],
    action: str,
    resource: str,
    context: Mapping[str, Any] | None = None,
    session: Policy | None = None,
) -> Decision:
    """AWS's evaluation for a role session: explicit deny wins, then the identity policies must allow,
    then (when the session was given a policy) the session policy must allow too."""
    context = {k.lower(): v for k, v in (context or {}).items()}
    sources: list[tuple[str, Sequence[Policy]]] = [("an identity-based policy", identity)]
    if session is not None:
        sources.append(("a session policy", [session]))
    for label, policies in sources:
        for policy in policies:
            for st in policy.statements:
                if st.effect == "Deny" and statement_applies(st, policy, action, resource, context):
                    return Decision(False, f"with an explicit deny in {label}")

    def allows(policies: Sequence[Policy]) -> bool:
        return any(
            st.effect == "Allow" and statement_applies(st, p, action, resource, context)
            for p in policies
            for st in p.statements
        )

    if not allows(identity):
        return Decision(False, f"because no identity-based policy allows the {action} action")
    if session is not None and not allows([session]):
        return Decision(False, f"because no session policy allows the {action} action")
    return Decision(True, "allowed by an identity-based policy" + (" and the session policy" if session else ""))


def trust_allows(
    trust: Policy,
    caller_arns: Iterable[str],
    account: str,
    context: Mapping[str, Any],
    action: str = "sts:AssumeRole",
    *,
    service: str | None = None,
) -> bool:
    """Does a role's trust policy let a caller (known by ``caller_arns``) perform ``action`` on it?

    A principal of ``"*"``, the account (``arn:aws:iam::<account>:root`` or the bare account id) or one of
    the caller's ARNs matches; conditions (``sts:ExternalId`` ...) must hold; an explicit deny wins.
    With ``service`` (``glue.amazonaws.com``) the caller is that AWS service assuming the role on a user's
    behalf: only a ``Service`` principal naming it (or ``"*"``) matches, never the account's ``AWS`` ones.
    """
    context = {k.lower(): v for k, v in context.items()}
    callers = set(caller_arns)
    account_ids = {f"arn:aws:iam::{account}:root", account}

    def principal_matches(principals: Mapping[str, tuple[str, ...]]) -> bool:
        if "*" in principals:
            return True
        if service is not None:
            return service in principals.get("Service", ())
        ids = principals.get("AWS", ())
        return any(p == "*" or p in account_ids or p in callers for p in ids)

    allowed = False
    for st in trust.statements:
        if st.principals is None or not principal_matches(st.principals):
            continue
        if not statement_applies(st, trust, action, "*", context):
            continue
        if st.effect == "Deny":
            return False
        allowed = True
    return allowed


# -- requests -> (action, resource) ------------------------------------------------------------------------


# The permissions each service's requests need are mapped beside the service, in services/<svc>/iam.py, found
# through the registry in iam_mapping; Target (one action on one resource) is in the neutral iam_targets.
MAPPED_SERVICES = iam_mapping.mapped_services()


def request_targets(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    region: str = DEFAULT_REGION,
    account: str = LOCAL_ACCOUNT_ID,
) -> list[Target]:
    """The IAM permissions one API call needs, from its botocore service and operation names and parameters.

    Raises :class:`UnmappedRequest` for a service not mapped yet (see ``MAPPED_SERVICES``). An empty list
    means the call needs no permission (STS GetCallerIdentity).
    """
    mapper = iam_mapping.mapper(service)
    if mapper is not None:
        return mapper(operation, params, region, account)
    raise UnmappedRequest(f"localcloud does not map {service} requests to IAM actions yet")


def required_permissions(
    service: str, operation: str, params: Mapping[str, Any], *, region: str = DEFAULT_REGION
) -> list[tuple[str, str]]:
    """``request_targets`` as plain ``(action, resource ARN)`` pairs, for policy-coverage checks."""
    return [(t.action, t.resource) for t in request_targets(service, operation, params, region=region)]


# -- the server's side -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who signed a request with temporary credentials: an assumed-role session."""

    arn: str  # arn:aws:sts::<account>:assumed-role/<role>/<session>
    role_arn: str
    role_name: str
    role_id: str
    session_name: str
    access_key_id: str
    account: str = LOCAL_ACCOUNT_ID
    session_policy: str | None = None
    source_identity: str | None = None

    @property
    def user_id(self) -> str:
        return f"{self.role_id}:{self.session_name}"


def root_arn(account: str) -> str:
    """The account's own principal, which the local admin credentials stand for."""
    return f"arn:aws:iam::{account}:root"


def access_denied(service: str, protocol: str, principal_arn: str, target: Target | None, reason: str) -> AwsError:
    """AWS's AccessDenied for ``service`` in its wire dialect (S3 quotes the resource, JSON services add
    ``Exception`` to the code)."""
    if target is None:
        message = f"User: {principal_arn} is not authorized to perform this {service} request: {reason}"
    else:
        resource = f'"{target.resource}"' if service == "s3" else target.resource
        message = (
            f"User: {principal_arn} is not authorized to perform: {target.action} on resource: {resource} {reason}"
        )
    if protocol in ("rest-xml", "query", "ec2"):
        return AwsError("AccessDenied", message, 403)
    return AwsError("AccessDeniedException", message, 400 if protocol == "json" else 403)


class AuditLog:
    """Append-only JSON lines, one per evaluated permission; a no-op without a path."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        line = json.dumps({"time": datetime.now(UTC).isoformat(), **record}, default=str) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)


def read_audit_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of an audit log, oldest first."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class Authorizer:
    """Decides each request signed with temporary credentials, and records decisions to the audit log.

    ``role_policies(principal)`` returns the inline policy documents of the principal's role, read at
    request time as AWS does (a policy change applies to sessions already issued).
    """

    def __init__(
        self,
        role_policies: Callable[[Principal], list[str]],
        protocol_of: Callable[[str], str],
        audit_log: str | Path | None = None,
    ) -> None:
        self.role_policies = role_policies
        self.protocol_of = protocol_of
        self.audit = AuditLog(audit_log)

    @classmethod
    def from_env(cls, role_policies: Callable[[Principal], list[str]], protocol_of: Callable[[str], str]) -> Authorizer:
        return cls(role_policies, protocol_of, os.environ.get(AUDIT_LOG_ENV) or None)

    def context(self, principal: Principal, region: str) -> dict[str, Any]:
        """The global condition keys localcloud knows for a request (plain HTTP on loopback)."""
        now = datetime.now(UTC)
        context: dict[str, Any] = {
            "aws:principalarn": principal.role_arn,
            "aws:principalaccount": principal.account,
            "aws:principaltype": "AssumedRole",
            "aws:userid": principal.user_id,
            "aws:requestedregion": region,
            "aws:securetransport": "false",
            "aws:sourceip": "127.0.0.1",
            "aws:currenttime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:epochtime": str(int(now.timestamp())),
        }
        if principal.source_identity:
            context["aws:sourceidentity"] = principal.source_identity
        return context

    def record_unevaluated(
        self, service: str, operation: str, params: Mapping[str, Any], region: str, who: str
    ) -> None:
        """Audit a request made with the local admin credentials: always allowed, but recorded so that a
        DAG run as admin shows which permissions a least-privilege role would need."""
        if not self.audit.enabled:
            return
        base = {"principal": who, "service": service, "operation": operation, "evaluated": False}
        try:
            targets = request_targets(service, operation, params, region=region)
        except UnmappedRequest as exc:
            self.audit.write({**base, "action": None, "resource": None, "decision": "Allow", "reason": str(exc)})
            return
        except Exception as exc:  # the audit must never break an admin request; record why it could not map
            reason = f"could not map the request: {exc!r}"
            self.audit.write({**base, "action": None, "resource": None, "decision": "Allow", "reason": reason})
            return
        for t in targets:
            reason = "local admin credentials"
            self.audit.write(
                {
                    **base,
                    "action": t.action,
                    "resource": t.resource,
                    "context": dict(t.context),
                    "decision": "Allow",
                    "reason": reason,
                }
            )

    def check(self, principal: Principal, service: str, operation: str, params: Mapping[str, Any], region: str) -> None:
        """Raise the service's AccessDenied unless every permission the request needs is allowed."""
        base = {"principal": principal.arn, "service": service, "operation": operation, "evaluated": True}
        protocol = self.protocol_of(service)
        try:
            targets = request_targets(service, operation, params, region=region, account=principal.account)
        except UnmappedRequest as exc:
            reason = f"({exc}, so requests signed with assumed-role credentials are denied)"
            self.audit.write({**base, "action": None, "resource": None, "decision": "Deny", "reason": reason})
            raise access_denied(service, protocol, principal.arn, None, reason) from None
        if not targets:
            self.audit.write(
                {
                    **base,
                    "action": f"{service}:{operation}",
                    "resource": "*",
                    "decision": "Allow",
                    "reason": "needs no permission",
                }
            )
            return
        identity = [parse_policy(doc, "identity") for doc in self.role_policies(principal)]
        session = parse_policy(principal.session_policy, "session") if principal.session_policy else None
        context = self.context(principal, region)
        denied: tuple[Target, Decision] | None = None
        for target in targets:
            decision = evaluate(identity, target.action, target.resource, {**context, **target.context}, session)
            self.audit.write(
                {
                    **base,
                    "action": target.action,
                    "resource": target.resource,
                    # the request's own condition keys (s3:prefix ...), so a policy can be re-checked offline
                    "context": dict(target.context),
                    "decision": "Allow" if decision.allowed else "Deny",
                    "reason": decision.reason,
                }
            )
            if not decision.allowed and denied is None:
                denied = (target, decision)
        if denied is not None:
            raise access_denied(service, protocol, principal.arn, denied[0], denied[1].reason)
