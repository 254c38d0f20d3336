"""EMR Serverless's rest-json wire format, with the pattern, maximum and enum checks AWS's front end makes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.model import Shape

from localcloud.protocols.base import Request
from localcloud.protocols.rest_json import RestJsonProtocol
from localcloud.protocols.shapes import service_model
from localcloud.services.emr_serverless import constraints

# Entry points and their dependencies are read from localcloud's S3, and driver logs written back to it.
REQUIRES = ("s3",)


class EmrServerlessProtocol(RestJsonProtocol):
    def read_input(self, request: Request, shape: Shape | None, labels: dict[str, str]) -> dict[str, Any]:
        params = super().read_input(request, shape, labels)
        constraints.check(params, shape)
        return params


def create(data_dir: Path, peers: Mapping[str, object]) -> EmrServerlessProtocol:
    from localcloud.services.emr_serverless.backend import EmrServerlessBackend

    return EmrServerlessProtocol(service_model("emr-serverless"), EmrServerlessBackend(data_dir, peers["s3"].backend))
