"""DynamoDB on SQLite: table definitions and items (as JSON) in ``dynamodb.sqlite``, scoped by region.

Items are keyed by their encoded partition and sort key. ``sko`` holds the sort key as order-preserving bytes
(schema.order_bytes), indexed with the partition, and each secondary-index entry is a row of index_entries keyed by
the index's key then the item's, so a Query or Scan of a table or index is one keyed SQL range read in DynamoDB's
order that stops at its page's end: ExclusiveStartKey is a seek, never an OFFSET or a skip. One connection serves
every thread behind a lock, and each write runs in a single transaction under it, so a conditional write's
read-check-write cannot interleave with another request.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcloud.core import AwsError, RequestContext, ensure_dir
from localcloud.services.dynamodb import expressions, values
from localcloud.services.dynamodb.expressions import Condition, Placeholders
from localcloud.services.dynamodb.schema import (
    Index,
    KeySchema,
    Table,
    encode_key,
    order_bytes,
    order_bytes_of_stored,
    prefix_successor,
    table_name,
    validate_create_table,
)
from localcloud.services.dynamodb.values import Item, validation_error
from localcloud.store import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS tables (
    region TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL, PRIMARY KEY (region, name)
);
CREATE TABLE IF NOT EXISTS items (
    region TEXT NOT NULL, table_name TEXT NOT NULL, pk TEXT NOT NULL, sk TEXT NOT NULL,
    item TEXT NOT NULL, size INTEGER NOT NULL, sko BLOB NOT NULL DEFAULT x'',
    PRIMARY KEY (region, table_name, pk, sk)
);
-- One row per secondary-index entry: the index's key (ipk, isko) then the item's (pk, sko), which is the order
-- DynamoDB reads an index in, so an index Query or Scan pages by key like the table's.
CREATE TABLE IF NOT EXISTS index_entries (
    region TEXT NOT NULL, table_name TEXT NOT NULL, index_name TEXT NOT NULL,
    ipk TEXT NOT NULL, isko BLOB NOT NULL, pk TEXT NOT NULL, sko BLOB NOT NULL,
    PRIMARY KEY (region, table_name, index_name, ipk, isko, pk, sko)
);
CREATE INDEX IF NOT EXISTS index_entries_item ON index_entries (region, table_name, pk, sko);
"""
# Created after _migrate() has added ``sko`` to a data dir written before it existed.
ORDER_INDEX = "CREATE INDEX IF NOT EXISTS items_order ON items (region, table_name, pk, sko)"
# Query and Scan stop once they have read this much, like DynamoDB's 1 MB pages.
PAGE_BYTES = 1024 * 1024
MAX_BATCH_WRITE = 25
MAX_BATCH_GET = 100
LIST_TABLES_LIMIT = 100
RETURN_VALUES = ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW")
# The pre-expression parameters, and the expression that replaces each.
LEGACY_PARAMETERS = {
    "AttributesToGet": "ProjectionExpression",
    "AttributeUpdates": "UpdateExpression",
    "ConditionalOperator": "ConditionExpression or FilterExpression",
    "Expected": "ConditionExpression",
    "KeyConditions": "KeyConditionExpression",
    "QueryFilter": "FilterExpression",
    "ScanFilter": "FilterExpression",
}


def _reject_legacy(params: dict[str, Any]) -> None:
    for name, replacement in LEGACY_PARAMETERS.items():
        if name in params:
            raise validation_error(
                f"localcloud does not support the legacy parameter {name}; use {replacement} instead"
            )


def _placeholders(params: dict[str, Any], *expression_members: str) -> Placeholders:
    names, attribute_values = params.get("ExpressionAttributeNames"), params.get("ExpressionAttributeValues")
    uses_expressions = any(params.get(member) is not None for member in expression_members)
    for label, given in (("Names", names), ("Values", attribute_values)):
        if given is not None and not given:
            raise validation_error(f"ExpressionAttribute{label} must not be empty")
        if given and not uses_expressions:
            raise validation_error(f"ExpressionAttribute{label} can only be specified when using expressions")
    return Placeholders(names, attribute_values)


