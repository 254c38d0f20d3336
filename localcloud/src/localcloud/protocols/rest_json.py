"""The rest-json protocol (SageMaker A2I runtime, Textract's cousins, ...): the operation is found from method
and path by matching the ``requestUri`` templates in botocore's model; members come from the URI, the query
string, headers and a JSON body, as the model's ``location`` traits say. Errors carry their code in
``x-amzn-ErrorType`` and the HTTP status the model gives each error shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from botocore.model import OperationModel, ServiceModel, Shape

from localcloud.core import AwsError, RequestContext
from localcloud.protocols import shapes
from localcloud.protocols.base import Request, Response
from localcloud.services.base import invoke


@dataclass(frozen=True)
class Route:
    operation: OperationModel
    method: str
    segments: tuple[str, ...]  # literal text, "{Label}" or "{Label+}"
    literal_query: tuple[tuple[str, str | None], ...]

    def match(self, request: Request, parts: list[str]) -> tuple[int, dict[str, str]] | None:
        """(specificity, labels) when the request fits this route; literal segments beat labels."""
        if request.method != self.method:
            return None
        labels: dict[str, str] = {}
        literal = 0
        for i, segment in enumerate(self.segments):
            if segment.endswith("+}"):
                rest = "/".join(parts[i:])
                if not rest:
                    return None
                labels[segment[1:-2]] = unquote(rest)
                parts = parts[: i + 1]
                break
            if i >= len(parts):
                return None
            if segment.startswith("{"):
                if not parts[i]:
                    return None
                labels[segment[1:-1]] = unquote(parts[i])
            elif segment == parts[i]:
                literal += 1
            else:
                return None
        if len(parts) != len(self.segments):
            return None
        for key, value in self.literal_query:
            if not request.query_has(key) or (value is not None and value not in request.query_values(key)):
                return None
        return literal * 100 + len(self.literal_query), labels


def _route(operation: OperationModel) -> Route:
    path, _, query = operation.http["requestUri"].partition("?")
    literal = []
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        literal.append((key, value if eq else None))
    segments = tuple(path.strip("/").split("/")) if path.strip("/") else ()
    return Route(operation, operation.http["method"], segments, tuple(literal))


def _path_parts(raw_path: str) -> list[str]:
    return raw_path.strip("/").split("/") if raw_path.strip("/") else []


def encode(value: Any, shape: Shape | None) -> Any:
    """A backend's value as rest-json puts it in a body; timestamps follow the member's ``timestampFormat``."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        return {
            shapes.member_wire_name(name, member): encode(value[name], member)
            for name, member in shape.members.items()
            if value.get(name) is not None and not member.serialization.get("location")
        }
    if kind == "list":
        return [encode(item, shape.member) for item in value]
    if kind == "map":
        return {k: encode(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        fmt = shape.serialization.get("timestampFormat", "unixTimestamp")
        if fmt == "iso8601":
            return shapes.iso8601(value)
        if fmt == "rfc822":
            return shapes.rfc822(value)
        return shapes.to_datetime(value).timestamp()
    return shapes.to_json(value, shape)


class RestJsonProtocol:
    def __init__(self, model: ServiceModel, backend: object) -> None:
        self.model = model
        self.backend = backend
        self.routes = [_route(model.operation_model(name)) for name in model.operation_names]
        # Local web pages a service serves beside its API (see localcloud.server).
        self.web_routes: dict[str, Callable[[Request], Response]] = {}
        # The model is the authority on each error's status (ResourceNotFoundException is 404, ...).
        self.error_status = {
            shape.name: shape.metadata["error"]["httpStatusCode"]
            for name in model.operation_names
            for shape in model.operation_model(name).error_shapes
            if shape.metadata.get("error", {}).get("httpStatusCode")
        }

    def find_route(self, request: Request) -> tuple[Route, dict[str, str]] | None:
        parts = _path_parts(request.raw_path)
        best: tuple[int, Route, dict[str, str]] | None = None
        for route in self.routes:
            found = route.match(request, parts)
            if found and (best is None or found[0] > best[0]):
                best = (found[0], route, found[1])
        return (best[1], best[2]) if best else None

    def claims(self, request: Request) -> bool:
        """Whether the request addresses one of this service's operations (for services sharing a signing name)."""
        parts = _path_parts(request.raw_path)
        return any(route.match(request, parts) for route in self.routes)

    def read_input(self, request: Request, shape: Shape | None, labels: dict[str, str]) -> dict[str, Any]:
        if shape is None:
            return {}
        params: dict[str, Any] = {}
        body_members = {n: m for n, m in shape.members.items() if not m.serialization.get("location")}
        payload = shape.serialization.get("payload")
        raw = request.read_body()
        if payload:
            member = shape.members[payload]
            if member.type_name in ("blob", "string"):
                if raw:
                    params[payload] = raw if member.type_name == "blob" else raw.decode("utf-8")
            elif raw:
                params[payload] = shapes.from_json(self._json(raw), member)
        elif body_members and raw:
            document = self._json(raw)
            if not isinstance(document, dict):
                raise AwsError("SerializationException", "The request body must be a JSON object.")
            params.update(shapes.from_json(document, shape))
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            try:
                if location == "uri" and wire in labels:
                    params[name] = shapes.scalar_from_text(labels[wire], member)
                elif location == "querystring":
                    if member.type_name == "list":
                        values = request.query_values(wire)
                        if values:
                            params[name] = [shapes.scalar_from_text(v, member.member) for v in values]
                    elif member.type_name == "map":
                        taken = {m.serialization.get("name", n) for n, m in shape.members.items()}
                        params[name] = {k: v for k, v in request.query if k not in taken} or None
                    elif request.query_has(wire):
                        params[name] = shapes.scalar_from_text(request.query_values(wire)[0], member)
                elif location == "header" and wire.lower() in request.headers:
                    params[name] = shapes.scalar_from_text(request.headers[wire.lower()], member)
                elif location == "headers":
                    prefix = wire.lower()
                    found = {k[len(prefix) :]: v for k, v in request.headers.items() if k.startswith(prefix)}
                    params[name] = found or None
            except AwsError as exc:
                raise AwsError("ValidationException", f"{wire}: {exc.message}") from exc
        return {k: v for k, v in params.items() if v is not None}

    @staticmethod
    def _json(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise AwsError("SerializationException", "The request body is not valid JSON.") from exc

    def write_output(self, operation: OperationModel, result: dict[str, Any], ctx: RequestContext) -> Response:
        status = int(operation.http.get("responseCode", 200))
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": ctx.request_id}
        shape = operation.output_shape
        if shape is None:
            return Response(status, headers, b"{}")
        for name, member in shape.members.items():
            value = result.get(name)
            location = member.serialization.get("location")
            if value is None or not location:
                continue
            wire = member.serialization.get("name", name)
            if location == "header":
                headers[wire] = shapes.scalar_to_text(value, member, header=True)
            elif location == "headers":
                headers.update({f"{wire}{k}": str(v) for k, v in value.items()})
            elif location == "statusCode":
                status = int(value)
        payload = shape.serialization.get("payload")
        if payload:
            value = result.get(payload)
            member = shape.members[payload]
            if member.type_name in ("blob", "string"):
                body = value.encode() if isinstance(value, str) else (value or b"")
                headers["Content-Type"] = "application/octet-stream"
                return Response(status, headers, body)
            return Response(status, headers, json.dumps(encode(value or {}, member)).encode())
        return Response(status, headers, json.dumps(encode(result, shape), separators=(",", ":")).encode())

    def handle(self, ctx: RequestContext, request: Request) -> Response:
        found = self.find_route(request)
        if found is None:
            raise AwsError("UnknownOperationException", f"No operation matches {request.method} {request.raw_path}.")
        route, labels = found
        params = self.read_input(request, route.operation.input_shape, labels)
        shapes.validate(params, route.operation, "ValidationException")
        result = invoke(self.backend, self.model.service_name, route.operation.name, ctx, params)
        return self.write_output(route.operation, result, ctx)

    def error(self, ctx: RequestContext, request: Request, error: AwsError) -> Response:
        status = self.error_status.get(error.code, error.status)
        if error.code == "UnknownOperationException":
            status = 404
        body = {"message": error.message, **error.fields}
        headers = {
            "Content-Type": "application/json",
            "x-amzn-RequestId": ctx.request_id,
            "x-amzn-ErrorType": error.code,
            **error.headers,
        }
        return Response(status, headers, json.dumps(body).encode())
