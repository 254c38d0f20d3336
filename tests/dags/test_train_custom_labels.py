"""e2e: render_synthetic_dataset -> train_custom_labels with dag.test() against a localcloud that really trains.

Trainings use a tiny budget (tests assert mechanics; benchmarks/custom_labels_quality.py measures quality).
Both DAGs run as the synthetic_vision family's least-privilege role, generated for the test's own buckets and
project, and are held to their own statements (``assert_least_privilege``).
"""

from __future__ import annotations

import json
import uuid

import pytest

from include.custom_labels import ledger, steps
from tests.conftest import assert_least_privilege, point_aws_default

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
        conn = point_aws_default(cloud, mp, family="synthetic_vision", settings={"dataset_bucket": bucket})
        conf = {"bucket": bucket, "images_per_class": 2, "resolution": 128, "shard_size": 5, "processes": 1}
        assert dagbag.dags["render_synthetic_dataset"].test(run_conf=conf).state == "success"
    assert_least_privilege(cloud, conn, "render_synthetic_dataset")
    s3 = cloud.client("s3")
    manifests = [
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if o["Key"].endswith("/manifest.jsonl")
    ]
    assert len(manifests) == 1
    return {"bucket": bucket, "manifest": f"s3://{bucket}/{manifests[0]}", "version": manifests[0].split("/")[-2]}


