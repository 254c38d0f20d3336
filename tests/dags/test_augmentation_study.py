"""e2e: augmentation_study with dag.test() on two variants, against a localcloud that really trains (tiny budget)."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid

import pytest

from tests.conftest import assert_least_privilege, point_aws_default
from tests.dags.test_train_custom_labels import _states

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture(scope="module")
def cloud(training_cloud):
    return training_cloud


def _running(cloud, study: str) -> dict[str, list[str]]:
    rek = cloud.client("rekognition")
    out = {}
    for project in rek.describe_projects()["ProjectDescriptions"]:
        name = project["ProjectArn"].split(":project/")[1].split("/")[0]
        if name.startswith(f"{study}-"):
            versions = rek.describe_project_versions(ProjectArn=project["ProjectArn"])["ProjectVersionDescriptions"]
            out[name] = sorted(v["Status"] for v in versions)
    return out


def _start(cloud, project: str) -> None:
    """Start the project's version (admin credentials) and wait until it serves."""
    rek = cloud.client("rekognition")
    arn = rek.describe_projects(ProjectNames=[project])["ProjectDescriptions"][0]["ProjectArn"]
    (version,) = rek.describe_project_versions(ProjectArn=arn)["ProjectVersionDescriptions"]
    rek.start_project_version(ProjectVersionArn=version["ProjectVersionArn"], MinInferenceUnits=1)
    for _ in range(120):
        status = rek.describe_project_versions(ProjectArn=arn)["ProjectVersionDescriptions"][0]["Status"]
        if status == "RUNNING":
            return
        time.sleep(0.5)
    raise AssertionError(f"{project}: still {status}")


def test_study_ranks_variants_and_promotes_the_best(cloud, dagbag, monkeypatch):
    dag = dagbag.dags["augmentation_study"]
    bucket, study = f"study-{uuid.uuid4().hex[:8]}", f"s{uuid.uuid4().hex[:6]}"
    # The DAG runs as the synthetic_vision family's least-privilege role, generated for this bucket and study.
    conn = point_aws_default(
        cloud, monkeypatch, family="synthetic_vision", settings={"study_bucket": bucket, "study_name": study}
    )
    conf = {
        "bucket": bucket,
        "study_name": study,
        "matrix": {"materials": [True, False]},
        "images_per_class": 2,
        "resolution": 128,
        "test_images_per_class": 2,
        "processes": 1,
        "shard_size": 10,
    }
    run = dag.test(run_conf=conf)
    states = _states(dag.dag_id, run.run_id)
    assert run.state == "success", states

    s3 = cloud.client("s3")
    root = f"custom-labels/studies/{study}"
    rows = list(
        csv.DictReader(io.StringIO(s3.get_object(Bucket=bucket, Key=f"{root}/ranking.csv")["Body"].read().decode()))
    )
    assert {r["variant"] for r in rows} == {"all-on", "no-materials"}
    f1s = [float(r["f1"]) for r in rows]
    assert f1s == sorted(f1s, reverse=True)
    assert s3.get_object(Bucket=bucket, Key=f"{root}/ranking.png")["Body"].read()[:4] == b"\x89PNG"
    results = json.loads(s3.get_object(Bucket=bucket, Key=f"{root}/results.json")["Body"].read())
    # Same test set for every variant; different training sets.
    assert len({r["dataset"] for r in results}) == 2
    best = f"{study}-{results[0]['variant']}"
    other = f"{study}-{results[1]['variant']}"
    assert _running(cloud, study) == {best: ["RUNNING"], other: ["TRAINING_COMPLETED"]}

    # Someone starts the other variant by hand: a rerun renders and trains nothing new, stops it, and leaves
    # exactly the best version serving.
    _start(cloud, other)
    assert _running(cloud, study) == {best: ["RUNNING"], other: ["RUNNING"]}
    again = dag.test(run_conf=conf)
    assert again.state == "success", _states(dag.dag_id, again.run_id)
    assert _running(cloud, study) == {best: ["RUNNING"], other: ["STOPPED"]}
    assert_least_privilege(cloud, conn, "augmentation_study")
