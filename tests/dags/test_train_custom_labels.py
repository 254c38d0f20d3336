"""e2e: render_synthetic_dataset -> train_custom_labels with dag.test() against a localcloud that really trains.

Trainings use a tiny budget (tests assert mechanics; benchmarks/custom_labels_quality.py measures quality).
"""

from __future__ import annotations

import json
import uuid

import pytest

from include.custom_labels import ledger, steps
from tests.conftest import point_aws_default

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture(scope="module")
def cloud(training_cloud):
    return training_cloud


@pytest.fixture(scope="module")
def rendered(cloud, dagbag, airflow_db):
    """A tiny render published as the synthetic_vision_dataset Asset (what schedules train_custom_labels)."""
    bucket = f"cl-{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as mp:
        point_aws_default(cloud, mp)
        conf = {"bucket": bucket, "images_per_class": 2, "resolution": 128, "shard_size": 5, "processes": 1}
        assert dagbag.dags["render_synthetic_dataset"].test(run_conf=conf).state == "success"
    s3 = cloud.client("s3")
    manifests = [
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if o["Key"].endswith("/manifest.jsonl")
    ]
    assert len(manifests) == 1
    return {"bucket": bucket, "manifest": f"s3://{bucket}/{manifests[0]}", "version": manifests[0].split("/")[-2]}


@pytest.fixture
def aws(cloud, monkeypatch):
    return point_aws_default(cloud, monkeypatch)


def _conf(rendered: dict, project: str, **extra) -> dict:
    return {
        "bucket": rendered["bucket"],
        "dataset_bucket": rendered["bucket"],
        "project_name": project,
        "test_images_per_class": 2,
        "processes": 1,
        "shard_size": 5,
        "min_f1": 0.0,
        "smoke_images": 3,
        "smoke_min_confidence": 0.0,
        **extra,
    }


def _states(dag_id: str, run_id: str) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        return {ti.task_id: str(ti.state) for ti in tis}


def _versions(cloud, project: str) -> dict[str, str]:
    rek = cloud.client("rekognition")
    arn = rek.describe_projects(ProjectNames=[project])["ProjectDescriptions"][0]["ProjectArn"]
    found = rek.describe_project_versions(ProjectArn=arn)["ProjectVersionDescriptions"]
    return {d["ProjectVersionArn"].split("/version/")[1].split("/")[0]: d["Status"] for d in found}


