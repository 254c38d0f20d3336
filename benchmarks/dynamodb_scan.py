"""DynamoDB paging at scale: a full paginated Scan and a paginated Query of one large partition.

    python benchmarks/dynamodb_scan.py [--items 1000000]

Starts its own localcloud (free port, temp data dir), fills a table with ``--items`` small items (half of them in
one partition, the rest spread over 1,000 others) through BatchWriteItem, then pages through the whole table with
Scan and through the large partition with Query (1 MB pages, as boto3's paginators do) and prints ONE table:
seconds and items/s for each, and the server's peak RSS (VmHWM) before and after the reads. Paging is linear and
the server's memory is bounded by a page when the peak after stays close to the peak before.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from localcloud.process import LocalCloudProcess  # noqa: I001 - needs the sys.path line above

TABLE = "bench-scan"
PARTITIONS = 1000


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc")


def item(i: int, items: int) -> dict:
    # Even numbers go to the one large partition, in sort-key order i // 2; odd ones are spread over the rest.
    pk = "big" if i % 2 == 0 else f"p{i % PARTITIONS}"
    return {"pk": {"S": pk}, "sk": {"N": str(i // 2)}, "payload": {"S": f"item {i} of {items}".ljust(64, ".")}}


def fill(server: LocalCloudProcess, items: int) -> None:
    clients = [server.client("dynamodb") for _ in range(4)]

    def write(start: int) -> None:
        ddb = clients[(start // 25) % len(clients)]
        requests = [{"PutRequest": {"Item": item(i, items)}} for i in range(start, min(start + 25, items))]
        while requests:
            unprocessed = ddb.batch_write_item(RequestItems={TABLE: requests})["UnprocessedItems"]
            requests = unprocessed.get(TABLE, [])

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        list(pool.map(write, range(0, items, 25)))


def page_through(ddb, operation: str, **params) -> tuple[int, float]:
    """Items returned and seconds taken by a paginated Query or Scan."""
    count, start, t0 = 0, None, time.perf_counter()
    while True:
        page = getattr(ddb, operation)(**params, **({"ExclusiveStartKey": start} if start else {}))
        count += page["Count"]
        if not (start := page.get("LastEvaluatedKey")):
            return count, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=int(os.environ.get("BENCH_DYNAMODB_ITEMS", 1_000_000)))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="lc-bench-") as tmp, LocalCloudProcess(Path(tmp) / "data") as server:
        ddb = server.client("dynamodb")
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        t0 = time.perf_counter()
        fill(server, args.items)
        fill_seconds = time.perf_counter() - t0
        pid = server.proc.pid
        # Reset the peak to the current RSS (Linux: 5 > clear_refs), so that filling the table does not count.
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        rss_before = peak_rss_mb(pid)
        scanned, scan_seconds = page_through(ddb, "scan", TableName=TABLE)
        queried, query_seconds = page_through(
            ddb,
            "query",
            TableName=TABLE,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "big"}},
        )
        rss_after = peak_rss_mb(pid)

    assert scanned == args.items, (scanned, args.items)
    assert queried == (args.items + 1) // 2, (queried, args.items)
    print(f"localcloud DynamoDB paging, 1 MB pages through boto3 (table filled in {fill_seconds:.0f} s)")
    print(f"{'read':<26} {'items':>9} {'seconds':>9} {'items/s':>9} {'RSS before MB':>14} {'RSS peak after MB':>18}")
    print("-" * 90)
    for name, count, seconds in (
        ("Scan (whole table)", scanned, scan_seconds),
        ("Query (one partition)", queried, query_seconds),
    ):
        print(f"{name:<26} {count:>9} {seconds:>9.1f} {count / seconds:>9.0f} {rss_before:>14.1f} {rss_after:>18.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
