"""The tenant extraction pieces: the Glue script's validation, masking and read-only replica, and the request items'
state changes in DynamoDB (localcloud)."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import sqlite3

import pyarrow.parquet as pq
import pytest

from include.ops.tenants import glue_extract, masking, replica, requests
from include.ops.tenants.glue_extract import ExtractionError, validate_request

MASTER = "development-master-key-for-tests-0123456789"
ACME_KEY = bytes.fromhex(masking.tenant_key(MASTER, "acme"))
GLOBEX_KEY = bytes.fromhex(masking.tenant_key(MASTER, "globex"))


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
    assert glue_extract.RULES[rule](ACME_KEY)(value) == expected


def test_hash_is_an_hmac_under_the_tenants_key():
    acme, globex = glue_extract.RULES["hash"](ACME_KEY), glue_extract.RULES["hash"](GLOBEX_KEY)
    assert acme("ada@x") == acme("ada@x") == hmac.new(ACME_KEY, b"ada@x", hashlib.sha256).hexdigest()
    assert acme("ada@x") != globex("ada@x") and "ada" not in acme("ada@x") and len(acme("ada@x")) == 64
    with pytest.raises(ExtractionError, match="--masking_secret"):
        glue_extract.RULES["hash"](b"")


def test_tenant_keys_differ_across_tenants_and_master_keys():
    assert masking.tenant_key(MASTER, "acme") == masking.tenant_key(MASTER, "acme")
    keys = {masking.tenant_key(m, t) for m in (MASTER, MASTER[::-1]) for t in ("acme", "globex")}
    assert len(keys) == 4 and all(len(k) == 64 and MASTER not in k for k in keys)
    with pytest.raises(ValueError, match=masking.MASTER_KEY_VARIABLE):
        masking.tenant_key("short", "acme")


def test_a_missing_master_key_names_the_variable_and_is_generated_only_when_allowed():
    store: dict[str, str] = {}

    def get(key, default=None):
        return store.get(key, default)

    def set_(key, value, description=None):
        store[key] = value

    with pytest.raises(masking.MaskingKeyMissing, match=f"Airflow Variable {masking.MASTER_KEY_VARIABLE}"):
        masking.master_key(get)
    assert not store
    generated = masking.master_key(get, set_)  # development: generated once, then reused
    assert store == {masking.MASTER_KEY_VARIABLE: generated} and len(generated) >= masking.MIN_MASTER_CHARS
    assert masking.master_key(get, set_) == masking.master_key(get) == generated


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
        db,
        "customers",
        "acme",
        {"email": "email_domain", "iban": "last4", "name": "hash", "phone": "redact"},
        out,
        ACME_KEY,
    )
    table = pq.read_table(out).to_pylist()
    assert info["rows"] == len(table) == counts["acme"]["customers"]
    assert {r["tenant_id"] for r in table} == {"acme"}
    raw = {r[0]: r for r in db.execute("SELECT customer_id, name, email, iban FROM customers WHERE tenant_id='acme'")}
    for row in table:
        _, name, email, iban = raw[row["customer_id"]]
        assert row["email"] == "***@acme.example" and row["phone"] is None
        assert row["iban"].endswith(iban[-4:]) and iban[:-4] not in row["iban"]
        assert row["name"] == hmac.new(ACME_KEY, name.encode(), hashlib.sha256).hexdigest()
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


class _FilesS3:
    """Stands in for the job's S3 client: keeps what the job uploads, by key."""

    def __init__(self, root):
        self.root, self.objects = root, {}

    def upload_file(self, filename, bucket, key):
        shutil.copyfile(filename, self.root / key.replace("/", "_"))
        self.objects[key] = filename

    def put_object(self, Bucket, Key, Body, ContentType=None):  # noqa: N803 (boto3's names)
        self.objects[Key] = Body


def _run_job(replica_db, tmp_path, tenant: str, masking_rules: dict, key: bytes) -> tuple[dict, dict[str, list]]:
    """The Glue script's own entry point, as Glue calls it: the manifest, and each output table's rows."""
    path, _ = replica_db
    out = tmp_path / tenant
    out.mkdir(parents=True, exist_ok=True)
    args = glue_extract.parse_args(
        [
            *("--JOB_RUN_ID", f"jr-{tenant}", "--tenant", tenant, "--request_id", f"req-{tenant}"),
            *("--tables", json.dumps(sorted(masking_rules)), "--masking", json.dumps(masking_rules)),
            *("--replica", f"sqlite:///{path}", "--output", f"s3://tenant-{tenant}-exports/extractions/req-{tenant}/"),
            *("--masking_secret", key.hex()),
        ]
    )
    manifest = glue_extract.run(args, _FilesS3(out))
    rows = {
        t["table"]: pq.read_table(out / f"extractions_req-{tenant}_{t['table']}.parquet").to_pylist()
        for t in manifest["tables"]
    }
    return manifest, rows


def _tenant_readable(tenant: str, manifest: dict) -> set[str]:
    """Every string the receiving tenant can read or guess: its names, its role's, everything in its output."""
    from include.ops.tenants import provision

    known = {"", tenant, provision.bucket_name(tenant), provision.role_name(tenant), provision.external_id(tenant)}
    known |= {provision.EXTRACTIONS_PREFIX, json.dumps(manifest)}
    stack: list = [manifest]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend([*item.keys(), *item.values()])
        elif isinstance(item, list):
            stack.extend(item)
        elif item is not None:
            known.add(str(item))
    return known


