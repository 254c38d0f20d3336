"""e2e: autopilot_batch_predictions with dag.test() against localcloud's real AutoML.

Labelled data lands (publish_labelled_data emits the churn_labelled_data Asset event) and schedules a retraining:
the first model becomes the champion; another candidate of the same job is compared on the fixed holdout; data with
shuffled labels trains a worse challenger that is kept out; a rerun of that run decides the same and duplicates
nothing (and rescoring the champion, when its recorded score is on another holdout, gives the same answer).
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import pytest

from include.automl import champion as ch
from tests.conftest import assert_least_privilege, point_aws_default, running_localcloud, use_connection
from tests.dags.conftest import task_states as _states

pytestmark = pytest.mark.usefixtures("airflow_db")
TARGET = "Churn?"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    yield from running_localcloud(tmp_path_factory.mktemp("autopilot") / "data")


def _report(s3, bucket: str) -> dict:
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
        if o["Key"].endswith("/evaluation.json")
    ]
    return {k: json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys}


def _xcom(dag_id: str, run_id: str, task_id: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.task_id == task_id)
            .filter(XComModel.key == "return_value")
            .one()
        )
        return XComModel.deserialize_value(row)


def _churn_csv(rows: int, shuffle_labels: bool = False) -> str:
    from include.datagen.churn import generate

    records = generate(rows=rows, seed=0)
    header = list(records[0])
    table = [[str(r[c]) for c in header] for r in records]
    if shuffle_labels:  # the same customers, labels scrambled: nothing left to learn
        index = header.index(TARGET)
        labels = [r[index] for r in table]
        random.Random(1).shuffle(labels)
        for row, label in zip(table, labels, strict=True):
            row[index] = label
    return ch.csv_text(header, table)


def _publish(dagbag, monkeypatch, conn: dict, s3, bucket: str, key: str, text: str) -> int:
    """Land a CSV (as admin) and announce it with publish_labelled_data run as the role session ``conn``; the id of
    the asset event it emitted."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    s3.put_object(Bucket=bucket, Key=key, Body=text.encode())
    uri = f"s3://{bucket}/{key}"
    use_connection(monkeypatch, conn)
    run = dagbag.dags["publish_labelled_data"].test(run_conf={"dataset_uri": uri, "target": TARGET})
    assert run.state == "success", _states("publish_labelled_data", run.run_id)
    with create_session() as session:
        event = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == "churn_labelled_data")
            .order_by(AssetEvent.id.desc())
            .first()
        )
        assert event.extra["dataset_uri"] == uri and event.extra["rows"] == text.count("\n") - 1
        return event.id


def _triggered_by(monkeypatch, event_id: int | None) -> None:
    """dag.test() makes a manual run; give it the asset event as its triggering event (what the scheduler does)."""
    import airflow.models.dagrun as dagrun_module
    from airflow.models.asset import AssetEvent

    original = dagrun_module.get_or_create_dagrun

    def create(**kwargs):
        run = original(**kwargs)
        if event_id is not None:
            session = kwargs["session"]
            run.consumed_asset_events.append(session.get(AssetEvent, event_id))
            session.commit()
        return run

    monkeypatch.setattr(dagrun_module, "get_or_create_dagrun", create)


def _decisions(s3, bucket: str, registry: str) -> dict[str, dict]:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=f"{registry}/decisions/").get("Contents", [])
    return {o["Key"]: json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in found}


