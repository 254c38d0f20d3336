"""S3 objects that may not exist yet (a first run's ledger, report or holdout): the one place that knows which
error codes mean "missing". Anything else (access denied, no such bucket) is raised, never read as missing."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

# GetObject answers NoSuchKey; HeadObject has no body to carry a code, so botocore reports the status: 404/NotFound.
MISSING_CODES = ("NoSuchKey", "404", "NotFound")


def is_missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in MISSING_CODES


def read_or_none(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise


def read_json_or_none(s3: Any, bucket: str, key: str) -> Any:
    body = read_or_none(s3, bucket, key)
    return None if body is None else json.loads(body)


def exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_missing(exc):
            return False
        raise
    return True
