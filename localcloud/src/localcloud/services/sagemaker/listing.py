"""Sorting and keyset paging for SageMaker List* calls whose SortBy is not only CreationTime.

A NextToken names the sort key and name of the last item returned (not an offset), so a page never repeats
or skips items when others are created or deleted between calls. Tokens are opaque to clients, as AWS's are.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from localcloud.core import AwsError
from localcloud.protocols.shapes import to_datetime

Key = Callable[[dict[str, Any]], tuple]


def _epoch(value: datetime | float | str) -> float:
    return to_datetime(value).timestamp()


def in_window(
    row: dict[str, Any], params: dict[str, Any], created: str = "created", modified: str = "modified"
) -> bool:
    """Whether ``row`` passes the CreationTime/LastModifiedTime After/Before filters of ``params``."""
    for column, member in ((created, "CreationTime"), (modified, "LastModifiedTime")):
        after, before = params.get(f"{member}After"), params.get(f"{member}Before")
        if after is not None and not row[column] > _epoch(after):
            return False
        if before is not None and not row[column] < _epoch(before):
            return False
    return True


# SortBy keys of the job List* calls (ListAutoMLJobs, ListTransformJobs).
JOB_SORT_KEYS: dict[str, Key] = {
    "Name": lambda r: (r["name"],),
    "CreationTime": lambda r: (r["created"],),
    "Status": lambda r: (r["status"],),
}


def job_page(
    rows: Sequence[dict[str, Any]], params: dict[str, Any], *, default_sort: str
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A page of job rows after the NameContains / StatusEquals / time-window filters every job List* call takes."""
    contains = (params.get("NameContains") or "").lower()
    kept = [
        r
        for r in rows
        if contains in r["name"].lower() and params.get("StatusEquals") in (None, r["status"]) and in_window(r, params)
    ]
    return page(kept, params, JOB_SORT_KEYS, default_sort=default_sort, default_order="Descending")


def page(
    rows: Sequence[dict[str, Any]],
    params: dict[str, Any],
    keys: dict[str, Key],
    *,
    default_sort: str,
    default_order: str,
    name: str = "name",
    default_results: int = 10,
    max_results: int = 100,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One page of ``rows`` sorted by ``keys[SortBy]`` (then name), and the NextToken member."""
    sort_by = params.get("SortBy") or default_sort
    descending = (params.get("SortOrder") or default_order) == "Descending"

    def key(row: dict[str, Any]) -> tuple:
        return (*keys[sort_by](row), row[name])

    ordered = sorted(rows, key=key, reverse=descending)
    if params.get("NextToken"):
        mark = _untoken(params["NextToken"], sort_by)
        ordered = [r for r in ordered if (key(r) < mark if descending else key(r) > mark)]
    limit = min(params.get("MaxResults") or default_results, max_results)
    taken = ordered[:limit]
    more = {"NextToken": _token(sort_by, key(taken[-1]))} if len(ordered) > limit else {}
    return taken, more


def _token(sort_by: str, key: tuple) -> str:
    return base64.urlsafe_b64encode(json.dumps([sort_by, list(key)]).encode()).decode()


def _untoken(token: str, sort_by: str) -> tuple:
    try:
        by, key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise AwsError("ValidationException", "The NextToken is not valid.") from exc
    if by != sort_by or not isinstance(key, list):
        raise AwsError("ValidationException", "The NextToken was issued for another SortBy.")
    return tuple(key)
