"""Model-driven value conversion between wire formats and the Python values backends use.

Everything here walks botocore shapes, so a new service needs no per-field code: blobs become
``bytes``, timestamps ``datetime``, and the result is checked with botocore's own ``ParamValidator``.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
from datetime import UTC, datetime
from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.utils import parse_timestamp
from botocore.validate import ParamValidator

from localcloud.core import AwsError


@cache
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


def validate(params: dict[str, Any], operation: OperationModel, error_code: str) -> None:
    """Raise ``error_code`` with botocore's own report when ``params`` do not fit the input shape."""
    if operation.input_shape is None:
        return
    report = ParamValidator().validate(params, operation.input_shape)
    if report.has_errors():
        raise AwsError(error_code, report.generate_report())


def to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        return parse_timestamp(value).astimezone(UTC)
    except (ValueError, TypeError) as exc:
        raise AwsError("SerializationException", f"{value!r} is not a timestamp.") from exc


def iso8601(value: datetime) -> str:
    return to_datetime(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def rfc822(value: datetime) -> str:
    return email.utils.format_datetime(to_datetime(value), usegmt=True)


def b64decode(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise AwsError("SerializationException", "A blob member is not valid base64.") from exc


def member_wire_name(name: str, shape: Shape) -> str:
    return shape.serialization.get("name", name)


def from_json(value: Any, shape: Shape | None) -> Any:
    """A JSON-protocol value as Python, by its shape. Values of the wrong type pass through untouched
    so that the validator, not this walk, reports them."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        by_wire = {member_wire_name(n, s): (n, s) for n, s in shape.members.items()}
        out = {}
        for key, item in value.items():
            name, member = by_wire.get(key, (key, None))
            out[name] = from_json(item, member)
        return out
    if kind == "list" and isinstance(value, list):
        return [from_json(item, shape.member) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {k: from_json(v, shape.value) for k, v in value.items()}
    if kind == "blob" and isinstance(value, str):
        return b64decode(value)
    if kind == "timestamp" and isinstance(value, int | float | str):
        return to_datetime(value)
    return value


def to_json(value: Any, shape: Shape | None) -> Any:
    """A backend's Python value as the JSON protocols put it on the wire."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        return {
            member_wire_name(name, member): to_json(value[name], member)
            for name, member in shape.members.items()
            if value.get(name) is not None
        }
    if kind == "list":
        return [to_json(item, shape.member) for item in value]
    if kind == "map":
        return {k: to_json(v, shape.value) for k, v in value.items()}
    if kind == "blob":
        return base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).decode()
    if kind == "timestamp":
        return to_datetime(value).timestamp()
    return value


def scalar_from_text(text: str, shape: Shape) -> Any:
    """A header, query-string or XML text value as Python, by its shape."""
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
    except ValueError as exc:
        raise AwsError("InvalidArgument", f"{text!r} is not a valid {kind}.") from exc
    if kind == "boolean":
        return text.strip().lower() == "true"
    if kind == "timestamp":
        return to_datetime(text)
    if kind == "blob":
        return b64decode(text)
    return text


def scalar_to_text(value: Any, shape: Shape, *, header: bool = False) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return rfc822(value) if header else iso8601(value)
    if kind == "blob":
        return base64.b64encode(value).decode()
    return str(value)
