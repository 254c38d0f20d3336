"""IAM's own actions and resources per request (Service Authorization Reference, list_awsidentityandaccessmanagementiam.html)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localcloud.iam_targets import Target

PREFIX = "iam"  # the action prefix
PASSED_TO = None  # the principal that roles handed to this service are passed to


def iam_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    name = params.get("RoleName")
    if name:
        path = params.get("Path") or "/"
        return [Target(f"iam:{operation}", f"arn:aws:iam::{account}:role{path}{name}")]
    if operation == "ListRoles":
        return [Target("iam:ListRoles", f"arn:aws:iam::{account}:role{params.get('PathPrefix') or '/'}")]
    return [Target(f"iam:{operation}", "*")]


targets = iam_targets
