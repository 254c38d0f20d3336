"""Requests and responses as the protocols see them, free of any HTTP server's types."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

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
    """What the server needs from a service: its botocore model, a handler and an error encoder."""

    model: ServiceModel

    def handle(self, ctx: RequestContext, request: Request) -> Response: ...

    def error(self, ctx: RequestContext, request: Request, error: AwsError) -> Response: ...


def empty_body() -> BinaryIO:
    return io.BytesIO(b"")
