from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from localcloud.protocols.query import QueryProtocol
from localcloud.protocols.shapes import service_model
from localcloud.services.sts.backend import StsBackend

# AssumeRole reads roles and their trust policies from IAM.
REQUIRES = ("iam",)


def create(data_dir: Path, peers: Mapping[str, object]) -> QueryProtocol:
    return QueryProtocol(service_model("sts"), StsBackend(data_dir, peers["iam"].backend))
