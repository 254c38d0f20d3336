"""AWS Signature Version 4 verification, for the Authorization header and for presigned URLs.

The canonical request is rebuilt from the bytes on the wire exactly as the SigV4 specification says,
so any SDK that signs correctly is accepted, not only botocore.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from botocore.utils import normalize_url_path

from localcloud.core import AwsError, Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_PREFIX = "STREAMING-"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# AWS rejects requests whose clock is further off than this.
MAX_SKEW = timedelta(minutes=15)


@dataclass(frozen=True)
class SignedRequest:
    """What a verified signature tells the dispatcher."""

    access_key_id: str
    region: str
    service: str
    payload_hash: str  # hex digest the body must match, or UNSIGNED-PAYLOAD / STREAMING-*
    streaming: StreamingUpload | None = None  # what an aws-chunked body's chunk signatures chain from


@dataclass(frozen=True)
class StreamingUpload:
    """What a streaming (aws-chunked) body's chunk and trailer signatures are checked against."""

    payload: str  # the STREAMING-* value of x-amz-content-sha256
    signing_key: bytes
    amz_date: str
    scope: str
    seed_signature: str  # the Authorization header's signature, which the first chunk's chains from
    decoded_length: int | None  # x-amz-decoded-content-length
    trailer: tuple[str, ...]  # lower-case header names announced by x-amz-trailer

    def _sign(self, kind: str, previous: str, *hashes: str) -> str:
        string_to_sign = "\n".join([kind, self.amz_date, self.scope, previous, *hashes])
        return hmac.new(self.signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()

    def chunk_signature(self, previous: str, chunk_sha256: str) -> str:
        return self._sign(f"{ALGORITHM}-PAYLOAD", previous, EMPTY_SHA256, chunk_sha256)

    def trailer_signature(self, previous: str, trailer_sha256: str) -> str:
        return self._sign(f"{ALGORITHM}-TRAILER", previous, trailer_sha256)


def _streaming_upload(
    payload: str, headers: Mapping[str, str], secret: str, scope: _Scope, amz_date: str, seed: str
) -> StreamingUpload:
    if payload not in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER):
        raise AwsError("InvalidRequest", f"Unsupported x-amz-content-sha256 value {payload!r}.")
    decoded = headers.get("x-amz-decoded-content-length")
    try:
        decoded_length = int(decoded) if decoded is not None else None
    except ValueError as exc:
        raise AwsError("InvalidRequest", "x-amz-decoded-content-length must be a number.") from exc
    if decoded_length is not None and decoded_length < 0:
        raise AwsError("InvalidRequest", "x-amz-decoded-content-length must not be negative.")
    trailer = tuple(n.strip().lower() for n in headers.get("x-amz-trailer", "").split(",") if n.strip())
    if payload == STREAMING_SIGNED and trailer:
        raise AwsError("InvalidRequest", f"x-amz-trailer needs a *-TRAILER x-amz-content-sha256, not {payload}.")
    return StreamingUpload(payload, _signing_key(secret, scope), amz_date, scope.string, seed, decoded_length, trailer)