def _condition(params: dict[str, Any], member: str, placeholders: Placeholders) -> Condition | None:
    text = params.get(member)
    return None if text is None else expressions.parse_condition(text, placeholders, member)


def _projection(params: dict[str, Any], placeholders: Placeholders) -> list[expressions.Path] | None:
    text = params.get("ProjectionExpression")
    return None if text is None else expressions.parse_projection(text, placeholders)


def _return_values(params: dict[str, Any], allowed: tuple[str, ...]) -> str:
    mode = params.get("ReturnValues", "NONE")
    if mode not in allowed:
        raise validation_error("Return values set to invalid value")
    return mode


def _check_condition(condition: Condition | None, old: Item | None, params: dict[str, Any]) -> None:
    if condition is None or condition.evaluate(old or {}):
        return
    # The error carries the item when asked to, as a member of the JSON error body.
    wants_item = params.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
    fields = {"Item": values.to_wire(old)} if wants_item and old else {}
    raise AwsError("ConditionalCheckFailedException", "The conditional request failed", fields=fields)


def _check_size(item: Item, message: str) -> None:
    if values.item_size(item) > values.MAX_ITEM_SIZE:
        raise validation_error(message)


def _attributes(item: Item | None) -> dict[str, Any]:
    return {"Attributes": item} if item else {}


def _updated(mode: str, old: Item | None, new: Item, paths: list[expressions.Path]) -> Item | None:
    if mode == "ALL_OLD":
        return old
    if mode == "ALL_NEW":
        return new
    if mode == "UPDATED_OLD":
        return old and expressions.project(old, paths)
    if mode == "UPDATED_NEW":
        return expressions.project(new, paths)
    return None


def _select(params: dict[str, Any], index: Index | None) -> str:
    """The effective Select, checked against ProjectionExpression and the index's projection."""
    select = params.get("Select")
    projection = "ProjectionExpression" in params
    if select is None:
        return "SPECIFIC_ATTRIBUTES" if projection else "ALL_PROJECTED_ATTRIBUTES" if index else "ALL_ATTRIBUTES"
    if select == "SPECIFIC_ATTRIBUTES" and not projection:
        raise validation_error(
            "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES"
        )
    if select != "SPECIFIC_ATTRIBUTES" and projection:
        raise validation_error(f"Cannot specify the ProjectionExpression when choosing to get {select}")
    if select == "ALL_PROJECTED_ATTRIBUTES" and index is None:
        raise validation_error("ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName")
    if select == "ALL_ATTRIBUTES" and index and index.is_global and index.projection["ProjectionType"] != "ALL":
        raise values.invalid_parameter(
            f"Select type ALL_ATTRIBUTES is not supported for global secondary index {index.name} "
            "because its projection type is not ALL"
        )
    return select


def _read_index(table: Table, params: dict[str, Any]) -> Index | None:
    if "IndexName" not in params:
        return None
    index = table.index(params["IndexName"])
    if index.is_global and params.get("ConsistentRead"):
        raise validation_error("Consistent reads are not supported on global secondary indexes")
    return index


def _check_segments(params: dict[str, Any]) -> tuple[int, int] | None:
    segment, total = params.get("Segment"), params.get("TotalSegments")
    if segment is None and total is None:
        return None
    if total is None:
        raise validation_error(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present"
        )
    if segment is None:
        raise validation_error(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is present"
        )
    if segment >= total:
        raise validation_error(
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
            f"Segment: {segment} is not less than TotalSegments: {total}"
        )
    return segment, total


