"""Hand-built signed requests, for what boto3 would never send (odd paths, bad bodies, no signature)."""

from __future__ import annotations

import http.client
from dataclasses import dataclass

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def send(
    endpoint: str,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    service: str = "s3",
    region: str = "us-east-1",
    secret: str | None = "localcloud-secret",
    access_key: str = "localcloud",
) -> RawResponse:
    """Send ``method path`` exactly as given; sign it first unless ``secret`` is None."""
    headers = dict(headers or {})
    if secret is not None:
        request = AWSRequest(method=method, url=f"{endpoint}{path}", data=body, headers=headers)
        signer = S3SigV4Auth if service == "s3" else SigV4Auth
        signer(Credentials(access_key, secret), service, region).add_auth(request)
        headers = dict(request.headers.items())
    host = endpoint.split("//", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True, skip_host="Host" in headers or "host" in headers)
        for key, value in headers.items():
            conn.putheader(key, value)
        if body and "Content-Length" not in headers:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        resp = conn.getresponse()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()
