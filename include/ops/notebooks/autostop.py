"""Which in-service notebook instances to stop, and the per-run report that records why.

An instance's last activity is the later of two times:

- its heartbeat's ``last_activity`` (``s3://<bucket>/<prefix>/<instance>/heartbeat.json``, written every few
  minutes by the cron that ``on-start.sh`` installs; see that script for the format), and
- its ``LastModifiedTime``, which SageMaker moves on every state change, so for an in-service instance it is
  when it last started. This covers an instance without a heartbeat (no lifecycle configuration, or Jupyter
  not up yet), and a heartbeat left over from before the last stop, which must not make a fresh start look idle.

An instance idle for longer than the threshold (``idle_minutes``) before the run's reference time is stopped,
unless it is tagged ``autostop=false`` (any case).

The reference time is the run's ``run_after`` (the end of the hourly interval for a scheduled run), not the
clock, so the same run decides the same way whenever it is retried. A retry that finds instances it already
stopped keeps their entries from the report it wrote the first time and decides afresh for those still in
service: the report is overwritten with the same bytes when nothing else has changed, and nothing is stopped
twice.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from include import s3uri
from include.s3objects import read_json_or_none, read_or_none

REPORT_VERSION = 1
HEARTBEAT_NAME = "heartbeat.json"
EXEMPT_TAG = "autostop"


@dataclass(frozen=True)
class Heartbeat:
    checked_at: datetime
    last_activity: datetime | None
    kernels: int
    busy_kernels: int
    terminals: int


@dataclass(frozen=True)
class Decision:
    instance: str
    action: str  # "stop" or "keep"
    reason: str  # "idle", "active" or "exempt"
    idle_minutes: float
    last_activity: str
    activity_source: str  # "heartbeat" or "last_modified"
    heartbeat_checked_at: str | None
    heartbeat_error: str | None = None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime:
    """A UTC datetime from a datetime or an ISO 8601 string (``Z`` or an offset)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_heartbeat(raw: bytes) -> Heartbeat:
    """A heartbeat document (schema_version 1); ValueError when it is not one."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("schema_version") != 1:
        raise ValueError("not a schema_version 1 heartbeat")
    try:
        return Heartbeat(
            checked_at=parse_time(doc["checked_at"]),
            last_activity=None if doc.get("last_activity") is None else parse_time(doc["last_activity"]),
            kernels=int(doc.get("kernels", 0)),
            busy_kernels=int(doc.get("busy_kernels", 0)),
            terminals=int(doc.get("terminals", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad heartbeat field: {exc}") from exc


def heartbeat_key(prefix: str, instance: str) -> str:
    return "/".join(part for part in (prefix.strip("/"), instance, HEARTBEAT_NAME) if part)


def is_exempt(tags: list[dict[str, str]]) -> bool:
    return any(t.get("Key") == EXEMPT_TAG and t.get("Value", "").strip().lower() == "false" for t in tags)


def decide(
    instance: dict[str, Any],
    tags: list[dict[str, str]],
    heartbeat: Heartbeat | None,
    as_of: datetime,
    idle_minutes: float,
    heartbeat_error: str | None = None,
) -> Decision:
    """What to do with one in-service instance (a ListNotebookInstances summary) at ``as_of``."""
    started = parse_time(instance["LastModifiedTime"])
    activity, source = started, "last_modified"
    if heartbeat is not None and heartbeat.last_activity is not None and heartbeat.last_activity > started:
        activity, source = heartbeat.last_activity, "heartbeat"
    idle = round((as_of - activity).total_seconds() / 60, 1)
    if is_exempt(tags):
        action, reason = "keep", "exempt"
    elif idle > idle_minutes:
        action, reason = "stop", "idle"
    else:
        action, reason = "keep", "active"
    return Decision(
        instance=instance["NotebookInstanceName"],
        action=action,
        reason=reason,
        idle_minutes=idle,
        last_activity=iso(activity),
        activity_source=source,
        heartbeat_checked_at=iso(heartbeat.checked_at) if heartbeat else None,
        heartbeat_error=heartbeat_error,
    )


# -- AWS ------------------------------------------------------------------------------------------------------
def in_service(sagemaker: Any, name_contains: str = "") -> list[dict[str, Any]]:
    """Every InService notebook instance (ListNotebookInstances summaries), by name."""
    kwargs: dict[str, Any] = {"StatusEquals": "InService", "SortBy": "Name", "SortOrder": "Ascending"}
    if name_contains:
        kwargs["NameContains"] = name_contains
    pages = sagemaker.get_paginator("list_notebook_instances").paginate(**kwargs)
    return [summary for page in pages for summary in page["NotebookInstances"]]


def tags_of(sagemaker: Any, arn: str) -> list[dict[str, str]]:
    pages = sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn)
    return [tag for page in pages for tag in page["Tags"]]


def read_heartbeat(s3: Any, bucket: str, prefix: str, instance: str) -> tuple[Heartbeat | None, str | None]:
    """(heartbeat, why it could not be used): (None, None) when there is none; a broken one is reported, not fatal."""
    key = heartbeat_key(prefix, instance)
    body = read_or_none(s3, bucket, key)
    if body is None:
        return None, None
    try:
        return parse_heartbeat(body), None
    except ValueError as exc:
        return None, f"s3://{bucket}/{key}: {exc}"


def read_report(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    return read_json_or_none(s3, bucket, key)


def report_key(prefix: str, run_id: str, as_of: datetime) -> str:
    """One key per run, whatever the try: ``<prefix>/<yyyy>/<mm>/<dd>/<run id>.json``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)
    return f"{prefix.strip('/')}/{as_of:%Y/%m/%d}/{safe}.json"


