"""The awsQuery protocol (STS, IAM): form-encoded ``Action`` parameters in, XML out."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

from botocore.model import OperationNotFoundError, ServiceModel, Shape

from localcloud.core import AwsError, RequestContext
from localcloud.protocols import shapes, xml
from localcloud.protocols.base import Request, Response
from localcloud.services.base import invoke


def _indexed(flat: dict[str, str], prefix: str) -> list[int]:
    indexes = set()
    for key in flat:
        if key.startswith(prefix):
            head = key[len(prefix) :].split(".", 1)[0]
            if head.isdigit():
                indexes.add(int(head))
    return sorted(indexes)


def read_params(flat: dict[str, str], shape: Shape, prefix: str = "") -> Any:
    """Unflatten ``Name.member.1.Key``-style parameters into the value ``shape`` describes."""
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            wire = shapes.member_wire_name(name, member)
            key = f"{prefix}.{wire}" if prefix else wire
            value = read_params(flat, member, key)
            if value is not None:
                out[name] = value
        return out if (out or not prefix) else None
    if kind == "list":
        item_prefix = prefix if shape.serialization.get("flattened") else f"{prefix}.member"
        if flat.get(prefix) == "":  # an explicitly empty list
            return []
        items = [read_params(flat, shape.member, f"{item_prefix}.{i}") for i in _indexed(flat, f"{item_prefix}.")]
        return items or None
    if kind == "map":
        entry_prefix = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        out = {}
        for i in _indexed(flat, f"{entry_prefix}."):
            key = flat.get(f"{entry_prefix}.{i}.{key_name}")
            if key is not None:
                out[key] = read_params(flat, shape.value, f"{entry_prefix}.{i}.{value_name}")
        return out or None
    if prefix in flat:
        return shapes.scalar_from_text(flat[prefix], shape)
    return None


class QueryProtocol:
    def __init__(self, model: ServiceModel, backend: object) -> None:
        self.model = model
        self.backend = backend
        self.namespace = model.metadata.get("xmlNamespace", "")

    def params(self, request: Request) -> dict[str, str]:
        flat = dict(request.query)
        if request.method == "POST":
            flat.update(parse_qsl(request.read_body().decode("utf-8"), keep_blank_values=True))
        return flat

    def handle(self, ctx: RequestContext, request: Request) -> Response:
        flat = self.params(request)
        name = flat.get("Action", "")
        try:
            operation = self.model.operation_model(name)
        except OperationNotFoundError as exc:
            raise AwsError("InvalidAction", f"Could not find operation {name or '(none)'}.") from exc
        params = read_params(flat, operation.input_shape) if operation.input_shape else {}
        shapes.validate(params, operation, "ValidationError")
        result = invoke(self.backend, self.model.service_name, name, ctx, params)

        root = ET.Element(f"{name}Response", xmlns=self.namespace)
        if operation.output_shape is not None:
            wrapper = operation.output_shape.serialization.get("resultWrapper", f"{name}Result")
            xml.add_members(ET.SubElement(root, wrapper), result, operation.output_shape)
        metadata = ET.SubElement(root, "ResponseMetadata")
        ET.SubElement(metadata, "RequestId").text = ctx.request_id
        return Response(200, {"Content-Type": "text/xml"}, xml.document(root))

    def error(self, ctx: RequestContext, request: Request, error: AwsError) -> Response:
        root = ET.Element("ErrorResponse", xmlns=self.namespace)
        body = ET.SubElement(root, "Error")
        ET.SubElement(body, "Type").text = "Sender" if error.sender_fault else "Receiver"
        ET.SubElement(body, "Code").text = error.code
        ET.SubElement(body, "Message").text = error.message
        ET.SubElement(root, "RequestId").text = ctx.request_id
        return Response(error.status, {"Content-Type": "text/xml", **error.headers}, xml.document(root))
