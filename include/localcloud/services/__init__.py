"""The services localcloud serves, keyed by the SigV4 credential-scope name clients sign with.

Each entry names a module whose ``create(data_dir)`` returns the service's protocol bound to its backend.
Later services (rekognition, sagemaker, textract, sagemaker-a2i-runtime) register here the same way.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from include.localcloud.protocols.base import ServiceProtocol

REGISTRY: dict[str, str] = {
    "s3": "include.localcloud.services.s3.protocol",
    "dynamodb": "include.localcloud.services.dynamodb.protocol",
    "sts": "include.localcloud.services.sts.protocol",
}


def build(data_dir: Path) -> dict[str, ServiceProtocol]:
    return {name: importlib.import_module(module).create(data_dir) for name, module in REGISTRY.items()}