def _dictionary_attack(pseudonyms: set[str], candidates: set[str], keys: set[str]) -> dict[str, str]:
    """Pseudonym -> value for every pseudonym the attacker reproduces: unkeyed SHA-256 of the value alone or salted
    (either side, with or without ':'), and HMAC-SHA256 under each string the tenant can read; any prefix length."""
    lengths = {len(p) for p in pseudonyms}
    found: dict[str, str] = {}
    for value in candidates:
        guesses = [hashlib.sha256(value.encode()).hexdigest()]
        for k in keys:
            for salted in (f"{k}:{value}", f"{k}{value}", f"{value}:{k}", f"{value}{k}"):
                guesses.append(hashlib.sha256(salted.encode()).hexdigest())
            guesses.append(hmac.new(k.encode(), value.encode(), hashlib.sha256).hexdigest())
        for guess in guesses:
            for n in lengths:
                if guess[:n] in pseudonyms:
                    found[guess[:n]] = value
    return found


def test_a_dictionary_attack_on_the_hashed_columns_recovers_nothing(replica_db, tmp_path):
    """The tenant knows each hashed column is low-entropy (ids below 10000; names from a short list) and tries every
    candidate with every unkeyed or tenant-readable-keyed hash: nothing comes back. The same attack with the job's
    key (which the tenant never holds) recovers every value, so the dictionary is complete."""
    path, _ = replica_db
    rules = {"customers": {"customer_id": "hash", "name": "hash"}, "orders": {"customer_id": "hash"}}
    manifest, rows = _run_job(replica_db, tmp_path, "acme", rules, ACME_KEY)
    pseudonyms = {r[c] for t, cols in rules.items() for r in rows[t] for c in cols}
    assert pseudonyms and all(isinstance(p, str) for p in pseudonyms)
    candidates = {str(n) for n in range(10_000)} | {f"{f} {last}" for f in replica._FIRST for last in replica._LAST}
    with sqlite3.connect(path) as db:
        plain = {
            str(v) for r in db.execute("SELECT customer_id, name FROM customers WHERE tenant_id='acme'") for v in r
        }
    assert plain <= candidates  # every true value is in the attacker's dictionary

    assert _dictionary_attack(pseudonyms, candidates, _tenant_readable("acme", manifest)) == {}
    recovered = {p for p in pseudonyms if any(glue_extract.RULES["hash"](ACME_KEY)(v) == p for v in plain)}
    assert recovered == pseudonyms


def test_pseudonyms_join_within_a_tenant_and_differ_across_tenants_and_master_keys(replica_db, tmp_path):
    rules = {"customers": {"customer_id": "hash"}, "orders": {"customer_id": "hash"}}
    _, acme = _run_job(replica_db, tmp_path / "one", "acme", rules, ACME_KEY)
    _, again = _run_job(replica_db, tmp_path / "two", "acme", rules, ACME_KEY)
    _, globex = _run_job(replica_db, tmp_path / "three", "globex", rules, GLOBEX_KEY)
    other_master = bytes.fromhex(masking.tenant_key(MASTER[::-1], "acme"))
    _, rotated = _run_job(replica_db, tmp_path / "four", "acme", rules, other_master)
    ids = [r["customer_id"] for r in acme["customers"]]
    assert ids == [r["customer_id"] for r in again["customers"]]  # stable from one extraction to the next
    assert {o["customer_id"] for o in acme["orders"]} <= set(ids)  # orders still join their customers
    # customer ids 1..n exist in both tenants: equal values, unrelated pseudonyms
    assert not set(ids) & {r["customer_id"] for r in globex["customers"]}
    assert not set(ids) & {r["customer_id"] for r in rotated["customers"]}


def test_the_job_refuses_hash_without_a_key_and_never_echoes_a_bad_one(replica_db, tmp_path):
    with pytest.raises(ExtractionError, match="--masking_secret"):
        _run_job(replica_db, tmp_path, "acme", {"customers": {"name": "hash"}}, b"")
    path, _ = replica_db
    args = glue_extract.parse_args(
        ["--tenant", "acme", "--request_id", "r", "--tables", '["orders"]', "--replica", f"sqlite:///{path}"]
        + ["--output", "s3://tenant-acme-exports/extractions/r/", "--masking_secret", "not-hex-SECRETVALUE"]
    )
    with pytest.raises(ExtractionError, match="not a hex key") as err:
        glue_extract.run(args, _FilesS3(tmp_path))
    assert "SECRETVALUE" not in str(err.value)


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


@pytest.mark.parametrize("emulated", [True, False])
def test_the_dag_generates_a_key_only_against_an_emulator(monkeypatch, emulated):
    """Offline (aws_default has an endpoint_url) a fresh install gets a development key; against AWS a missing key
    fails the run with the Variable's name, and nothing is generated."""
    from airflow.sdk import Variable

    from include.ops.tenants import extraction

    store: dict[str, str] = {}
    monkeypatch.setattr(Variable, "get", staticmethod(lambda key, default=None: store.get(key, default)))
    monkeypatch.setattr(Variable, "set", staticmethod(lambda key, value, description=None: store.update({key: value})))
    extra = {"region_name": "us-east-1"} | ({"endpoint_url": "http://127.0.0.1:4566"} if emulated else {})
    monkeypatch.setenv("AIRFLOW_CONN_TENANT_MASKING_TEST", json.dumps({"conn_type": "aws", "extra": extra}))
    if emulated:
        key = extraction.masking_master_key("tenant_masking_test", may_generate=True)
        assert store == {masking.MASTER_KEY_VARIABLE: key}
        assert extraction.masking_master_key("tenant_masking_test") == key
    else:
        with pytest.raises(masking.MaskingKeyMissing, match=masking.MASTER_KEY_VARIABLE):
            extraction.masking_master_key("tenant_masking_test", may_generate=True)
        assert store == {}
    # Tasks that only read (scope) never generate, whatever the endpoint.
    store.clear()
    with pytest.raises(masking.MaskingKeyMissing):
        extraction.masking_master_key("tenant_masking_test")
