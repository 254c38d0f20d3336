from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from localcloud.protocols.json_rpc import JsonProtocol
from localcloud.protocols.shapes import service_model

# Documents are read from localcloud's S3, and OutputConfig results written back to it.
REQUIRES = ("s3",)


def create(data_dir: Path, peers: Mapping[str, object]) -> JsonProtocol:
    from localcloud.services.textract.backend import TextractBackend

    return JsonProtocol(service_model("textract"), TextractBackend(data_dir, peers["s3"].backend))
