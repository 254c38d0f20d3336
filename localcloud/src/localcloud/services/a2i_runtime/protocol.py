"""The A2I runtime's rest-json wire format, plus the reviewer page on the server's web-route hook."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from localcloud.protocols.rest_json import RestJsonProtocol
from localcloud.protocols.shapes import service_model

# Loops run on SageMaker flow definitions; page images are read from, and output written to, localcloud's S3.
REQUIRES = ("s3", "sagemaker")


def create(data_dir: Path, peers: Mapping[str, object]) -> RestJsonProtocol:
    from localcloud.services.a2i_runtime.backend import A2IRuntimeBackend
    from localcloud.services.a2i_runtime.review import PREFIX, ReviewSite

    s3 = peers["s3"].backend
    backend = A2IRuntimeBackend(data_dir, peers["sagemaker"].backend, s3)
    protocol = RestJsonProtocol(service_model("sagemaker-a2i-runtime"), backend)
    protocol.web_routes = {PREFIX: ReviewSite(backend, s3).handle}
    return protocol