def _conf(rendered: dict, models: str, project: str, **extra) -> dict:
    return {
        "bucket": models,
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


def _photos(s3, rendered: dict) -> dict:
    """The render's images under photos/ with their labels in COCO form: labelled "photos" to test on."""
    bucket = rendered["bucket"]
    prefix = rendered["manifest"].removeprefix(f"s3://{bucket}/").rsplit("/", 1)[0]
    coco = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/coco.json")["Body"].read())
    for image in coco["images"]:
        s3.copy_object(
            Bucket=bucket,
            Key=f"photos/{image['file_name']}",
            CopySource={"Bucket": bucket, "Key": f"{prefix}/{image['file_name']}"},
        )
    s3.put_object(Bucket=bucket, Key="photos/labels.json", Body=json.dumps(coco).encode())
    return coco


def test_trains_records_deploys_reruns_and_gates(cloud, rendered, dagbag, monkeypatch):
    """One project, one role session: the Asset run, its rerun and a blue/green deploy, then a photo test set below
    the gate (soft, then hard). One session, so that the least-privilege check sees every path the DAG takes: a
    session of either half alone leaves statements of the other half unused."""
    dag = dagbag.dags["train_custom_labels"]
    s3 = cloud.client("s3")
    project = f"gear-{uuid.uuid4().hex[:6]}"
    bucket = rendered["bucket"]
    models = f"clm-{uuid.uuid4().hex[:8]}"  # a bucket of its own for models, ledger and reports: create_bucket makes it
    settings = {
        "dataset_bucket": bucket,
        "models_bucket": models,
        "project_name": project,
        "photos_bucket": bucket,
        "photos_prefix": "photos",
    }
    # train_custom_labels runs as the synthetic_vision family's least-privilege role, generated for these names.
    conn = point_aws_default(cloud, monkeypatch, family="synthetic_vision", settings=settings)

    # No dataset param: the latest synthetic_vision_dataset event (the render above) is the training set.
    first = dag.test(run_conf=_conf(rendered, models, project))
    assert first.state == "success", _states(dag.dag_id, first.run_id)
    states = _states(dag.dag_id, first.run_id)
    assert states["render_shifted_test_set"] == "success"
    assert states["use_test_manifest"] == states["import_test_photos"] == "skipped"

    book = ledger.load(s3, models, steps.ledger_key(project))
    assert len(book["versions"]) == 1
    entry = book["versions"][0]
    assert entry["train"]["manifest"] == rendered["manifest"]
    assert entry["status"] == "TRAINING_COMPLETED" and 0.0 <= entry["f1"] <= 1.0
    assert entry["gate"]["passed"] and entry["deployed"] is True
    assert set(entry["label_f1"]) <= set(steps.catalog_labels("include/cad/gearbox/catalog.yaml"))
    chart_bucket, _, chart_key = entry["chart"].removeprefix("s3://").partition("/")
    assert chart_bucket == models
    assert s3.get_object(Bucket=chart_bucket, Key=chart_key)["Body"].read()[:8] == b"\x89PNG\r\n\x1a\n"
    # The test set is a domain-shifted render beside the training set, never the training images.
    test_manifest = entry["test"]["manifest"]
    assert "gearbox-shifted" in test_manifest and entry["test"]["shifts"]
    assert not _refs(s3, test_manifest) & _refs(s3, rendered["manifest"])
    assert _versions(cloud, project) == {entry["version_name"]: "RUNNING"}
    test_key = test_manifest.removeprefix(f"s3://{bucket}/")
    rendered_at = s3.head_object(Bucket=bucket, Key=test_key)["LastModified"]

    # A rerun trains nothing, renders nothing, and duplicates no ledger entry.
    again = dag.test(run_conf=_conf(rendered, models, project))
    assert again.state == "success", _states(dag.dag_id, again.run_id)
    assert _versions(cloud, project) == {entry["version_name"]: "RUNNING"}
    assert s3.head_object(Bucket=bucket, Key=test_key)["LastModified"] == rendered_at
    assert [v["version_name"] for v in ledger.load(s3, models, steps.ledger_key(project))["versions"]] == [
        entry["version_name"]
    ]

    # By hand, with the dataset version and a new version name: blue/green leaves exactly one version RUNNING.
    v2 = f"{project}-v2"
    conf = _conf(rendered, models, project, dataset_version=rendered["version"], version_name=v2)
    second = dag.test(run_conf=conf)
    assert second.state == "success", _states(dag.dag_id, second.run_id)
    assert _versions(cloud, project) == {entry["version_name"]: "STOPPED", v2: "RUNNING"}
    book = ledger.load(s3, models, steps.ledger_key(project))
    assert {v["version_name"]: v["deployed"] for v in book["versions"]} == {entry["version_name"]: False, v2: True}

    # Labelled "photos" in COCO form become the test set; below the gate a version is recorded, not deployed,
    # and the serving version keeps serving.
    coco = _photos(s3, rendered)
    photos = {"uri": f"s3://{bucket}/photos/", "format": "coco", "label_map": {}}
    # dataset_version and version_name are reset explicitly: dag.test() in one process keeps the previous run's
    # conf in the DAG's params, so the run above would otherwise lend them to this one.
    gated = _conf(
        rendered,
        models,
        project,
        dataset_version="",
        version_name="",
        test_photos=photos,
        min_f1=1.0,
        gate_soft_fail=True,
    )
    run = dag.test(run_conf=gated)
    states = _states(dag.dag_id, run.run_id)
    assert run.state == "success", states
    assert states["import_test_photos"] == "success" and states["render_shifted_test_set"] == "skipped"
    book = ledger.load(s3, models, steps.ledger_key(project))
    (photo,) = [v for v in book["versions"] if v["version_name"] not in (entry["version_name"], v2)]
    assert photo["test"]["source"].startswith("test_photos") and photo["test"]["images"] == len(coco["images"])
    assert photo["test"]["manifest"].startswith(f"s3://{models}/{steps.project_root(project)}/test-photos/")
    assert photo["f1"] < 1.0 and photo["gate"]["passed"] is False and photo["deployed"] is False
    assert states["gate"] == "skipped" and states["start_version"] == "skipped"
    serving = {entry["version_name"]: "STOPPED", v2: "RUNNING", photo["version_name"]: "TRAINING_COMPLETED"}
    assert _versions(cloud, project) == serving
    assert ledger.deployed(book)["version_name"] == v2

    # A hard gate fails the run, and the rerun reuses the trained version instead of training again.
    failed = dag.test(run_conf={**gated, "gate_soft_fail": False})
    assert failed.state == "failed"
    assert _states(dag.dag_id, failed.run_id)["gate"] == "failed"
    assert _versions(cloud, project) == serving

    assert_least_privilege(cloud, conn, "train_custom_labels")
