"""STS's IAM actions per request (Service Authorization Reference, list_awssecuritytokenservice.html)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localcloud.iam_targets import Target

PREFIX = "sts"  # the action prefix
PASSED_TO = None  # the principal that roles handed to this service are passed to


def sts_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    if operation == "GetCallerIdentity":
        return []  # AWS answers it for every valid caller; no policy can deny it
    if operation.startswith("AssumeRole"):
        return [Target(f"sts:{operation}", str(params.get("RoleArn", "*")))]
    return [Target(f"sts:{operation}", "*")]


targets = sts_targets
