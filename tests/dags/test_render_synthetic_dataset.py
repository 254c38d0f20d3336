"""e2e: render_synthetic_dataset with dag.test() against a live localcloud, on a tiny dataset, run twice."""

from __future__ import annotations

import json
import uuid

import pytest

from include import groundtruth
from include.groundtruth import validate
from tests.conftest import assert_least_privilege, point_aws_default

pytestmark = pytest.mark.usefixtures("airflow_db")


def _objects(s3, bucket: str) -> dict[str, int]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def _asset_extras(dag_id: str) -> list[dict]:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_dag_id == dag_id).all()
        return [dict(e.extra or {}) for e in events]


def test_render_dag_end_to_end_and_rerun_is_byte_identical(localcloud, dagbag, s3, tmp_path, monkeypatch):
    dag = dagbag.dags["render_synthetic_dataset"]
    bucket = f"render-{uuid.uuid4().hex[:8]}"
    # The DAG runs as the synthetic_vision family's least-privilege role, generated for this test's bucket.
    conn = point_aws_default(localcloud, monkeypatch, family="synthetic_vision", settings={"dataset_bucket": bucket})
    conf = {
        "bucket": bucket,
        "images_per_class": 2,
        "resolution": 128,
        "shard_size": 4,
        "processes": 1,
        "seed": 7,
    }
    first = dag.test(run_conf=conf)
    assert first.state == "success"

    objects = _objects(s3, bucket)
    manifests = [k for k in objects if k.endswith("/manifest.jsonl")]
    assert len(manifests) == 1
    prefix = manifests[0].rsplit("/", 1)[0]
    summary = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/dataset.json")["Body"].read())
    assert summary["planned"] == 10  # 5 gearbox classes x 2
    assert summary["images"] + sum(summary["skipped"].values()) == summary["planned"]
    images = [k for k in objects if k.startswith(f"{prefix}/images/")]
    assert len(images) == summary["images"] > 0
    assert len([k for k in objects if "/shards/size-4/" in k]) == 3
    assert [k for k in objects if "/debug/" in k]

    text = s3.get_object(Bucket=bucket, Key=manifests[0])["Body"].read().decode()
    assert validate.validate_manifest(text, s3_client=s3) == []
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == summary["images"]
    assert len({line["source-ref"] for line in lines}) == len(lines)
    manifest_path = tmp_path / "manifest.jsonl"
    manifest_path.write_text(text)
    assert len(groundtruth.read_manifest(manifest_path)) == len(lines)
    coco = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/coco.json")["Body"].read())
    assert len(coco["images"]) == len(lines)

    extras = _asset_extras("render_synthetic_dataset")
    assert any(e.get("manifest") == f"s3://{bucket}/{manifests[0]}" for e in extras)

    # Same params, another shard size: same version, byte-identical manifest, no duplicated lines or keys.
    second = dag.test(run_conf={**conf, "shard_size": 3})
    assert second.state == "success"
    again = s3.get_object(Bucket=bucket, Key=manifests[0])["Body"].read().decode()
    assert again == text
    objects_after = _objects(s3, bucket)
    assert [k for k in objects_after if k.endswith("/manifest.jsonl")] == manifests
    assert {k for k in objects_after if "/images/" in k} == set(images)
    assert_least_privilege(localcloud, conn, "render_synthetic_dataset")
