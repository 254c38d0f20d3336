"""e2e: tenant_data_extraction with dag.test() against localcloud: DynamoDB requests, STS per tenant, Glue jobs that
run as the tenant's role, Parquet in each tenant's bucket; and the cross-tenant attempts, which are denied."""

from __future__ import annotations

import hmac
import io
import json
import sqlite3
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from include.ops.tenants import masking, provision, replica, requests
from include.ops.tenants.extraction import job_name, tenant_session
from tests.conftest import assert_least_privilege, point_aws_default, running_localcloud
from tests.dags.conftest import task_states
from tests.ops.test_tenant_extraction import _dictionary_attack, _tenant_readable

pytestmark = pytest.mark.usefixtures("airflow_db")

ACCOUNT = "000000000000"
TABLE = "tenant-requests-e2e"
ARTIFACTS = "ops-tenants-e2e"
TENANTS = ("acme", "globex")
MASKING = {"customers": {"email": "email_domain", "iban": "last4", "name": "hash", "phone": "redact"}}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    yield from running_localcloud(tmp_path_factory.mktemp("tenants") / "data")


@pytest.fixture(scope="module")
def world(cloud, tmp_path_factory):
    """Two onboarded tenants, the replica, and four requests: two good ones, one for a tenant that was never
    onboarded, and one malformed item written by something other than ``requests.submit``."""
    db = tmp_path_factory.mktemp("replica") / "replica.db"
    counts = replica.build(db, [*TENANTS, "initech"], customers=15)
    s3, iam, ddb = cloud.client("s3"), cloud.client("iam"), cloud.client("dynamodb")
    s3.create_bucket(Bucket=ARTIFACTS)
    roles = {t: provision.ensure_tenant(iam, s3, t, ARTIFACTS, ACCOUNT)["role_arn"] for t in TENANTS}
    assert provision.ensure_tenant(iam, s3, "acme", ARTIFACTS, ACCOUNT)["role_arn"] == roles["acme"]  # idempotent
    requests.ensure_table(ddb, TABLE)
    ids = {
        "acme": requests.submit(ddb, TABLE, "acme", ["customers", "orders"], MASKING, request_id="req-acme"),
        "globex": requests.submit(ddb, TABLE, "globex", ["orders"], request_id="req-globex"),
        "initech": requests.submit(ddb, TABLE, "initech", ["orders"], request_id="req-initech"),
    }
    ddb.put_item(
        TableName=TABLE,
        Item={
            "request_id": {"S": "req-bad"},
            "tenant": {"S": "acme"},
            "tables": {"L": [{"S": "customers"}]},
            "masking": {"M": {"customers": {"M": {"ssn": {"S": "rot13"}}}}},
            "status": {"S": "PENDING"},
            "requested_at": {"S": "2025-01-01T00:00:00+00:00"},
        },
    )
    return {"replica": db, "counts": counts, "roles": roles, "ids": ids}


def _read_parquet(s3, bucket: str, key: str) -> list[dict]:
    return pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).to_pylist()


def _glue_runs(glue, tenant: str) -> list[dict]:
    try:
        return glue.get_job_runs(JobName=job_name(tenant))["JobRuns"]
    except glue.exceptions.EntityNotFoundException:
        return []


