"""Create or update a family's role in an account (localcloud's, in tests; a real one with the same code)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from include.iam.policies import FAMILIES, Family, family_policy, trust_policy

POLICY_NAME = "least-privilege"


def family(name: str) -> Family:
    from include.iam import families  # noqa: F401  (registers the families)

    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"no DAG family {name!r}; known: {sorted(FAMILIES)}") from None


def ensure_family_role(
    iam: Any,
    name: str,
    settings: Mapping[str, str] | None = None,
    *,
    account: str,
    region: str = "us-east-1",
    worker_arn: str | None = None,
) -> str:
    """The family role with its generated policy for ``settings``; idempotent. Returns the role ARN."""
    fam = family(name)
    trust = json.dumps(trust_policy(fam, account, worker_arn))
    try:
        arn = iam.create_role(RoleName=fam.role, AssumeRolePolicyDocument=trust, Description=fam.description)["Role"][
            "Arn"
        ]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=fam.role, PolicyDocument=trust)
        arn = iam.get_role(RoleName=fam.role)["Role"]["Arn"]
    policy = family_policy(fam, settings, account=account, region=region)
    iam.put_role_policy(RoleName=fam.role, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
    return arn
