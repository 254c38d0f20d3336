"""Every request must carry a valid SigV4 signature made with the local credentials."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import rawhttp
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from localcloud import sigv4
from localcloud.core import AwsError, Credentials

LOCAL = Credentials("localcloud", "localcloud-secret")
# One cheap read-only call per service.
PROBE = {"s3": "list_buckets", "sts": "get_caller_identity", "dynamodb": "list_tables"}


def _client(localcloud, service: str, *, key: str = "localcloud", secret: str = "localcloud-secret", **config):
    return boto3.client(
        service,
        endpoint_url=localcloud.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, **config),
    )


def _error(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call()
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("service", ["s3", "sts", "dynamodb"])
def test_wrong_secret_is_signature_does_not_match(localcloud, service):
    client = _client(localcloud, service, secret="not-the-secret")
    call = getattr(client, PROBE[service])
    assert _error(call)[0] == "SignatureDoesNotMatch"


@pytest.mark.parametrize(
    ("service", "code"),
    [("s3", "InvalidAccessKeyId"), ("sts", "InvalidClientTokenId"), ("dynamodb", "UnrecognizedClientException")],
)
def test_unknown_access_key(localcloud, service, code):
    client = _client(localcloud, service, key="AKIAUNKNOWN")
    call = getattr(client, PROBE[service])
    assert _error(call)[0] == code


@pytest.mark.parametrize(
    ("service", "code"),
    [
        ("s3", "AccessDenied"),
        ("sts", "MissingAuthenticationToken"),
        ("dynamodb", "MissingAuthenticationTokenException"),
    ],
)
def test_unsigned_requests_are_refused(localcloud, service, code):
    client = _client(localcloud, service, signature_version=UNSIGNED)
    call = getattr(client, PROBE[service])
    assert _error(call)[0] == code


def test_custom_credentials_from_env(tmp_path, monkeypatch):
    from localcloud.process import LocalCloudProcess

    monkeypatch.setenv("LOCALCLOUD_ACCESS_KEY_ID", "team-key")
    monkeypatch.setenv("LOCALCLOUD_SECRET_ACCESS_KEY", "team-secret")
    server = LocalCloudProcess(tmp_path / "data", keep_credentials_env=True).start()
    try:
        ok = _client(server, "sts", key="team-key", secret="team-secret").get_caller_identity()
        assert ok["UserId"] == "team-key"
        assert _error(_client(server, "sts").get_caller_identity)[0] == "InvalidClientTokenId"
    finally:
        server.stop()


def test_body_not_matching_signed_hash_is_rejected_and_not_stored(localcloud, s3):
    bucket = f"auth-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    signed = rawhttp.send(localcloud.endpoint, "PUT", f"/{bucket}/k", body=b"original")
    assert signed.status == 200
    # Re-send a body different from the one the signature (and x-amz-content-sha256) covers.
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest(method="PUT", url=f"{localcloud.endpoint}/{bucket}/tampered", data=b"original")
    S3SigV4Auth(BotoCredentials("localcloud", "localcloud-secret"), "s3", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    response = rawhttp.send(
        localcloud.endpoint, "PUT", f"/{bucket}/tampered", body=b"tampered", headers=headers, secret=None
    )
    assert response.status == 400
    assert b"XAmzContentSHA256Mismatch" in response.body
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]


def test_presigned_urls_v4_and_v2(localcloud, s3):
    import urllib.error
    import urllib.request

    bucket = f"auth-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="f.txt", Body=b"shared")
    v4 = _client(localcloud, "s3", signature_version="s3v4")
    for client in (s3, v4):
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "f.txt"}, ExpiresIn=60)
        with urllib.request.urlopen(url) as resp:
            assert resp.read() == b"shared"
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(url.replace("f.txt", "g.txt"))
        assert exc.value.code == 403


# -- the verifier itself, with a controlled clock -----------------------------------------------------
def _signed_headers(amz_date: str) -> dict[str, str]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:4566/",
        data=b"Action=GetCallerIdentity&Version=2011-06-15",
        headers={"X-Amz-Date": amz_date},
    )
    SigV4Auth(BotoCredentials("localcloud", "localcloud-secret"), "sts", "us-east-1").add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:4566"
    return headers


def _verify(headers: dict[str, str], now: datetime, body: bytes = b"Action=GetCallerIdentity&Version=2011-06-15"):
    import hashlib

    return sigv4.verify(
        method="POST",
        raw_path="/",
        query=[],
        headers=headers,
        body_sha256=hashlib.sha256(body).hexdigest(),
        credentials=LOCAL,
        service_hint="sts",
        now=now,
    )


def test_verifier_accepts_botocore_signature_and_reads_scope():
    now = datetime.now(UTC)
    signed = _verify(_signed_headers(now.strftime("%Y%m%dT%H%M%SZ")), now)
    assert (signed.service, signed.region, signed.access_key_id) == ("sts", "us-east-1", "localcloud")


def test_verifier_rejects_skewed_clock_and_changed_body():
    now = datetime.now(UTC)
    headers = _signed_headers(now.strftime("%Y%m%dT%H%M%SZ"))
    with pytest.raises(AwsError) as exc:
        _verify(headers, now + timedelta(minutes=16))
    assert exc.value.code == "RequestTimeTooSkewed"
    with pytest.raises(AwsError) as exc:
        _verify(headers, now, body=b"Action=GetCallerIdentity&Version=2011-06-16")
    assert exc.value.code == "SignatureDoesNotMatch"
    headers["authorization"] = headers["authorization"].replace("Signature=", "Signature=0")
    with pytest.raises(AwsError) as exc:
        _verify(headers, now)
    assert exc.value.code in ("SignatureDoesNotMatch", "IncompleteSignature")
