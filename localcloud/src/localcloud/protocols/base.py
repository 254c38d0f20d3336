"""Requests and responses as the protocols see them, free of any HTTP server's types."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from botocore.model import ServiceModel

from localcloud.core import AwsError, RequestContext


@dataclass
class Request:
    method: str
    raw_path: str
    query: list[tuple[str, str]]  # decoded (name, value) pairs, in order
    headers: dict[str, str]  # lower-case names
    body: BinaryIO  # bounded to the request's body
    host: str = ""

    def read_body(self) -> bytes:
        return self.body.read()

    def query_values(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]

    def query_has(self, name: str) -> bool:
        return any(k == name for k, _ in self.query)


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | BinaryIO = b""
    # Length of a streamed body; ignored for bytes.
    length: int | None = None

    def chunks(self, size: int = 1 << 20) -> Iterable[bytes]:
        if isinstance(self.body, bytes):
            yield self.body
            return
        remaining = self.length
        try:
            while remaining is None or remaining > 0:
                chunk = self.body.read(size if remaining is None else min(size, remaining))
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            self.body.close()

    @property
    def content_length(self) -> int:
        return len(self.body) if isinstance(self.body, bytes) else int(self.length or 0)


class ServiceProtocol(Protocol):
    """What the server needs from a service: its botocore model, a handler and an error encoder.

    The server names no service: whatever one service does differently, it says through these optional hooks,
    which the server reads with ``getattr`` (absent means the default):

    - ``claims(request) -> bool``: a rest-json service sharing its signing name with another claims its requests
      (by its ``requestUri`` templates).
    - ``claims_unsigned(request) -> bool``: a weaker claim, used only to answer an unsigned request in the right
      service's error format (a form-encoded body is the Query protocol's).
    - ``catch_all: bool``: the service an unclaimed request is for (every path can name an object), whose error
      format also answers requests for services localcloud does not serve.
    - ``streams_body: bool``: the body is handed over unread, its signed SHA-256 checked as it is read (uploads
      larger than memory); other services' bodies are read whole and hashed before the signature is checked.
    - ``presigned_v2: bool``: the service also takes Signature Version 2 presigned URLs.
    - ``credential_issuer``: a :class:`CredentialIssuer`, when the service issues temporary credentials.
    - ``role_policies``: a :class:`RolePolicies`, when the service holds the policies those credentials act under.
    - ``web_routes``: path prefixes under ``/_localcloud/`` mapped to handlers of local web pages.
    """

    model: ServiceModel

    def handle(self, ctx: RequestContext, request: Request) -> Response: ...

    def error(self, ctx: RequestContext, request: Request, error: AwsError) -> Response: ...


class TemporarySession(Protocol):
    """A set of temporary credentials and who they stand for (an ``iam_policy.Principal``)."""

    principal: Any
    secret_access_key: str


class CredentialIssuer(Protocol):
    """What the server needs of the service that issues temporary credentials, to verify requests signed with them."""

    def session(self, access_key_id: str) -> TemporarySession | None:
        """The session of a temporary access key id, expired or not; None for a key it did not issue."""
        ...

    def check_session_token(self, service: str, session: TemporarySession, token: str) -> None:
        """Raise ``service``'s own AwsError unless ``token`` is the session's and the session has not expired."""
        ...


class RolePolicies(Protocol):
    """What the server needs of the service that holds roles: the policies a role session acts under."""

    def role_policy_documents(self, name: str, role_id: str) -> list[str]: ...


def empty_body() -> BinaryIO:
    return io.BytesIO(b"")
