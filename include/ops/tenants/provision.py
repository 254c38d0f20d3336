"""Tenant onboarding: the tenant's export bucket and its extraction role, created or updated idempotently.

The role is what scopes a tenant: Glue runs the tenant's extraction as this role, and its only grants are the
tenant's own ``extractions/`` prefix (plus reading the job script). Nothing in a request can widen that.
Usage: ``python -m include.ops.tenants.provision acme globex --artifacts-bucket industrial-ml-ops``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from botocore.exceptions import ClientError

EXTRACTIONS_PREFIX = "extractions/"
SCRIPTS_PREFIX = "artifacts/glue-scripts/"  # where GlueJobOperator uploads a local script_location
POLICY_NAME = "tenant-extraction"


def role_name(tenant: str) -> str:
    return f"tenant-{tenant}-extraction"


def role_arn(tenant: str, account: str) -> str:
    return f"arn:aws:iam::{account}:role/{role_name(tenant)}"


def bucket_name(tenant: str) -> str:
    return f"tenant-{tenant}-exports"


def external_id(tenant: str) -> str:
    return f"tenant-extraction-{tenant}"


def trust_policy(tenant: str, account: str, worker_principal: str | None = None) -> dict[str, Any]:
    """Glue may run jobs as the role; the Airflow workers (``worker_principal``, default: the account) may assume
    it to check a request, with the tenant's external id so a request for one tenant cannot use another's role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GlueRunsExtractions",
                "Effect": "Allow",
                "Principal": {"Service": "glue.amazonaws.com"},
                "Action": "sts:AssumeRole",
            },
            {
                "Sid": "AirflowChecksRequests",
                "Effect": "Allow",
                "Principal": {"AWS": worker_principal or f"arn:aws:iam::{account}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id(tenant)}},
            },
        ],
    }


def permissions_policy(tenant: str, artifacts_bucket: str) -> dict[str, Any]:
    bucket = bucket_name(tenant)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOwnExtracts",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": f"arn:aws:s3:::{bucket}/{EXTRACTIONS_PREFIX}*",
            },
            {
                "Sid": "ListOwnExtracts",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": [f"{EXTRACTIONS_PREFIX}*"]}},
            },
            {
                "Sid": "ReadJobScript",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{artifacts_bucket}/{SCRIPTS_PREFIX}*",
            },
        ],
    }


def ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def ensure_tenant(
    iam: Any, s3: Any, tenant: str, artifacts_bucket: str, account: str, worker_principal: str | None = None
) -> dict[str, str]:
    """Create or update the tenant's bucket and role; its ``role_arn`` and ``bucket``."""
    bucket = bucket_name(tenant)
    ensure_bucket(s3, bucket)
    name = role_name(tenant)
    trust = json.dumps(trust_policy(tenant, account, worker_principal))
    try:
        arn = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=trust,
            Description=f"Extraction jobs of tenant {tenant}",
            Tags=[{"Key": "tenant", "Value": tenant}],
        )["Role"]["Arn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(permissions_policy(tenant, artifacts_bucket))
    )
    return {"tenant": tenant, "role_arn": arn, "bucket": bucket}


def main(argv: list[str] | None = None) -> None:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tenants", nargs="+")
    parser.add_argument("--artifacts-bucket", required=True)
    parser.add_argument("--worker-principal", default=None, help="ARN allowed to assume the roles (default: account)")
    args = parser.parse_args(argv)
    session = boto3.session.Session()
    account = session.client("sts").get_caller_identity()["Account"]
    # The DAG uploads the job script here but does not create buckets (its role cannot).
    ensure_bucket(session.client("s3"), args.artifacts_bucket)
    for tenant in args.tenants:
        print(
            ensure_tenant(
                session.client("iam"),
                session.client("s3"),
                tenant,
                args.artifacts_bucket,
                account,
                args.worker_principal,
            )
        )


if __name__ == "__main__":
    main()
