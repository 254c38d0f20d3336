"""Table definitions: CreateTable validation, key schemas, secondary indexes and primary-key handling."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from localcloud.services.dynamodb import values
from localcloud.services.dynamodb.values import AttributeValue, Item

_TABLE_NAME = re.compile(r"[a-zA-Z0-9_.-]{3,255}")
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024


def _key_mismatch() -> Exception:
    return values.validation_error("The provided key element does not match the schema")


@dataclass(frozen=True)
class KeySchema:
    """A partition key and optional sort key, each as (attribute name, scalar type)."""

    partition: tuple[str, str]
    sort: tuple[str, str] | None

    @property
    def attributes(self) -> list[tuple[str, str]]:
        return [self.partition] + ([self.sort] if self.sort else [])

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.attributes]

    @classmethod
    def parse(cls, elements: list[dict], types: dict[str, str]) -> KeySchema:
        if len(elements) > 2:
            raise values.validation_error(
                "1 validation error detected: Value at 'keySchema' failed to satisfy constraint: "
                "Member must have length less than or equal to 2"
            )
        kinds = [element["KeyType"] for element in elements]
        if kinds[0] != "HASH":
            raise values.validation_error("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
        if kinds[1:] not in ([], ["RANGE"]):
            raise values.validation_error("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")
        names = [element["AttributeName"] for element in elements]
        if len(set(names)) != len(names):
            raise values.validation_error(
                "Both the Hash Key and the Range Key element in the KeySchema have the same name"
            )
        missing = [name for name in names if name not in types]
        if missing:
            raise values.invalid_parameter(
                "Some index key attributes are not defined in AttributeDefinitions. "
                f"Keys: [{', '.join(missing)}], AttributeDefinitions: [{', '.join(types)}]"
            )
        attributes = [(name, types[name]) for name in names]
        return cls(attributes[0], attributes[1] if len(attributes) == 2 else None)

    def key_of(self, item: Item) -> Item:
        return {name: item[name] for name in self.names}

    def covers(self, item: Item) -> bool:
        """Whether an item has every key attribute (items lacking an index's keys are not in that index)."""
        return all(name in item for name in self.names)


@dataclass(frozen=True)
class Index:
    name: str
    schema: KeySchema
    projection: dict[str, Any]
    is_global: bool

    def project(self, item: Item, table_schema: KeySchema) -> Item:
        """An item as the index stores it, per its Projection (ALL, KEYS_ONLY or INCLUDE)."""
        kind = self.projection.get("ProjectionType", "ALL")
        if kind == "ALL":
            return item
        keep = set(table_schema.names) | set(self.schema.names)
        if kind == "INCLUDE":
            keep |= set(self.projection.get("NonKeyAttributes", []))
        return {name: value for name, value in item.items() if name in keep}


@dataclass(frozen=True)
class Table:
    """A table's stored definition (``spec``, the validated CreateTable input) and what follows from it."""

    region: str
    spec: dict[str, Any]
    schema: KeySchema
    indexes: dict[str, Index]

    @classmethod
    def from_spec(cls, region: str, spec: dict[str, Any]) -> Table:
        types = {d["AttributeName"]: d["AttributeType"] for d in spec["AttributeDefinitions"]}
        indexes = {}
        for key, is_global in (("GlobalSecondaryIndexes", True), ("LocalSecondaryIndexes", False)):
            for index in spec.get(key, []):
                schema = KeySchema.parse(index["KeySchema"], types)
                indexes[index["IndexName"]] = Index(index["IndexName"], schema, index["Projection"], is_global)
        return cls(region, spec, KeySchema.parse(spec["KeySchema"], types), indexes)

    @property
    def name(self) -> str:
        return self.spec["TableName"]

    def index(self, name: str) -> Index:
        if name not in self.indexes:
            raise values.validation_error(f"The table does not have the specified index: {name}")
        return self.indexes[name]

    def item_key(self, item: Item) -> Item:
        """The primary key of an item to write, checked like PutItem checks it."""
        for name, kind in self.schema.attributes:
            if name not in item:
                raise values.invalid_parameter(f"Missing the key {name} in the item")
            actual = values.type_of(item[name])
            if actual != kind:
                raise values.invalid_parameter(f"Type mismatch for key {name} expected: {kind} actual: {actual}")
            _check_not_empty(name, item[name])
        self._check_key_size(item)
        return self.schema.key_of(item)

    def request_key(self, key: Item) -> Item:
        """A ``Key`` parameter: exactly the key attributes, with the right types."""
        key = values.normalize_item(key)
        if set(key) != set(self.schema.names):
            raise _key_mismatch()
        for name, kind in self.schema.attributes:
            if values.type_of(key[name]) != kind:
                raise _key_mismatch()
            _check_not_empty(name, key[name])
        return key

    def start_key(self, key: Item, index: Index | None) -> Item:
        """An ExclusiveStartKey: the table's key plus, on an index, the index's key."""
        key = values.normalize_item(key)
        expected = dict(self.schema.attributes) | (dict(index.schema.attributes) if index else {})
        if set(key) != set(expected) or any(values.type_of(key[name]) != kind for name, kind in expected.items()):
            raise values.validation_error(
                "The provided starting key is invalid: The provided key element does not match the schema"
            )
        return key

    def check_index_keys(self, item: Item) -> None:
        """Secondary-index key attributes an item has must have the index's types and not be empty."""
        for index in self.indexes.values():
            for name, kind in index.schema.attributes:
                value = item.get(name)
                if value is None:
                    continue
                actual = values.type_of(value)
                if actual != kind:
                    raise values.invalid_parameter(
                        f"Type mismatch for Index Key {name} Expected: {kind} Actual: {actual} IndexName: {index.name}"
                    )
                if value[actual] in ("", b""):
                    raise values.validation_error(
                        "One or more parameter values are not valid. A value specified for a secondary index key "
                        "is not supported. The AttributeValue for a key attribute cannot contain an empty string "
                        f"value. IndexName: {index.name}, IndexKey: {name}"
                    )

    def _check_key_size(self, item: Item) -> None:
        partition_name, _ = self.schema.partition
        if values.value_size(item[partition_name]) > MAX_PARTITION_KEY_BYTES:
            raise values.invalid_parameter(
                f"Size of hashkey has exceeded the maximum size limit of{MAX_PARTITION_KEY_BYTES} bytes"
            )
        if self.schema.sort and values.value_size(item[self.schema.sort[0]]) > MAX_SORT_KEY_BYTES:
            raise values.invalid_parameter(
                f"Aggregated size of all range keys has exceeded the size limit of {MAX_SORT_KEY_BYTES} bytes"
            )

    def storage_key(self, key: Item) -> tuple[str, str]:
        """The (partition, sort) columns an item is stored under."""
        sort = encode_key(key[self.schema.sort[0]]) if self.schema.sort else ""
        return encode_key(key[self.schema.partition[0]]), sort

    def last_key(self, item: Item, index: Index | None) -> Item:
        names = self.schema.names + (index.schema.names if index else [])
        return {name: item[name] for name in names}


def _check_not_empty(name: str, value: AttributeValue) -> None:
    kind = values.type_of(value)
    if value[kind] in ("", b""):
        label = "string" if kind == "S" else "binary"
        raise values.validation_error(
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain "
            f"an empty {label} value. Key: {name}"
        )


def encode_key(value: AttributeValue) -> str:
    """A key value as text that is equal exactly when the values are (numbers are already canonical)."""
    kind, inner = next(iter(value.items()))
    return f"{kind}:{base64.b64encode(inner).decode() if kind == 'B' else inner}"


def order_bytes(value: AttributeValue) -> bytes:
    """A sort-key value as bytes whose bytewise order is DynamoDB's order for its type: strings by UTF-8 bytes,
    binary bytewise, numbers numerically. A column holding these lets SQLite sort and seek by the key."""
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return inner.encode()
    if kind == "B":
        return bytes(inner)
    return _number_order_bytes(Decimal(inner))


def _number_order_bytes(number: Decimal) -> bytes:
    # Laid out as sign, then the decimal exponent, then the digits, so that memcmp orders the numbers: the
    # exponent is that of 0.d1d2... x 10^e, and a negative number inverts both (and ends in 0xff, so that a
    # longer digit string, a larger magnitude, sorts first). Digits are taken from the tuple rather than via
    # normalize(), which would round DynamoDB's 38 significant digits to the context's 28.
    if number.is_zero():
        return b"\x80"
    sign, digits, exponent = number.as_tuple()
    digits = list(digits)
    while digits and digits[-1] == 0:
        digits.pop()
        exponent += 1
    while digits and digits[0] == 0:
        digits.pop(0)
    magnitude = exponent + len(digits) + 1000
    if not sign:
        return b"\xc0" + magnitude.to_bytes(2, "big") + bytes(0x30 + d for d in digits)
    return b"\x40" + (65535 - magnitude).to_bytes(2, "big") + bytes(0x39 - d for d in digits) + b"\xff"


def order_bytes_of_stored(sort: str) -> bytes:
    """order_bytes() of a stored ``sk`` column (encode_key()'s text, or "" for tables without a sort key)."""
    if not sort:
        return b""
    kind, inner = sort.split(":", 1)
    return order_bytes({kind: base64.b64decode(inner) if kind == "B" else inner})


def prefix_successor(prefix: bytes) -> bytes | None:
    """The least byte string greater than every string starting with ``prefix`` (None: there is none)."""
    trimmed = prefix.rstrip(b"\xff")
    return trimmed[:-1] + bytes([trimmed[-1] + 1]) if trimmed else None


def table_name(name: str) -> str:
    """A TableName parameter, which may also be the table's ARN."""
    return name.split(":table/", 1)[1].split("/", 1)[0] if name.startswith("arn:") and ":table/" in name else name


def validate_create_table(params: dict[str, Any]) -> dict[str, Any]:
    """Check a CreateTable request the way DynamoDB does; returns the spec to store."""
    name = params["TableName"]
    if not _TABLE_NAME.fullmatch(name):
        raise values.validation_error(
            f"1 validation error detected: Value '{name}' at 'tableName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        )
    spec = {key: params[key] for key in _STORED_PARAMETERS if key in params}
    spec.setdefault("BillingMode", "PROVISIONED")
    _check_indexes(spec)
    table = Table.from_spec("", spec)
    used = {name for schema in [table.schema] + [i.schema for i in table.indexes.values()] for name in schema.names}
    if used != {d["AttributeName"] for d in spec["AttributeDefinitions"]}:
        raise values.invalid_parameter(
            "Number of attributes in KeySchema does not exactly match number of attributes defined in "
            "AttributeDefinitions"
        )
    for index in table.indexes.values():
        if not index.is_global:
            _check_local_index(index, table.schema)
    _check_throughput(spec)
    return spec


_STORED_PARAMETERS = (
    "TableName",
    "KeySchema",
    "AttributeDefinitions",
    "BillingMode",
    "ProvisionedThroughput",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "StreamSpecification",
    "SSESpecification",
    "TableClass",
    "DeletionProtectionEnabled",
)


def _check_indexes(spec: dict[str, Any]) -> None:
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if key in spec and not spec[key]:
            raise values.invalid_parameter(f"List of {key} is empty")
    names = [
        index["IndexName"] for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes") for index in spec.get(key, [])
    ]
    for name in names:
        if names.count(name) > 1:
            raise values.invalid_parameter(f"Duplicate index name: {name}")


def _check_local_index(index: Index, table_schema: KeySchema) -> None:
    if table_schema.sort is None:
        raise values.invalid_parameter(
            "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex"
        )
    if index.schema.sort is None:
        raise values.invalid_parameter(f"Index KeySchema does not have a range key for index: {index.name}")
    if index.schema.partition != table_schema.partition:
        raise values.invalid_parameter(
            "Index KeySchema does not have the same leading hash key as table KeySchema for index: "
            f"{index.name}. index hash key: {index.schema.partition[0]}, table hash key: {table_schema.partition[0]}"
        )


def _check_throughput(spec: dict[str, Any]) -> None:
    provisioned = spec["BillingMode"] == "PROVISIONED"
    targets = [("table", spec)] + [(index["IndexName"], index) for index in spec.get("GlobalSecondaryIndexes", [])]
    for target, definition in targets:
        if provisioned and "ProvisionedThroughput" not in definition:
            raise values.invalid_parameter(
                "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"
                if target == "table"
                else f"ProvisionedThroughput must be specified for index: {target}"
            )
        if not provisioned and "ProvisionedThroughput" in definition:
            raise values.invalid_parameter(
                "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
            )
