"""include.connections: one home for the connection ids, and clients built through the provider's hooks."""

from __future__ import annotations

import subprocess
import sys

from include import connections
from tests import REPO


def test_ids() -> None:
    assert (connections.AWS_CONN_ID, connections.SPARK_CONN_ID) == ("aws_default", "spark_default")


def test_importing_it_stays_light() -> None:
    # DAG files import it at parse time: the provider and boto3 load only when a task builds a client.
    code = "import sys, include.connections; print(any(m.startswith(('airflow', 'boto')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_clients_come_from_the_connection(monkeypatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_TEST_CLIENTS",
        '{"conn_type": "aws", "login": "AKIDTEST", "password": "secret", '
        '"extra": {"region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:1"}}',
    )
    for client, service in (
        (connections.s3_client("test_clients"), "s3"),
        (connections.client("glue", "test_clients"), "glue"),
        (connections.dynamodb_client("test_clients"), "dynamodb"),
        (connections.sagemaker_client("test_clients"), "sagemaker"),
    ):
        assert client.meta.service_model.service_name == service
        assert client.meta.region_name == "eu-west-1"
        assert client.meta.endpoint_url == "http://127.0.0.1:1"