def test_extracts_each_tenant_into_its_own_bucket_and_reruns_duplicate_nothing(cloud, world, dagbag, monkeypatch):
    # The DAG runs as the ops family's least-privilege role, generated for this test's table and bucket.
    settings = {"requests_table": TABLE, "artifacts_bucket": ARTIFACTS}
    conn = point_aws_default(cloud, monkeypatch, family="ops", settings=settings)
    s3, ddb, glue = cloud.client("s3"), cloud.client("dynamodb"), cloud.client("glue")
    dag = dagbag.dags["tenant_data_extraction"]
    conf = {"requests_table": TABLE, "artifacts_bucket": ARTIFACTS, "replica_uri": f"sqlite:///{world['replica']}"}
    when = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    run = dag.test(logical_date=when, run_after=when, run_conf=conf)
    states = task_states(dag.dag_id, run.run_id)
    assert run.state == "failed", states  # initech's request failed, and the run says so

    items = {i: requests.get(ddb, TABLE, i) for i in ["req-acme", "req-globex", "req-initech", "req-bad"]}
    assert items["req-acme"]["status"] == items["req-globex"]["status"] == "SUCCEEDED"
    assert items["req-initech"]["status"] == "FAILED"
    assert (
        "tenant role check failed" in items["req-initech"]["error"] and "AccessDenied" in items["req-initech"]["error"]
    )
    assert items["req-bad"]["status"] == "FAILED" and "unknown masking rule 'rot13'" in items["req-bad"]["error"]

    counts = world["counts"]
    acme = items["req-acme"]
    assert acme["rows"] == {"customers": counts["acme"]["customers"], "orders": counts["acme"]["orders"]}
    assert acme["output"] == "s3://tenant-acme-exports/extractions/req-acme/"
    customers = _read_parquet(s3, "tenant-acme-exports", "extractions/req-acme/customers.parquet")
    with sqlite3.connect(world["replica"]) as db:
        raw = {r[0]: r[1:] for r in db.execute("SELECT customer_id, email, iban FROM customers WHERE tenant_id='acme'")}
    assert len(customers) == len(raw) and {c["tenant_id"] for c in customers} == {"acme"}
    for c in customers:
        email, iban = raw[c["customer_id"]]
        assert c["email"] == "***@acme.example" != email and c["phone"] is None and c["iban"][-4:] == iban[-4:]
    # A fresh install has no masking key: the run generated one into the Airflow Variable (localcloud is an emulator),
    # and acme's names are HMACs under acme's key derived from it.
    from airflow.models import Variable

    master = Variable.get(masking.MASTER_KEY_VARIABLE)
    acme_key = bytes.fromhex(masking.tenant_key(master, "acme"))
    with sqlite3.connect(world["replica"]) as db:
        names = dict(db.execute("SELECT customer_id, name FROM customers WHERE tenant_id='acme'"))
    assert all(
        c["name"] == hmac.new(acme_key, names[c["customer_id"]].encode(), "sha256").hexdigest() for c in customers
    )
    # acme, holding its bucket and its role, cannot reverse them by dictionary, and finds no key anywhere it can read.
    acme_manifest = json.loads(
        s3.get_object(Bucket="tenant-acme-exports", Key="extractions/req-acme/_manifest.json")["Body"].read()
    )
    candidates = {f"{first} {last}" for first in replica._FIRST for last in replica._LAST}
    assert set(names.values()) <= candidates
    readable = _tenant_readable("acme", acme_manifest) | {"req-acme", world["roles"]["acme"]}
    assert _dictionary_attack({c["name"] for c in customers}, candidates, readable) == {}
    acme_s3 = _tenant_s3(cloud, "acme")
    for o in acme_s3.list_objects_v2(Bucket="tenant-acme-exports", Prefix="extractions/").get("Contents", []):
        body = acme_s3.get_object(Bucket="tenant-acme-exports", Key=o["Key"])["Body"].read()
        assert acme_key.hex().encode() not in body and master.encode() not in body and acme_key not in body
    orders = _read_parquet(s3, "tenant-globex-exports", "extractions/req-globex/orders.parquet")
    assert len(orders) == counts["globex"]["orders"] and {o["tenant_id"] for o in orders} == {"globex"}
    manifest = json.loads(
        s3.get_object(Bucket="tenant-globex-exports", Key="extractions/req-globex/_manifest.json")["Body"].read()
    )
    assert manifest["job_run_id"] == items["req-globex"]["job_run_id"] and manifest["rows"] == len(orders)
    # Each job ran as its tenant's role.
    for tenant in TENANTS:
        (only,) = _glue_runs(glue, tenant)
        assert only["JobRunState"] == "SUCCEEDED"
        assert glue.get_job(JobName=job_name(tenant))["Job"]["Role"] == world["roles"][tenant]
    # Nothing of a tenant's lands in another tenant's bucket.
    for tenant, other in (("acme", "globex"), ("globex", "acme")):
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=f"tenant-{tenant}-exports").get("Contents", [])]
        assert keys and all(k.startswith(f"extractions/req-{tenant}/") for k in keys), keys
        assert not any(other in k for k in keys)

    # The same run again: the finished requests stay finished (no second Glue run, same files); the failed one is
    # retried and fails the same way.
    before = {k: o["ETag"] for k, o in _objects(s3).items()}
    again = dag.test(logical_date=when, run_after=when, run_conf=conf)
    assert again.run_id == run.run_id and again.state == "failed"
    assert [len(_glue_runs(glue, t)) for t in TENANTS] == [1, 1]
    assert {k: o["ETag"] for k, o in _objects(s3).items()} == before
    assert requests.get(ddb, TABLE, "req-acme") == items["req-acme"]
    assert requests.get(ddb, TABLE, "req-initech")["status"] == "FAILED"

    # A later run with new requests. globex asks for a table the replica does not have, so its Glue run fails and
    # the request carries Glue's error message.
    # acme's job was also edited by hand in the meantime: the operator puts the DAG's definition back.
    job = glue.get_job(JobName=job_name("acme"))["Job"]
    glue.update_job(
        JobName=job_name("acme"),
        JobUpdate={"Role": job["Role"], "Command": job["Command"], "MaxCapacity": job["MaxCapacity"], "Timeout": 5},
    )
    requests.submit(ddb, TABLE, "acme", ["orders"], request_id="req-acme-2")
    requests.submit(ddb, TABLE, "globex", ["payroll"], request_id="req-globex-2")
    later = datetime(2026, 1, 5, 9, 15, tzinfo=UTC)
    nxt = dag.test(logical_date=later, run_after=later, run_conf=conf)
    assert nxt.state == "failed", task_states(dag.dag_id, nxt.run_id)
    acme2 = requests.get(ddb, TABLE, "req-acme-2")
    assert acme2.get("rows") == {"orders": counts["acme"]["orders"]}, json.dumps(acme2)
    failed = requests.get(ddb, TABLE, "req-globex-2")
    assert failed["status"] == "FAILED" and "table 'payroll' is not in the replica" in failed["error"]
    assert [r["JobRunState"] for r in _glue_runs(glue, "globex")].count("FAILED") == 1
    assert requests.get(ddb, TABLE, "req-initech")["run_id"] == run.run_id  # not retried by another run
    assert glue.get_job(JobName=job_name("acme"))["Job"]["Timeout"] == 60
    assert_least_privilege(cloud, conn, "tenant_data_extraction")
    # The tenants' roles too: their sessions (the DAG's checks, and Glue running the job, which reads its script as
    # the role) used every grant, and nothing more.
    from localcloud.iam_policy import read_audit_log
    from tests.iam import coverage

    records = read_audit_log(cloud.audit_log)
    for tenant in TENANTS:
        prefix = f"arn:aws:sts::{ACCOUNT}:assumed-role/{provision.role_name(tenant)}/"
        mine = [r for r in records if r["principal"].startswith(prefix) and r["evaluated"] and r["action"]]
        result = coverage.check(mine, provision.permissions_policy(tenant, ARTIFACTS))
        assert result.ok, f"{provision.role_name(tenant)}:\n{result.explain()}"


