"""A sample multi-tenant operational database, standing in for the read-only replica the extraction jobs read.

Every table that tenants may extract carries ``tenant_id``; ``audit_events`` deliberately does not (it is shared, so
no tenant can extract it). Usage: ``python -m include.ops.tenants.replica build <path> --tenants acme,globex``.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

SCHEMA = """
CREATE TABLE customers (
    tenant_id TEXT NOT NULL, customer_id INTEGER NOT NULL, name TEXT, email TEXT, phone TEXT, iban TEXT,
    country TEXT, birth_date TEXT, PRIMARY KEY (tenant_id, customer_id));
CREATE TABLE orders (
    tenant_id TEXT NOT NULL, order_id INTEGER NOT NULL, customer_id INTEGER NOT NULL, amount REAL,
    status TEXT, ordered_at TEXT, PRIMARY KEY (tenant_id, order_id));
CREATE TABLE audit_events (event_id INTEGER PRIMARY KEY, actor TEXT, action TEXT, at TEXT);
"""
_FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
_LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Lee"]
_COUNTRIES = ["DE", "FR", "NL", "US", "CA", "GB", "ES", "IT"]


def build(
    path: str | Path, tenants: Sequence[str], customers: int = 40, orders_per_customer: int = 3, seed: int = 0
) -> dict[str, dict[str, int]]:
    """Create (or recreate) the database at ``path``; the row counts per tenant and table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    counts: dict[str, dict[str, int]] = {}
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)
        order_id = 0
        for tenant in tenants:
            n_orders = 0
            for cid in range(1, customers + 1):
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
                db.execute(
                    "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        tenant,
                        cid,
                        f"{first} {last}",
                        f"{first}.{last}{cid}@{tenant}.example".lower(),
                        f"+49 30 {rng.randrange(10**7, 10**8)}",
                        f"DE{rng.randrange(10, 99)}{rng.randrange(10**17, 10**18)}",
                        rng.choice(_COUNTRIES),
                        (datetime(1950, 1, 1) + timedelta(days=rng.randrange(0, 20000))).date().isoformat(),
                    ),
                )
                for _ in range(rng.randrange(0, 2 * orders_per_customer + 1)):
                    order_id += 1
                    n_orders += 1
                    db.execute(
                        "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            tenant,
                            order_id,
                            cid,
                            round(rng.uniform(5, 2500), 2),
                            rng.choice(["open", "shipped", "paid", "returned"]),
                            (start + timedelta(minutes=rng.randrange(0, 500_000))).isoformat(),
                        ),
                    )
            counts[tenant] = {"customers": customers, "orders": n_orders}
        db.executemany(
            "INSERT INTO audit_events (actor, action, at) VALUES (?, ?, ?)",
            [("system", "replica-built", start.isoformat())],
        )
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("path")
    b.add_argument("--tenants", default="acme,globex")
    b.add_argument("--customers", type=int, default=40)
    b.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = build(args.path, args.tenants.split(","), customers=args.customers, seed=args.seed)
    print(f"replica at {Path(args.path).resolve()}: {counts}")


if __name__ == "__main__":
    main()
