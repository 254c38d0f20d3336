from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from localcloud.protocols.base import Request
from localcloud.protocols.query import QueryProtocol
from localcloud.protocols.shapes import service_model
from localcloud.services.sts.backend import StsBackend

# AssumeRole reads roles and their trust policies from IAM.
REQUIRES = ("iam",)


class StsProtocol(QueryProtocol):
    """STS issues the temporary credentials the server verifies requests against."""

    @property
    def credential_issuer(self) -> StsBackend:
        return self.backend

    def claims_unsigned(self, request: Request) -> bool:
        # An unsigned form post (or ?Action=) is most likely a caller asking STS for credentials.
        return "x-www-form-urlencoded" in request.headers.get("content-type", "") or request.query_has("Action")


def create(data_dir: Path, peers: Mapping[str, object]) -> StsProtocol:
    return StsProtocol(service_model("sts"), StsBackend(data_dir, peers["iam"].backend))