def _objects(s3) -> dict[str, dict]:
    out = {}
    for tenant in TENANTS:
        for o in s3.list_objects_v2(Bucket=f"tenant-{tenant}-exports").get("Contents", []):
            out[f"{tenant}/{o['Key']}"] = o
    return out


def _tenant_s3(cloud, tenant: str, external_id: str | None = None, service: str = "s3"):
    sts = cloud.client("sts")
    if external_id is None:
        creds, arn = tenant_session(sts, tenant, ACCOUNT, "cross-tenant-test")
    else:
        answer = sts.assume_role(
            RoleArn=provision.role_arn(tenant, ACCOUNT),
            RoleSessionName="probe",
            ExternalId=external_id,
        )
        c = answer["Credentials"]
        creds = {
            "aws_access_key_id": c["AccessKeyId"],
            "aws_secret_access_key": c["SecretAccessKey"],
            "aws_session_token": c["SessionToken"],
        }
    import boto3

    return boto3.session.Session(region_name="us-east-1", **creds).client(service, endpoint_url=cloud.endpoint)


def test_cross_tenant_access_is_denied(cloud, world):
    s3 = cloud.client("s3")
    s3.put_object(Bucket="tenant-globex-exports", Key="extractions/secret/data.parquet", Body=b"globex only")
    acme = _tenant_s3(cloud, "acme")
    acme.put_object(Bucket="tenant-acme-exports", Key="extractions/own/ok.txt", Body=b"mine")  # its own prefix works
    attempts = {
        "get": lambda: acme.get_object(Bucket="tenant-globex-exports", Key="extractions/secret/data.parquet"),
        "put": lambda: acme.put_object(Bucket="tenant-globex-exports", Key="extractions/x/y", Body=b"x"),
        "list": lambda: acme.list_objects_v2(Bucket="tenant-globex-exports", Prefix="extractions/"),
        "own bucket, outside its prefix": lambda: acme.put_object(Bucket="tenant-acme-exports", Key="other", Body=b""),
        "artifacts": lambda: acme.put_object(Bucket=ARTIFACTS, Key="artifacts/glue-scripts/glue_extract.py", Body=b""),
    }
    for what, attempt in attempts.items():
        with pytest.raises(ClientError) as denied:
            attempt()
        assert denied.value.response["Error"]["Code"] == "AccessDenied", what
    # The job's arguments carry the tenant's masking key: the tenant's role cannot read them.
    glue = _tenant_s3(cloud, "acme", service="glue")
    for call in (lambda: glue.get_job_runs(JobName=job_name("acme")), lambda: glue.get_job(JobName=job_name("acme"))):
        with pytest.raises(ClientError) as denied:
            call()
        assert denied.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
    # Another tenant's role cannot even be assumed with this tenant's external id.
    with pytest.raises(ClientError) as denied:
        _tenant_s3(cloud, "globex", external_id=provision.external_id("acme"))
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_a_job_pointed_at_another_tenants_bucket_fails_with_access_denied(cloud, world):
    """Even a forged job (the right script and acme's role, but globex's bucket as output) cannot write there."""
    s3, glue = cloud.client("s3"), cloud.client("glue")
    script = "s3://ops-tenants-e2e/artifacts/glue-scripts/forged.py"
    with open(provision.__file__.replace("provision.py", "glue_extract.py"), "rb") as source:
        s3.put_object(Bucket=ARTIFACTS, Key="artifacts/glue-scripts/forged.py", Body=source.read())
    glue.create_job(
        Name="forged-acme",
        Role=world["roles"]["acme"],
        Command={"Name": "pythonshell", "ScriptLocation": script, "PythonVersion": "3.9"},
        MaxCapacity=0.0625,
    )
    run_id = glue.start_job_run(
        JobName="forged-acme",
        Arguments={
            "--tenant": "acme",
            "--request_id": "forged",
            "--tables": '["customers"]',
            "--replica": f"sqlite:///{world['replica']}",
            "--output": "s3://tenant-globex-exports/extractions/forged/",
        },
    )["JobRunId"]
    run = _wait(glue, "forged-acme", run_id)
    assert run["JobRunState"] == "FAILED"
    assert "AccessDenied" in run["ErrorMessage"]
    listed = s3.list_objects_v2(Bucket="tenant-globex-exports", Prefix="extractions/forged/")
    assert listed.get("KeyCount", 0) == 0


def _wait(glue, name: str, run_id: str, timeout: float = 120) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]
        if run["JobRunState"] in ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"{name} {run_id} did not finish in {timeout} s")