def assess(
    sagemaker: Any,
    s3: Any,
    *,
    bucket: str,
    heartbeat_prefix: str,
    as_of: datetime,
    idle_minutes: float,
    name_contains: str = "",
    previous: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """(decisions as dicts by instance name, the instances to stop now) for every in-service instance.

    ``previous`` is this run's report from an earlier try: its stops of instances no longer in service stand.
    """
    decisions = {}
    for instance in in_service(sagemaker, name_contains):
        heartbeat, error = read_heartbeat(s3, bucket, heartbeat_prefix, instance["NotebookInstanceName"])
        tags = tags_of(sagemaker, instance["NotebookInstanceArn"])
        decision = decide(instance, tags, heartbeat, as_of, idle_minutes, error)
        decisions[decision.instance] = asdict(decision)
    to_stop = sorted(name for name, d in decisions.items() if d["action"] == "stop")
    for earlier in (previous or {}).get("decisions", []):
        if earlier["action"] == "stop" and earlier["instance"] not in decisions:
            decisions[earlier["instance"]] = earlier
    return [decisions[name] for name in sorted(decisions)], to_stop


def plan(
    sagemaker: Any,
    s3: Any,
    *,
    dag_id: str,
    run_id: str,
    as_of: datetime,
    bucket: str,
    heartbeat_prefix: str,
    report_prefix: str,
    idle_minutes: float,
    name_contains: str = "",
) -> dict[str, Any]:
    """This run's decisions: ``{"report_key", "report", "to_stop"}``; nothing is written or stopped yet."""
    as_of = parse_time(as_of)
    key = report_key(report_prefix, run_id, as_of)
    decisions, to_stop = assess(
        sagemaker,
        s3,
        bucket=bucket,
        heartbeat_prefix=heartbeat_prefix,
        as_of=as_of,
        idle_minutes=idle_minutes,
        name_contains=name_contains,
        previous=read_report(s3, bucket, key),
    )
    report = build_report(
        dag_id=dag_id,
        run_id=run_id,
        as_of=as_of,
        idle_minutes=idle_minutes,
        heartbeats=f"s3://{bucket}/{heartbeat_prefix.strip('/')}/",
        decisions=decisions,
    )
    return {"report_key": key, "report": report, "to_stop": to_stop}


def write_report(s3: Any, bucket: str, key: str, report: dict[str, Any]) -> str:
    """Put the report at its run's key (a retry overwrites it); its s3:// URI."""
    s3.put_object(Bucket=bucket, Key=key, Body=report_bytes(report), ContentType="application/json")
    return s3uri.join(bucket, key)


def build_report(
    *,
    dag_id: str,
    run_id: str,
    as_of: datetime,
    idle_minutes: float,
    heartbeats: str,
    decisions: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "report_version": REPORT_VERSION,
        "dag_id": dag_id,
        "run_id": run_id,
        "as_of": iso(as_of),
        "idle_minutes": idle_minutes,
        "heartbeats": heartbeats,
        "decisions": decisions,
        "stop": [d["instance"] for d in decisions if d["action"] == "stop"],
    }


def report_bytes(report: dict[str, Any]) -> bytes:
    """Canonical JSON: the same report is always the same bytes."""
    return (json.dumps(report, indent=2, sort_keys=True) + "\n").encode()
