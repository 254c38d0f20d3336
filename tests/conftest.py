"""Shared fixtures. Airflow's environment is fixed here, before any test module imports Airflow."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

from tests.localcloud_process import REPO, LocalCloudProcess

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


@pytest.fixture(scope="session")
def localcloud(tmp_path_factory: pytest.TempPathFactory):
    """A live localcloud on a free port, shared by the session's tests (each uses its own names)."""
    server = LocalCloudProcess(tmp_path_factory.mktemp("lc") / "data").start()
    yield server
    server.stop()


@pytest.fixture
def fresh_localcloud(tmp_path: Path):
    """A live localcloud with its own data dir, for tests that restart it."""
    server = LocalCloudProcess(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture
def s3(localcloud):
    return localcloud.client("s3")


@pytest.fixture
def ddb(localcloud):
    return localcloud.client("dynamodb")


def point_aws_default(server: LocalCloudProcess, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Point the aws_default connection at ``server`` (LOCAL-ONLY credentials)."""
    conn = {
        "conn_type": "aws",
        "login": server.access_key,
        "password": server.secret_key,
        "extra": {"endpoint_url": server.endpoint, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    return conn


@pytest.fixture
def aws_default(localcloud, monkeypatch):
    return point_aws_default(localcloud, monkeypatch)
