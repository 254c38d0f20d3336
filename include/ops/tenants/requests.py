"""Tenant extraction requests: items in a DynamoDB table, and the conditional writes that move them along.

An item: ``request_id`` (key), ``tenant``, ``tables`` (list), ``masking`` (map table -> {column: rule}),
``status`` (PENDING -> RUNNING -> SUCCEEDED | FAILED), ``requested_at``; the DAG adds ``run_id``,
``updated_at``, ``output``, ``rows`` (map table -> rows), ``job_run_id`` and ``error``.

Every status change is conditional, so two DAG runs never both take a request, and a rerun of the run that took it
carries on where it stopped instead of starting a second extraction.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from include.ops.tenants.glue_extract import ExtractionError, validate_request

PENDING, RUNNING, SUCCEEDED, FAILED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ser, _de = TypeSerializer(), TypeDeserializer()
# Requests a run may work on: new ones, and its own that it has not finished or that failed (a rerun retries them).
_HELD_OR_PENDING = "#s = :pending OR (#s IN (:running, :failed) AND run_id = :run)"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: _de.deserialize(v) for k, v in item.items()}
    # DynamoDB numbers come back as Decimal; the DAG passes these through XCom (JSON).
    return json.loads(json.dumps(out, default=lambda d: int(d) if d == int(d) else float(d)))


def ensure_table(ddb: Any, table: str) -> None:
    """Create the requests table (on-demand) unless it exists; wait until it is active."""
    try:
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "request_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "request_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def submit(
    ddb: Any,
    table: str,
    tenant: str,
    tables: list[str],
    masking: dict[str, dict[str, str]] | None = None,
    request_id: str | None = None,
) -> str:
    """Validate and store a PENDING request; its id. Submitting an existing id again is refused."""
    tables, masking = validate_request(tenant, tables, masking or {})
    request_id = request_id or f"{tenant}-{uuid.uuid4().hex[:12]}"
    if not _ID.match(request_id):
        raise ExtractionError(f"request id {request_id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    item = {
        "request_id": request_id,
        "tenant": tenant,
        "tables": tables,
        "masking": masking,
        "status": PENDING,
        "requested_at": _now(),
    }
    ddb.put_item(TableName=table, Item=_item(item), ConditionExpression="attribute_not_exists(request_id)")
    return request_id


def get(ddb: Any, table: str, request_id: str) -> dict[str, Any] | None:
    item = ddb.get_item(TableName=table, Key={"request_id": {"S": request_id}}, ConsistentRead=True).get("Item")
    return _plain(item) if item else None


def pending(ddb: Any, table: str, run_id: str, limit: int) -> list[dict[str, Any]]:
    """PENDING requests, oldest first, plus those this run took and did not finish well (a rerun retries them)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": _HELD_OR_PENDING,
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {
            ":pending": {"S": PENDING},
            ":running": {"S": RUNNING},
            ":failed": {"S": FAILED},
            ":run": {"S": run_id},
        },
        "ConsistentRead": True,
    }
    while True:
        page = ddb.scan(**kwargs)
        items.extend(_plain(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    items.sort(key=lambda i: (i.get("requested_at", ""), i["request_id"]))
    return items[:limit]


def claim(ddb: Any, table: str, request_id: str, run_id: str) -> bool:
    """PENDING -> RUNNING for ``run_id``; True if this run holds the request (also when it already did, or when
    its own earlier try failed)."""
    try:
        ddb.update_item(
            TableName=table,
            Key={"request_id": {"S": request_id}},
            UpdateExpression="SET #s = :running, run_id = :run, updated_at = :now",
            ConditionExpression=_HELD_OR_PENDING,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":failed": {"S": FAILED},
                ":running": {"S": RUNNING},
                ":pending": {"S": PENDING},
                ":run": {"S": run_id},
                ":now": {"S": _now()},
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def finish(
    ddb: Any,
    table: str,
    request_id: str,
    run_id: str,
    status: str,
    *,
    output: str | None = None,
    rows: dict[str, int] | None = None,
    job_run_id: str | None = None,
    error: str | None = None,
) -> None:
    """A request this run holds (or a PENDING one it refuses) -> SUCCEEDED / FAILED, with what the extraction
    produced."""
    if status not in (SUCCEEDED, FAILED):
        raise ValueError(f"finish() takes {SUCCEEDED} or {FAILED}, not {status}")
    values: dict[str, Any] = {
        ":status": status,
        ":now": _now(),
        ":run": run_id,
        ":running": RUNNING,
        ":failed": FAILED,
        ":pending": PENDING,
    }
    sets = ["#s = :status", "updated_at = :now", "run_id = :run"]
    removes = []
    names = {"#s": "status"}
    for name, value in (("output", output), ("rows", rows), ("job_run_id", job_run_id), ("error", error)):
        names[f"#{name}"] = name  # ERROR, ROWS ... are DynamoDB reserved words
        if value is None:
            removes.append(f"#{name}")  # a rerun that succeeds clears the error of the try before it
        else:
            sets.append(f"#{name} = :{name}")
            values[f":{name}"] = value
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    ddb.update_item(
        TableName=table,
        Key={"request_id": {"S": request_id}},
        UpdateExpression=expression,
        ConditionExpression=_HELD_OR_PENDING,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={k: _ser.serialize(v) for k, v in values.items()},
    )
