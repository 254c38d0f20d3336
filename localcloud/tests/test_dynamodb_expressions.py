"""Unit tests of localcloud's DynamoDB: the expression language, attribute values and the SQLite backend
called directly (no server)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from localcloud.core import AwsError, RequestContext
from localcloud.services.dynamodb import values
from localcloud.services.dynamodb.backend import DynamoDBBackend
from localcloud.services.dynamodb.expressions import (
    Placeholders,
    key_condition,
    parse_condition,
    parse_projection,
    parse_update,
    project,
)

CTX = RequestContext()


def S(text: str) -> dict:
    return {"S": text}


def N(number: int | str) -> dict:
    return {"N": str(number)}


def check(text: str, item: dict, names: dict | None = None, vals: dict | None = None) -> bool:
    return parse_condition(text, Placeholders(names, vals)).evaluate(item)


def update(text: str, item: dict, names: dict | None = None, vals: dict | None = None) -> dict:
    return parse_update(text, Placeholders(names, vals)).apply(item)


def error_of(call, *args, **kwargs) -> AwsError:
    with pytest.raises(AwsError) as caught:
        call(*args, **kwargs)
    return caught.value


ITEM = {
    "id": S("a1"),
    "n": N(10),
    "s": S("hello"),
    "b": {"B": b"\x01\x02\x03"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "tags": {"SS": ["red", "blue"]},
    "nums": {"NS": ["1", "2.5"]},
    "l": {"L": [N(1), S("two"), {"M": {"c": S("deep")}}]},
    "m": {"M": {"inside": {"M": {"x": N(5)}}, "list": {"L": [S("p"), S("q")]}}},
}


# --- values -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("1.50", "1.5"),
        ("1.0", "1"),
        ("1e3", "1000"),
        ("-0", "0"),
        ("0.000", "0"),
        ("-12.3400e2", "-1234"),
        ("007", "7"),
    ],
)
def test_numbers_are_canonical(given: str, canonical: str) -> None:
    assert values.canonical_number(given) == canonical


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("abc", "cannot be converted to a numeric value"),
        ("NaN", "cannot be converted to a numeric value"),
        ("1e126", "Number overflow"),
        ("1e-131", "Number underflow"),
        ("1" * 39, "more than 38 significant digits"),
    ],
)
def test_bad_numbers_are_rejected(given: str, message: str) -> None:
    assert message in error_of(values.canonical_number, given).message


def test_sets_must_be_non_empty_and_unique() -> None:
    assert "An string set  may not be empty" in error_of(values.normalize, {"SS": []}).message
    assert "contains duplicates" in error_of(values.normalize, {"SS": ["a", "a"]}).message
    # "1" and "1.0" are the same number.
    assert "contains duplicates" in error_of(values.normalize, {"NS": ["1", "1.0"]}).message


def test_attribute_value_shape_is_checked() -> None:
    assert "more than one datatypes" in error_of(values.normalize, {"S": "a", "N": "1"}).message
    assert "is empty" in error_of(values.normalize, {}).message
    assert "must have the value of true" in error_of(values.normalize, {"NULL": False}).message


def test_nested_values_are_normalized() -> None:
    assert values.normalize({"M": {"a": {"L": [N("1.50")]}}}) == {"M": {"a": {"L": [N("1.5")]}}}


def test_storage_encoding_round_trips_binary() -> None:
    item = {"b": {"B": b"\x00\xff"}, "bs": {"BS": [b"x", b"y"]}, "m": {"M": {"b": {"B": b"z"}}}}
    assert values.load_item(values.dump_item(item)) == item


def test_equality_ignores_set_order() -> None:
    assert values.equal({"SS": ["a", "b"]}, {"SS": ["b", "a"]})
    assert not values.equal(S("6"), N(6))


# --- conditions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n = :ten", True),
        ("n <> :ten", False),
        ("n < :nine", False),
        ("n >= :ten", True),
        ("n > :nine", True),
        ("s = :hello", True),
        ("s < :z", True),
        ("n = :s10", False),  # types must match
        ("absent = :ten", False),
        ("absent <> :ten", True),
        ("absent < :ten", False),
        ("n BETWEEN :nine AND :ten", True),
        ("n between :one AND :nine", False),
        ("n IN (:one, :ten)", True),
        ("n in (:one, :nine)", False),
        ("n = :ten AND s = :hello", True),
        ("n = :one OR s = :hello", True),
        ("NOT n = :one", True),
        ("not (n = :ten and s = :hello)", False),
        # AND binds tighter than OR.
        ("n = :one AND s = :hello OR s = :hello", True),
        ("n = :one AND (s = :hello OR s = :hello)", False),
    ],
)
def test_comparisons(text: str, expected: bool) -> None:
    vals = {":ten": N(10), ":nine": N("9.0"), ":one": N(1), ":hello": S("hello"), ":z": S("z"), ":s10": S("10")}
    assert check(text, ITEM, vals={k: v for k, v in vals.items() if k in text}) is expected


def test_numbers_compare_numerically_and_strings_by_utf8_bytes() -> None:
    assert check("a < :b", {"a": N(9)}, vals={":b": N(10)})
    assert check("a < :b", {"a": S("Z")}, vals={":b": S("a")})
    assert check("a < :b", {"a": S("z")}, vals={":b": S("é")})
    assert check("a < :b", {"a": {"B": b"\x01"}}, vals={":b": {"B": b"\xff"}})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("attribute_exists(n)", True),
        ("attribute_exists(absent)", False),
        ("attribute_not_exists(absent)", True),
        ("attribute_exists(m.inside.x)", True),
        ("attribute_exists(l[2].c)", True),
        ("attribute_exists(l[3])", False),
        ("attribute_type(nums, :ns)", True),
        ("attribute_type(n, :ns)", False),
        ("begins_with(s, :he)", True),
        ("begins_with(n, :he)", False),
        ("contains(s, :ell)", True),
        ("contains(tags, :red)", True),
        ("contains(tags, :ell)", False),
        ("contains(l, :two)", True),
        ("contains(nums, :twofive)", True),
        ("size(s) = :five", True),
        ("size(tags) = :two_n", True),
        ("size(l) > :two_n", True),
        ("size(m) = :two_n", True),
        ("size(b) = :three", True),
        ("size(absent) = :three", False),
    ],
)
def test_functions(text: str, expected: bool) -> None:
    vals = {
        ":ns": S("NS"),
        ":he": S("he"),
        ":ell": S("ell"),
        ":red": S("red"),
        ":two": S("two"),
        ":twofive": N("2.50"),
        ":five": N(5),
        ":two_n": N(2),
        ":three": N(3),
    }
    assert check(text, ITEM, vals={k: v for k, v in vals.items() if k in text}) is expected


def test_name_placeholders_and_nested_paths() -> None:
    assert check("#m.inside.#x = :five", ITEM, names={"#m": "m", "#x": "x"}, vals={":five": N(5)})
    assert check("#dotted = :v", {"a.b": S("v")}, names={"#dotted": "a.b"}, vals={":v": S("v")})
    # A placeholder names one attribute, dots and all; it is not a path.
    assert not check("#dotted = :v", {"a": {"M": {"b": S("v")}}}, names={"#dotted": "a.b"}, vals={":v": S("v")})


def test_syntax_errors_name_the_token_and_its_surroundings() -> None:
    err = error_of(parse_condition, "a = ", Placeholders(None, None))
    assert err.code == "ValidationException"
    assert err.message == 'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "= "'
    err = error_of(parse_condition, "a != :v", Placeholders(None, {":v": N(1)}))
    assert 'token: "!"' in err.message


@pytest.mark.parametrize(
    ("text", "names", "vals", "message"),
    [
        ("#a = :v", None, {":v": N(1)}, "attribute name: #a"),
        ("a = :v", None, None, "attribute value: :v"),
        ("status = :v", None, {":v": N(1)}, "reserved keyword: status"),
        ("Begins_With(a, :v)", None, {":v": S("x")}, "Invalid function name; function: Begins_With"),
        ("if_not_exists(a, :v)", None, {":v": S("x")}, "not allowed in a condition expression"),
        ("begins_with(a, :v)", None, {":v": N(1)}, "operand type: N"),
        ("a BETWEEN :hi AND :lo", None, {":hi": N(9), ":lo": N(1)}, "upper bound to be greater than or equal"),
        ("attribute_exists(:v)", None, {":v": N(1)}, "requires a document path"),
        ("attribute_type(a, :v)", None, {":v": S("STRING")}, "Invalid attribute type name"),
        ("a = begins_with(a, :v)", None, {":v": S("x")}, "not allowed to be used this way"),
        ("   ", None, None, "The expression can not be empty"),
    ],
)
def test_condition_errors(text: str, names: dict | None, vals: dict | None, message: str) -> None:
    err = error_of(parse_condition, text, Placeholders(names, vals))
    assert err.code == "ValidationException"
    assert message in err.message


def test_unused_placeholders_are_rejected() -> None:
    placeholders = Placeholders({"#a": "a", "#unused": "u"}, {":v": N(1)})
    parse_condition("#a = :v", placeholders)
    assert error_of(placeholders.check_all_used).message == (
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}"
    )


def test_placeholder_keys_and_values_are_validated() -> None:
    assert "invalid key" in error_of(Placeholders, {"a": "a"}, None).message
    assert "invalid value" in error_of(Placeholders, None, {":v": {"SS": []}}).message


# --- updates ----------------------------------------------------------------------------------------


def test_set_forms() -> None:
    item = {"id": S("k"), "n": N(1), "l": {"L": [N(1)]}, "m": {"M": {"c": {"L": [S("a"), S("b")]}}}}
    vals = {":v": S("new"), ":one": N(1), ":l": {"L": [N(2)]}, ":z": N(0), ":w": S("w")}
    result = update(
        "SET a = :v, m.c[1] = :w, n = n + :one, d = n - :one, l = list_append(l, :l), "
        "x = if_not_exists(x, :z), y = if_not_exists(n, :z)",
        item,
        vals=vals,
    )
    assert result["a"] == S("new")
    assert result["m"] == {"M": {"c": {"L": [S("a"), S("w")]}}}
    assert result["n"] == N(2)
    assert result["d"] == N(0)  # right-hand sides see the item as it was
    assert result["l"] == {"L": [N(1), N(2)]}
    assert result["x"] == N(0)
    assert result["y"] == N(1)
    assert item["n"] == N(1)  # the input is not mutated


def test_set_list_index_past_the_end_appends_and_list_append_prepends() -> None:
    item = {"l": {"L": [N(1)]}}
    assert update("SET l[5] = :v", item, vals={":v": N(9)})["l"] == {"L": [N(1), N(9)]}
    assert update("SET l = list_append(:l, l)", item, vals={":l": {"L": [N(0)]}})["l"] == {"L": [N(0), N(1)]}


def test_set_swaps_using_the_old_values() -> None:
    assert update("SET a = b, b = a", {"a": N(1), "b": N(2)}) == {"a": N(2), "b": N(1)}


def test_remove() -> None:
    item = {"a": N(1), "l": {"L": [N(0), N(1), N(2), N(3)]}, "m": {"M": {"x": N(1), "y": N(2)}}}
    result = update("REMOVE a, l[1], l[3], m.x, nothing", item)
    assert result == {"l": {"L": [N(0), N(2)]}, "m": {"M": {"y": N(2)}}}


def test_add_and_delete() -> None:
    item = {"n": N(5), "tags": {"SS": ["a", "b"]}}
    vals = {":n": N("-1.5"), ":more": {"SS": ["b", "c"]}, ":new": N(1)}
    result = update("ADD n :n, tags :more, fresh :new", item, vals=vals)
    assert result == {"n": N("3.5"), "tags": {"SS": ["a", "b", "c"]}, "fresh": N(1)}
    result = update("DELETE tags :gone", item, vals={":gone": {"SS": ["a", "z"]}})
    assert result["tags"] == {"SS": ["b"]}
    # Deleting every member drops the attribute.
    assert "tags" not in update("DELETE tags :all", item, vals={":all": {"SS": ["a", "b"]}})


def test_clauses_in_any_order_and_case() -> None:
    result = update("remove a add n :one set b = :one", {"a": N(1)}, vals={":one": N(1)})
    assert result == {"n": N(1), "b": N(1)}


@pytest.mark.parametrize(
    ("text", "item", "vals", "message"),
    [
        ("SET a = :v SET b = :v", {}, {":v": N(1)}, 'The "SET" section can only be used once'),
        ("SET a = :v, a.b = :v", {}, {":v": N(1)}, "Two document paths overlap"),
        ("SET a = :v REMOVE a", {}, {":v": N(1)}, "Two document paths overlap"),
        ("SET a = :v,", {}, {":v": N(1)}, 'Syntax error; token: "<EOF>", near: ","'),
        ("ADD a b", {}, None, 'Syntax error; token: "b", near: "a b"'),
        ("ADD a :v", {}, {":v": S("x")}, "operand type: STRING"),
        ("DELETE a :v", {}, {":v": N(1)}, "operand type: NUMBER"),
        ("SET a = :v + :w", {}, {":v": S("x"), ":w": N(1)}, "operator or function: +, operand type: S"),
        ("SET a = size(b)", {}, None, "not allowed in an update expression"),
    ],
)
def test_update_parse_errors(text: str, item: dict, vals: dict | None, message: str) -> None:
    err = error_of(update, text, item, vals=vals)
    assert err.code == "ValidationException"
    assert message in err.message


@pytest.mark.parametrize(
    ("text", "item", "vals", "message"),
    [
        ("SET a = b + :one", {}, {":one": N(1)}, "refers to an attribute that does not exist"),
        ("SET a = b + :one", {"b": S("x")}, {":one": N(1)}, "incorrect data type"),
        ("SET a = list_append(b, :l)", {"b": N(1)}, {":l": {"L": []}}, "incorrect data type"),
        ("SET a.b = :one", {}, {":one": N(1)}, "document path provided in the update expression is invalid"),
        ("ADD a :one", {"a": S("x")}, {":one": N(1)}, "incorrect data type"),
        ("DELETE a :s", {"a": {"NS": ["1"]}}, {":s": {"SS": ["1"]}}, "incorrect data type"),
    ],
)
def test_update_runtime_errors(text: str, item: dict, vals: dict, message: str) -> None:
    assert message in error_of(update, text, item, vals=vals).message


# --- projections ------------------------------------------------------------------------------------


def test_projection_keeps_nesting_and_compacts_lists() -> None:
    paths = parse_projection("id, m.inside.x, l[2].c, l[0], absent, #n", Placeholders({"#n": "n"}, None))
    assert project(ITEM, paths) == {
        "id": S("a1"),
        "n": N(10),
        "m": {"M": {"inside": {"M": {"x": N(5)}}}},
        "l": {"L": [N(1), {"M": {"c": S("deep")}}]},
    }


def test_projection_rejects_overlapping_paths() -> None:
    err = error_of(parse_projection, "a, a.b", Placeholders(None, None))
    assert "Invalid ProjectionExpression: Two document paths overlap" in err.message
    assert "path one: [a], path two: [a, b]" in err.message


# --- key conditions ---------------------------------------------------------------------------------


def parse_key(text: str, vals: dict, names: dict | None = None):
    return key_condition(text, Placeholders(names, vals), ("pk", "S"), ("sk", "N"))


def test_key_condition_forms() -> None:
    parsed = parse_key("pk = :p AND sk BETWEEN :a AND :b", {":p": S("x"), ":a": N(1), ":b": N(5)})
    assert parsed.partition_value == S("x")
    assert parsed.sort_condition.evaluate({"sk": N(3)})
    assert not parsed.sort_condition.evaluate({"sk": N(6)})
    assert parse_key("#k = :p", {":p": S("x")}, {"#k": "pk"}).sort_condition is None
    assert parse_key("sk > :a and pk = :p", {":p": S("x"), ":a": N(1)}).sort_condition.evaluate({"sk": N(2)})


@pytest.mark.parametrize(
    ("text", "vals", "message"),
    [
        ("sk = :a", {":a": N(1)}, "Query condition missed key schema element: pk"),
        ("pk = :p OR sk = :a", {":p": S("x"), ":a": N(1)}, "Invalid operator used in KeyConditionExpression: OR"),
        ("pk = :p AND extra = :a", {":p": S("x"), ":a": N(1)}, "Query condition missed key schema element: sk"),
        ("pk = :a", {":a": N(1)}, "Condition parameter type does not match schema type"),
        ("pk = :p AND begins_with(sk, :a)", {":p": S("x"), ":a": N(1)}, "operand type: N"),
        ("pk = :p AND sk <> :a", {":p": S("x"), ":a": N(1)}, "Invalid operator used in KeyConditionExpression: <>"),
        ("pk = :p AND pk = :p", {":p": S("x")}, "only contain one condition per key"),
        ("pk = :p AND sk = :a AND sk = :a", {":p": S("x"), ":a": N(1)}, "Conditions can be of length 1 or 2 only"),
    ],
)
def test_key_condition_errors(text: str, vals: dict, message: str) -> None:
    err = error_of(parse_key, text, vals)
    assert err.code == "ValidationException"
    assert message in err.message


# --- backend ----------------------------------------------------------------------------------------


@pytest.fixture
def backend(tmp_path: Path) -> DynamoDBBackend:
    return DynamoDBBackend(tmp_path)


def create(backend: DynamoDBBackend, name: str = "things", sort: str | None = "sk", **extra) -> dict:
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    definitions = [{"AttributeName": "pk", "AttributeType": "S"}]
    if sort:
        keys.append({"AttributeName": sort, "KeyType": "RANGE"})
        definitions.append({"AttributeName": sort, "AttributeType": extra.pop("sort_type", "N")})
    definitions += extra.pop("definitions", [])
    params = {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": definitions,
        "BillingMode": "PAY_PER_REQUEST",
    }
    return backend.create_table(CTX, params | extra)["TableDescription"]


def put(backend: DynamoDBBackend, item: dict, table: str = "things", **params) -> dict:
    return backend.put_item(CTX, {"TableName": table, "Item": item, **params})


def get(backend: DynamoDBBackend, key: dict, table: str = "things", **params) -> dict | None:
    return backend.get_item(CTX, {"TableName": table, "Key": key, **params}).get("Item")


def test_table_lifecycle(backend: DynamoDBBackend) -> None:
    description = create(backend)
    assert description["TableStatus"] == "ACTIVE"
    assert description["TableArn"] == "arn:aws:dynamodb:us-east-1:000000000000:table/things"
    assert description["CreationDateTime"].tzinfo is not None
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert error_of(create, backend).code == "ResourceInUseException"
    put(backend, {"pk": S("a"), "sk": N(1)})
    described = backend.describe_table(CTX, {"TableName": "things"})["Table"]
    assert (described["ItemCount"], described["TableId"]) == (1, description["TableId"])
    assert backend.list_tables(CTX, {}) == {"TableNames": ["things"]}
    assert backend.delete_table(CTX, {"TableName": "things"})["TableDescription"]["TableStatus"] == "DELETING"
    err = error_of(backend.describe_table, CTX, {"TableName": "things"})
    assert (err.code, err.message) == (
        "ResourceNotFoundException",
        "Requested resource not found: Table: things not found",
    )
    err = error_of(get, backend, {"pk": S("a"), "sk": N(1)})
    assert (err.code, err.message) == ("ResourceNotFoundException", "Requested resource not found")


def test_tables_are_scoped_per_region(backend: DynamoDBBackend) -> None:
    create(backend)
    ireland = RequestContext(region="eu-west-1")
    assert backend.list_tables(ireland, {}) == {"TableNames": []}
    assert error_of(backend.describe_table, ireland, {"TableName": "things"}).code == "ResourceNotFoundException"


def test_list_tables_pages(backend: DynamoDBBackend) -> None:
    for name in ("ccc", "aaa", "bbb"):
        create(backend, name)
    first = backend.list_tables(CTX, {"Limit": 2})
    assert first == {"TableNames": ["aaa", "bbb"], "LastEvaluatedTableName": "bbb"}
    assert backend.list_tables(CTX, {"Limit": 2, "ExclusiveStartTableName": "bbb"}) == {"TableNames": ["ccc"]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"definitions": [{"AttributeName": "extra", "AttributeType": "S"}]}, "does not exactly match"),
        ({"BillingMode": "PROVISIONED"}, "must both be specified when BillingMode is PROVISIONED"),
        ({"ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}, "PAY_PER_REQUEST"),
        ({"TableName": "bad name"}, "regular expression pattern"),
    ],
)
def test_create_table_validation(backend: DynamoDBBackend, changes: dict, message: str) -> None:
    err = error_of(create, backend, **changes)
    assert err.code == "ValidationException"
    assert message in err.message


def test_key_attributes_must_be_defined(backend: DynamoDBBackend) -> None:
    params = {
        "TableName": "things",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "other", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    assert "not defined in AttributeDefinitions" in error_of(backend.create_table, CTX, params).message


def test_local_index_needs_a_table_sort_key(backend: DynamoDBBackend) -> None:
    lsi = {
        "IndexName": "by_x",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "x", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
    }
    definitions = [{"AttributeName": "x", "AttributeType": "S"}]
    err = error_of(create, backend, sort=None, definitions=definitions, LocalSecondaryIndexes=[lsi])
    assert "does not have a range key" in err.message


def test_put_get_delete_with_return_values(backend: DynamoDBBackend) -> None:
    create(backend)
    key = {"pk": S("a"), "sk": N(1)}
    assert put(backend, key | {"v": N("1.50")}, ReturnValues="ALL_OLD") == {}
    assert put(backend, key | {"v": N(2)}, ReturnValues="ALL_OLD") == {"Attributes": key | {"v": N("1.5")}}
    # "1.0" and "1" are the same key.
    assert get(backend, {"pk": S("a"), "sk": N("1.0")}) == key | {"v": N(2)}
    assert get(backend, key, ProjectionExpression="v") == {"v": N(2)}
    deleted = backend.delete_item(CTX, {"TableName": "things", "Key": key, "ReturnValues": "ALL_OLD"})
    assert deleted == {"Attributes": key | {"v": N(2)}}
    assert get(backend, key) is None
    assert "Return values set to invalid value" in error_of(put, backend, key, ReturnValues="ALL_NEW").message


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"sk": N(1)}, "Missing the key pk in the item"),
        ({"pk": N(1), "sk": N(1)}, "Type mismatch for key pk expected: S actual: N"),
        ({"pk": S(""), "sk": N(1)}, "cannot contain an empty string value. Key: pk"),
        ({"pk": S("a"), "sk": N(1), "big": S("x" * 410_000)}, "Item size has exceeded the maximum allowed size"),
        ({"pk": S("a"), "sk": N(1), "tags": {"SS": []}}, "may not be empty"),
    ],
)
def test_put_item_validation(backend: DynamoDBBackend, item: dict, message: str) -> None:
    create(backend)
    err = error_of(put, backend, item)
    assert err.code == "ValidationException"
    assert message in err.message


@pytest.mark.parametrize(
    "key",
    [{"pk": S("a")}, {"pk": S("a"), "sk": N(1), "extra": S("x")}, {"pk": S("a"), "sk": S("1")}],
)
def test_get_item_key_must_match_the_schema(backend: DynamoDBBackend, key: dict) -> None:
    create(backend)
    assert error_of(get, backend, key).message == "The provided key element does not match the schema"


@pytest.mark.parametrize(
    ("operation", "params", "legacy"),
    [
        ("put_item", {"Item": {"pk": S("a"), "sk": N(1)}, "Expected": {}}, "Expected"),
        ("update_item", {"Key": {"pk": S("a"), "sk": N(1)}, "AttributeUpdates": {}}, "AttributeUpdates"),
        ("query", {"KeyConditions": {}}, "KeyConditions"),
        ("scan", {"ScanFilter": {}}, "ScanFilter"),
        ("get_item", {"Key": {"pk": S("a"), "sk": N(1)}, "AttributesToGet": ["pk"]}, "AttributesToGet"),
    ],
)
def test_legacy_parameters_are_rejected(backend: DynamoDBBackend, operation: str, params: dict, legacy: str) -> None:
    create(backend)
    err = error_of(getattr(backend, operation), CTX, {"TableName": "things", **params})
    assert err.code == "ValidationException"
    assert legacy in err.message and "Expression" in err.message


def test_conditional_put_and_delete(backend: DynamoDBBackend) -> None:
    create(backend)
    item = {"pk": S("a"), "sk": N(1), "v": N(1)}
    put(backend, item, ConditionExpression="attribute_not_exists(pk)")
    err = error_of(put, backend, item, ConditionExpression="attribute_not_exists(pk)")
    assert (err.code, err.message) == ("ConditionalCheckFailedException", "The conditional request failed")
    err = error_of(
        put,
        backend,
        item,
        ConditionExpression="attribute_not_exists(pk)",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    assert err.fields["Item"] == {"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"N": "1"}}
    key = {"pk": S("a"), "sk": N(1)}
    params = {
        "TableName": "things",
        "Key": key,
        "ConditionExpression": "v = :two",
        "ExpressionAttributeValues": {":two": N(2)},
    }
    assert error_of(backend.delete_item, CTX, params).code == "ConditionalCheckFailedException"
    assert get(backend, key) == item


def test_expression_attribute_maps_are_checked(backend: DynamoDBBackend) -> None:
    create(backend)
    item = {"pk": S("a"), "sk": N(1)}
    assert "must not be empty" in error_of(put, backend, item, ExpressionAttributeValues={}).message
    err = error_of(put, backend, item, ExpressionAttributeNames={"#a": "a"})
    assert "can only be specified when using expressions" in err.message
    err = error_of(
        put, backend, item, ConditionExpression="attribute_not_exists(pk)", ExpressionAttributeValues={":v": N(1)}
    )
    assert "unused in expressions: keys: {:v}" in err.message


def update_item(backend: DynamoDBBackend, key: dict, expression: str | None = None, **params) -> dict:
    request = {"TableName": "things", "Key": key, **params}
    if expression:
        request["UpdateExpression"] = expression
    return backend.update_item(CTX, request)


def test_update_item_upserts_and_returns_values(backend: DynamoDBBackend) -> None:
    create(backend)
    key = {"pk": S("a"), "sk": N(1)}
    vals = {":one": N(1), ":t": {"SS": ["x"]}}
    result = update_item(backend, key, "ADD n :one, tags :t", ExpressionAttributeValues=vals, ReturnValues="ALL_NEW")
    assert result == {"Attributes": key | {"n": N(1), "tags": {"SS": ["x"]}}}
    vals = {":one": N(1), ":v": S("v")}
    result = update_item(
        backend, key, "SET n = n + :one, s = :v", ExpressionAttributeValues=vals, ReturnValues="UPDATED_OLD"
    )
    assert result == {"Attributes": {"n": N(1)}}
    result = update_item(backend, key, "REMOVE s", ReturnValues="UPDATED_NEW")
    assert result == {}
    result = update_item(backend, key, "REMOVE tags", ReturnValues="ALL_OLD")
    assert result["Attributes"]["tags"] == {"SS": ["x"]}
    # Without an UpdateExpression UpdateItem still creates the item.
    assert update_item(backend, {"pk": S("b"), "sk": N(2)}, ReturnValues="ALL_NEW") == {
        "Attributes": {"pk": S("b"), "sk": N(2)}
    }


def test_update_item_rejects_key_updates_and_failed_conditions_change_nothing(backend: DynamoDBBackend) -> None:
    create(backend)
    key = {"pk": S("a"), "sk": N(1)}
    err = error_of(update_item, backend, key, "SET pk = :v", ExpressionAttributeValues={":v": S("b")})
    assert err.message == (
        "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"
    )
    err = error_of(
        update_item,
        backend,
        key,
        "SET v = :v",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={":v": N(1)},
    )
    assert err.code == "ConditionalCheckFailedException"
    assert get(backend, key) is None


def test_index_key_types_are_enforced(backend: DynamoDBBackend) -> None:
    gsi = {
        "IndexName": "by_g",
        "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "ALL"},
    }
    create(backend, definitions=[{"AttributeName": "g", "AttributeType": "S"}], GlobalSecondaryIndexes=[gsi])
    err = error_of(put, backend, {"pk": S("a"), "sk": N(1), "g": N(1)})
    assert "Type mismatch for Index Key g Expected: S Actual: N IndexName: by_g" in err.message


def fill(backend: DynamoDBBackend, count: int, table: str = "things") -> None:
    for i in range(count):
        put(backend, {"pk": S("p"), "sk": N(i), "odd": {"BOOL": bool(i % 2)}}, table=table)


def query(backend: DynamoDBBackend, condition: str = "pk = :p", vals: dict | None = None, **params) -> dict:
    request = {
        "TableName": "things",
        "KeyConditionExpression": condition,
        # The partition value most tests use, only where the condition uses it (unused values are an error).
        "ExpressionAttributeValues": ({":p": S("p")} if ":p" in condition else {}) | (vals or {}),
    }
    return backend.query(CTX, request | params)


def test_query_orders_by_sort_key(backend: DynamoDBBackend) -> None:
    create(backend)
    fill(backend, 12)
    put(backend, {"pk": S("other"), "sk": N(0)})
    assert [item["sk"]["N"] for item in query(backend)["Items"]] == [str(i) for i in range(12)]
    descending = query(backend, "pk = :p AND sk >= :ten", {":ten": N(10)}, ScanIndexForward=False)
    assert [item["sk"]["N"] for item in descending["Items"]] == ["11", "10"]


def test_string_and_binary_sort_keys_order_bytewise(backend: DynamoDBBackend) -> None:
    create(backend, "strings", sort_type="S")
    create(backend, "blobs", sort_type="B")
    for text in ("é", "a", "Z", "aa"):
        put(backend, {"pk": S("p"), "sk": S(text)}, table="strings")
    for blob in (b"\xff", b"\x00\x01", b"\x00"):
        put(backend, {"pk": S("p"), "sk": {"B": blob}}, table="blobs")
    assert [i["sk"]["S"] for i in query(backend, TableName="strings")["Items"]] == ["Z", "a", "aa", "é"]
    assert [i["sk"]["B"] for i in query(backend, TableName="blobs")["Items"]] == [b"\x00", b"\x00\x01", b"\xff"]


def test_query_limit_counts_items_before_the_filter_and_pages(backend: DynamoDBBackend) -> None:
    create(backend)
    fill(backend, 10)
    page = query(backend, FilterExpression="odd = :t", vals={":t": {"BOOL": True}}, Limit=4)
    assert (page["Count"], page["ScannedCount"]) == (2, 4)
    assert page["LastEvaluatedKey"] == {"pk": S("p"), "sk": N(3)}
    seen, start = [], None
    while True:
        page = query(backend, Limit=3, **({"ExclusiveStartKey": start} if start else {}))
        seen += [item["sk"]["N"] for item in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert seen == [str(i) for i in range(10)]


def test_query_pages_backwards(backend: DynamoDBBackend) -> None:
    create(backend)
    fill(backend, 7)
    seen, start = [], None
    while True:
        page = query(backend, Limit=3, ScanIndexForward=False, **({"ExclusiveStartKey": start} if start else {}))
        seen += [item["sk"]["N"] for item in page["Items"]]
        if not (start := page.get("LastEvaluatedKey")):
            break
    assert seen == [str(i) for i in reversed(range(7))]


def test_query_select_count_and_projection(backend: DynamoDBBackend) -> None:
    create(backend)
    fill(backend, 5)
    assert query(backend, Select="COUNT") == {"Count": 5, "ScannedCount": 5}
    assert query(backend, ProjectionExpression="sk", Limit=1)["Items"] == [{"sk": N(0)}]
    err = error_of(query, backend, Select="COUNT", ProjectionExpression="sk")
    assert "Cannot specify the ProjectionExpression" in err.message


def test_query_key_condition_errors(backend: DynamoDBBackend) -> None:
    create(backend)
    err = error_of(query, backend, "sk = :s", ExpressionAttributeValues={":s": N(1)})
    assert "missed key schema element: pk" in err.message
    err = error_of(backend.query, CTX, {"TableName": "things"})
    assert "KeyConditionExpression parameter must be specified" in err.message
    assert "does not have the specified index: nope" in error_of(query, backend, IndexName="nope").message


def indexed_table(backend: DynamoDBBackend) -> None:
    gsi = {
        "IndexName": "by_status",
        "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    lsi = {
        "IndexName": "by_at",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]},
    }
    definitions = [{"AttributeName": "status", "AttributeType": "S"}, {"AttributeName": "at", "AttributeType": "N"}]
    create(backend, definitions=definitions, GlobalSecondaryIndexes=[gsi], LocalSecondaryIndexes=[lsi])
    for i in range(6):
        item = {"pk": S("p"), "sk": N(i), "at": N(100 - i), "note": S(f"n{i}"), "other": S("x")}
        if i != 5:  # no status: not in the (sparse) GSI
            item["status"] = S("open" if i % 2 else "done")
        put(backend, item)


def test_gsi_query_is_sparse_projected_and_pages_with_index_keys(backend: DynamoDBBackend) -> None:
    indexed_table(backend)
    page = query(
        backend,
        "#s = :open",
        {":open": S("open")},
        IndexName="by_status",
        ExpressionAttributeNames={"#s": "status"},
        Limit=1,
    )
    assert page["Items"] == [{"pk": S("p"), "sk": N(3), "at": N(97), "status": S("open")}]
    assert page["LastEvaluatedKey"] == {"pk": S("p"), "sk": N(3), "status": S("open"), "at": N(97)}
    rest = query(
        backend,
        "#s = :open",
        {":open": S("open")},
        IndexName="by_status",
        ExpressionAttributeNames={"#s": "status"},
        ExclusiveStartKey=page["LastEvaluatedKey"],
    )
    assert [item["sk"] for item in rest["Items"]] == [N(1)]
    described = backend.describe_table(CTX, {"TableName": "things"})["Table"]
    assert described["GlobalSecondaryIndexes"][0]["ItemCount"] == 5
    assert described["GlobalSecondaryIndexes"][0]["IndexStatus"] == "ACTIVE"
    assert "ConsistentRead" not in str(described)
    err = error_of(
        query,
        backend,
        "#s = :open",
        {":open": S("open")},
        IndexName="by_status",
        ExpressionAttributeNames={"#s": "status"},
        ConsistentRead=True,
    )
    assert "Consistent reads are not supported on global secondary indexes" in err.message


def test_lsi_query_orders_by_index_sort_key(backend: DynamoDBBackend) -> None:
    indexed_table(backend)
    page = query(
        backend, "pk = :p AND #at < :cut", {":cut": N(98)}, IndexName="by_at", ExpressionAttributeNames={"#at": "at"}
    )
    assert [item["sk"] for item in page["Items"]] == [N(5), N(4), N(3)]
    assert set(page["Items"][0]) == {"pk", "sk", "at", "note"}
    full = query(backend, IndexName="by_at", Select="ALL_ATTRIBUTES", Limit=1)
    assert "other" in full["Items"][0]


def scan(backend: DynamoDBBackend, **params) -> dict:
    return backend.scan(CTX, {"TableName": "things", **params})


def test_scan_pages_segments_and_filters(backend: DynamoDBBackend) -> None:
    create(backend, sort=None)
    for i in range(40):
        put(backend, {"pk": S(f"k{i}"), "n": N(i)})
    seen, start = [], None
    while True:
        page = scan(backend, Limit=7, **({"ExclusiveStartKey": start} if start else {}))
        seen += [item["pk"]["S"] for item in page["Items"]]
        if not (start := page.get("LastEvaluatedKey")):
            break
    assert sorted(seen) == sorted(f"k{i}" for i in range(40))
    segments = [scan(backend, Segment=s, TotalSegments=3)["Items"] for s in range(3)]
    assert sorted(item["pk"]["S"] for items in segments for item in items) == sorted(seen)
    assert all(segments)
    filtered = scan(
        backend, FilterExpression="n >= :x", ExpressionAttributeValues={":x": N(35)}, ProjectionExpression="n"
    )
    assert sorted(int(item["n"]["N"]) for item in filtered["Items"]) == [35, 36, 37, 38, 39]
    assert filtered["ScannedCount"] == 40
    assert "less than parameter TotalSegments" in error_of(scan, backend, Segment=3, TotalSegments=3).message


def test_scan_pages_stop_at_one_megabyte(backend: DynamoDBBackend) -> None:
    create(backend, sort=None)
    for i in range(15):
        put(backend, {"pk": S(f"k{i:02}"), "blob": {"B": b"x" * 100_000}})
    first = scan(backend)
    assert first["Count"] == 11
    assert scan(backend, ExclusiveStartKey=first["LastEvaluatedKey"])["Count"] == 4


def test_batch_write_and_get(backend: DynamoDBBackend) -> None:
    create(backend)
    requests = [{"PutRequest": {"Item": {"pk": S("p"), "sk": N(i)}}} for i in range(20)]
    assert backend.batch_write_item(CTX, {"RequestItems": {"things": requests}}) == {"UnprocessedItems": {}}
    deletes = [{"DeleteRequest": {"Key": {"pk": S("p"), "sk": N(i)}}} for i in range(5)]
    backend.batch_write_item(CTX, {"RequestItems": {"things": deletes}})
    assert query(backend, Select="COUNT")["Count"] == 15
    keys = [{"pk": S("p"), "sk": N(i)} for i in (0, 5, 6)]
    got = backend.batch_get_item(CTX, {"RequestItems": {"things": {"Keys": keys, "ProjectionExpression": "sk"}}})
    assert sorted(item["sk"]["N"] for item in got["Responses"]["things"]) == ["5", "6"]
    assert got["UnprocessedKeys"] == {}


def test_batch_limits_and_duplicates(backend: DynamoDBBackend) -> None:
    create(backend)
    too_many = [{"PutRequest": {"Item": {"pk": S("p"), "sk": N(i)}}} for i in range(26)]
    assert "Too many items" in error_of(backend.batch_write_item, CTX, {"RequestItems": {"things": too_many}}).message
    twice = [{"PutRequest": {"Item": {"pk": S("p"), "sk": N(1)}}}] * 2
    err = error_of(backend.batch_write_item, CTX, {"RequestItems": {"things": twice}})
    assert err.message == "Provided list of item keys contains duplicates"
    assert get(backend, {"pk": S("p"), "sk": N(1)}) is None  # the batch was rolled back
    keys = [{"pk": S("p"), "sk": N(1)}] * 2
    err = error_of(backend.batch_get_item, CTX, {"RequestItems": {"things": {"Keys": keys}}})
    assert err.message == "Provided list of item keys contains duplicates"


def test_data_persists_across_backend_objects(tmp_path: Path) -> None:
    first = DynamoDBBackend(tmp_path)
    create(first)
    put(first, {"pk": S("a"), "sk": N(1), "b": {"B": b"\x00"}})
    second = DynamoDBBackend(tmp_path)
    assert second.list_tables(CTX, {})["TableNames"] == ["things"]
    assert get(second, {"pk": S("a"), "sk": N(1)}) == {"pk": S("a"), "sk": N(1), "b": {"B": b"\x00"}}


def test_concurrent_atomic_counters(backend: DynamoDBBackend) -> None:
    create(backend)
    key = {"pk": S("counter"), "sk": N(0)}

    def bump() -> None:
        for _ in range(50):
            update_item(backend, key, "ADD hits :one", ExpressionAttributeValues={":one": N(1)})

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert get(backend, key)["hits"] == N(400)


def test_concurrent_conditional_puts_have_one_winner(backend: DynamoDBBackend) -> None:
    create(backend)
    outcomes: list[str] = []

    def claim(worker: int) -> None:
        try:
            put(
                backend,
                {"pk": S("lock"), "sk": N(0), "owner": N(worker)},
                ConditionExpression="attribute_not_exists(pk)",
            )
            outcomes.append("won")
        except AwsError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ConditionalCheckFailedException"] * 7 + ["won"]
