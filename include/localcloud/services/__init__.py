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


def build(data_dir: Path, only: list[str] | None = None) -> dict[str, ServiceProtocol]:
    """Every registered service, or just those in ``only`` (unknown names are an error, not ignored)."""
    names = only or list(REGISTRY)
    unknown = sorted(set(names) - set(REGISTRY))
    if unknown:
        raise ValueError(f"unknown localcloud services {unknown}; known: {sorted(REGISTRY)}")
    return {name: importlib.import_module(REGISTRY[name]).create(data_dir) for name in names}
