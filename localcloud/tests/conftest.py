"""localcloud's own fixtures: a live server per session or per test, and a clean environment.

These tests are localcloud's alone: they import the package and start it as a process, never the Airflow project.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from localcloud.process import LocalCloudProcess

TESTS = Path(__file__).resolve().parent
# EMR Serverless job runs read their spark-defaults from here (short-lived JVMs start faster with C1 and SerialGC).
os.environ.setdefault("SPARK_CONF_DIR", str(TESTS / "spark-conf"))
# Some tests drive the Amazon provider's hooks and operators against localcloud: Airflow gets a home of its own.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# Never let a developer's real AWS credentials leak into a test run.
for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def localcloud(tmp_path_factory: pytest.TempPathFactory):
    """A live localcloud on a free port, shared by the session's tests (each uses its own names)."""
    with LocalCloudProcess(tmp_path_factory.mktemp("lc") / "data") as server:
        yield server


@pytest.fixture
def fresh_localcloud(tmp_path: Path):
    """A live localcloud with its own data dir, for tests that restart it."""
    with LocalCloudProcess(tmp_path / "data") as server:
        yield server


@pytest.fixture
def s3(localcloud):
    return localcloud.client("s3")


@pytest.fixture
def ddb(localcloud):
    return localcloud.client("dynamodb")
