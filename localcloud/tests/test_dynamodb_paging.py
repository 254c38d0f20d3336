"""DynamoDB Query and Scan page in SQL: every item once, in key order, in time linear in the items and memory
bounded by the page, not by the table (a page must not load its partition or table, or skip to its start).

One server of its own (module scope), so that its peak RSS reflects only these reads.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from pathlib import Path

import pytest

from localcloud.core import RequestContext
from localcloud.process import LocalCloudProcess
from localcloud.services.dynamodb.backend import DynamoDBBackend

TABLE = "paging"
BIG = 20_000  # items in the one large partition, each with a 2 KB payload: a 40 MB partition
SMALL = 500  # items spread over 50 other partitions, so a Scan crosses partitions
PAYLOAD = "x" * 2048


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with LocalCloudProcess(tmp_path_factory.mktemp("paging") / "data") as process:
        ddb = process.client("dynamodb")
        for name in (TABLE, "tiny"):
            ddb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "N"},
                    {"AttributeName": "g", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": "by_g",
                        "KeySchema": [
                            {"AttributeName": "g", "KeyType": "HASH"},
                            {"AttributeName": "sk", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
            )
        items = [{"pk": {"S": "big"}, "sk": {"N": str(i)}, "g": {"S": "g"}, "data": {"S": PAYLOAD}} for i in range(BIG)]
        items += [{"pk": {"S": f"small-{i % 50}"}, "sk": {"N": str(-i)}} for i in range(SMALL)]
        _write(ddb, TABLE, items)
        tiny = [{"pk": {"S": "big"}, "sk": {"N": str(i)}, "g": {"S": "g"}, "data": {"S": PAYLOAD}} for i in range(200)]
        _write(ddb, "tiny", tiny)
        yield process


def _write(ddb, table: str, items: list[dict]) -> None:
    for at in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[at : at + 25]]
        response = ddb.batch_write_item(RequestItems={table: batch})
        assert not response["UnprocessedItems"]


def _pages(ddb, operation: str, start: dict | None = None, **params):
    """Each page of a paginated Query or Scan (from ``start``), with the seconds its call took."""
    while True:
        t0 = time.perf_counter()
        page = getattr(ddb, operation)(**params, **({"ExclusiveStartKey": start} if start else {}))
        yield page, time.perf_counter() - t0
        if not (start := page.get("LastEvaluatedKey")):
            return


def _query_big(**params) -> dict:
    return {
        "TableName": TABLE,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "big"}},
        **params,
    }


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_scan_and_query_return_every_item_once_in_order(server) -> None:
    ddb = server.client("dynamodb")
    scanned = [
        (item["pk"]["S"], int(item["sk"]["N"]))
        for page, _ in _pages(ddb, "scan", TableName=TABLE)
        for item in page["Items"]
    ]
    expected = {("big", i) for i in range(BIG)} | {(f"small-{i % 50}", -i) for i in range(SMALL)}
    assert len(scanned) == len(expected) == len(set(scanned))
    assert set(scanned) == expected
    forward = [
        int(item["sk"]["N"]) for page, _ in _pages(ddb, "query", **_query_big(Limit=700)) for item in page["Items"]
    ]
    assert forward == list(range(BIG))
    backward = [
        int(item["sk"]["N"])
        for page, _ in _pages(ddb, "query", **_query_big(Limit=900, ScanIndexForward=False, ProjectionExpression="sk"))
        for item in page["Items"]
    ]
    assert backward == list(reversed(range(BIG)))


def test_filtered_pages_count_what_they_read(server) -> None:
    ddb = server.client("dynamodb")
    pages = list(
        _pages(
            ddb,
            "query",
            **_query_big(
                Limit=400,
                FilterExpression="sk < :n",
                ExpressionAttributeValues={":p": {"S": "big"}, ":n": {"N": "1500"}},
                ProjectionExpression="sk",
            ),
        )
    )
    assert [page["ScannedCount"] for page, _ in pages] == [400] * 50
    assert [page["Count"] for page, _ in pages] == [400, 400, 400, 300] + [0] * 46
    assert "LastEvaluatedKey" not in pages[-1][0]
    # Without a Limit a page stops once it has read 1 MB, as AWS does, and says where it stopped.
    first = ddb.query(**_query_big(Select="COUNT"))
    assert 400 < first["ScannedCount"] < 600 and first["LastEvaluatedKey"]["sk"]["N"] == str(first["Count"] - 1)


def _page_seconds(ddb, operation: str, params: dict, start: dict | None = None, pages: int = 5) -> float:
    """The median seconds of ``pages`` consecutive pages from ``start``."""
    times = []
    for _, seconds in _pages(ddb, operation, start, **params):
        times.append(seconds)
        if len(times) == pages:
            break
    assert len(times) == pages
    return statistics.median(times)


def test_paging_time_does_not_grow_with_position_or_table_size(server) -> None:
    ddb = server.client("dynamodb")
    # Near the end of the big partition: a Query's last pages, and a Scan's (which goes on into small-*).
    late = {"pk": {"S": "big"}, "sk": {"N": str(BIG - 600)}}
    by_g = _query_big(
        Limit=100, IndexName="by_g", KeyConditionExpression="g = :p", ExpressionAttributeValues={":p": {"S": "g"}}
    )
    for operation, params in (
        ("scan", {"TableName": TABLE, "Limit": 100}),
        ("query", _query_big(Limit=100)),
        ("query", by_g),
    ):
        _page_seconds(ddb, operation, params, pages=2)  # warm up
        first = _page_seconds(ddb, operation, params)
        last = _page_seconds(ddb, operation, params, late | ({"g": {"S": "g"}} if "IndexName" in params else {}))
        # A page that skips to its start (OFFSET, or a filter in Python) costs more the further it is.
        assert last < 3 * first + 0.02, (operation, first, last)
        tiny = _page_seconds(ddb, operation, params | {"TableName": "tiny"}, pages=1)
        # A page that loads its whole table or partition costs more the larger that is (here 100x).
        assert first < 3 * tiny + 0.02, (operation, first, tiny)


def test_paging_memory_is_bounded_by_the_page(server) -> None:
    ddb = server.client("dynamodb")
    pid = server.proc.pid
    # Writing 5 to clear_refs resets the peak to the current RSS, so the filling of the table does not count.
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = _peak_rss_kb(pid)
    count = sum(page["Count"] for page, _ in _pages(ddb, "scan", TableName=TABLE))
    count += sum(page["Count"] for page, _ in _pages(ddb, "query", **_query_big()))
    growth_mb = (_peak_rss_kb(pid) - before) / 1024
    assert count == 2 * BIG + SMALL
    table_mb = BIG * len(PAYLOAD) / 1024 / 1024
    print(f"peak RSS growth {growth_mb:.1f} MB paging through a {table_mb:.0f} MB table twice")
    assert growth_mb < table_mb / 4, (growth_mb, table_mb)


def test_a_data_dir_from_before_the_order_column_is_migrated_on_open(tmp_path: Path) -> None:
    ctx = RequestContext()
    backend = DynamoDBBackend(tmp_path)
    backend.create_table(
        ctx,
        {
            "TableName": "old",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    numbers = ["10", "-2.5", "0", "3", "-100", "0.25", "1e3"]
    for number in numbers:
        backend.put_item(ctx, {"TableName": "old", "Item": {"pk": {"S": "p"}, "sk": {"N": number}}})
    backend.close()
    # The schema as it was before keyed paging: no ``sko`` column, no index_entries, user_version 0.
    with sqlite3.connect(tmp_path / "dynamodb.sqlite") as db:
        db.execute("DROP INDEX items_order")
        db.execute("ALTER TABLE items DROP COLUMN sko")
        db.execute("DROP TABLE index_entries")
        db.execute("PRAGMA user_version = 0")
    backend = DynamoDBBackend(tmp_path)
    try:
        request = {
            "TableName": "old",
            "KeyConditionExpression": "pk = :p AND sk > :low",
            "ExpressionAttributeValues": {":p": {"S": "p"}, ":low": {"N": "-50"}},
            "Limit": 2,
        }
        seen, start = [], None
        while True:
            page = backend.query(ctx, request | ({"ExclusiveStartKey": start} if start else {}))
            seen += [item["sk"]["N"] for item in page["Items"]]
            if not (start := page.get("LastEvaluatedKey")):
                break
        assert seen == ["-2.5", "0", "0.25", "3", "10", "1000"]
    finally:
        backend.close()


def test_index_queries_and_scans_page_by_the_index_key(tmp_path: Path) -> None:
    ctx = RequestContext()
    backend = DynamoDBBackend(tmp_path)
    definitions = [("pk", "S"), ("sk", "N"), ("owner", "S"), ("at", "N"), ("rank", "N")]
    backend.create_table(
        ctx,
        {
            "TableName": "tix",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in definitions],
            "BillingMode": "PAY_PER_REQUEST",
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "by_owner",
                    "KeySchema": [
                        {"AttributeName": "owner", "KeyType": "HASH"},
                        {"AttributeName": "at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            "LocalSecondaryIndexes": [
                {
                    "IndexName": "by_rank",
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "rank", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        },
    )

    def put(item: dict) -> None:
        backend.put_item(ctx, {"TableName": "tix", "Item": item})

    for i in range(60):
        # Index sort keys repeat (at = i // 3), so the table's key must break ties, in its own order.
        item = {"pk": {"S": f"p{i % 2}"}, "sk": {"N": str(-i)}, "at": {"N": str(i // 3)}, "rank": {"N": str(60 - i)}}
        put(item | ({"owner": {"S": "ann"}} if i % 5 else {}) | {"data": {"S": "x"}})
    # Moving an item out of the index (no owner) and deleting another must remove their entries.
    put({"pk": {"S": "p0"}, "sk": {"N": "-2"}, "at": {"N": "0"}})
    backend.delete_item(ctx, {"TableName": "tix", "Key": {"pk": {"S": "p1"}, "sk": {"N": "-1"}}})

    def pages(operation: str, request: dict) -> list[dict]:
        items, start = [], None
        while True:
            page = getattr(backend, operation)(ctx, request | ({"ExclusiveStartKey": start} if start else {}))
            items += page["Items"]
            if not (start := page.get("LastEvaluatedKey")):
                return items

    owned = [i for i in range(60) if i % 5 and i not in (1, 2)]
    expected = sorted(owned, key=lambda i: (i // 3, f"p{i % 2}", -i))
    by_owner = pages(
        "query",
        {
            "TableName": "tix",
            "IndexName": "by_owner",
            "KeyConditionExpression": "#o = :o AND #a >= :a",
            "ExpressionAttributeNames": {"#o": "owner", "#a": "at"},
            "ExpressionAttributeValues": {":o": {"S": "ann"}, ":a": {"N": "0"}},
            "Limit": 4,
        },
    )
    assert [int(item["sk"]["N"]) for item in by_owner] == [-i for i in expected]
    assert all(set(item) == {"pk", "sk", "owner", "at"} for item in by_owner)  # KEYS_ONLY
    scanned = pages("scan", {"TableName": "tix", "IndexName": "by_owner", "Limit": 7})
    assert [int(item["sk"]["N"]) for item in scanned] == [-i for i in expected]
    by_rank = pages(
        "query",
        {
            "TableName": "tix",
            "IndexName": "by_rank",
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "p1"}},
            "ScanIndexForward": False,
            "Limit": 6,
        },
    )
    odd = [i for i in range(60) if i % 2 and i != 1]
    assert [int(item["rank"]["N"]) for item in by_rank] == sorted((60 - i for i in odd), reverse=True)
    assert all("data" in item for item in by_rank)
    backend.close()
