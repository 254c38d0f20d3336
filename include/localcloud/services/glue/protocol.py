"""Glue's awsJson 1.1 wire format. Glue reports a request that breaks its model as InvalidInputException (not
the ValidationException other JSON services use), and its front end also checks the patterns, maximums and enums
botocore leaves to the service."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from botocore.model import OperationNotFoundError

from include.localcloud.core import AwsError, RequestContext
from include.localcloud.protocols import shapes
from include.localcloud.protocols.base import Request, Response
from include.localcloud.protocols.json_rpc import JsonProtocol
from include.localcloud.protocols.shapes import service_model
from include.localcloud.services.base import invoke
from include.localcloud.services.emr_serverless import constraints

# Scripts are read from localcloud's S3; job runs get temporary credentials for the job's role from STS.
REQUIRES = ("s3", "sts")
INVALID_INPUT = "InvalidInputException"


class GlueProtocol(JsonProtocol):
    def handle(self, ctx: RequestContext, request: Request) -> Response:
        name = self.operation_name(request)
        try:
            operation = self.model.operation_model(name)
        except OperationNotFoundError as exc:
            raise AwsError("UnknownOperationException", f"Unknown operation {name}.") from exc
        try:
            document = json.loads(request.read_body() or b"{}")
        except ValueError as exc:
            raise AwsError("SerializationException", "The request body is not valid JSON.") from exc
        if not isinstance(document, dict):
            raise AwsError("SerializationException", "The request body must be a JSON object.")
        params = shapes.from_json(document, operation.input_shape)
        shapes.validate(params, operation, INVALID_INPUT)
        try:
            constraints.check(params, operation.input_shape)
        except AwsError as exc:
            raise AwsError(INVALID_INPUT, exc.message) from None
        result = invoke(self.backend, self.model.service_name, name, ctx, params)
        body = shapes.to_json(result, operation.output_shape) if operation.output_shape else {}
        return self._response(200, body, ctx)


def create(data_dir: Path, peers: Mapping[str, object]) -> GlueProtocol:
    from include.localcloud.services.glue.backend import GlueBackend

    return GlueProtocol(service_model("glue"), GlueBackend(data_dir, peers["s3"].backend, peers["sts"].backend))
