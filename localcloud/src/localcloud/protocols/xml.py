"""XML encoding and decoding by botocore shape, shared by the query and rest-xml protocols."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from botocore.model import Shape

from localcloud.core import AwsError
from localcloud.protocols import shapes


def _flattened_name(name: str, shape: Shape) -> str:
    # The element name botocore's parser expects for each item of a flattened list or map.
    return shape.member.serialization.get("name") or shape.serialization.get("name") or name


def add_value(parent: ET.Element, name: str, value: Any, shape: Shape) -> None:
    """Append ``value`` under ``parent`` as element(s) called ``name``."""
    kind = shape.type_name
    if kind == "structure":
        element = ET.SubElement(parent, name)
        add_members(element, value, shape)
    elif kind == "list":
        if shape.serialization.get("flattened"):
            for item in value:
                add_value(parent, _flattened_name(name, shape), item, shape.member)
        else:
            element = ET.SubElement(parent, name)
            for item in value:
                add_value(element, shape.member.serialization.get("name", "member"), item, shape.member)
    elif kind == "map":
        element = parent if shape.serialization.get("flattened") else ET.SubElement(parent, name)
        for key, item in value.items():
            entry = ET.SubElement(element, "entry")
            ET.SubElement(entry, shape.key.serialization.get("name", "key")).text = str(key)
            add_value(entry, shape.value.serialization.get("name", "value"), item, shape.value)
    else:
        ET.SubElement(parent, name).text = shapes.scalar_to_text(value, shape)


def add_members(element: ET.Element, value: dict, shape: Shape, *, skip_located: bool = False) -> None:
    for name, member in shape.members.items():
        if value.get(name) is None:
            continue
        if skip_located and member.serialization.get("location"):
            continue
        add_value(element, shapes.member_wire_name(name, member), value[name], member)


def document(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_value(element: ET.Element, shape: Shape) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return read_members(element, shape)
    if kind == "list":
        name = shape.member.serialization.get("name", "member")
        return [read_value(child, shape.member) for child in element if _local(child.tag) == name]
    if kind == "map":
        out = {}
        for entry in element:
            key = entry.find(shape.key.serialization.get("name", "key"))
            val = entry.find(shape.value.serialization.get("name", "value"))
            if key is not None:
                out[key.text or ""] = read_value(val, shape.value) if val is not None else None
        return out
    return shapes.scalar_from_text(element.text or "", shape)


def read_members(element: ET.Element, shape: Shape) -> dict:
    out: dict[str, Any] = {}
    children = list(element)
    for name, member in shape.members.items():
        if member.type_name == "list" and member.serialization.get("flattened"):
            wanted = _flattened_name(shapes.member_wire_name(name, member), member)
            items = [read_value(c, member.member) for c in children if _local(c.tag) == wanted]
            if items:
                out[name] = items
            continue
        wanted = shapes.member_wire_name(name, member)
        for child in children:
            if _local(child.tag) == wanted:
                out[name] = read_value(child, member)
                break
    return out


def parse(body: bytes) -> ET.Element:
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise AwsError(
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        ) from exc
