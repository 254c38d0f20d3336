"""Hold a policy to the calls a DAG really made: read from localcloud's IAM audit log, re-evaluated offline.

``check`` answers three questions for one role session: was anything denied, is every call allowed by the policy
(coverage), and is every action of every statement used by some call it allows (nothing broader)? A statement with
``Resource: "*"`` must only be used by calls whose resource is ``*`` (actions without resource-level permissions):
anything else means the statement is wider than the calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from localcloud.iam_policy import action_matches, evaluate, parse_policy, statement_applies


@dataclass
class Coverage:
    calls: int = 0
    denied: list[dict[str, Any]] = field(default_factory=list)
    uncovered: list[dict[str, Any]] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)  # "Sid: action" never used by an allowed call
    too_wide: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.calls > 0 and not (self.denied or self.uncovered or self.unused or self.too_wide)

    def explain(self) -> str:
        lines = [f"{self.calls} permission checks"]
        for name in ("denied", "uncovered", "unused", "too_wide"):
            for item in getattr(self, name):
                if isinstance(item, dict):
                    item = f"{item['operation']}: {item['action']} on {item['resource']} {item.get('context') or ''}"
                lines.append(f"  {name}: {item}")
        return "\n".join(lines)


def _key(record: Mapping[str, Any]) -> tuple:
    return record["action"], record["resource"], json.dumps(record.get("context") or {}, sort_keys=True)


def session_records(records: Iterable[Mapping[str, Any]], principal_arn: str) -> list[Mapping[str, Any]]:
    """The evaluated permission checks of one role session (``arn:aws:sts::<acct>:assumed-role/<role>/<name>``)."""
    return [r for r in records if r.get("principal") == principal_arn and r.get("evaluated") and r.get("action")]


def check(records: Iterable[Mapping[str, Any]], policy: Mapping[str, Any]) -> Coverage:
    """Coverage of ``policy`` (a document) by the audit ``records`` of one session."""
    parsed = parse_policy(dict(policy), "identity")
    result = Coverage()
    used: set[tuple[int, str]] = set()
    seen: set[tuple] = set()
    for record in records:
        result.calls += 1
        if record.get("decision") != "Allow":
            result.denied.append(dict(record))
        key = _key(record)
        if key in seen:
            continue
        seen.add(key)
        action, resource = record["action"], record["resource"]
        context = {k.lower(): v for k, v in (record.get("context") or {}).items()}
        if record.get("reason") == "needs no permission":
            continue
        if not evaluate([parsed], action, resource, context).allowed:
            result.uncovered.append(dict(record))
            continue
        for index, statement in enumerate(parsed.statements):
            if statement.effect == "Allow" and statement_applies(statement, parsed, action, resource, context):
                for pattern in statement.actions:
                    if action_matches(pattern, action):
                        used.add((index, pattern))
                if "*" in statement.resources and resource != "*":
                    result.too_wide.append(f"{statement.sid}: Resource * also matches {action} on {resource}")
    for index, statement in enumerate(parsed.statements):
        for pattern in statement.actions:
            if "*" in pattern:
                result.too_wide.append(f"{statement.sid}: wildcard action {pattern}")
            elif (index, pattern) not in used:
                result.unused.append(f"{statement.sid}: {pattern}")
    return result
