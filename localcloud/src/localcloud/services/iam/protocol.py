from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from localcloud.protocols.query import QueryProtocol
from localcloud.protocols.shapes import service_model
from localcloud.services.iam.backend import IamBackend


def create(data_dir: Path, peers: Mapping[str, object]) -> QueryProtocol:
    return QueryProtocol(service_model("iam"), IamBackend(data_dir))
