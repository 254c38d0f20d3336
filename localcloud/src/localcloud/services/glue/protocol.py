"""Glue's awsJson 1.1 wire format. Glue reports a request that breaks its model as InvalidInputException (not
the ValidationException other JSON services use), and its front end also checks the patterns, maximums and enums
botocore leaves to the service."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from botocore.model import OperationModel

from localcloud.core import AwsError
from localcloud.protocols.json_rpc import JsonProtocol
from localcloud.protocols.shapes import service_model
from localcloud.services.emr_serverless import constraints

# Job runs get temporary credentials for the job's role from STS, and read their script with them from S3.
REQUIRES = ("s3", "sts")
INVALID_INPUT = "InvalidInputException"


class GlueProtocol(JsonProtocol):
    validation_code = INVALID_INPUT

    def check(self, params: dict, operation: OperationModel) -> None:
        try:
            constraints.check(params, operation.input_shape)
        except AwsError as exc:
            raise AwsError(INVALID_INPUT, exc.message) from None


def create(data_dir: Path, peers: Mapping[str, object]) -> GlueProtocol:
    from localcloud.services.glue.backend import GlueBackend

    return GlueProtocol(service_model("glue"), GlueBackend(data_dir, peers["sts"].backend))