@dataclass(frozen=True)
class _Scope:
    access_key_id: str
    date: str
    region: str
    service: str

    @property
    def string(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def _parse_scope(credential: str) -> _Scope:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise AwsError("IncompleteSignature", f"Credential scope is malformed: {credential!r}.")
    return _Scope(*parts[:4])


def _parse_authorization(header: str) -> tuple[_Scope, list[str], str]:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AwsError("IncompleteSignature", f"Unsupported authorization algorithm {algorithm!r}; use {ALGORITHM}.")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        key, _, value = item.strip().partition("=")
        fields[key] = value
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        raise AwsError("IncompleteSignature", f"Authorization header is missing {', '.join(missing)}.")
    return _parse_scope(fields["Credential"]), fields["SignedHeaders"].split(";"), fields["Signature"]


def scope_of(headers: Mapping[str, str], query: list[tuple[str, str]]) -> tuple[str, str] | None:
    """(region, service) named by the request's credential scope, without verifying anything."""
    auth = headers.get("authorization", "")
    try:
        if auth.startswith(ALGORITHM):
            scope = _parse_authorization(auth)[0]
        else:
            credential = dict(query).get("X-Amz-Credential")
            if not credential:
                return None
            scope = _parse_scope(credential)
    except AwsError:
        return None
    return scope.region, scope.service


def access_key_of(headers: Mapping[str, str], query: list[tuple[str, str]]) -> str | None:
    """The access key id a SigV4 request claims to be signed with, without verifying anything."""
    auth = headers.get("authorization", "")
    try:
        if auth.startswith(ALGORITHM):
            return _parse_authorization(auth)[0].access_key_id
        credential = dict(query).get("X-Amz-Credential")
        return _parse_scope(credential).access_key_id if credential else None
    except AwsError:
        return None


def _uri_encode(value: str, *, safe: str = "-_.~") -> str:
    return quote(value, safe=safe)


def canonical_query(query: list[tuple[str, str]], *, exclude: str | None = None) -> str:
    """Sorted, uniformly re-encoded query pairs; ``query`` holds decoded names and values."""
    pairs = sorted((_uri_encode(k), _uri_encode(v)) for k, v in query if k != exclude)
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_uri(raw_path: str, service: str) -> str:
    # S3 signs the path as sent; every other service signs it dot-normalized and encoded once more.
    if service == "s3":
        return raw_path or "/"
    return quote(normalize_url_path(raw_path or "/"), safe="/~")


def _canonical_headers(headers: Mapping[str, str], signed: list[str]) -> str:
    lines = []
    for name in signed:
        value = headers.get(name)
        if value is None:
            raise AwsError("SignatureDoesNotMatch", f"Signed header {name!r} is not present in the request.", 403)
        lines.append(f"{name}:{' '.join(value.split())}\n")
    return "".join(lines)


def _signing_key(secret: str, scope: _Scope) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (scope.date, scope.region, scope.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _signature(secret: str, scope: _Scope, amz_date: str, canonical_request: str) -> str:
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope.string, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    return hmac.new(_signing_key(secret, scope), string_to_sign.encode(), hashlib.sha256).hexdigest()


def _check_clock(amz_date: str, now: datetime, expires: int | None = None) -> None:
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise AwsError("IncompleteSignature", f"X-Amz-Date {amz_date!r} is not in ISO 8601 basic format.") from exc
    if expires is not None:
        if now > signed_at + timedelta(seconds=expires):
            raise AwsError("AccessDenied", "Request has expired", 403)
        return
    if abs(now - signed_at) > MAX_SKEW:
        raise AwsError(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            403,
        )


def unknown_access_key(service: str) -> AwsError:
    # Each service family words this differently; clients match on the code.
    if service == "s3":
        return AwsError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", 403)
    if service in ("sts", "iam"):
        return AwsError("InvalidClientTokenId", "The security token included in the request is invalid.", 403)
    return AwsError("UnrecognizedClientException", "The security token included in the request is invalid.", 400)


def missing_authentication(service: str) -> AwsError:
    if service == "s3":
        return AwsError(
            "AccessDenied", "Anonymous access is not allowed: sign requests with the local credentials.", 403
        )
    if service in ("sts", "iam"):
        return AwsError("MissingAuthenticationToken", "Request is missing Authentication Token", 403)
    return AwsError("MissingAuthenticationTokenException", "Request is missing Authentication Token", 400)


def signature_mismatch() -> AwsError:
    return AwsError(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method.",
        403,
    )


def verify(
    *,
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    body_sha256: str | None,
    credentials: Credentials,
    service_hint: str = "s3",
    now: datetime | None = None,
) -> SignedRequest:
    """Check a request's SigV4 signature; raise an AWS-shaped error when it is absent or wrong.

    ``headers`` must have lower-case names. ``service_hint`` picks the error wording for an unsigned
    request, which names no service itself. ``body_sha256`` is the hex digest of the body when the
    caller has it; S3 instead declares it in ``x-amz-content-sha256`` and the body is checked as it streams.
    """
    now = now or datetime.now(UTC)
    auth = headers.get("authorization")
    query_dict = dict(query)
    presigned = auth is None and "X-Amz-Signature" in query_dict
    if auth is None and not presigned:
        raise missing_authentication(service_hint)
    if presigned:
        if query_dict.get("X-Amz-Algorithm") != ALGORITHM:
            raise AwsError("AuthorizationQueryParametersError", f"X-Amz-Algorithm only supports {ALGORITHM}.")
        scope = _parse_scope(query_dict.get("X-Amz-Credential", ""))
        signed_headers = query_dict.get("X-Amz-SignedHeaders", "host").split(";")
        signature = query_dict["X-Amz-Signature"]
        amz_date = query_dict.get("X-Amz-Date", "")
        try:
            expires = int(query_dict.get("X-Amz-Expires", "0"))
        except ValueError as exc:
            raise AwsError("AuthorizationQueryParametersError", "X-Amz-Expires must be a number.") from exc
        _check_clock(amz_date, now, expires)
        payload_hash = UNSIGNED_PAYLOAD
        canonical_qs = canonical_query(query, exclude="X-Amz-Signature")
    else:
        scope, signed_headers, signature = _parse_authorization(auth)
        amz_date = headers.get("x-amz-date", "")
        if not amz_date:
            raise AwsError("IncompleteSignature", "Authorization requires the X-Amz-Date header.")
        _check_clock(amz_date, now)
        payload_hash = headers.get("x-amz-content-sha256") or body_sha256 or EMPTY_SHA256
        canonical_qs = canonical_query(query)
    if scope.access_key_id != credentials.access_key_id:
        raise unknown_access_key(scope.service)
    if "host" not in signed_headers:
        raise AwsError("SignatureDoesNotMatch", "The host header must be signed.", 403)

    canonical_request = "\n".join(
        [
            method,
            canonical_uri(raw_path, scope.service),
            canonical_qs,
            _canonical_headers(headers, signed_headers),
            ";".join(signed_headers),
            payload_hash,
        ]
    )
    expected = _signature(credentials.secret_access_key, scope, amz_date, canonical_request)
    if not hmac.compare_digest(expected, signature):
        raise signature_mismatch()
    declared = payload_hash != UNSIGNED_PAYLOAD and not payload_hash.startswith(STREAMING_PREFIX)
    if body_sha256 is not None and declared and payload_hash != body_sha256:
        raise AwsError(
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    streaming = None
    if not presigned and payload_hash.startswith(STREAMING_PREFIX):
        streaming = _streaming_upload(payload_hash, headers, credentials.secret_access_key, scope, amz_date, signature)
    return SignedRequest(scope.access_key_id, scope.region, scope.service, payload_hash, streaming)
