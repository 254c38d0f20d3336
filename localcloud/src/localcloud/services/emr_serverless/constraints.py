"""The input constraints botocore's ParamValidator leaves to the service: ``pattern``, ``max`` and ``enum``.

botocore checks types, required members and minimums; AWS's own front end also refuses values that break a
member's pattern, maximum or enum, with one ValidationException listing every violation in its words
("1 validation error detected: Value 'x' at 'executionRoleArn' failed to satisfy constraint: ..."). This walks
an operation's input shape and does the same. Values of the wrong type are skipped: botocore reports those.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from botocore.model import Shape

from localcloud.core import AwsError

MAX_REPORTED_VALUE = 64


@cache
def _pattern(text: str) -> re.Pattern[str] | None:
    # AWS matches the whole value; a pattern Python cannot compile is left unchecked rather than guessed at.
    try:
        return re.compile(text, re.DOTALL)
    except re.error:
        return None


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_REPORTED_VALUE else text[: MAX_REPORTED_VALUE - 3] + "..."


def _walk(value: Any, shape: Shape, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _walk(value[name], member, f"{path}.{name}" if path else name, errors)
        return
    if kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(
                f"Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}"
            )
        for index, item in enumerate(value):
            _walk(item, shape.member, f"{path}.{index + 1}.member", errors)
        return
    if kind == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(
                f"Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}"
            )
        for key, item in value.items():
            _walk(key, shape.key, f"{path}.key", errors)
            _walk(item, shape.value, f"{path}.{key}", errors)
        return
    if kind == "string" and isinstance(value, str):
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            errors.append(
                f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: "
                f"[{', '.join(enum)}]"
            )
        elif "max" in meta and len(value) > meta["max"]:
            errors.append(
                f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: Member must have length less than or "
                f"equal to {meta['max']}"
            )
        elif "pattern" in meta:
            compiled = _pattern(meta["pattern"])
            if compiled is not None and not compiled.fullmatch(value):
                errors.append(
                    f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: Member must satisfy regular "
                    f"expression pattern: {meta['pattern']}"
                )
        return
    numeric = kind in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool)
    if numeric and "max" in meta and value > meta["max"]:
        errors.append(
            f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value less than or equal "
            f"to {meta['max']}"
        )


def check(params: dict[str, Any], shape: Shape | None) -> None:
    """Raise ValidationException, worded as AWS words it, for every pattern, maximum or enum ``params`` break."""
    if shape is None:
        return
    errors: list[str] = []
    _walk(params, shape, "", errors)
    if errors:
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: "
        raise AwsError("ValidationException", count + "; ".join(errors))
