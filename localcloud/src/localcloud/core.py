"""Pieces every localcloud layer shares: configuration, request context and AWS-shaped errors.

The backends raise :class:`AwsError`; each protocol turns it into the wire format its clients expect
(JSON ``__type``, query ``ErrorResponse`` or S3's ``<Error>``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
DEFAULT_DATA_DIR = ".localcloud"
DEFAULT_REGION = "us-east-1"
# Local-only credentials. They guard nothing but the loopback endpoint; never reuse them for real AWS.
DEFAULT_ACCESS_KEY_ID = "localcloud"
DEFAULT_SECRET_ACCESS_KEY = "localcloud-secret"
# The 12-digit account every local ARN carries.
LOCAL_ACCOUNT_ID = "000000000000"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


def credentials_from_env(env: dict[str, str] | None = None) -> Credentials:
    """The local credential pair, from ``LOCALCLOUD_ACCESS_KEY_ID`` / ``LOCALCLOUD_SECRET_ACCESS_KEY``."""
    env = os.environ if env is None else env
    return Credentials(
        env.get("LOCALCLOUD_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID),
        env.get("LOCALCLOUD_SECRET_ACCESS_KEY", DEFAULT_SECRET_ACCESS_KEY),
    )


@dataclass
class RequestContext:
    """What a backend may know about the caller; nothing about HTTP."""

    region: str = DEFAULT_REGION
    account_id: str = LOCAL_ACCOUNT_ID
    access_key_id: str = DEFAULT_ACCESS_KEY_ID
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Host the client addressed, for services (S3) whose responses echo URLs.
    host: str = ""
    # An aws-chunked body's verified seed signature and keys (sigv4.StreamingUpload): S3 checks each chunk with it.
    streaming_upload: Any = None
    # The assumed-role session (iam_policy.Principal) of a request signed with temporary credentials;
    # None for the local admin credentials, which are the account's root.
    principal: Any = None
    # Called as authorize(service, operation, params) once a request is parsed and validated, before the
    # backend runs it: IAM policy evaluation (and the audit log) for the request's principal.
    authorize: Callable[[str, str, dict[str, Any]], None] | None = None


class AwsError(Exception):
    """An error with the code, message and HTTP status AWS would answer.

    ``fields`` carries extra members some services add to their error body (S3's ``Key``/``BucketName``).
    ``sender_fault`` picks the query protocol's ``Sender``/``Receiver`` type.
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        *,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields or {}
        self.headers = headers or {}

    @property
    def sender_fault(self) -> bool:
        return self.status < 500


def not_implemented(service: str, operation: str) -> AwsError:
    return AwsError(
        "NotImplemented",
        f"localcloud's {service} does not implement {operation} yet.",
        status=501,
    )


def not_implemented_setting(service: str, operation: str, setting: str) -> AwsError:
    """A request that sets something localcloud would only ignore: refused, never accepted and dropped."""
    return AwsError(
        "NotImplemented",
        f"localcloud's {service} does not implement {setting} on {operation}; the request was not carried out.",
        status=501,
    )


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