class _Read:
    """What a Query or Scan returns from the entries it evaluates: filter, Select and projection."""

    def __init__(self, params: dict[str, Any], placeholders: Placeholders, table: Table, index: Index | None) -> None:
        self.table = table
        self.index = index
        self.select = _select(params, index)
        self.filter = _condition(params, "FilterExpression", placeholders)
        self.projection = _projection(params, placeholders)
        self.limit = params.get("Limit")
        self.start = params.get("ExclusiveStartKey")

    def output(self, entry: Item) -> Item:
        if self.select == "ALL_PROJECTED_ATTRIBUTES":
            return self.index.project(entry, self.table.schema)
        if self.select == "SPECIFIC_ATTRIBUTES":
            return expressions.project(entry, self.projection)
        return entry

    def page(self, entries: Iterable[tuple[Item, int]]) -> dict[str, Any]:
        """One page of ``entries`` (already in order and past ExclusiveStartKey, each with its size), consumed
        only as far as the page goes: Limit counts entries evaluated, before the filter, and so does the 1 MB."""
        matched: list[Item] = []
        evaluated = size = 0
        last: Item | None = None
        more = False
        for entry, entry_size in entries:
            if evaluated == self.limit or size >= PAGE_BYTES:
                more = True
                break
            evaluated += 1
            size += entry_size
            last = entry
            if self.filter is None or self.filter.evaluate(entry):
                matched.append(entry)
        result: dict[str, Any] = {"Count": len(matched), "ScannedCount": evaluated}
        if self.select != "COUNT":
            result["Items"] = [self.output(entry) for entry in matched]
        if more:
            result["LastEvaluatedKey"] = self.table.last_key(last, self.index)
        return result


def _sized(entries: Iterable[Item]) -> Iterator[tuple[Item, int]]:
    return ((entry, values.item_size(entry)) for entry in entries)


def _table_entries(
    rows: Iterable[tuple[str, str, int]], sort_condition: Condition | None, segments: tuple[int, int] | None
) -> Iterator[tuple[Item, int]]:
    """Items (with their stored size) from ``(pk, item, size)`` rows, keeping those in the Scan's segment and
    matching the Query's sort-key condition; decoded one at a time, as the page consumes them."""
    for pk, text, size in rows:
        # A parallel Scan's segment is fixed by its (table's or index's) partition key: a CRC32 of its encoding.
        if segments and zlib.crc32(pk.encode()) % segments[1] != segments[0]:
            continue
        entry = values.load_item(text)
        if sort_condition is None or sort_condition.evaluate(entry):
            yield entry, size


def _start_position(table: Table, index: Index | None, start: Item) -> list[Any]:
    """An ExclusiveStartKey as the columns a page seeks past: (pk, sko), or (ipk, isko, pk, sko) on an index."""
    position = [encode_key(start[table.schema.partition[0]]), _sort_bytes(table.schema, start)]
    if index is None:
        return position
    return [encode_key(start[index.schema.partition[0]]), _sort_bytes(index.schema, start), *position]


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a data dir written before keyed paging up to date: ``sko`` computed from each item's stored sort key,
    and the secondary-index entries of every item (user_version 1 records that this was done)."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= 1:
        return
    db.create_function("localcloud_order_bytes", 1, order_bytes_of_stored, deterministic=True)
    db.execute("BEGIN IMMEDIATE")
    try:
        if "sko" not in {row[1] for row in db.execute("PRAGMA table_info(items)")}:
            db.execute("ALTER TABLE items ADD COLUMN sko BLOB NOT NULL DEFAULT x''")
            db.execute("UPDATE items SET sko = localcloud_order_bytes(sk)")
        db.execute("DELETE FROM index_entries")
        for region, spec in db.execute("SELECT region, spec FROM tables").fetchall():
            table = Table.from_spec(region, json.loads(spec))
            if not table.indexes:
                continue
            rows = db.execute("SELECT item FROM items WHERE region = ? AND table_name = ?", (region, table.name))
            while batch := rows.fetchmany(1000):
                entries = [entry for (text,) in batch for entry in _index_rows(table, values.load_item(text))]
                db.executemany("INSERT OR REPLACE INTO index_entries VALUES (?, ?, ?, ?, ?, ?, ?)", entries)
        db.execute("PRAGMA user_version = 1")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _sort_bytes(schema: KeySchema, item: Item) -> bytes:
    return order_bytes(item[schema.sort[0]]) if schema.sort else b""


