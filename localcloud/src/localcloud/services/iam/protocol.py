from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from localcloud.protocols.query import QueryProtocol
from localcloud.protocols.shapes import service_model
from localcloud.services.iam.backend import IamBackend


class IamProtocol(QueryProtocol):
    """IAM holds the roles whose policies decide what temporary credentials may do."""

    @property
    def role_policies(self) -> IamBackend:
        return self.backend


def create(data_dir: Path, peers: Mapping[str, object]) -> IamProtocol:
    return IamProtocol(service_model("iam"), IamBackend(data_dir))
