"""DynamoDB attribute values: validation, normalization, comparison, sizing and storage encoding.

Values stay in the wire shape boto3's low-level client uses (``{"S": "x"}``, ``{"N": "1.5"}``,
``{"B": b"..."}``, ...). Numbers are kept as their canonical string so that equal numbers are equal
strings, which makes key encoding and equality cheap.
"""

from __future__ import annotations

import base64
import json
import re
from decimal import Context, Decimal
from typing import Any

from localcloud.core import AwsError

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

SCALAR_TYPES = ("S", "N", "B")
SET_TYPES = {"SS": "S", "NS": "N", "BS": "B"}
ALL_TYPES = ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS")
MAX_ITEM_SIZE = 400 * 1024
# DynamoDB numbers: 38 significant digits, magnitude between 1E-130 and 9.99...E+125.
NUMBER_CONTEXT = Context(prec=38)
_MAX_NUMBER = Decimal("9.9999999999999999999999999999999999999E+125")
_MIN_NUMBER = Decimal("1E-130")
_NUMBER_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SET_NAMES = {"SS": "string", "NS": "number", "BS": "binary"}


def validation_error(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def invalid_parameter(message: str) -> AwsError:
    return validation_error(f"One or more parameter values were invalid: {message}")


def type_of(value: AttributeValue) -> str:
    return next(iter(value))


def to_decimal(value: AttributeValue) -> Decimal:
    return Decimal(value["N"])


def canonical_number(text: Any) -> str:
    """The form DynamoDB returns a number in: no exponent, no trailing zeros ("1.50" -> "1.5")."""
    if not isinstance(text, str) or not _NUMBER_TEXT.fullmatch(text):
        raise validation_error(f"The parameter cannot be converted to a numeric value: {text}")
    number = Decimal(text)
    if number.is_zero():
        return "0"
    return format_number(number)


def format_number(number: Decimal) -> str:
    if abs(number) > _MAX_NUMBER:
        raise validation_error(
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        )
    if number and abs(number) < _MIN_NUMBER:
        raise validation_error(
            "Number underflow. Attempting to store a number with magnitude smaller than supported range"
        )
    if number.is_zero():
        return "0"
    # A context as precise as the input, so normalizing only strips trailing zeros and never rounds.
    normalized = number.normalize(Context(prec=len(number.as_tuple().digits)))
    if len(normalized.as_tuple().digits) > 38:
        raise validation_error("Attempting to store more than 38 significant digits in a Number")
    return f"{normalized:f}"


def normalize(value: Any) -> AttributeValue:
    """A validated copy of a request's attribute value, numbers canonical; raises ValidationException."""
    if not isinstance(value, dict) or not value:
        raise validation_error("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
    if len(value) > 1:
        raise validation_error(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
        )
    kind, inner = next(iter(value.items()))
    if kind == "N":
        return {"N": canonical_number(inner)}
    if kind == "NULL" and inner is not True:
        raise invalid_parameter("Null attribute value types must have the value of true")
    if kind == "M":
        return {"M": {name: normalize(member) for name, member in inner.items()}}
    if kind == "L":
        return {"L": [normalize(member) for member in inner]}
    if kind in SET_TYPES:
        return {kind: _normalize_set(kind, inner)}
    return {kind: inner}


def _normalize_set(kind: str, members: list) -> list:
    if not members:
        raise invalid_parameter(f"An {_SET_NAMES[kind]} set  may not be empty")
    if kind == "NS":
        members = [canonical_number(member) for member in members]
    if len(set(members)) != len(members):
        shown = ", ".join(_show(member) for member in members)
        raise invalid_parameter(f"Input collection [{shown}] contains duplicates.")
    return list(members)


def _show(member: str | bytes) -> str:
    return base64.b64encode(member).decode() if isinstance(member, bytes) else member


def normalize_item(item: dict[str, Any]) -> Item:
    return {name: normalize(value) for name, value in item.items()}


def equal(left: AttributeValue | None, right: AttributeValue | None) -> bool:
    """DynamoDB equality: same type and same value; sets compare without order."""
    if left is None or right is None:
        return False
    kind = type_of(left)
    if kind != type_of(right):
        return False
    if kind in SET_TYPES:
        return set(left[kind]) == set(right[kind])
    if kind == "L":
        return len(left["L"]) == len(right["L"]) and all(map(equal, left["L"], right["L"]))
    if kind == "M":
        return left["M"].keys() == right["M"].keys() and all(equal(v, right["M"][k]) for k, v in left["M"].items())
    return left[kind] == right[kind]


def order_key(value: AttributeValue) -> Decimal | bytes:
    """How S, N and B values sort: strings by UTF-8 bytes, numbers numerically, binary bytewise."""
    kind = type_of(value)
    if kind == "N":
        return to_decimal(value)
    if kind == "S":
        return value["S"].encode()
    return value["B"]


def value_size(value: AttributeValue) -> int:
    """Roughly the bytes DynamoDB bills for a value (the documented item-size rules)."""
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(member.encode()) for member in inner)
    if kind == "NS":
        return sum(_number_size(member) for member in inner)
    if kind == "BS":
        return sum(len(member) for member in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(member) for member in inner)
    return 3 + sum(1 + len(name.encode()) + value_size(member) for name, member in inner.items())


def _number_size(text: str) -> int:
    digits = len(Decimal(text).as_tuple().digits)
    return (digits + 1) // 2 + 1


def item_size(item: Item) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def to_wire(value: Any) -> Any:
    """Blobs as base64 text, so an item can be stored as (or sent inside) JSON."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {key: to_wire(member) for key, member in value.items()}
    if isinstance(value, list):
        return [to_wire(member) for member in value]
    return value


def from_wire(value: dict[str, Any]) -> AttributeValue:
    kind, inner = next(iter(value.items()))
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(member) for member in inner]}
    if kind == "M":
        return {"M": {name: from_wire(member) for name, member in inner.items()}}
    if kind == "L":
        return {"L": [from_wire(member) for member in inner]}
    return {kind: inner}


def dump_item(item: Item) -> str:
    return json.dumps(to_wire(item), separators=(",", ":"), ensure_ascii=False)


def load_item(text: str) -> Item:
    return {name: from_wire(value) for name, value in json.loads(text).items()}


def number(value: Decimal) -> AttributeValue:
    """A computed number (update arithmetic) as a value, rounded to DynamoDB's precision and range-checked."""
    return {"N": format_number(NUMBER_CONTEXT.plus(value))}
