"""The rest-xml protocol (S3): the operation is found from method, path and query by matching
the ``requestUri`` templates in botocore's model, and members come from the URI, headers, query
string and an XML or streaming payload, each as the model's ``location`` traits say."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree as ET

from botocore.model import OperationModel, ServiceModel, Shape

from localcloud.core import AwsError, RequestContext
from localcloud.protocols import shapes, xml
from localcloud.protocols.base import Request, Response
from localcloud.services.base import backend_method, invoke


@dataclass(frozen=True)
class Route:
    operation: OperationModel
    method: str
    segments: tuple[str, ...]  # literal text, "{Label}" or "{Label+}"
    literal_query: tuple[tuple[str, str | None], ...]
    # Members the route needs from headers or the query string: they tell apart operations that share
    # method and URI (PutObject vs CopyObject vs UploadPart).
    required: tuple[tuple[str, str], ...]  # (location, wire name)

    def match_path(self, parts: list[str]) -> dict[str, str] | None:
        labels: dict[str, str] = {}
        for i, segment in enumerate(self.segments):
            if segment.startswith("{") and segment.endswith("+}"):
                rest = "/".join(parts[i:])
                if not rest:
                    return None
                labels[segment[1:-2]] = unquote(rest)
                return labels
            if i >= len(parts):
                return None
            if segment.startswith("{"):
                if not parts[i]:
                    return None
                labels[segment[1:-1]] = unquote(parts[i])
            elif segment != parts[i]:
                return None
        return labels if len(parts) == len(self.segments) else None

    def score(self, request: Request) -> int | None:
        for key, value in self.literal_query:
            if not request.query_has(key) or (value is not None and value not in request.query_values(key)):
                return None
        for location, name in self.required:
            present = request.query_has(name) if location == "querystring" else name.lower() in request.headers
            if not present:
                return None
        return len(self.literal_query) + len(self.required)


def _route(operation: OperationModel) -> Route:
    path, _, query = operation.http["requestUri"].partition("?")
    literal = []
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        literal.append((key, value if eq else None))
    required = []
    shape = operation.input_shape
    if shape is not None:
        for name in shape.required_members:
            member = shape.members[name]
            location = member.serialization.get("location")
            if location in ("header", "querystring"):
                required.append((location, member.serialization.get("name", name)))
    segments = tuple(path.strip("/").split("/")) if path.strip("/") else ()
    return Route(operation, operation.http["method"], segments, tuple(literal), tuple(required))


class RestXmlProtocol:
    """Generic rest-xml handling. A service subclasses it for its few wire quirks."""

    # The XML root element for outputs whose body is not a named payload (S3 names them per operation).
    root_names: dict[str, str] = {}

    def __init__(self, model: ServiceModel, backend: object) -> None:
        self.model = model
        self.backend = backend
        self.namespace = (
            model.metadata.get("xmlNamespace", {}).get("uri", "")
            if isinstance(model.metadata.get("xmlNamespace"), dict)
            else ""
        )
        self.routes = [_route(model.operation_model(name)) for name in model.operation_names]

    # -- request side ------------------------------------------------------------------------------
    def path_parts(self, request: Request) -> list[str]:
        # Only the leading slash goes: keys may begin or end with "/" ("dir/" folder markers).
        parts = request.raw_path[1:].split("/") if request.raw_path not in ("", "/") else []
        if len(parts) == 2 and parts[1] == "":  # "/bucket/" addresses the bucket
            parts.pop()
        return parts

    def find_route(self, request: Request) -> tuple[Route, dict[str, str]]:
        parts = self.path_parts(request)
        best: tuple[int, Route, dict[str, str]] | None = None
        for route in self.routes:
            if route.method != request.method:
                continue
            labels = route.match_path(parts)
            if labels is None:
                continue
            score = route.score(request)
            if score is None:
                continue
            # Where a deprecated operation shares its wire form with its successor (PutBucketLifecycle and
            # PutBucketLifecycleConfiguration), the request is taken for the successor, which clients now send.
            if best is None or score > best[0] or (score == best[0] and best[1].operation.deprecated):
                best = (score, route, labels)
        if best is None:
            raise AwsError("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
        return best[1], best[2]

    def read_input(self, request: Request, shape: Shape | None, labels: dict[str, str]) -> dict[str, Any]:
        if shape is None:
            return {}
        params: dict[str, Any] = {}
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri":
                if wire in labels:
                    params[name] = labels[wire]
            elif location == "querystring":
                values = request.query_values(wire)
                if values:
                    if member.type_name == "list":
                        params[name] = [shapes.scalar_from_text(v, member.member) for v in values]
                    else:
                        params[name] = shapes.scalar_from_text(values[0], member)
            elif location == "header":
                value = request.headers.get(wire.lower())
                if value is not None:
                    params[name] = shapes.scalar_from_text(value, member)
            elif location == "headers":
                prefix = wire.lower()
                found = {k[len(prefix) :]: v for k, v in request.headers.items() if k.startswith(prefix)}
                if found:
                    params[name] = found
        payload = shape.serialization.get("payload")
        if payload:
            member = shape.members[payload]
            if member.type_name in ("blob", "string"):
                params[payload] = request.body
            else:
                body = request.read_body()
                if body.strip():
                    params[payload] = xml.read_value(xml.parse(body), member)
        return params

    def refuse_unhonoured(self, operation: OperationModel, params: dict[str, Any]) -> None:
        """Raise for a member the request sets that the backend would not honour. A service declares its own."""

    # -- response side -----------------------------------------------------------------------------
    def write_output(self, operation: OperationModel, result: dict[str, Any], request: Request) -> Response:
        response = Response(status=int(operation.http.get("responseCode", 200)))
        shape = operation.output_shape
        if shape is None:
            return response
        for name, member in shape.members.items():
            value = result.get(name)
            if value is None:
                continue
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "header":
                response.headers[wire] = shapes.scalar_to_text(value, member, header=True)
            elif location == "headers":
                for key, item in value.items():
                    response.headers[f"{wire}{key}"] = str(item)
            elif location == "statusCode":
                response.status = int(value)
        payload = shape.serialization.get("payload")
        if payload:
            member = shape.members[payload]
            value = result.get(payload)
            if member.type_name in ("blob", "string"):
                if isinstance(value, bytes | str):
                    response.body = value.encode() if isinstance(value, str) else value
                elif value is not None:
                    response.body = value
                    response.length = result.get("ContentLength")
            elif value is not None:
                root = ET.Element(member.serialization.get("name", member.name), xmlns=self.namespace)
                xml.add_members(root, value, member)
                response.body = xml.document(root)
        elif any(not m.serialization.get("location") for m in shape.members.values()):
            root = ET.Element(self.root_names.get(operation.name, f"{operation.name}Result"), xmlns=self.namespace)
            xml.add_members(root, result, shape, skip_located=True)
            response.body = xml.document(root)
        if response.body and "Content-Type" not in response.headers and isinstance(response.body, bytes):
            response.headers["Content-Type"] = "application/xml"
        return response

    def handle(self, ctx: RequestContext, request: Request) -> Response:
        route, labels = self.find_route(request)
        operation = route.operation
        # An operation the backend lacks answers NotImplemented before its input is parsed: parsing members it
        # would never use can only fail with a confusing error (a string payload that is still a stream, a list
        # header) where the truth is that localcloud does not do the operation.
        backend_method(self.backend, self.model.service_name, operation.name)
        params = self.read_input(request, operation.input_shape, labels)
        shapes.validate(params, operation, "InvalidArgument")
        result = invoke(
            self.backend,
            self.model.service_name,
            operation.name,
            ctx,
            params,
            refuse=lambda: self.refuse_unhonoured(operation, params),
        )
        response = self.write_output(operation, result, request)
        if request.method == "HEAD":
            response.length = response.content_length
            if not isinstance(response.body, bytes):
                response.body.close()
            response.body = b""
        return response

    def error(self, ctx: RequestContext, request: Request, error: AwsError) -> Response:
        root = ET.Element("Error")
        ET.SubElement(root, "Code").text = error.code
        ET.SubElement(root, "Message").text = error.message
        for key, value in error.fields.items():
            ET.SubElement(root, key).text = value
        ET.SubElement(root, "RequestId").text = ctx.request_id
        body = b"" if request.method == "HEAD" else xml.document(root)
        return Response(error.status, {"Content-Type": "application/xml", **error.headers}, body)
