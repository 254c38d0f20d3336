"""S3 settings localcloud does not honour are refused, never accepted and ignored (issue 15).

Each refused request must answer what AWS's rule says (NotImplemented, 501, naming the header; or the
AccessControlListNotSupported a default AWS bucket answers to a canned ACL) and must leave nothing behind: no new
object, the old one untouched, no upload or part.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

KEY = b"k" * 32  # an SSE-C key: 256 bits

# (boto3 arguments, the header the answer must name). They apply to PutObject, CopyObject and
# CreateMultipartUpload alike.
UNHONOURED = [
    pytest.param(
        {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": KEY},
        "x-amz-server-side-encryption-customer-algorithm",
        id="sse-c",
    ),
    pytest.param({"ServerSideEncryption": "aws:kms"}, "x-amz-server-side-encryption", id="sse-kms"),
    pytest.param({"ServerSideEncryption": "aws:kms:dsse"}, "x-amz-server-side-encryption", id="dsse-kms"),
    pytest.param({"ServerSideEncryption": "AES256"}, "x-amz-server-side-encryption", id="sse-s3"),
    pytest.param({"SSEKMSKeyId": "alias/mine"}, "x-amz-server-side-encryption-aws-kms-key-id", id="kms-key-id"),
    pytest.param({"SSEKMSEncryptionContext": "e30="}, "x-amz-server-side-encryption-context", id="kms-context"),
    pytest.param({"BucketKeyEnabled": True}, "x-amz-server-side-encryption-bucket-key-enabled", id="bucket-key"),
    pytest.param(
        {"GrantRead": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'}, "x-amz-grant-read", id="grant-read"
    ),
    pytest.param({"GrantFullControl": 'id="abc"'}, "x-amz-grant-full-control", id="grant-full-control"),
    pytest.param({"GrantReadACP": 'id="abc"'}, "x-amz-grant-read-acp", id="grant-read-acp"),
    pytest.param({"GrantWriteACP": 'id="abc"'}, "x-amz-grant-write-acp", id="grant-write-acp"),
    pytest.param({"Tagging": "team=data"}, "x-amz-tagging", id="tagging"),
    pytest.param({"ObjectLockMode": "GOVERNANCE"}, "x-amz-object-lock-mode", id="lock-mode"),
    pytest.param(
        {"ObjectLockRetainUntilDate": datetime.now(UTC) + timedelta(days=1)},
        "x-amz-object-lock-retain-until-date",
        id="lock-retain-until",
    ),
    pytest.param({"ObjectLockLegalHoldStatus": "ON"}, "x-amz-object-lock-legal-hold", id="legal-hold"),
]

# Canned ACLs a bucket whose Object Ownership is "bucket owner enforced" (AWS's default) refuses.
REFUSED_ACLS = ["private", "public-read", "public-read-write", "authenticated-read", "bucket-owner-read"]


def _bucket(s3) -> str:
    name = f"set-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _assert_not_implemented(excinfo: pytest.ExceptionInfo[ClientError], named: str) -> None:
    response = excinfo.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert response["Error"]["Code"] == "NotImplemented"
    assert named in response["Error"]["Message"]


def _assert_acl_refused(excinfo: pytest.ExceptionInfo[ClientError]) -> None:
    response = excinfo.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Code"] == "AccessControlListNotSupported"


def _assert_missing(s3, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key=key)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def _assert_body(s3, bucket: str, key: str, body: bytes) -> None:
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == body
    assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'


# -- PutObject ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("settings", "header"), UNHONOURED)
def test_put_object_refuses_unhonoured_setting_and_writes_nothing(s3, settings, header):
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="old", Body=b"before")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="new", Body=b"after", **settings)
    _assert_not_implemented(exc, header)
    _assert_missing(s3, bucket, "new")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="old", Body=b"after", **settings)
    _assert_not_implemented(exc, header)
    _assert_body(s3, bucket, "old", b"before")


def test_sse_c_object_is_not_readable_without_its_key_because_it_is_never_stored(s3):
    bucket = _bucket(s3)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="secret", Body=b"x", SSECustomerAlgorithm="AES256", SSECustomerKey=KEY)
    _assert_not_implemented(exc, "x-amz-server-side-encryption-customer-algorithm")
    _assert_missing(s3, bucket, "secret")


@pytest.mark.parametrize("acl", REFUSED_ACLS)
def test_put_object_with_canned_acl_is_refused_as_on_an_acl_disabled_bucket(s3, acl):
    bucket = _bucket(s3)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL=acl)
    _assert_acl_refused(exc)
    _assert_missing(s3, bucket, "k")


def test_put_object_with_bucket_owner_full_control_is_accepted(s3):
    # The one canned ACL an ACL-disabled bucket accepts: it grants what the owner already has.
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    _assert_body(s3, bucket, "k", b"x")


def test_plain_put_object_still_works_and_claims_no_encryption(s3):
    bucket = _bucket(s3)
    out = s3.put_object(Bucket=bucket, Key="k", Body=b"plain", ContentType="text/plain", Metadata={"a": "1"})
    assert "ServerSideEncryption" not in out
    _assert_body(s3, bucket, "k", b"plain")


# -- CopyObject --------------------------------------------------------------------------------------
COPY_ONLY = [
    pytest.param(
        {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": KEY},
        "x-amz-copy-source-server-side-encryption-customer-algorithm",
        id="copy-source-sse-c",
    ),
]


@pytest.mark.parametrize(("settings", "header"), UNHONOURED + COPY_ONLY)
def test_copy_object_refuses_unhonoured_setting_and_leaves_target_as_it_was(s3, settings, header):
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    s3.put_object(Bucket=bucket, Key="dst", Body=b"target")
    for key in ("dst", "fresh"):
        with pytest.raises(ClientError) as exc:
            s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": "src"}, **settings)
        _assert_not_implemented(exc, header)
    _assert_body(s3, bucket, "dst", b"target")
    _assert_missing(s3, bucket, "fresh")


@pytest.mark.parametrize("acl", REFUSED_ACLS)
def test_copy_object_with_canned_acl_is_refused(s3, acl):
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    s3.put_object(Bucket=bucket, Key="dst", Body=b"target")
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, ACL=acl)
    _assert_acl_refused(exc)
    _assert_body(s3, bucket, "dst", b"target")


@pytest.mark.parametrize("directive", ["COPY", "REPLACE"])
def test_copy_object_tagging_directive_alone_is_honoured(s3, directive):
    # localcloud objects carry no tags (x-amz-tagging is refused), so either directive yields an untagged copy,
    # as AWS would make from an untagged source.
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, TaggingDirective=directive)
    _assert_body(s3, bucket, "dst", b"source")


def test_plain_copy_object_still_works(s3):
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, ACL="bucket-owner-full-control"
    )
    _assert_body(s3, bucket, "dst", b"source")


# -- multipart ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("settings", "header"), UNHONOURED)
def test_create_multipart_upload_refuses_unhonoured_setting_and_starts_nothing(s3, settings, header):
    bucket = _bucket(s3)
    with pytest.raises(ClientError) as exc:
        s3.create_multipart_upload(Bucket=bucket, Key="mp", **settings)
    _assert_not_implemented(exc, header)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_create_multipart_upload_with_canned_acl_is_refused(s3):
    bucket = _bucket(s3)
    with pytest.raises(ClientError) as exc:
        s3.create_multipart_upload(Bucket=bucket, Key="mp", ACL="public-read")
    _assert_acl_refused(exc)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_upload_part_and_complete_refuse_sse_c_and_store_nothing(s3):
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="src", Body=b"s" * 100)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    sse_c = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": KEY}
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"a" * 100, **sse_c)
    _assert_not_implemented(exc, "x-amz-server-side-encryption-customer-algorithm")
    for settings, header in [
        (sse_c, "x-amz-server-side-encryption-customer-algorithm"),
        (
            {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": KEY},
            "x-amz-copy-source-server-side-encryption-customer-algorithm",
        ),
    ]:
        with pytest.raises(ClientError) as exc:
            s3.upload_part_copy(
                Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, CopySource=f"{bucket}/src", **settings
            )
        _assert_not_implemented(exc, header)
    assert s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload).get("Parts", []) == []

    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"a" * 100)
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload=parts, **sse_c)
    _assert_not_implemented(exc, "x-amz-server-side-encryption-customer-algorithm")
    _assert_missing(s3, bucket, "mp")
    # The refused completion left the upload as it was: a plain one still completes it.
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload=parts)
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"a" * 100


def test_plain_multipart_upload_still_works(s3):
    bucket = _bucket(s3)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="text/plain")["UploadId"]
    first = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"a" * (5 * 1024 * 1024))
    s3.put_object(Bucket=bucket, Key="src", Body=b"tail")
    second = s3.upload_part_copy(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=2, CopySource=f"{bucket}/src")
    parts = [
        {"PartNumber": 1, "ETag": first["ETag"]},
        {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]},
    ]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts})
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == b"a" * (5 * 1024 * 1024) + b"tail"
    assert got["ContentType"] == "text/plain"


# -- operations localcloud does not do ---------------------------------------------------------------
def _policy(bucket: str) -> str:
    return (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:GetObject",'
        f'"Resource":"arn:aws:s3:::{bucket}/*"}}]}}'
    )


LIFECYCLE = {"Rules": [{"ID": "expire", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]}
UNDONE = {
    "PutBucketPolicy": lambda s3, bucket: s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket)),
    "PutBucketLifecycleConfiguration": lambda s3, bucket: s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration=LIFECYCLE
    ),
    "GetObjectAttributes": lambda s3, bucket: s3.get_object_attributes(
        Bucket=bucket, Key="k", ObjectAttributes=["ETag", "ObjectSize"]
    ),
}


@pytest.mark.parametrize("operation", UNDONE)
def test_operations_localcloud_does_not_do_are_not_implemented(s3, operation):
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        UNDONE[operation](s3, bucket)
    _assert_not_implemented(exc, operation)
    # An unread body (the policy, the rules) did not spill into the next request on the connection.
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_refusal_of_a_large_body_is_still_a_clean_answer(s3):
    # The body is left unread (over the server's 1 MiB drain the connection closes): the client still gets the 501.
    bucket = _bucket(s3)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="big", Body=b"b" * (3 * 1024 * 1024), Tagging="team=data")
    _assert_not_implemented(exc, "x-amz-tagging")
    _assert_missing(s3, bucket, "big")
