"""The awsJson 1.0/1.1 protocol (DynamoDB, SageMaker, Rekognition, ...): ``X-Amz-Target`` names the
operation, the body is the input structure as JSON."""

from __future__ import annotations

import json

from botocore.model import OperationModel, OperationNotFoundError, ServiceModel

from localcloud.core import AwsError, RequestContext
from localcloud.protocols import shapes
from localcloud.protocols.base import Request, Response
from localcloud.services.base import invoke


class JsonProtocol:
    # The error code for a request that breaks the service's model (Glue says InvalidInputException).
    validation_code = "ValidationException"

    def __init__(self, model: ServiceModel, backend: object, *, error_namespace: str | None = None) -> None:
        self.model = model
        self.backend = backend
        self.target_prefix = model.metadata["targetPrefix"]
        self.content_type = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}"
        # DynamoDB qualifies error types with its Coral namespace; botocore strips everything up to '#'.
        self.error_namespace = error_namespace or f"com.amazonaws.{model.endpoint_prefix}"

    def operation_name(self, request: Request) -> str:
        prefix, _, name = request.headers.get("x-amz-target", "").partition(".")
        if request.method != "POST" or prefix != self.target_prefix or not name:
            raise AwsError("UnknownOperationException", "Send a POST with X-Amz-Target: <TargetPrefix>.<Operation>.")
        return name

    def handle(self, ctx: RequestContext, request: Request) -> Response:
        name = self.operation_name(request)
        try:
            operation = self.model.operation_model(name)
        except OperationNotFoundError as exc:
            raise AwsError("UnknownOperationException", f"Unknown operation {name}.") from exc
        raw = request.read_body() or b"{}"
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise AwsError("SerializationException", "The request body is not valid JSON.") from exc
        if not isinstance(document, dict):
            raise AwsError("SerializationException", "The request body must be a JSON object.")
        params = shapes.from_json(document, operation.input_shape)
        shapes.validate(params, operation, self.validation_code)
        self.check(params, operation)
        result = invoke(self.backend, self.model.service_name, name, ctx, params)
        body = shapes.to_json(result, operation.output_shape) if operation.output_shape else {}
        return self._response(200, body, ctx)

    def check(self, params: dict, operation: OperationModel) -> None:
        """Checks a service's front end makes beyond the model's (none by default)."""

    def error(self, ctx: RequestContext, request: Request, error: AwsError) -> Response:
        body = {"__type": f"{self.error_namespace}#{error.code}", "message": error.message, **error.fields}
        response = self._response(error.status, body, ctx)
        response.headers["x-amzn-ErrorType"] = error.code
        response.headers.update(error.headers)
        return response

    def _response(self, status: int, body: dict, ctx: RequestContext) -> Response:
        return Response(
            status=status,
            headers={"Content-Type": self.content_type, "x-amzn-RequestId": ctx.request_id},
            body=json.dumps(body, separators=(",", ":")).encode(),
        )
