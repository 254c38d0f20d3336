"""Per-document tracking items in DynamoDB: which stage each document is at, its state, timestamps and error.

One item per document (hash key ``document_id``)::

    document_id, key, name, priority, etag,           what the document is
    stage, state, error,                               where it is now (state: pending|running|done|failed)
    created_at, updated_at,                            ISO 8601, UTC
    stages: {<stage>: {"state", "at", "error"?}},      every stage it went through
    outputs: {...}                                     job id, human loop, workbook URI ...

Every write is one UpdateItem, so concurrent stages of different documents never overwrite each other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

STAGES = ("acquire", "convert", "extract", "reshape", "operate", "augment", "catalog")
STATES = ("pending", "running", "done", "failed", "skipped")
HASH_KEY = "document_id"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def ensure_table(ddb: Any, table: str) -> None:
    """Create the tracking table (on-demand) if it does not exist, and wait until it is ACTIVE."""
    try:
        ddb.describe_table(TableName=table)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        try:
            ddb.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": HASH_KEY, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": HASH_KEY, "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as race:
            if race.response["Error"]["Code"] != "ResourceInUseException":
                raise
    ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def _to_ddb(value: Any) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer().serialize(value)


def _from_ddb(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    plain = {k: TypeDeserializer().deserialize(v) for k, v in item.items()}
    return _undecimal(plain)


def _undecimal(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _undecimal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_undecimal(v) for v in value]
    return value


def register(ddb: Any, table: str, document: dict[str, Any]) -> dict[str, Any]:
    """Create the document's item if new (stage acquire, pending); a known document keeps its state.

    A document whose S3 object changed (another ETag) starts over: it is a new version of the file.
    """
    item = get(ddb, table, document["document_id"])
    if item is not None and item.get("etag") == document["etag"]:
        return item
    at = now()
    fresh = {
        HASH_KEY: document["document_id"],
        "key": document["key"],
        "name": document["name"],
        "priority": document["priority"],
        "etag": document["etag"],
        "stage": "acquire",
        "state": "pending",
        "created_at": at,
        "updated_at": at,
        "stages": {"acquire": {"state": "done", "at": at}},
        "outputs": {},
    }
    ddb.put_item(TableName=table, Item={k: _to_ddb(v) for k, v in fresh.items()})
    return fresh


def update(
    ddb: Any,
    table: str,
    document_id: str,
    stage: str,
    state: str,
    *,
    error: str | None = None,
    outputs: dict[str, Any] | None = None,
) -> None:
    """Move a document to ``stage``/``state`` (recording the error, if any, and stage outputs)."""
    if stage not in STAGES or state not in STATES:
        raise ValueError(f"unknown stage/state {stage}/{state}; stages {STAGES}, states {STATES}")
    at = now()
    entry: dict[str, Any] = {"state": state, "at": at}
    if error:
        entry["error"] = error[:2000]
    names = {"#stage": "stage", "#state": "state", "#stages": "stages", "#s": stage, "#error": "error"}
    values = {":stage": _to_ddb(stage), ":state": _to_ddb(state), ":at": _to_ddb(at), ":entry": _to_ddb(entry)}
    sets = ["#stage = :stage", "#state = :state", "updated_at = :at", "#stages.#s = :entry"]
    if error:
        values[":error"] = _to_ddb(error[:2000])
        sets.append("#error = :error")
    if outputs:
        names["#out"] = "outputs"
    for index, (key, value) in enumerate(sorted((outputs or {}).items())):
        names[f"#o{index}"] = key
        values[f":o{index}"] = _to_ddb(value)
        sets.append(f"#out.#o{index} = :o{index}")
    expression = "SET " + ", ".join(sets) + ("" if error else " REMOVE #error")
    ddb.update_item(
        TableName=table,
        Key={HASH_KEY: _to_ddb(document_id)},
        UpdateExpression=expression,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
        ConditionExpression=f"attribute_exists({HASH_KEY})",
    )


def get(ddb: Any, table: str, document_id: str) -> dict[str, Any] | None:
    item = ddb.get_item(TableName=table, Key={HASH_KEY: _to_ddb(document_id)}, ConsistentRead=True).get("Item")
    return _from_ddb(item) if item else None


def scan(ddb: Any, table: str) -> list[dict[str, Any]]:
    """Every tracked document, by priority then key (the order the pipeline processes them in)."""
    items: list[dict[str, Any]] = []
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items += [_from_ddb(item) for item in page.get("Items", [])]
    return sorted(items, key=lambda i: (i.get("priority", 10**6), i.get("key", "")))
