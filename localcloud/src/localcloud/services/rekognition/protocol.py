from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from localcloud.protocols.json_rpc import JsonProtocol
from localcloud.protocols.shapes import service_model

# Datasets are imported from manifests and images stored in localcloud's S3.
REQUIRES = ("s3",)


def create(data_dir: Path, peers: Mapping[str, object]) -> JsonProtocol:
    from localcloud.services.rekognition.backend import RekognitionBackend

    return JsonProtocol(service_model("rekognition"), RekognitionBackend(data_dir, peers["s3"].backend))
