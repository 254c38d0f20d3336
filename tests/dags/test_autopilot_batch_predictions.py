"""e2e: autopilot_batch_predictions with dag.test() against localcloud's real AutoML, best then a non-best candidate."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import point_aws_default
from tests.dags.test_train_custom_labels import _states
from tests.localcloud_process import LocalCloudProcess

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    server = LocalCloudProcess(tmp_path_factory.mktemp("autopilot") / "data").start()
    yield server
    server.stop()


def _report(s3, bucket: str) -> dict:
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
        if o["Key"].endswith("/evaluation.json")
    ]
    return {k: json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys}


def test_best_then_another_candidate_reusing_the_job(cloud, dagbag, monkeypatch):
    point_aws_default(cloud, monkeypatch)
    dag = dagbag.dags["autopilot_batch_predictions"]
    bucket = f"tab-{uuid.uuid4().hex[:8]}"
    conf = {"bucket": bucket, "rows": 800, "max_candidates": 3, "max_runtime_seconds": 40}
    first = dag.test(run_conf=conf)
    assert first.state == "success", _states(dag.dag_id, first.run_id)
    s3, sm = cloud.client("s3"), cloud.client("sagemaker")
    (report,) = _report(s3, bucket).values()
    assert report["candidate_rank"] == 1 and report["rows"] == 160
    assert 0.0 <= report["f1"] <= 1.0 and 0.0 <= report["accuracy"] <= 1.0 and report["auc"] is not None
    assert sum(sum(r) for r in report["confusion_matrix"]["matrix"]) == 160
    png_key = next(k for k in _report(s3, bucket)).replace("evaluation.json", "pr_curve.png")
    assert s3.get_object(Bucket=bucket, Key=png_key)["Body"].read()[:4] == b"\x89PNG"
    jobs = sm.list_auto_ml_jobs()["AutoMLJobSummaries"]
    assert len(jobs) == 1

    # Another candidate and only two response keys: the same AutoML job, a new model and transform.
    second_name = report["ranking"][1]["name"]
    conf2 = {**conf, "candidate_name": second_name, "inference_response_keys": ["predicted_label", "probability"]}
    second = dag.test(run_conf=conf2)
    states = _states(dag.dag_id, second.run_id)
    assert second.state == "success", states
    assert states["automl"] == "skipped"
    assert len(sm.list_auto_ml_jobs()["AutoMLJobSummaries"]) == 1
    reports = _report(s3, bucket)
    assert len(reports) == 2
    other = next(r for r in reports.values() if r["candidate"] == second_name)
    assert other["candidate_rank"] == 2
    out = other["predictions"].removeprefix(f"s3://{bucket}/")
    lines = s3.get_object(Bucket=bucket, Key=out)["Body"].read().decode().splitlines()
    assert len(lines) == 160 and all(len(line.split(",")) == 2 for line in lines)

    # An unknown candidate fails with an AWS-shaped error, and nothing new is deployed.
    bad = dag.test(run_conf={**conf, "candidate_name": "no-such-candidate"})
    assert bad.state == "failed" and _states(dag.dag_id, bad.run_id)["choose_candidate"] == "failed"
    assert len(_report(s3, bucket)) == 2
