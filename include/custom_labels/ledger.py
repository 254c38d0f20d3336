"""The ledger of trained Custom Labels versions: one JSON object in S3, ``{"ledger_version": 1, "versions": [...]}``.

Each entry is keyed by ``version_name`` and carries what the DAGs know about that version: ``version_arn``,
``project_arn``, ``train``/``test`` (dataset manifest URI, version, image count), ``f1``, ``precision``,
``recall``, ``label_f1`` (label -> F1), ``trained_at``, ``status``, ``gate`` (the evaluation gate's decision),
``deployed``, ``dag_run_id``, and any other field a caller adds.

Writers never overwrite each other: every change is a read-modify-write made conditional on the object being
unchanged since it was read (``IfMatch`` with its ETag; ``IfNoneMatch="*"`` when the ledger does not exist
yet), retried on a short, jittered backoff when another writer got there first. A ledger that cannot be parsed
is never overwritten: it raises :class:`LedgerCorruptError` and stays as it is for a person to repair.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from botocore.exceptions import ClientError

from include import s3uri
from include.s3objects import is_missing

LEDGER_VERSION = 1
MAX_ATTEMPTS = 10
BACKOFF_SECONDS = 0.05  # doubled per attempt up to MAX_BACKOFF_SECONDS, with jitter so racing writers spread out
MAX_BACKOFF_SECONDS = 2.0
# 412: the ETag changed since we read it (or the ledger appeared). 409: S3 saw a concurrent conditional write.
# NoSuchKey: IfMatch on a ledger someone deleted meanwhile; the next read starts a new one.
_RETRY_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey")


class LedgerCorruptError(ValueError):
    """The ledger object exists but is not a ledger; it is left untouched."""


class LedgerConflictError(RuntimeError):
    """Other writers kept changing the ledger for all of ``MAX_ATTEMPTS`` tries."""


def empty_ledger() -> dict[str, Any]:
    """What ``load`` returns when no ledger exists yet."""
    return {"ledger_version": LEDGER_VERSION, "versions": []}


def load(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """The ledger at ``s3://bucket/key``; an empty one when there is no such object."""
    return _read(s3, bucket, key)[0]


def record(s3: Any, bucket: str, key: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Insert or update the entry with ``entry["version_name"]``; return the ledger as written.

    Fields of an existing entry that ``entry`` does not mention are kept, so later steps can add to it (the
    gate's decision, deployment). A new entry starts with ``deployed: false``.
    """
    new = _normalise(entry)

    def upsert(ledger: dict[str, Any]) -> None:
        versions = ledger["versions"]
        for index, old in enumerate(versions):
            if old.get("version_name") == new["version_name"]:
                versions[index] = {**old, **new}
                return
        versions.append({"deployed": False, **new})

    return _update(s3, bucket, key, upsert)


def mark_deployed(s3: Any, bucket: str, key: str, version_name: str) -> dict[str, Any]:
    """Set ``deployed`` on ``version_name`` and clear it on every other entry; ``KeyError`` if it is unknown."""

    def deploy(ledger: dict[str, Any]) -> None:
        names = [v.get("version_name") for v in ledger["versions"]]
        if version_name not in names:
            raise KeyError(f"{version_name!r} is not in the ledger s3://{bucket}/{key} (known: {sorted(names)})")
        for version in ledger["versions"]:
            version["deployed"] = version.get("version_name") == version_name

    return _update(s3, bucket, key, deploy)


def get(ledger: Mapping[str, Any], version_name: str) -> dict[str, Any] | None:
    """The entry for ``version_name``, or None."""
    return next((v for v in ledger.get("versions", []) if v.get("version_name") == version_name), None)


def deployed(ledger: Mapping[str, Any]) -> dict[str, Any] | None:
    """The entry flagged as deployed, or None."""
    return next((v for v in ledger.get("versions", []) if v.get("deployed") is True), None)


def dumps(ledger: Mapping[str, Any]) -> str:
    """The ledger's bytes in S3: sorted keys and versions, so an unchanged ledger is rewritten identically."""
    return json.dumps(ledger, sort_keys=True, indent=2, allow_nan=False) + "\n"


# -- internals --------------------------------------------------------------------------------------------------
def _normalise(entry: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise TypeError(f"a ledger entry is a mapping, got {type(entry).__name__}")
    name = entry.get("version_name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a ledger entry needs a non-empty version_name, got {name!r}")
    if "deployed" in entry and not isinstance(entry["deployed"], bool):
        raise ValueError(f"deployed must be true or false, got {entry['deployed']!r}")
    normal = json.loads(json.dumps(dict(entry), default=_json_default, allow_nan=False))
    for field in ("f1", "precision", "recall"):
        value = normal.get(field)
        if value is not None and not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
            raise ValueError(f"{field} must be a number in 0..1 or null, got {value!r}")
    return normal


def _json_default(value: Any) -> Any:
    # DescribeProjectVersions gives datetimes; the ledger keeps ISO 8601 strings.
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")


def _sort(ledger: dict[str, Any]) -> None:
    # Oldest first; versions not trained yet (no trained_at) last, by name.
    ledger["versions"].sort(key=lambda v: (v.get("trained_at") is None, v.get("trained_at") or "", v["version_name"]))


def _read(s3: Any, bucket: str, key: str) -> tuple[dict[str, Any], str | None]:
    """The ledger and its ETag (None when the object does not exist)."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_missing(exc):
            return empty_ledger(), None
        raise
    body = response["Body"].read()
    where = s3uri.join(bucket, key)
    try:
        ledger = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerCorruptError(f"{where} is not valid JSON ({exc}); fix or move it, it was not overwritten") from None
    if not isinstance(ledger, dict) or not isinstance(ledger.get("versions"), list):
        raise LedgerCorruptError(
            f"{where} is not a ledger (no 'versions' list); fix or move it, it was not overwritten"
        )
    if ledger.get("ledger_version", LEDGER_VERSION) != LEDGER_VERSION:
        raise LedgerCorruptError(f"{where} has ledger_version {ledger.get('ledger_version')!r}; this code reads 1")
    bad = [i for i, v in enumerate(ledger["versions"]) if not isinstance(v, dict) or not v.get("version_name")]
    if bad:
        raise LedgerCorruptError(
            f"{where}: versions {bad} have no version_name; fix or move it, it was not overwritten"
        )
    return ledger, response["ETag"]


def _update(s3: Any, bucket: str, key: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read, apply ``change``, and write back only if nobody wrote in between; retry a few times if they did."""
    for attempt in range(MAX_ATTEMPTS):
        ledger, etag = _read(s3, bucket, key)
        before = dumps(ledger) if etag is not None else None
        ledger = copy.deepcopy(ledger)
        ledger["ledger_version"] = LEDGER_VERSION
        change(ledger)
        _sort(ledger)
        text = dumps(ledger)
        if text == before:
            return ledger  # a rerun that changes nothing writes nothing
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            s3.put_object(
                Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType="application/json", **condition
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _RETRY_CODES:
                raise
            time.sleep(min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2**attempt) * (0.5 + random.random()))
            continue
        return ledger
    raise LedgerConflictError(f"s3://{bucket}/{key}: still changing under us after {MAX_ATTEMPTS} attempts")
