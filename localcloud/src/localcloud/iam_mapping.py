"""Which module maps a service's requests to the IAM permissions they need.

Each service keeps its own mapping beside its backend, in ``services/<svc>/iam.py``: ``PREFIX`` (its action
prefix), ``PASSED_TO`` (the principal roles handed to it are passed to, or None) and
``targets(operation, params, region, account) -> list[Target]``. This registry finds those modules through the
service table (:data:`localcloud.services.REGISTRY`) and imports one on first use, so :mod:`localcloud.iam_policy`
names no service and the services' ``iam.py`` (which import only :mod:`localcloud.iam_targets`) make no cycle.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from functools import cache
from types import ModuleType
from typing import Any

from localcloud.iam_targets import Target
from localcloud.services import REGISTRY

Mapper = Callable[[str, Mapping[str, Any], str, str], list[Target]]


def _module_name(service: str) -> str:
    # "localcloud.services.s3.protocol" -> "localcloud.services.s3.iam"
    return REGISTRY[service].rsplit(".", 1)[0] + ".iam"


def mapped_services() -> tuple[str, ...]:
    """The services whose folder has an ``iam.py``, in the service table's order (none is imported)."""
    return tuple(name for name in REGISTRY if importlib.util.find_spec(_module_name(name)) is not None)


@cache
def module(service: str) -> ModuleType | None:
    """The ``iam.py`` of ``service``, or None for a service localcloud does not map."""
    if service not in REGISTRY:
        return None
    name = _module_name(service)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def mapper(service: str) -> Mapper | None:
    """``targets(operation, params, region, account)`` of ``service``, or None."""
    found = module(service)
    return None if found is None else found.targets
