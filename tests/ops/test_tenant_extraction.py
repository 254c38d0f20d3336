"""The tenant extraction pieces: the Glue script's validation, masking and read-only replica, and the request items'
state changes in DynamoDB (localcloud)."""

from __future__ import annotations

import json
import sqlite3

import pyarrow.parquet as pq
import pytest

from include.ops.tenants import glue_extract, replica, requests
from include.ops.tenants.glue_extract import ExtractionError, validate_request


@pytest.fixture(scope="module")
def replica_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("replica") / "replica.db"
    counts = replica.build(path, ["acme", "globex"], customers=12)
    return path, counts


def test_validate_request_canonical_and_errors():
    tables, masking = validate_request("acme", ["customers", "orders"], {"customers": {"email": "email_domain"}})
    assert tables == ["customers", "orders"] and masking == {"customers": {"email": "email_domain"}}
    with pytest.raises(ExtractionError) as err:
        validate_request(
            "Acme!",
            ["customers", "customers", "x; DROP TABLE y"],
            {"orders": {"amount": "hash"}, "customers": {"email": "rot13", "tenant_id": "hash"}},
        )
    text = str(err.value)
    for expected in (
        "tenant 'Acme!'",
        "listed more than once",
        "invalid table names",
        "masking names tables that are not extracted: ['orders']",
        "unknown masking rule 'rot13'",
        "customers.tenant_id cannot be masked",
    ):
        assert expected in text
    with pytest.raises(ExtractionError, match="non-empty list"):
        validate_request("acme", [], {})


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ("redact", "secret", None),
        ("last4", "DE89370400440532013000", "******************3000"),
        ("last4", "12", "12"),
        ("email_domain", "ada@acme.example", "***@acme.example"),
        ("email_domain", "not-an-email", "***"),
        ("year", "1971-05-02", "1971"),
        ("year", "unknown", None),
        ("hash", None, None),
    ],
)
def test_masking_rules(rule, value, expected):
    assert glue_extract.RULES[rule]("acme")(value) == expected


def test_hash_is_stable_per_tenant_and_differs_across_tenants():
    acme, globex = glue_extract.RULES["hash"]("acme"), glue_extract.RULES["hash"]("globex")
    assert acme("ada@x") == acme("ada@x") != globex("ada@x")
    assert "ada" not in acme("ada@x") and len(acme("ada@x")) == 24


def test_replica_is_opened_read_only(replica_db):
    path, _ = replica_db
    db = glue_extract.open_replica(f"sqlite:///{path}")
    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
        db.execute("DELETE FROM customers")
    db.close()
    with pytest.raises(ExtractionError, match="only sqlite"):
        glue_extract.open_replica("postgresql://replica/db")
    with pytest.raises(ExtractionError, match="absolute path"):
        glue_extract.open_replica("sqlite:///replica.db")
    with pytest.raises(ExtractionError, match="no database file"):
        glue_extract.open_replica(f"sqlite:///{path}.missing")


def test_extract_table_filters_the_tenant_and_masks(replica_db, tmp_path):
    path, counts = replica_db
    db = glue_extract.open_replica(f"sqlite:///{path}")
    out = tmp_path / "customers.parquet"
    info = glue_extract.extract_table(
        db, "customers", "acme", {"email": "email_domain", "iban": "last4", "name": "hash", "phone": "redact"}, out
    )
    table = pq.read_table(out).to_pylist()
    assert info["rows"] == len(table) == counts["acme"]["customers"]
    assert {r["tenant_id"] for r in table} == {"acme"}
    raw = {r[0]: r for r in db.execute("SELECT customer_id, name, email, iban FROM customers WHERE tenant_id='acme'")}
    for row in table:
        _, name, email, iban = raw[row["customer_id"]]
        assert row["email"] == "***@acme.example" and row["phone"] is None
        assert row["iban"].endswith(iban[-4:]) and iban[:-4] not in row["iban"]
        assert row["name"] != name and len(row["name"]) == 24
        assert row["country"] and row["birth_date"]  # unmasked columns keep their values
    assert pq.read_schema(out).field("customer_id").type == "int64"
    # the unmasked amounts keep their type; the tenant's orders only
    orders = tmp_path / "orders.parquet"
    info = glue_extract.extract_table(db, "orders", "globex", {}, orders)
    assert info["rows"] == counts["globex"]["orders"] == pq.read_metadata(orders).num_rows
    assert str(pq.read_schema(orders).field("amount").type) == "double"


def test_extract_refuses_unknown_and_shared_tables(replica_db, tmp_path):
    path, _ = replica_db
    db = glue_extract.open_replica(f"sqlite:///{path}")
    with pytest.raises(ExtractionError, match="not in the replica"):
        glue_extract.extract_table(db, "payroll", "acme", {}, tmp_path / "x.parquet")
    with pytest.raises(ExtractionError, match="no tenant_id column"):
        glue_extract.extract_table(db, "audit_events", "acme", {}, tmp_path / "x.parquet")
    with pytest.raises(ExtractionError, match=r"masking names columns \['ssn'\]"):
        glue_extract.extract_table(db, "customers", "acme", {"ssn": "redact"}, tmp_path / "x.parquet")


def test_tenant_without_rows_gets_an_empty_file_with_columns(replica_db, tmp_path):
    path, _ = replica_db
    db = glue_extract.open_replica(f"sqlite:///{path}")
    out = tmp_path / "empty.parquet"
    assert glue_extract.extract_table(db, "orders", "initech", {}, out)["rows"] == 0
    assert pq.read_schema(out).names[:3] == ["tenant_id", "order_id", "customer_id"]


def test_request_lifecycle_is_conditional(ddb):
    table = "tenant-requests-unit"
    requests.ensure_table(ddb, table)
    requests.ensure_table(ddb, table)  # idempotent
    rid = requests.submit(ddb, table, "acme", ["customers"], {"customers": {"email": "hash"}}, request_id="r-1")
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        requests.submit(ddb, table, "acme", ["orders"], request_id="r-1")
    with pytest.raises(ExtractionError):
        requests.submit(ddb, table, "acme", ["customers"], {"customers": {"email": "nope"}})
    assert [r["request_id"] for r in requests.pending(ddb, table, "run-a", 10)] == [rid]

    assert requests.claim(ddb, table, rid, "run-a")
    assert requests.claim(ddb, table, rid, "run-a")  # the same run again (a rerun) keeps it
    assert not requests.claim(ddb, table, rid, "run-b")  # another run cannot take it
    assert requests.pending(ddb, table, "run-b", 10) == []
    assert [r["request_id"] for r in requests.pending(ddb, table, "run-a", 10)] == [rid]

    requests.finish(ddb, table, rid, "run-a", requests.FAILED, error="boom")
    assert requests.claim(ddb, table, rid, "run-a")  # a rerun of run-a retries its failed request
    requests.finish(ddb, table, rid, "run-a", requests.SUCCEEDED, output="s3://b/p/", rows={"customers": 3})
    item = requests.get(ddb, table, rid)
    assert item["status"] == "SUCCEEDED" and item["rows"] == {"customers": 3} and "error" not in item
    assert json.dumps(item)  # plain JSON for XCom
    assert requests.pending(ddb, table, "run-a", 10) == []
    assert not requests.claim(ddb, table, rid, "run-a")  # done: nothing takes it again
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        requests.finish(ddb, table, rid, "run-b", requests.FAILED, error="late")