def test_asset_driven_retraining_promotes_only_a_better_model(cloud, dagbag, monkeypatch):
    dag = dagbag.dags["autopilot_batch_predictions"]
    s3, sm = cloud.client("s3"), cloud.client("sagemaker")  # admin: the test's own setup and checks
    bucket = f"tab-{uuid.uuid4().hex[:8]}"
    # Labelled data lands in a bucket of its own; the DAG's create_bucket makes the model bucket.
    landing = f"{bucket}-landing"
    s3.create_bucket(Bucket=landing)
    # Both DAGs run as the tabular family's role, each in a session of its own.
    settings = {"bucket": bucket, "prefix": "autopilot", "data_bucket": landing, "data_prefix": "landing"}
    publisher = point_aws_default(cloud, monkeypatch, family="tabular", settings=settings)
    trainer = point_aws_default(cloud, monkeypatch, family="tabular", settings=settings)
    registry = ch.registry_prefix("autopilot", TARGET)
    # Every run names every param it relies on: in-process dag.test() runs can leave earlier runs' conf in params.
    conf = {
        "bucket": bucket,
        "max_candidates": 3,
        "max_runtime_seconds": 40,
        "dataset_uri": "",
        "candidate_name": "",
        "inference_response_keys": ["predicted_label", "probability", "labels", "probabilities"],
    }

    # 1. Good data lands: the run it triggers makes the fixed holdout and the first champion.
    good = _publish(dagbag, monkeypatch, publisher, s3, landing, "landing/churn-1.csv", _churn_csv(800))
    _triggered_by(monkeypatch, good)
    use_connection(monkeypatch, trainer)
    first = dag.test(run_conf=conf)
    assert first.state == "success", _states(dag.dag_id, first.run_id)
    decision = _xcom(dag.dag_id, first.run_id, "decide")
    assert decision["decision"] == "first_model" and decision["promoted"] and decision["champion"] is None
    assert decision["dataset_source"] == "asset_event"
    assert decision["dataset_uri"] == f"s3://{landing}/landing/churn-1.csv"
    assert decision["holdout_rows"] == 160 and decision["train_rows"] == 640 and decision["excluded_rows"] == 160
    holdout = json.loads(s3.get_object(Bucket=bucket, Key=f"{registry}/holdout/holdout.json")["Body"].read())
    assert holdout["sha256"] == decision["holdout_sha256"] and holdout["created_from"] == decision["dataset_uri"]
    record = s3.get_object(Bucket=bucket, Key=f"{registry}/champion.json")["Body"].read()
    champion = json.loads(record)
    assert champion["model_name"] == decision["challenger"]["model_name"] == decision["champion_after"]
    assert champion["metric"] == "F1" and champion["score"] == decision["challenger"]["score"] > 0.3
    assert champion["holdout_sha"] == holdout["sha256"] and champion["promoted_by_run"] == first.run_id
    assert _decisions(s3, bucket, registry) == {ch.decision_key(registry, first.run_id): decision}
    (report,) = _report(s3, bucket).values()
    assert report["candidate_rank"] == 1 and report["rows"] == 160
    assert 0.0 <= report["f1"] <= 1.0 and 0.0 <= report["accuracy"] <= 1.0 and report["auc"] is not None
    assert report["f1"] == pytest.approx(decision["challenger"]["score"])
    assert sum(sum(r) for r in report["confusion_matrix"]["matrix"]) == 160
    png_key = next(k for k in _report(s3, bucket)).replace("evaluation.json", "pr_curve.png")
    assert s3.get_object(Bucket=bucket, Key=png_key)["Body"].read()[:4] == b"\x89PNG"
    assert len(sm.list_auto_ml_jobs()["AutoMLJobSummaries"]) == 1

    # 2. By hand, the same data as a param, another candidate and only two response keys: the same AutoML job, a
    # new model and transform, compared with the champion's recorded score on the same holdout.
    _triggered_by(monkeypatch, None)
    second_name = report["ranking"][1]["name"]
    conf2 = {
        **conf,
        "dataset_uri": decision["dataset_uri"],
        "candidate_name": second_name,
        "inference_response_keys": ["predicted_label", "probability"],
    }
    second = dag.test(run_conf=conf2)
    states = _states(dag.dag_id, second.run_id)
    assert second.state == "success", states
    assert states["automl"] == "skipped" and states["champion_transform"] == "skipped"
    assert len(sm.list_auto_ml_jobs()["AutoMLJobSummaries"]) == 1
    other_decision = _xcom(dag.dag_id, second.run_id, "decide")
    assert other_decision["dataset_source"] == "param" and other_decision["champion"]["score_source"] == "recorded"
    assert other_decision["decision"] in ("promoted", "kept")
    reports = _report(s3, bucket)
    assert len(reports) == 2
    other = next(r for r in reports.values() if r["candidate"] == second_name)
    assert other["candidate_rank"] == 2
    out = other["predictions"].removeprefix(f"s3://{bucket}/")
    lines = s3.get_object(Bucket=bucket, Key=out)["Body"].read().decode().splitlines()
    assert len(lines) == 160 and all(len(line.split(",")) == 2 for line in lines)

    # An unknown candidate fails with an AWS-shaped error, and nothing new is deployed or decided.
    bad = dag.test(run_conf={**conf2, "candidate_name": "no-such-candidate"})
    assert bad.state == "failed" and _states(dag.dag_id, bad.run_id)["choose_candidate"] == "failed"
    assert len(_report(s3, bucket)) == 2 and len(_decisions(s3, bucket, registry)) == 2

    # 3. Data with shuffled labels lands: its holdout rows are dropped, a new job trains, the challenger is worse.
    record = s3.get_object(Bucket=bucket, Key=f"{registry}/champion.json")["Body"].read()
    champion = json.loads(record)
    noisy = _publish(
        dagbag, monkeypatch, publisher, s3, landing, "landing/churn-2.csv", _churn_csv(800, shuffle_labels=True)
    )
    _triggered_by(monkeypatch, noisy)
    use_connection(monkeypatch, trainer)
    when = datetime.now(UTC).replace(microsecond=0)
    third = dag.test(run_conf=conf, logical_date=when, run_after=when)
    assert third.state == "success", _states(dag.dag_id, third.run_id)
    kept = _xcom(dag.dag_id, third.run_id, "decide")
    assert kept["decision"] == "kept" and not kept["promoted"], kept
    assert kept["dataset_uri"] == f"s3://{landing}/landing/churn-2.csv" and kept["dataset_source"] == "asset_event"
    assert kept["excluded_rows"] == 160 and kept["train_rows"] == 640  # the relabelled holdout rows too
    assert kept["holdout_sha256"] == holdout["sha256"] and kept["champion"]["score_source"] == "recorded"
    assert kept["challenger"]["score"] < kept["champion"]["score"] == champion["score"]
    assert kept["champion_after"] == champion["model_name"] and "worse" in kept["reason"]
    assert s3.get_object(Bucket=bucket, Key=f"{registry}/champion.json")["Body"].read() == record
    assert len(sm.list_auto_ml_jobs()["AutoMLJobSummaries"]) == 2
    holdout_text = s3.get_object(Bucket=bucket, Key=f"{registry}/holdout/features.csv")["Body"].read().decode()
    held = {ch.row_key(r.split(",")) for r in holdout_text.splitlines()}
    job_root = f"autopilot/{kept['challenger']['job_name'].removeprefix('ap-')}"
    train = s3.get_object(Bucket=bucket, Key=f"{job_root}/train/train.csv")["Body"].read().decode()
    header, *rows = [r.split(",") for r in train.splitlines()]
    index = header.index(TARGET)
    assert len(rows) == 640 and not {ch.row_key(ch.features_of(r, index)) for r in rows} & held
    decisions = _decisions(s3, bucket, registry)
    assert len(decisions) == 3 and decisions[ch.decision_key(registry, third.run_id)] == kept

    # 4. A rerun of that run, after the champion's recorded score went stale (another holdout hash): the champion
    # is scored again by batch transform, and the run decides the same, replacing its own decision.
    stale = {**champion, "holdout_sha": "an-older-holdout"}
    s3.put_object(Bucket=bucket, Key=f"{registry}/champion.json", Body=json.dumps(stale).encode())
    again = dag.test(run_conf=conf, logical_date=when, run_after=when)
    assert again.run_id == third.run_id
    states = _states(dag.dag_id, again.run_id)
    assert again.state == "success", states
    assert states["automl"] == "skipped" and states["champion_transform"] == "success"
    rerun = _xcom(dag.dag_id, again.run_id, "decide")
    assert rerun["champion"]["score_source"] == "rescored"
    assert rerun["champion"]["score"] == pytest.approx(champion["score"])
    assert {k: v for k, v in rerun.items() if k != "champion"} == {k: v for k, v in kept.items() if k != "champion"}
    assert json.loads(s3.get_object(Bucket=bucket, Key=f"{registry}/champion.json")["Body"].read()) == stale
    decisions = _decisions(s3, bucket, registry)
    assert len(decisions) == 3 and decisions[ch.decision_key(registry, third.run_id)] == rerun
    assert len(sm.list_auto_ml_jobs()["AutoMLJobSummaries"]) == 2

    # Every call of each DAG was allowed by its own statements, and each statement's every action was used.
    assert_least_privilege(cloud, trainer, "autopilot_batch_predictions")
    assert_least_privilege(cloud, publisher, "publish_labelled_data")
