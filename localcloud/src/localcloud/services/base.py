"""The contract between a protocol and a backend.

A backend is a plain object with one method per implemented operation, named in snake_case
(``PutItem`` -> ``put_item``). Each takes ``(ctx, params)``, where ``params`` are already validated
against botocore's input shape and decoded to Python values (``bytes`` for blobs, ``datetime`` for
timestamps), and returns a dict shaped like the operation's output. Backends raise
:class:`~localcloud.core.AwsError` and never see HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from localcloud.core import AwsError, RequestContext, not_implemented

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(operation_name: str) -> str:
    """``ListObjectsV2`` -> ``list_objects_v2``; ``GetCallerIdentity`` -> ``get_caller_identity``."""
    return _CAMEL.sub("_", operation_name).lower()


def backend_method(backend: object, service: str, operation_name: str) -> Callable[..., dict]:
    method = getattr(backend, snake_case(operation_name), None)
    if method is None:
        raise not_implemented(service, operation_name)
    return method


def invoke(
    backend: object,
    service: str,
    operation_name: str,
    ctx: RequestContext,
    params: dict[str, Any],
    refuse: Callable[[], None] | None = None,
) -> dict:
    """Run one operation. ``refuse`` raises for settings the backend would not honour; it runs after the
    caller is authorized (AWS answers AccessDenied before it looks at the request's settings) and before the
    backend changes anything."""
    method = backend_method(backend, service, operation_name)
    if ctx.authorize is not None:  # policy evaluation sees the validated parameters, before any state changes
        ctx.authorize(service, operation_name, params)
    if refuse is not None:
        refuse()
    result = method(ctx, params)
    if result is None:
        return {}
    if not isinstance(result, dict):  # a backend bug, not the caller's fault
        raise AwsError("InternalFailure", f"{operation_name} returned {type(result).__name__}", status=500)
    return result
