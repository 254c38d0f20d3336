"""Latency of localcloud through boto3: what one AWS call costs offline.

    python benchmarks/localcloud_overhead.py [--iterations 30]

Starts its own localcloud (free port, temp data dir), warms up, then prints ONE table of p50/p99 milliseconds for
S3 PutObject/GetObject at 4 KB and 4 MB and DynamoDB PutItem/GetItem. Client-side timing, so it includes
SigV4 signing, HTTP on loopback and (for S3) the file write/read under the data dir.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from localcloud.process import LocalCloudProcess  # noqa: I001 - needs the sys.path line above

KB = 1024
MB = 1024 * KB


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def measure(fn: Callable[[int], object], iterations: int, warmup: int = 3) -> list[float]:
    for i in range(warmup):
        fn(-1 - i)
    samples = []
    for i in range(iterations):
        t0 = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=int(os.environ.get("BENCH_ITERATIONS", 30)))
    args = parser.parse_args(argv)
    n = args.iterations

    with tempfile.TemporaryDirectory(prefix="lc-bench-") as tmp:
        server = LocalCloudProcess(Path(tmp) / "data").start()
        try:
            s3 = server.client("s3")
            ddb = server.client("dynamodb")
            s3.create_bucket(Bucket="bench")
            ddb.create_table(
                TableName="bench",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
            ddb.get_waiter("table_exists").wait(TableName="bench", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
            item = {"pk": {"S": ""}, "payload": {"S": "x" * 200}, "n": {"N": "42"}}

            rows: list[tuple[str, list[float]]] = []
            for label, size in (("4 KB", 4 * KB), ("4 MB", 4 * MB)):
                body = os.urandom(size)
                key = f"obj-{size}"
                rows.append(
                    (
                        f"S3 PutObject {label}",
                        measure(lambda i, k=key, b=body: s3.put_object(Bucket="bench", Key=k, Body=b), n),
                    )
                )
                rows.append(
                    (
                        f"S3 GetObject {label}",
                        measure(lambda i, k=key: s3.get_object(Bucket="bench", Key=k)["Body"].read(), n),
                    )
                )
            rows.append(
                (
                    "DynamoDB PutItem",
                    measure(lambda i: ddb.put_item(TableName="bench", Item={**item, "pk": {"S": f"k{i}"}}), n),
                )
            )
            rows.append(
                (
                    "DynamoDB GetItem",
                    measure(lambda i: ddb.get_item(TableName="bench", Key={"pk": {"S": f"k{max(i, 0)}"}}), n),
                )
            )
        finally:
            server.stop()

    print(f"localcloud overhead through boto3 ({n} iterations per row, client-side ms)")
    print(f"{'operation':<22} {'p50 ms':>9} {'p99 ms':>9}")
    print("-" * 42)
    for name, samples in rows:
        print(f"{name:<22} {percentile(samples, 50):>9.2f} {percentile(samples, 99):>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