def _index_rows(table: Table, item: Item) -> list[tuple]:
    """The index_entries rows of an item: one per secondary index whose key attributes it has."""
    pk = encode_key(item[table.schema.partition[0]])
    sko = _sort_bytes(table.schema, item)
    return [
        (
            table.region,
            table.name,
            index.name,
            encode_key(item[index.schema.partition[0]]),
            _sort_bytes(index.schema, item),
            pk,
            sko,
        )
        for index in table.indexes.values()
        if index.schema.covers(item)
    ]


def _sort_bounds(condition: Condition | None) -> list[tuple[str, bytes]]:
    """SQL bounds on ``sko`` that a Query's sort-key condition implies; the condition itself is still evaluated
    on each row, so a bound need only narrow the range (begins_with on a number gives none)."""
    if isinstance(condition, expressions.Compare):
        bound = order_bytes(condition.right.value)
        return [(condition.op, bound)] if condition.op in ("=", "<", "<=", ">", ">=") else []
    if isinstance(condition, expressions.Between):
        return [(">=", order_bytes(condition.low.value)), ("<=", order_bytes(condition.high.value))]
    if isinstance(condition, expressions.Function) and condition.name == "begins_with":
        prefix = condition.args[1].value
        if values.type_of(prefix) not in ("S", "B"):
            return []
        low = order_bytes(prefix)
        high = prefix_successor(low)
        return [(">=", low)] + ([("<", high)] if high is not None else [])
    return []


