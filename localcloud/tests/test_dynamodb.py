"""boto3 conformance of localcloud's DynamoDB against the live server: tables, items, expressions, indexes,
pagination, batches and the exact error codes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import pytest
from boto3.dynamodb.conditions import Attr, Key
from boto3.dynamodb.types import Binary
from botocore.exceptions import ClientError


def _name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def _message(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Message"]


def _table(ddb, sort: tuple[str, str] | None = ("sk", "N"), **extra) -> str:
    name = _name()
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    definitions = [{"AttributeName": "pk", "AttributeType": "S"}]
    if sort:
        keys.append({"AttributeName": sort[0], "KeyType": "RANGE"})
        definitions.append({"AttributeName": sort[0], "AttributeType": sort[1]})
    definitions += extra.pop("definitions", [])
    ddb.create_table(
        TableName=name, KeySchema=keys, AttributeDefinitions=definitions, BillingMode="PAY_PER_REQUEST", **extra
    )
    return name


# -- tables ------------------------------------------------------------------------------------------
def test_table_lifecycle(ddb):
    name = _name()
    created = ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 3},
    )["TableDescription"]
    assert created["TableStatus"] == "ACTIVE"
    assert created["TableArn"] == f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}"
    assert created["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert isinstance(created["CreationDateTime"], datetime)
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    described = ddb.describe_table(TableName=name)["Table"]
    assert (described["TableId"], described["ItemCount"], described["TableSizeBytes"]) == (created["TableId"], 0, 0)
    assert name in ddb.list_tables()["TableNames"]
    assert ddb.delete_table(TableName=name)["TableDescription"]["TableStatus"] == "DELETING"
    with pytest.raises(ClientError) as exc:
        ddb.describe_table(TableName=name)
    assert _code(exc) == "ResourceNotFoundException"
    assert name not in ddb.list_tables()["TableNames"]


def test_create_existing_table_is_resource_in_use(ddb):
    name = _table(ddb)
    with pytest.raises(ClientError) as exc:
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    assert _code(exc) == "ResourceInUseException"


def test_create_table_validation(ddb):
    with pytest.raises(ClientError) as exc:
        ddb.create_table(
            TableName=_name(),
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "other", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    assert _code(exc) == "ValidationException"


def test_missing_table_is_resource_not_found(ddb):
    for call in (
        lambda: ddb.delete_table(TableName=_name()),
        lambda: ddb.put_item(TableName=_name(), Item={"pk": {"S": "a"}}),
        lambda: ddb.query(
            TableName=_name(), KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}}
        ),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == "ResourceNotFoundException"


def test_list_tables_paginates(ddb):
    names = sorted(_table(ddb) for _ in range(3))
    listed, start = [], None
    while True:
        page = ddb.list_tables(Limit=2, **({"ExclusiveStartTableName": start} if start else {}))
        listed += page["TableNames"]
        if not (start := page.get("LastEvaluatedTableName")):
            break
    assert [n for n in listed if n in names] == names
    assert listed == sorted(listed)


def test_tables_are_scoped_per_region(localcloud, ddb):
    name = _table(localcloud.client("dynamodb", region="eu-west-1"))
    with pytest.raises(ClientError) as exc:
        ddb.describe_table(TableName=name)
    assert _code(exc) == "ResourceNotFoundException"
    described = localcloud.client("dynamodb", region="eu-west-1").describe_table(TableName=name)["Table"]
    assert described["TableArn"].startswith("arn:aws:dynamodb:eu-west-1:")


# -- items -------------------------------------------------------------------------------------------
def test_every_type_round_trips_through_the_client(ddb):
    name = _table(ddb)
    item = {
        "pk": {"S": "types"},
        "sk": {"N": "1"},
        "s": {"S": "héllo"},
        "empty": {"S": ""},
        "n": {"N": "-12.50"},
        "b": {"B": b"\x00\xffbytes"},
        "yes": {"BOOL": True},
        "no": {"BOOL": False},
        "nul": {"NULL": True},
        "m": {"M": {"deep": {"M": {"x": {"N": "1"}}}, "l": {"L": [{"S": "a"}]}}},
        "l": {"L": [{"N": "1"}, {"S": "two"}, {"NULL": True}, {"B": b"\x01"}]},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [b"\x01", b"\x02"]},
    }
    ddb.put_item(TableName=name, Item=item)
    got = ddb.get_item(TableName=name, Key={"pk": {"S": "types"}, "sk": {"N": "1"}})["Item"]
    for attribute in ("ss", "ns", "bs"):
        kind = next(iter(item[attribute]))
        assert sorted(got.pop(attribute)[kind]) == sorted(item.pop(attribute)[kind])
    assert got == item | {"n": {"N": "-12.5"}}


def test_resource_layer_round_trips_python_types(localcloud, ddb):
    table = localcloud.resource("dynamodb").Table(_table(ddb))
    item = {
        "pk": "py",
        "sk": 1,
        "n": Decimal("3.14"),
        "blob": Binary(b"\x00\x01"),
        "flags": {"a", "b"},
        "nested": {"list": [1, "x", None, True], "map": {"k": Decimal(2)}},
    }
    table.put_item(Item=item)
    assert table.get_item(Key={"pk": "py", "sk": 1})["Item"] == item


def test_get_missing_item_has_no_item_key(ddb):
    name = _table(ddb)
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "nope"}, "sk": {"N": "1"}})


def test_key_validation_errors(ddb):
    name = _table(ddb)
    bad_calls = [
        lambda: ddb.put_item(TableName=name, Item={"pk": {"S": "a"}}),  # missing sort key
        lambda: ddb.put_item(TableName=name, Item={"pk": {"N": "1"}, "sk": {"N": "1"}}),  # wrong key type
        lambda: ddb.get_item(TableName=name, Key={"pk": {"S": "a"}, "sk": {"N": "1"}, "x": {"S": "y"}}),
        lambda: ddb.get_item(TableName=name, Key={"pk": {"S": "a"}}),
        lambda: ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "big": {"S": "x" * 410_000}}),
        lambda: ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "ss": {"SS": []}}),
        lambda: ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "sk": {"N": "x"}}),
    ]
    for call in bad_calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == "ValidationException"


def test_conditional_put_fails_with_conditional_check_failed(ddb):
    name = _table(ddb)
    item = {"pk": {"S": "once"}, "sk": {"N": "1"}, "v": {"N": "1"}}
    ddb.put_item(TableName=name, Item=item, ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(ClientError) as exc:
        ddb.put_item(
            TableName=name,
            Item=item | {"v": {"N": "2"}},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert _code(exc) == "ConditionalCheckFailedException"
    assert _message(exc) == "The conditional request failed"
    assert exc.value.response["Item"] == item
    assert isinstance(exc.value, ddb.exceptions.ConditionalCheckFailedException)
    assert ddb.get_item(TableName=name, Key={"pk": {"S": "once"}, "sk": {"N": "1"}})["Item"]["v"] == {"N": "1"}


def test_put_and_delete_return_old_values(ddb):
    name = _table(ddb)
    key = {"pk": {"S": "k"}, "sk": {"N": "1"}}
    assert "Attributes" not in ddb.put_item(TableName=name, Item=key | {"v": {"S": "a"}}, ReturnValues="ALL_OLD")
    old = ddb.put_item(TableName=name, Item=key | {"v": {"S": "b"}}, ReturnValues="ALL_OLD")["Attributes"]
    assert old == key | {"v": {"S": "a"}}
    with pytest.raises(ClientError) as exc:
        ddb.delete_item(
            TableName=name, Key=key, ConditionExpression="v = :a", ExpressionAttributeValues={":a": {"S": "a"}}
        )
    assert _code(exc) == "ConditionalCheckFailedException"
    assert ddb.delete_item(TableName=name, Key=key, ReturnValues="ALL_OLD")["Attributes"] == key | {"v": {"S": "b"}}
    assert "Item" not in ddb.get_item(TableName=name, Key=key)


def test_update_item_expressions(ddb):
    name = _table(ddb)
    key = {"pk": {"S": "u"}, "sk": {"N": "1"}}
    new = ddb.update_item(
        TableName=name,
        Key=key,
        UpdateExpression="SET #c = if_not_exists(#c, :zero) + :one, l = list_append(if_not_exists(l, :empty), :l), "
        "m = :m ADD tags :tags",
        ExpressionAttributeNames={"#c": "count"},
        ExpressionAttributeValues={
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":empty": {"L": []},
            ":l": {"L": [{"S": "a"}]},
            ":m": {"M": {"x": {"L": [{"N": "1"}, {"N": "2"}]}}},
            ":tags": {"SS": ["red", "blue"]},
        },
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert new["count"] == {"N": "1"} and new["l"] == {"L": [{"S": "a"}]}
    updated = ddb.update_item(
        TableName=name,
        Key=key,
        UpdateExpression="SET m.x[1] = :nine, gone = :nine REMOVE l DELETE tags :red",
        ExpressionAttributeValues={":nine": {"N": "9"}, ":red": {"SS": ["red"]}},
        ReturnValues="UPDATED_NEW",
    )["Attributes"]
    assert updated == {"m": {"M": {"x": {"L": [{"N": "9"}]}}}, "gone": {"N": "9"}, "tags": {"SS": ["blue"]}}
    item = ddb.get_item(TableName=name, Key=key)["Item"]
    assert "l" not in item and item["m"] == {"M": {"x": {"L": [{"N": "1"}, {"N": "9"}]}}}


def test_update_item_errors(ddb):
    name = _table(ddb)
    key = {"pk": {"S": "u"}, "sk": {"N": "1"}}
    cases = [
        ({"UpdateExpression": "SET pk = :v", "ExpressionAttributeValues": {":v": {"S": "x"}}}, "part of the key"),
        ({"UpdateExpression": "SET a = :v"}, "attribute value: :v"),
        (
            {"UpdateExpression": "SET a = :v", "ExpressionAttributeValues": {":v": {"S": "x"}, ":w": {"S": "y"}}},
            "unused",
        ),
        ({"UpdateExpression": "SET #a = :v", "ExpressionAttributeValues": {":v": {"S": "x"}}}, "attribute name: #a"),
        ({"UpdateExpression": "SET a = = :v", "ExpressionAttributeValues": {":v": {"S": "x"}}}, "Syntax error"),
        ({"UpdateExpression": "SET a = b + :v", "ExpressionAttributeValues": {":v": {"N": "1"}}}, "does not exist"),
        (
            {
                "UpdateExpression": "SET a = :v",
                "ConditionExpression": "size(a) >",
                "ExpressionAttributeValues": {":v": {"S": "x"}},
            },
            "Syntax error",
        ),
    ]
    for params, message in cases:
        with pytest.raises(ClientError) as exc:
            ddb.update_item(TableName=name, Key=key, **params)
        assert _code(exc) == "ValidationException"
        assert message in _message(exc)


def test_legacy_parameters_are_validation_errors(ddb):
    name = _table(ddb)
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "sk": {"N": "1"}}, Expected={"pk": {"Exists": False}})
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ddb.scan(TableName=name, ScanFilter={"pk": {"ComparisonOperator": "NOT_NULL"}})
    assert _code(exc) == "ValidationException"


# -- query and scan ----------------------------------------------------------------------------------
def _fill(ddb, name: str, count: int) -> None:
    for i in range(count):
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"N": str(i)}, "even": {"BOOL": i % 2 == 0}})


def test_query_conditions_order_and_count(ddb):
    name = _table(ddb)
    _fill(ddb, name, 12)
    result = ddb.query(
        TableName=name,
        KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi",
        FilterExpression="even = :t",
        ExpressionAttributeValues={":p": {"S": "p"}, ":lo": {"N": "2"}, ":hi": {"N": "10"}, ":t": {"BOOL": True}},
        ScanIndexForward=False,
    )
    assert [item["sk"]["N"] for item in result["Items"]] == ["10", "8", "6", "4", "2"]
    assert (result["Count"], result["ScannedCount"]) == (5, 9)
    count = ddb.query(
        TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}}, Select="COUNT"
    )
    assert count["Count"] == 12 and "Items" not in count
    projected = ddb.query(
        TableName=name,
        KeyConditionExpression="pk = :p AND sk < :two",
        ExpressionAttributeValues={":p": {"S": "p"}, ":two": {"N": "2"}},
        ProjectionExpression="sk",
    )
    assert projected["Items"] == [{"sk": {"N": "0"}}, {"sk": {"N": "1"}}]


def test_query_paginator_with_limit(ddb):
    name = _table(ddb)
    _fill(ddb, name, 10)
    pages = ddb.get_paginator("query").paginate(
        TableName=name,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
        PaginationConfig={"PageSize": 3},
    )
    assert [item["sk"]["N"] for page in pages for item in page["Items"]] == [str(i) for i in range(10)]


def test_query_with_resource_conditions(localcloud, ddb):
    table = localcloud.resource("dynamodb").Table(_table(ddb, sort=("sk", "S")))
    for sk in ("order#1", "order#2", "invoice#1"):
        table.put_item(Item={"pk": "cust", "sk": sk, "total": Decimal(len(sk))})
    result = table.query(KeyConditionExpression=Key("pk").eq("cust") & Key("sk").begins_with("order#"))
    assert [item["sk"] for item in result["Items"]] == ["order#1", "order#2"]
    filtered = table.query(KeyConditionExpression=Key("pk").eq("cust"), FilterExpression=Attr("total").gt(7))
    assert [item["sk"] for item in filtered["Items"]] == ["invoice#1"]


def test_query_key_condition_errors(ddb):
    name = _table(ddb)
    with pytest.raises(ClientError) as exc:
        ddb.query(TableName=name, KeyConditionExpression="sk = :s", ExpressionAttributeValues={":s": {"N": "1"}})
    assert _code(exc) == "ValidationException"
    assert "missed key schema element: pk" in _message(exc)
    with pytest.raises(ClientError) as exc:
        ddb.query(TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"N": "1"}})
    assert _code(exc) == "ValidationException"


def test_gsi_query_is_sparse_and_pages(ddb):
    name = _table(
        ddb,
        definitions=[{"AttributeName": "status", "AttributeType": "S"}, {"AttributeName": "ts", "AttributeType": "N"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_status",
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "ts", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    for i in range(7):
        item = {"pk": {"S": f"job{i}"}, "sk": {"N": "0"}, "ts": {"N": str(100 - i)}}
        if i != 6:
            item["status"] = {"S": "open" if i % 2 else "done"}
        ddb.put_item(TableName=name, Item=item)
    params = {
        "TableName": name,
        "IndexName": "by_status",
        "KeyConditionExpression": "#s = :open",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":open": {"S": "open"}},
        "Limit": 2,
    }
    first = ddb.query(**params)
    assert [item["pk"]["S"] for item in first["Items"]] == ["job5", "job3"]
    assert set(first["LastEvaluatedKey"]) == {"pk", "sk", "status", "ts"}
    second = ddb.query(**params, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert [item["pk"]["S"] for item in second["Items"]] == ["job1"]
    assert "LastEvaluatedKey" not in second
    scanned = ddb.scan(TableName=name, IndexName="by_status")
    assert scanned["Count"] == 6  # job6 has no status
    index = ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]
    assert (index["IndexName"], index["IndexStatus"], index["ItemCount"]) == ("by_status", "ACTIVE", 6)
    assert index["IndexArn"].endswith(f"table/{name}/index/by_status")
    with pytest.raises(ClientError) as exc:
        ddb.query(**params | {"IndexName": "nope"})
    assert _code(exc) == "ValidationException"


def test_scan_pagination_returns_every_item_once(ddb):
    name = _table(ddb, sort=None)
    for i in range(53):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"item-{i}"}, "n": {"N": str(i)}})
    seen, start, pages = [], None, 0
    while True:
        page = ddb.scan(TableName=name, Limit=10, **({"ExclusiveStartKey": start} if start else {}))
        seen += [item["pk"]["S"] for item in page["Items"]]
        pages += 1
        if not (start := page.get("LastEvaluatedKey")):
            break
    assert sorted(seen) == sorted(f"item-{i}" for i in range(53))
    assert pages == 6
    paginated = ddb.get_paginator("scan").paginate(TableName=name, PaginationConfig={"PageSize": 7})
    assert sorted(item["pk"]["S"] for page in paginated for item in page["Items"]) == sorted(seen)


def test_parallel_scan_segments_split_the_table(ddb):
    name = _table(ddb, sort=None)
    for i in range(30):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"s{i}"}})
    segments = [ddb.scan(TableName=name, Segment=s, TotalSegments=4)["Items"] for s in range(4)]
    keys = [item["pk"]["S"] for items in segments for item in items]
    assert sorted(keys) == sorted(f"s{i}" for i in range(30))


def test_scan_filter_and_projection(ddb):
    name = _table(ddb, sort=None)
    for i in range(10):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"f{i}"}, "n": {"N": str(i)}, "tags": {"SS": ["x", f"t{i}"]}})
    result = ddb.scan(
        TableName=name,
        FilterExpression="n IN (:a, :b) OR contains(tags, :t)",
        ProjectionExpression="pk, #n",
        ExpressionAttributeNames={"#n": "n"},
        ExpressionAttributeValues={":a": {"N": "1"}, ":b": {"N": "2"}, ":t": {"S": "t9"}},
    )
    assert sorted(item["n"]["N"] for item in result["Items"]) == ["1", "2", "9"]
    assert all(set(item) == {"pk", "n"} for item in result["Items"])


# -- batches -----------------------------------------------------------------------------------------
def test_batch_write_and_get(ddb):
    name = _table(ddb)
    puts = [{"PutRequest": {"Item": {"pk": {"S": "b"}, "sk": {"N": str(i)}, "v": {"S": f"v{i}"}}}} for i in range(25)]
    assert ddb.batch_write_item(RequestItems={name: puts})["UnprocessedItems"] == {}
    deletes = [{"DeleteRequest": {"Key": {"pk": {"S": "b"}, "sk": {"N": str(i)}}}} for i in range(20)]
    ddb.batch_write_item(RequestItems={name: deletes})
    keys = [{"pk": {"S": "b"}, "sk": {"N": str(i)}} for i in (0, 21, 22)]
    got = ddb.batch_get_item(RequestItems={name: {"Keys": keys, "ProjectionExpression": "v"}})
    assert sorted(item["v"]["S"] for item in got["Responses"][name]) == ["v21", "v22"]
    assert got["UnprocessedKeys"] == {}


def test_batch_write_limits(ddb):
    name = _table(ddb)
    too_many = [{"PutRequest": {"Item": {"pk": {"S": "b"}, "sk": {"N": str(i)}}}} for i in range(26)]
    with pytest.raises(ClientError) as exc:
        ddb.batch_write_item(RequestItems={name: too_many})
    assert _code(exc) == "ValidationException"
    duplicated = [{"PutRequest": {"Item": {"pk": {"S": "b"}, "sk": {"N": "1"}}}}] * 2
    with pytest.raises(ClientError) as exc:
        ddb.batch_write_item(RequestItems={name: duplicated})
    assert _message(exc) == "Provided list of item keys contains duplicates"


def test_resource_batch_writer(localcloud, ddb):
    table = localcloud.resource("dynamodb").Table(_table(ddb))
    with table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
        for i in range(60):
            batch.put_item(Item={"pk": "bw", "sk": i, "payload": "x" * 100})
        batch.put_item(Item={"pk": "bw", "sk": 0, "payload": "last write wins"})
        batch.delete_item(Key={"pk": "bw", "sk": 59})
    items = table.query(KeyConditionExpression=Key("pk").eq("bw"))["Items"]
    assert len(items) == 59
    assert items[0]["payload"] == "last write wins"


def test_airflow_dynamodb_hook_write_batch_data(localcloud, ddb, monkeypatch):
    hook_module = pytest.importorskip("airflow.providers.amazon.aws.hooks.dynamodb")
    name = _table(ddb, sort=None)
    for var, value in {
        "AWS_ACCESS_KEY_ID": localcloud.access_key,
        "AWS_SECRET_ACCESS_KEY": localcloud.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": localcloud.endpoint,
    }.items():
        monkeypatch.setenv(var, value)
    hook = hook_module.DynamoDBHook(aws_conn_id=None, table_name=name, table_keys=["pk"], region_name="us-east-1")
    assert hook.write_batch_data([{"pk": f"row{i}", "n": i} for i in range(40)])
    assert ddb.scan(TableName=name, Select="COUNT")["Count"] == 40