def _refs(s3, uri: str) -> set[str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return {json.loads(line)["source-ref"] for line in text.splitlines() if line.strip()}


def test_asset_run_trains_records_deploys_and_reruns_idempotently(cloud, rendered, dagbag, aws):
    dag = dagbag.dags["train_custom_labels"]
    s3 = cloud.client("s3")
    project = f"gear-{uuid.uuid4().hex[:6]}"
    bucket = rendered["bucket"]

    # No dataset param: the latest synthetic_vision_dataset event (the render above) is the training set.
    first = dag.test(run_conf=_conf(rendered, project))
    assert first.state == "success", _states(dag.dag_id, first.run_id)
    states = _states(dag.dag_id, first.run_id)
    assert states["render_shifted_test_set"] == "success"
    assert states["use_test_manifest"] == states["import_test_photos"] == "skipped"

    book = ledger.load(s3, bucket, steps.ledger_key(project))
    assert len(book["versions"]) == 1
    entry = book["versions"][0]
    assert entry["train"]["manifest"] == rendered["manifest"]
    assert entry["status"] == "TRAINING_COMPLETED" and 0.0 <= entry["f1"] <= 1.0
    assert entry["gate"]["passed"] and entry["deployed"] is True
    assert set(entry["label_f1"]) <= set(steps.catalog_labels("include/cad/gearbox/catalog.yaml"))
    chart_bucket, _, chart_key = entry["chart"].removeprefix("s3://").partition("/")
    assert s3.get_object(Bucket=chart_bucket, Key=chart_key)["Body"].read()[:8] == b"\x89PNG\r\n\x1a\n"
    # The test set is a domain-shifted render, never the training images.
    test_manifest = entry["test"]["manifest"]
    assert "gearbox-shifted" in test_manifest and entry["test"]["shifts"]
    assert not _refs(s3, test_manifest) & _refs(s3, rendered["manifest"])
    assert _versions(cloud, project) == {entry["version_name"]: "RUNNING"}
    test_key = test_manifest.removeprefix(f"s3://{bucket}/")
    rendered_at = s3.head_object(Bucket=bucket, Key=test_key)["LastModified"]

    # A rerun trains nothing, renders nothing, and duplicates no ledger entry.
    again = dag.test(run_conf=_conf(rendered, project))
    assert again.state == "success", _states(dag.dag_id, again.run_id)
    assert _versions(cloud, project) == {entry["version_name"]: "RUNNING"}
    assert s3.head_object(Bucket=bucket, Key=test_key)["LastModified"] == rendered_at
    assert [v["version_name"] for v in ledger.load(s3, bucket, steps.ledger_key(project))["versions"]] == [
        entry["version_name"]
    ]

    # By hand, with the dataset version and a new version name: blue/green leaves exactly one version RUNNING.
    conf = _conf(rendered, project, dataset_version=rendered["version"], version_name=f"{project}-v2")
    second = dag.test(run_conf=conf)
    assert second.state == "success", _states(dag.dag_id, second.run_id)
    assert _versions(cloud, project) == {entry["version_name"]: "STOPPED", f"{project}-v2": "RUNNING"}
    book = ledger.load(s3, bucket, steps.ledger_key(project))
    assert {v["version_name"]: v["deployed"] for v in book["versions"]} == {
        entry["version_name"]: False,
        f"{project}-v2": True,
    }


def test_photo_test_set_and_the_gate(cloud, rendered, dagbag, aws):
    """Labelled "photos" in COCO form become the test set; below the gate a version is recorded, not deployed."""
    dag = dagbag.dags["train_custom_labels"]
    s3 = cloud.client("s3")
    bucket = rendered["bucket"]
    project = f"photo-{uuid.uuid4().hex[:6]}"
    prefix = rendered["manifest"].removeprefix(f"s3://{bucket}/").rsplit("/", 1)[0]
    coco = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/coco.json")["Body"].read())
    for image in coco["images"]:
        s3.copy_object(
            Bucket=bucket,
            Key=f"photos/{image['file_name']}",
            CopySource={"Bucket": bucket, "Key": f"{prefix}/{image['file_name']}"},
        )
    s3.put_object(Bucket=bucket, Key="photos/labels.json", Body=json.dumps(coco).encode())
    photos = {"uri": f"s3://{bucket}/photos/", "format": "coco", "label_map": {}}

    gated = _conf(rendered, project, test_photos=photos, min_f1=1.0, gate_soft_fail=True)
    run = dag.test(run_conf=gated)
    states = _states(dag.dag_id, run.run_id)
    assert run.state == "success", states
    assert states["import_test_photos"] == "success" and states["render_shifted_test_set"] == "skipped"
    entry = ledger.load(s3, bucket, steps.ledger_key(project))["versions"][0]
    assert entry["test"]["source"].startswith("test_photos") and entry["test"]["images"] == len(coco["images"])
    assert entry["f1"] < 1.0 and entry["gate"]["passed"] is False and entry["deployed"] is False
    assert states["gate"] == "skipped" and states["start_version"] == "skipped"
    assert _versions(cloud, project) == {entry["version_name"]: "TRAINING_COMPLETED"}

    # A hard gate fails the run, and the rerun reuses the trained version instead of training again.
    failed = dag.test(run_conf={**gated, "gate_soft_fail": False})
    assert failed.state == "failed"
    assert _states(dag.dag_id, failed.run_id)["gate"] == "failed"
    assert _versions(cloud, project) == {entry["version_name"]: "TRAINING_COMPLETED"}