class DynamoDBBackend:
    def __init__(self, data_dir: Path) -> None:
        self._store = SqliteStore(ensure_dir(Path(data_dir)) / "dynamodb.sqlite", SCHEMA)
        with self._store.lock:
            _migrate(self._store.db)
            self._store.db.execute(ORDER_INDEX)

    def close(self) -> None:
        self._store.close()

    # --- storage ---

    def _table(self, ctx: RequestContext, name: str, *, describe: bool = False) -> Table:
        name = table_name(name)
        row = self._store.db.execute(
            "SELECT spec FROM tables WHERE region = ? AND name = ?", (ctx.region, name)
        ).fetchone()
        if row is None:
            suffix = f": Table: {name} not found" if describe else ""
            raise AwsError("ResourceNotFoundException", f"Requested resource not found{suffix}")
        return Table.from_spec(ctx.region, json.loads(row[0]))

    def _get(self, table: Table, key: Item) -> Item | None:
        row = self._store.db.execute(
            "SELECT item FROM items WHERE region = ? AND table_name = ? AND pk = ? AND sk = ?",
            (table.region, table.name, *table.storage_key(key)),
        ).fetchone()
        return values.load_item(row[0]) if row else None

    def _put(self, table: Table, item: Item) -> None:
        self._store.db.execute(
            "INSERT OR REPLACE INTO items (region, table_name, pk, sk, item, size, sko) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                table.region,
                table.name,
                *table.storage_key(item),
                values.dump_item(item),
                values.item_size(item),
                _sort_bytes(table.schema, item),
            ),
        )
        if table.indexes:
            self._delete_index_entries(table, item)
            self._store.db.executemany(
                "INSERT OR REPLACE INTO index_entries VALUES (?, ?, ?, ?, ?, ?, ?)", _index_rows(table, item)
            )

    def _delete_index_entries(self, table: Table, key: Item) -> None:
        self._store.db.execute(
            "DELETE FROM index_entries WHERE region = ? AND table_name = ? AND pk = ? AND sko = ?",
            (table.region, table.name, encode_key(key[table.schema.partition[0]]), _sort_bytes(table.schema, key)),
        )

    def _delete(self, table: Table, key: Item) -> None:
        self._store.db.execute(
            "DELETE FROM items WHERE region = ? AND table_name = ? AND pk = ? AND sk = ?",
            (table.region, table.name, *table.storage_key(key)),
        )
        if table.indexes:
            self._delete_index_entries(table, key)

    def _items(self, table: Table, partition: str | None = None) -> list[Item]:
        sql = "SELECT item FROM items WHERE region = ? AND table_name = ?"
        args: tuple = (table.region, table.name)
        if partition is not None:
            sql, args = sql + " AND pk = ?", (*args, partition)
        return [values.load_item(text) for (text,) in self._store.db.execute(sql, args)]

    # --- tables ---

    def create_table(self, ctx: RequestContext, params: dict) -> dict:
        spec = validate_create_table(params)
        spec |= {"TableId": str(uuid.uuid4()), "CreationDateTime": time.time()}
        with self._store.transaction():
            exists = self._store.db.execute(
                "SELECT 1 FROM tables WHERE region = ? AND name = ?", (ctx.region, spec["TableName"])
            ).fetchone()
            if exists:
                raise AwsError("ResourceInUseException", f"Table already exists: {spec['TableName']}")
            self._store.db.execute(
                "INSERT INTO tables (region, name, spec) VALUES (?, ?, ?)",
                (ctx.region, spec["TableName"], json.dumps(spec)),
            )
            return {"TableDescription": self._describe(ctx, Table.from_spec(ctx.region, spec))}

    def describe_table(self, ctx: RequestContext, params: dict) -> dict:
        with self._store.lock:
            return {"Table": self._describe(ctx, self._table(ctx, params["TableName"], describe=True))}

    def delete_table(self, ctx: RequestContext, params: dict) -> dict:
        with self._store.transaction():
            table = self._table(ctx, params["TableName"], describe=True)
            if table.spec.get("DeletionProtectionEnabled"):
                raise validation_error(
                    "Resource cannot be deleted as it is currently protected against deletion. "
                    "Disable deletion protection first."
                )
            description = self._describe(ctx, table, status="DELETING")
            self._store.db.execute("DELETE FROM items WHERE region = ? AND table_name = ?", (ctx.region, table.name))
            self._store.db.execute(
                "DELETE FROM index_entries WHERE region = ? AND table_name = ?", (ctx.region, table.name)
            )
            self._store.db.execute("DELETE FROM tables WHERE region = ? AND name = ?", (ctx.region, table.name))
        return {"TableDescription": description}

    def list_tables(self, ctx: RequestContext, params: dict) -> dict:
        limit = params.get("Limit", LIST_TABLES_LIMIT)
        if limit > LIST_TABLES_LIMIT:
            raise validation_error(
                f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
                "Member must have value less than or equal to 100"
            )
        with self._store.lock:
            rows = self._store.db.execute(
                "SELECT name FROM tables WHERE region = ? AND name > ? ORDER BY name",
                (ctx.region, params.get("ExclusiveStartTableName", "")),
            ).fetchall()
        names = [name for (name,) in rows]
        result: dict[str, Any] = {"TableNames": names[:limit]}
        if len(names) > limit:
            result["LastEvaluatedTableName"] = names[limit - 1]
        return result

    def _describe(self, ctx: RequestContext, table: Table, status: str = "ACTIVE") -> dict:
        spec = table.spec
        arn = f"arn:aws:dynamodb:{ctx.region}:{ctx.account_id}:table/{table.name}"
        created = datetime.fromtimestamp(spec["CreationDateTime"], UTC)
        count, size = self._store.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items WHERE region = ? AND table_name = ?",
            (table.region, table.name),
        ).fetchone()
        description: dict[str, Any] = {
            "TableName": table.name,
            "TableArn": arn,
            "TableId": spec["TableId"],
            "TableStatus": status,
            "KeySchema": spec["KeySchema"],
            "AttributeDefinitions": spec["AttributeDefinitions"],
            "CreationDateTime": created,
            "ItemCount": count,
            "TableSizeBytes": size,
            "BillingModeSummary": {"BillingMode": spec["BillingMode"]},
            "ProvisionedThroughput": _throughput(spec),
            "DeletionProtectionEnabled": spec.get("DeletionProtectionEnabled", False),
        }
        if spec["BillingMode"] == "PAY_PER_REQUEST":
            description["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"] = created
        if table.indexes:
            description |= self._describe_indexes(table, arn)
        if "StreamSpecification" in spec:
            description["StreamSpecification"] = spec["StreamSpecification"]
        if "TableClass" in spec:
            description["TableClassSummary"] = {"TableClass": spec["TableClass"]}
        return description

    def _describe_indexes(self, table: Table, arn: str) -> dict[str, list[dict]]:
        items = self._items(table)
        described: dict[str, list[dict]] = {}
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            for index_spec in table.spec.get(key, []):
                index = table.indexes[index_spec["IndexName"]]
                entries = [index.project(item, table.schema) for item in items if index.schema.covers(item)]
                description = {
                    "IndexName": index.name,
                    "KeySchema": index_spec["KeySchema"],
                    "Projection": index_spec["Projection"],
                    "IndexSizeBytes": sum(values.item_size(entry) for entry in entries),
                    "ItemCount": len(entries),
                    "IndexArn": f"{arn}/index/{index.name}",
                }
                if index.is_global:
                    description |= {"IndexStatus": "ACTIVE", "ProvisionedThroughput": _throughput(index_spec)}
                described.setdefault(key, []).append(description)
        return described

    # --- items ---

    def put_item(self, ctx: RequestContext, params: dict) -> dict:
        _reject_legacy(params)
        mode = _return_values(params, ("NONE", "ALL_OLD"))
        placeholders = _placeholders(params, "ConditionExpression")
        condition = _condition(params, "ConditionExpression", placeholders)
        placeholders.check_all_used()
        item = values.normalize_item(params["Item"])
        _check_size(item, "Item size has exceeded the maximum allowed size")
        with self._store.transaction():
            table = self._table(ctx, params["TableName"])
            key = table.item_key(item)
            table.check_index_keys(item)
            old = self._get(table, key)
            _check_condition(condition, old, params)
            self._put(table, item)
        return _attributes(old if mode == "ALL_OLD" else None)

    def get_item(self, ctx: RequestContext, params: dict) -> dict:
        _reject_legacy(params)
        placeholders = _placeholders(params, "ProjectionExpression")
        projection = _projection(params, placeholders)
        placeholders.check_all_used()
        with self._store.lock:
            table = self._table(ctx, params["TableName"])
            item = self._get(table, table.request_key(params["Key"]))
        if item is None:
            return {}
        return {"Item": item if projection is None else expressions.project(item, projection)}

    def delete_item(self, ctx: RequestContext, params: dict) -> dict:
        _reject_legacy(params)
        mode = _return_values(params, ("NONE", "ALL_OLD"))
        placeholders = _placeholders(params, "ConditionExpression")
        condition = _condition(params, "ConditionExpression", placeholders)
        placeholders.check_all_used()
        with self._store.transaction():
            table = self._table(ctx, params["TableName"])
            key = table.request_key(params["Key"])
            old = self._get(table, key)
            _check_condition(condition, old, params)
            self._delete(table, key)
        return _attributes(old if mode == "ALL_OLD" else None)

    def update_item(self, ctx: RequestContext, params: dict) -> dict:
        _reject_legacy(params)
        mode = _return_values(params, RETURN_VALUES)
        placeholders = _placeholders(params, "UpdateExpression", "ConditionExpression")
        update = (
            expressions.parse_update(params["UpdateExpression"], placeholders) if "UpdateExpression" in params else None
        )
        condition = _condition(params, "ConditionExpression", placeholders)
        placeholders.check_all_used()
        paths = update.paths if update else []
        with self._store.transaction():
            table = self._table(ctx, params["TableName"])
            key = table.request_key(params["Key"])
            for path in paths:
                if path.elements[0] in key:
                    raise values.invalid_parameter(
                        f"Cannot update attribute {path.elements[0]}. This attribute is part of the key"
                    )
            old = self._get(table, key)
            _check_condition(condition, old, params)
            # UpdateItem upserts: a missing item starts as just its key.
            new = update.apply(old or key) if update else old or key
            table.check_index_keys(new)
            _check_size(new, "Item size to update has exceeded the maximum allowed size")
            self._put(table, new)
        return _attributes(_updated(mode, old, new, paths))

    def query(self, ctx: RequestContext, params: dict) -> dict:
        _reject_legacy(params)
        if "KeyConditionExpression" not in params:
            raise validation_error(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
            )
        placeholders = _placeholders(params, "KeyConditionExpression", "FilterExpression", "ProjectionExpression")
        forward = params.get("ScanIndexForward", True)
        with self._store.lock:
            table = self._table(ctx, params["TableName"])
            index = _read_index(table, params)
            schema = index.schema if index else table.schema
            key = expressions.key_condition(
                params["KeyConditionExpression"], placeholders, schema.partition, schema.sort
            )
            read = _Read(params, placeholders, table, index)
            placeholders.check_all_used()
            return self._page(read, forward, encode_key(key.partition_value), key.sort_condition)

    def scan(self, ctx: RequestContext, params: dict) -> dict:
        _reject_legacy(params)
        segments = _check_segments(params)
        placeholders = _placeholders(params, "FilterExpression", "ProjectionExpression")
        with self._store.lock:
            table = self._table(ctx, params["TableName"])
            index = _read_index(table, params)
            read = _Read(params, placeholders, table, index)
            placeholders.check_all_used()
            return self._page(read, True, None, None, segments)

    def _page(
        self,
        read: _Read,
        forward: bool,
        partition: str | None,
        sort_condition: Condition | None,
        segments: tuple[int, int] | None = None,
    ) -> dict[str, Any]:
        """One page of a Query (``partition`` set) or Scan of the table or an index, read from SQL in key order
        from ExclusiveStartKey on and only as far as the page needs (the caller holds the store lock)."""
        table, index = read.table, read.index
        # A table is read from items by (pk, sko); an index from its entries by (ipk, isko, pk, sko), joined to
        # the items they point at.
        if index is None:
            sql = "SELECT pk, item, size FROM items WHERE region = ? AND table_name = ?"
            args: list[Any] = [table.region, table.name]
            columns = ["pk", "sko"]
        else:
            sql = (
                "SELECT e.ipk, i.item, i.size FROM index_entries e JOIN items i ON i.region = e.region"
                " AND i.table_name = e.table_name AND i.pk = e.pk AND i.sko = e.sko"
                " WHERE e.region = ? AND e.table_name = ? AND e.index_name = ?"
            )
            args = [table.region, table.name, index.name]
            columns = ["e.ipk", "e.isko", "e.pk", "e.sko"]
        if partition is not None:
            sql += f" AND {columns[0]} = ?"
            args.append(partition)
            for op, bound in _sort_bounds(sort_condition):
                sql += f" AND {columns[1]} {op} ?"
                args.append(bound)
        if read.start:
            start = table.start_key(read.start, index)
            key = _start_position(table, index, start)
            after = ">" if forward else "<"
            if partition is None:
                sql += f" AND ({', '.join(columns)}) {after} ({', '.join('?' * len(key))})"
                args += key
            elif key[0] == partition:
                sql += f" AND ({', '.join(columns[1:])}) {after} ({', '.join('?' * (len(key) - 1))})"
                args += key[1:]
            elif (key[0] > partition) == forward:
                # A start key in a partition past this one, in read order: nothing is left to read.
                return read.page(())
        direction = "" if forward else " DESC"
        sql += " ORDER BY " + ", ".join(column + direction for column in columns)
        if read.limit is not None and segments is None and sort_condition is None:
            # One more row than the page holds tells whether to return LastEvaluatedKey.
            sql += " LIMIT ?"
            args.append(read.limit + 1)
        # A global index holds only what it projects, and that is what its page size counts.
        project = index.is_global and index.projection.get("ProjectionType", "ALL") != "ALL" if index else False
        cursor = self._store.db.execute(sql, args)
        try:
            entries = _table_entries(cursor, sort_condition, segments)
            if project:
                entries = _sized(index.project(entry, table.schema) for entry, _ in entries)
            return read.page(entries)
        finally:
            cursor.close()

    def batch_write_item(self, ctx: RequestContext, params: dict) -> dict:
        requests = params["RequestItems"]
        if sum(len(table_requests) for table_requests in requests.values()) > MAX_BATCH_WRITE:
            raise validation_error("Too many items requested for the BatchWriteItem call")
        seen: set[tuple[str, tuple[str, str]]] = set()
        with self._store.transaction():
            for name, table_requests in requests.items():
                table = self._table(ctx, name)
                for request in table_requests:
                    key = self._write(table, request)
                    if (table.name, table.storage_key(key)) in seen:
                        raise validation_error("Provided list of item keys contains duplicates")
                    seen.add((table.name, table.storage_key(key)))
        return {"UnprocessedItems": {}}

    def _write(self, table: Table, request: dict) -> Item:
        """Apply one BatchWriteItem request (inside the batch's transaction); returns the key it wrote."""
        if len(request) != 1:
            raise validation_error("Supplied WriteRequest must contain exactly one of PutRequest or DeleteRequest")
        if "DeleteRequest" in request:
            key = table.request_key(request["DeleteRequest"]["Key"])
            self._delete(table, key)
            return key
        item = values.normalize_item(request["PutRequest"]["Item"])
        _check_size(item, "Item size has exceeded the maximum allowed size")
        key = table.item_key(item)
        table.check_index_keys(item)
        self._put(table, item)
        return key

    def batch_get_item(self, ctx: RequestContext, params: dict) -> dict:
        requests = params["RequestItems"]
        if sum(len(request["Keys"]) for request in requests.values()) > MAX_BATCH_GET:
            raise validation_error("Too many items requested for the BatchGetItem call")
        responses = {}
        with self._store.lock:
            for name, request in requests.items():
                responses[name] = self._batch_get(ctx, name, request)
        return {"Responses": responses, "UnprocessedKeys": {}}

    def _batch_get(self, ctx: RequestContext, name: str, request: dict) -> list[Item]:
        _reject_legacy(request)
        placeholders = _placeholders(request, "ProjectionExpression")
        projection = _projection(request, placeholders)
        placeholders.check_all_used()
        table = self._table(ctx, name)
        keys = [table.request_key(key) for key in request["Keys"]]
        if len({table.storage_key(key) for key in keys}) != len(keys):
            raise validation_error("Provided list of item keys contains duplicates")
        found = [item for key in keys if (item := self._get(table, key)) is not None]
        return found if projection is None else [expressions.project(item, projection) for item in found]


def _throughput(spec: dict[str, Any]) -> dict[str, int]:
    given = spec.get("ProvisionedThroughput", {})
    return {
        "NumberOfDecreasesToday": 0,
        "ReadCapacityUnits": given.get("ReadCapacityUnits", 0),
        "WriteCapacityUnits": given.get("WriteCapacityUnits", 0),
    }
