"""Keyset pagination for SageMaker-style List* calls (CreationTime filters, SortOrder, NextToken, MaxResults).

Tokens name the last (creation time, name) returned, not an offset, so a page never repeats or skips items
when others are created or deleted between calls. They are opaque to clients, as AWS's are.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from localcloud.core import AwsError
from localcloud.protocols.shapes import to_datetime

MAX_RESULTS = 100
DEFAULT_RESULTS = 10


def _token(created: float, name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created, name]).encode()).decode()


def _untoken(token: str, error_code: str) -> tuple[float, str]:
    try:
        created, name = json.loads(base64.urlsafe_b64decode(token.encode()))
        return float(created), str(name)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise AwsError(error_code, "The NextToken is not valid.") from exc


def _epoch(value: datetime | float | str) -> float:
    return to_datetime(value).timestamp()


def page(
    rows: Sequence[Any],
    params: dict[str, Any],
    *,
    created: str = "created",
    name: str = "name",
    error_code: str = "ValidationException",
    default_order: str = "Descending",
    default_results: int = DEFAULT_RESULTS,
) -> tuple[list[Any], dict[str, str]]:
    """One page of ``rows`` (mappings with ``created`` epoch seconds and ``name``) and the NextToken member."""
    after, before = params.get("CreationTimeAfter"), params.get("CreationTimeBefore")
    chosen = [
        r
        for r in rows
        if (after is None or r[created] > _epoch(after)) and (before is None or r[created] < _epoch(before))
    ]
    descending = (params.get("SortOrder") or default_order) == "Descending"
    chosen.sort(key=lambda r: (r[created], r[name]), reverse=descending)
    if params.get("NextToken"):
        mark = _untoken(params["NextToken"], error_code)
        chosen = [r for r in chosen if ((r[created], r[name]) < mark if descending else (r[created], r[name]) > mark)]
    limit = min(params.get("MaxResults") or default_results, MAX_RESULTS)
    taken = chosen[:limit]
    more = {"NextToken": _token(taken[-1][created], taken[-1][name])} if len(chosen) > limit else {}
    return taken, more
