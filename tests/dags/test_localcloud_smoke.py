"""e2e: the localcloud_smoke DAG, run with dag.test() against a live localcloud, twice (rerun idempotency)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import assert_least_privilege, point_aws_default

pytestmark = pytest.mark.usefixtures("airflow_db")


def _keys(s3, bucket: str) -> list[str]:
    return sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def _items(ddb, table: str) -> dict[str, dict]:
    items = ddb.scan(TableName=table)["Items"]
    return {item["run_id"]["S"]: item for item in items}


def test_smoke_dag_runs_end_to_end_and_reruns_idempotently(localcloud, dagbag, s3, ddb, monkeypatch):
    dag = dagbag.dags["localcloud_smoke"]
    suffix = uuid.uuid4().hex[:8]
    conf = {"bucket": f"smoke-{suffix}", "table": f"smoke-runs-{suffix}"}
    # The DAG runs as the foundation family's least-privilege role, generated for this test's bucket and table.
    conn = point_aws_default(localcloud, monkeypatch, family="foundation", settings=conf)

    first = dag.test(run_conf=conf)
    assert first.state == "success", f"first run ended {first.state}"
    key1 = f"smoke/{first.run_id}/manifest.json"
    assert _keys(s3, conf["bucket"]) == [key1]
    manifest = json.loads(s3.get_object(Bucket=conf["bucket"], Key=key1)["Body"].read())
    assert manifest["run_id"] == first.run_id
    assert manifest["bucket"] == conf["bucket"]
    # localcloud's storage contract: objects are plain files under <data-dir>/s3/<bucket>/<key>.
    on_disk = localcloud.data_dir / "s3" / conf["bucket"] / key1
    assert json.loads(on_disk.read_text()) == manifest
    items = _items(ddb, conf["table"])
    assert list(items) == [first.run_id]
    assert items[first.run_id]["manifest_key"]["S"] == key1

    # Rerun into the same bucket and table: bucket/table creation tolerate "already exists", and the only new
    # things are the second run's own object and item.
    second = dag.test(run_conf=conf)
    assert second.state == "success", f"second run ended {second.state}"
    assert second.run_id != first.run_id
    key2 = f"smoke/{second.run_id}/manifest.json"
    assert _keys(s3, conf["bucket"]) == sorted([key1, key2])
    assert sorted(_items(ddb, conf["table"])) == sorted([first.run_id, second.run_id])
    # The first run's object is untouched.
    assert json.loads(s3.get_object(Bucket=conf["bucket"], Key=key1)["Body"].read()) == manifest
    assert_least_privilege(localcloud, conn, "localcloud_smoke")
