"""Point Airflow's ``aws_default`` at a localcloud, for the tests that drive the Amazon provider's own hooks,
operators and triggers against it (what the provider calls is what localcloud must serve)."""

from __future__ import annotations

import json

import pytest

from localcloud.process import LocalCloudProcess


def point_aws_default(server: LocalCloudProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """aws_default = ``server`` with its LOCAL-ONLY admin credentials."""
    extra = {"endpoint_url": server.endpoint, "region_name": "us-east-1"}
    conn = {"conn_type": "aws", "login": server.access_key, "password": server.secret_key, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
