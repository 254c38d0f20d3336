"""The services localcloud serves, keyed by the SigV4 credential-scope name clients sign with.

Each entry names a module whose ``create(data_dir)`` returns the service's protocol bound to its backend.
Later services (rekognition, sagemaker, textract, sagemaker-a2i-runtime) register here the same way.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from localcloud.protocols.base import ServiceProtocol

REGISTRY: dict[str, str] = {
    "s3": "localcloud.services.s3.protocol",
    "dynamodb": "localcloud.services.dynamodb.protocol",
    "iam": "localcloud.services.iam.protocol",
    "sts": "localcloud.services.sts.protocol",
    "rekognition": "localcloud.services.rekognition.protocol",
    "textract": "localcloud.services.textract.protocol",
    "sagemaker": "localcloud.services.sagemaker.protocol",
    "sagemaker-a2i-runtime": "localcloud.services.a2i_runtime.protocol",
    "emr-serverless": "localcloud.services.emr_serverless.protocol",
    "glue": "localcloud.services.glue.protocol",
}


def build(data_dir: Path, only: list[str] | None = None) -> dict[str, ServiceProtocol]:
    """Every registered service, or those in ``only`` plus what they need (unknown names are an error).

    A module's ``create(data_dir, peers)`` gets the services built before it; one that reads another
    service's state (Rekognition reads manifests and images from S3) names it in its ``REQUIRES``.
    """
    names = only or list(REGISTRY)
    unknown = sorted(set(names) - set(REGISTRY))
    if unknown:
        raise ValueError(f"unknown localcloud services {unknown}; known: {sorted(REGISTRY)}")
    built: dict[str, ServiceProtocol] = {}

    def add(name: str) -> None:
        if name in built:
            return
        module = importlib.import_module(REGISTRY[name])
        for required in getattr(module, "REQUIRES", ()):
            add(required)
        built[name] = module.create(data_dir, built)

    for name in names:
        add(name)
    return built
