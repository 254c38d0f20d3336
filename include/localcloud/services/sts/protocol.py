from __future__ import annotations

from pathlib import Path

from include.localcloud.protocols.query import QueryProtocol
from include.localcloud.protocols.shapes import service_model
from include.localcloud.services.sts.backend import StsBackend


def create(data_dir: Path) -> QueryProtocol:
    return QueryProtocol(service_model("sts"), StsBackend())
