"""S3's legacy query-string signatures (SigV2), which boto3's ``generate_presigned_url`` still produces
for S3 unless ``signature_version="s3v4"`` is configured. Only presigned URLs are accepted this way."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

from localcloud.core import AwsError, Credentials

# Query parameters that are part of the signed resource, per the S3 SigV2 specification.
_SUBRESOURCES = {
    "acl", "cors", "delete", "lifecycle", "location", "logging", "notification", "partNumber", "policy",
    "requestPayment", "restore", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning",
    "versions", "website", "response-cache-control", "response-content-disposition", "response-content-encoding",
    "response-content-language", "response-content-type", "response-expires",
}  # fmt: skip


def is_presigned_v2(query: list[tuple[str, str]]) -> bool:
    names = {k for k, _ in query}
    return {"AWSAccessKeyId", "Signature", "Expires"} <= names


def verify_presigned(
    *,
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    credentials: Credentials,
    now: float | None = None,
) -> str:
    """Check a SigV2 presigned S3 URL; return its access key id."""
    params = dict(query)
    if params["AWSAccessKeyId"] != credentials.access_key_id:
        raise AwsError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", 403)
    try:
        expires = int(params["Expires"])
    except ValueError as exc:
        raise AwsError("AccessDenied", "Invalid date (should be seconds since epoch)", 403) from exc
    if (now or time.time()) > expires:
        raise AwsError("AccessDenied", "Request has expired", 403)
    subresources = sorted((k, v) for k, v in query if k in _SUBRESOURCES)
    resource = raw_path  # S3 signs the path as the client encoded it
    if subresources:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)
    # x-amz-* query parameters (a session's x-amz-security-token) are signed as if they were headers.
    amz = {k: v for k, v in headers.items() if k.startswith("x-amz-")}
    amz.update({k.lower(): v for k, v in query if k.lower().startswith("x-amz-")})
    amz_headers = sorted((k, v.strip()) for k, v in amz.items())
    string_to_sign = "\n".join(
        [
            method,
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            params["Expires"],
            *(f"{k}:{v}" for k, v in amz_headers),
            resource,
        ]
    )
    expected = base64.b64encode(
        hmac.new(credentials.secret_access_key.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    ).decode()
    if not hmac.compare_digest(expected, params["Signature"]):
        raise AwsError(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
            403,
        )
    return params["AWSAccessKeyId"]
