from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from localcloud.protocols.json_rpc import JsonProtocol
from localcloud.protocols.shapes import service_model


def create(data_dir: Path, peers: Mapping[str, object]) -> JsonProtocol:
    from localcloud.services.dynamodb.backend import DynamoDBBackend

    return JsonProtocol(
        service_model("dynamodb"), DynamoDBBackend(data_dir), error_namespace="com.amazonaws.dynamodb.v20120810"
    )
