"""Shared fixtures. Airflow's environment is fixed here, before any test module imports Airflow."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.process import LocalCloudProcess
from tests import REPO

# An isolated Airflow home per pytest session: tests never touch the developer's .airflow/.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# Airflow puts the plugins folder on sys.path; tests that import plugins directly need the same.
sys.path.insert(0, str(REPO / "plugins"))
# Spark jobs started by tests (in-process sessions, spark-submit, localcloud's EMR Serverless) read these defaults.
os.environ.setdefault("SPARK_CONF_DIR", str(REPO / "tests" / "spark-conf"))
# Never let a developer's real AWS credentials leak into a test run.
for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(_var, None)


def running_localcloud(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[LocalCloudProcess]:
    """The body of a localcloud fixture: ``yield from running_localcloud(...)`` starts one, and stops it after."""
    with LocalCloudProcess(data_dir, env=env) as server:
        yield server


@pytest.fixture(scope="session")
def localcloud(tmp_path_factory: pytest.TempPathFactory):
    """A live localcloud on a free port, shared by the session's tests (each uses its own names)."""
    yield from running_localcloud(tmp_path_factory.mktemp("lc") / "data")


@pytest.fixture
def fresh_localcloud(tmp_path: Path):
    """A live localcloud with its own data dir, for tests that restart it."""
    yield from running_localcloud(tmp_path / "data")


@pytest.fixture
def s3(localcloud):
    return localcloud.client("s3")


@pytest.fixture
def ddb(localcloud):
    return localcloud.client("dynamodb")


def point_aws_default(
    server: LocalCloudProcess,
    monkeypatch: pytest.MonkeyPatch,
    family: str | None = None,
    settings: dict[str, str] | None = None,
) -> dict:
    """Point the aws_default connection at ``server`` (LOCAL-ONLY credentials).

    With ``family``, the connection assumes that DAG family's least-privilege role (``include/iam``), created in
    ``server`` for the test's ``settings`` (its buckets, tables, names): localcloud then enforces the generated
    policy on every call the DAG makes, and ``assert_least_privilege`` checks it against the audit log.
    """
    extra: dict = {"endpoint_url": server.endpoint, "region_name": "us-east-1"}
    conn = {"conn_type": "aws", "login": server.access_key, "password": server.secret_key, "extra": extra}
    if family is not None:
        import uuid

        from include.iam import roles

        role_arn = roles.ensure_family_role(
            server.client("iam"), family, settings, account=ACCOUNT, worker_arn=ROOT_ARN
        )
        session = f"test-{family}-{uuid.uuid4().hex[:8]}"
        extra.update(
            role_arn=role_arn,
            assume_role_kwargs={"RoleSessionName": session},
            service_config={"sts": {"endpoint_url": server.endpoint}},
        )
        conn["session_arn"] = role_arn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/") + f"/{session}"
        conn["family"], conn["settings"] = family, dict(settings or {})
    use_connection(monkeypatch, conn)
    return conn


def use_connection(monkeypatch: pytest.MonkeyPatch, conn: dict) -> None:
    """Make ``conn`` (from ``point_aws_default``) aws_default again, in the same role session when it has one: a test
    that runs two DAGs keeps one session per DAG, which ``assert_least_privilege`` holds to that DAG's statements."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", json.dumps({k: conn[k] for k in ("conn_type", "login", "password", "extra")})
    )


ACCOUNT = "000000000000"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"  # localcloud's admin credentials stand in for the workers' role


def assert_least_privilege(server: LocalCloudProcess, conn: dict, dag_id: str, sids: set[str] | None = None) -> None:
    """Every call the DAG made with its family role is allowed by the DAG's own statements, and every action those
    statements grant was used (``tests/iam/coverage.py``). ``sids``: only these statements, for a test that takes one
    of the DAG's paths (the lakehouse's engines)."""
    from include.iam import policies, roles
    from localcloud.iam_policy import read_audit_log
    from tests.iam import coverage

    family = roles.family(conn["family"])
    records = coverage.session_records(read_audit_log(server.audit_log), conn["session_arn"])
    result = coverage.check(records, policies.dag_policy(family, dag_id, conn["settings"], sids))
    assert result.ok, f"{dag_id} under role {family.role}:\n{result.explain()}"


@pytest.fixture
def aws_default(localcloud, monkeypatch):
    return point_aws_default(localcloud, monkeypatch)
