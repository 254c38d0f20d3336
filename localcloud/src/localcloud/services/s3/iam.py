"""S3's IAM actions and resources per request (Service Authorization Reference, list_amazons3.html).

Object operations are authorized on the object's ARN, bucket operations on the bucket's; several operations'
actions are not named like them (ListObjectsV2 is ``s3:ListBucket``), and versioned calls need the *Version actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from localcloud.iam_targets import Target, s3_arn

PREFIX = "s3"  # the action prefix
PASSED_TO = None  # the principal that roles handed to this service are passed to

# S3 operations whose IAM action is not "s3:<OperationName>" (https://docs.aws.amazon.com/service-authorization/
# latest/reference/list_amazons3.html). Object operations get the object ARN, bucket operations the bucket's.
_S3_ACTIONS: dict[str, tuple[str, ...]] = {
    "ListObjects": ("s3:ListBucket",),
    "ListObjectsV2": ("s3:ListBucket",),
    "HeadBucket": ("s3:ListBucket",),
    "ListObjectVersions": ("s3:ListBucketVersions",),
    "ListBuckets": ("s3:ListAllMyBuckets",),
    "HeadObject": ("s3:GetObject",),
    "SelectObjectContent": ("s3:GetObject",),
    "GetObjectAttributes": ("s3:GetObject", "s3:GetObjectAttributes"),
    "CreateMultipartUpload": ("s3:PutObject",),
    "UploadPart": ("s3:PutObject",),
    "CompleteMultipartUpload": ("s3:PutObject",),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload",),
    "ListParts": ("s3:ListMultipartUploadParts",),
    "ListMultipartUploads": ("s3:ListBucketMultipartUploads",),
    "GetBucketCors": ("s3:GetBucketCORS",),
    "PutBucketCors": ("s3:PutBucketCORS",),
    "DeleteBucketCors": ("s3:PutBucketCORS",),
    "GetBucketEncryption": ("s3:GetEncryptionConfiguration",),
    "PutBucketEncryption": ("s3:PutEncryptionConfiguration",),
    "DeleteBucketEncryption": ("s3:PutEncryptionConfiguration",),
    "GetBucketLifecycleConfiguration": ("s3:GetLifecycleConfiguration",),
    "PutBucketLifecycleConfiguration": ("s3:PutLifecycleConfiguration",),
    "DeleteBucketLifecycle": ("s3:PutLifecycleConfiguration",),
    "GetBucketNotificationConfiguration": ("s3:GetBucketNotification",),
    "PutBucketNotificationConfiguration": ("s3:PutBucketNotification",),
    "GetBucketReplication": ("s3:GetReplicationConfiguration",),
    "PutBucketReplication": ("s3:PutReplicationConfiguration",),
    "DeleteBucketReplication": ("s3:PutReplicationConfiguration",),
    "DeleteBucketTagging": ("s3:PutBucketTagging",),
    "DeleteBucketWebsite": ("s3:DeleteBucketWebsite",),
}
# Versioned reads and deletes need the *Version actions instead.
_S3_VERSIONED = {"GetObject": "s3:GetObjectVersion", "HeadObject": "s3:GetObjectVersion",
                 "DeleteObject": "s3:DeleteObjectVersion", "GetObjectTagging": "s3:GetObjectVersionTagging",
                 "GetObjectAcl": "s3:GetObjectVersionAcl"}  # fmt: skip


def _copy_source(value: Any) -> tuple[str, str, str | None]:
    """(bucket, key, version) of a CopySource, as the wire's url-encoded string or botocore's dict form."""
    if isinstance(value, Mapping):
        return str(value.get("Bucket", "")), str(value.get("Key", "")), value.get("VersionId")
    text, _, version = str(value).partition("?versionId=")
    bucket, _, key = unquote(text).lstrip("/").partition("/")
    return bucket, key, version or None


def s3_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    bucket, key = params.get("Bucket"), params.get("Key")
    if operation in ("CopyObject", "UploadPartCopy"):
        src_bucket, src_key, version = _copy_source(params.get("CopySource", ""))
        read = "s3:GetObjectVersion" if version else "s3:GetObject"
        return [Target(read, s3_arn(src_bucket, src_key)), Target("s3:PutObject", s3_arn(str(bucket), str(key)))]
    if operation == "DeleteObjects":
        objects = (params.get("Delete") or {}).get("Objects") or []
        return [
            Target("s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject", s3_arn(str(bucket), o["Key"]))
            for o in objects
        ]
    if operation in ("ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads"):
        # The condition keys S3 documents for ListBucket*: prefix, delimiter, max-keys.
        context = {"s3:prefix": params.get("Prefix", "")}
        if params.get("Delimiter") is not None:
            context["s3:delimiter"] = params["Delimiter"]
        if params.get("MaxKeys") is not None:
            context["s3:max-keys"] = str(params["MaxKeys"])
        return [Target(a, s3_arn(str(bucket)), context) for a in _S3_ACTIONS[operation]]
    if params.get("VersionId") and operation in _S3_VERSIONED:
        actions: tuple[str, ...] = (_S3_VERSIONED[operation],)
    else:
        actions = _S3_ACTIONS.get(operation, (f"s3:{operation}",))
    if bucket is None:
        resource = "*"
    elif key is not None:
        resource = s3_arn(str(bucket), str(key))
    else:
        resource = s3_arn(str(bucket))
    return [Target(a, resource) for a in actions]


targets = s3_targets
