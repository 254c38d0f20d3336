"""e2e: notebook_autostop with dag.test() against localcloud's notebook instances and heartbeats in its S3.

The run's reference time (``run_after``) is set four hours after the instances were created, so every
instance's LastModifiedTime (its start) is old and idleness is decided by the heartbeats written here, as
the lifecycle script's cron would have written them over those four hours. Transitions take no time on this
localcloud: the provider's ``notebook_instance_stopped`` waiter polls every 30 s, and its first poll then
already sees Stopped.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import assert_least_privilege, point_aws_default, running_localcloud
from tests.dags.conftest import task_states

pytestmark = pytest.mark.usefixtures("airflow_db")

ROLE = "arn:aws:iam::000000000000:role/notebooks"
BUCKET = "ops-autostop-e2e"
PREFIX = "e2e-"
CONF = {
    "bucket": BUCKET,
    "heartbeat_prefix": "hb",
    "report_prefix": "reports",
    "idle_minutes": 60,
    "name_contains": PREFIX,
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    yield from running_localcloud(
        tmp_path_factory.mktemp("autostop") / "data", {"LOCALCLOUD_NOTEBOOK_TRANSITION_SECONDS": "0"}
    )


def _heartbeat(s3, name: str, checked_at: datetime, last_activity: datetime | None, busy: int = 0) -> None:
    doc = {
        "schema_version": 1,
        "instance": name,
        "checked_at": checked_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "last_activity": last_activity.strftime("%Y-%m-%dT%H:%M:%SZ") if last_activity else None,
        "kernels": 1,
        "busy_kernels": busy,
        "terminals": 0,
    }
    s3.put_object(Bucket=BUCKET, Key=f"hb/{name}/heartbeat.json", Body=json.dumps(doc).encode())


def _statuses(sm) -> dict[str, str]:
    pages = sm.get_paginator("list_notebook_instances").paginate(NameContains=PREFIX)
    return {n["NotebookInstanceName"]: n["NotebookInstanceStatus"] for p in pages for n in p["NotebookInstances"]}


def _reports(s3) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="reports/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def test_stops_exactly_the_idle_instances_and_reruns_change_nothing(cloud, dagbag, monkeypatch):
    settings = {"bucket": BUCKET, "heartbeat_prefix": "hb", "report_prefix": "reports"}
    conn = point_aws_default(cloud, monkeypatch, family="ops", settings=settings)
    sm, s3 = cloud.client("sagemaker"), cloud.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    names = {
        "idle": f"{PREFIX}idle-by-heartbeat",
        "busy": f"{PREFIX}busy-by-heartbeat",
        "silent": f"{PREFIX}no-heartbeat",
        "exempt": f"{PREFIX}idle-but-exempt",
        "stopped": f"{PREFIX}already-stopped",
    }
    for key, name in names.items():
        tags = [{"Key": "autostop", "Value": "False"}] if key == "exempt" else []
        sm.create_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=ROLE, Tags=tags)
    sm.stop_notebook_instance(NotebookInstanceName=names["stopped"])
    assert set(_statuses(sm).values()) == {"InService", "Stopped"}
    # Another team's instance: outside name_contains, so never looked at.
    sm.create_notebook_instance(NotebookInstanceName="other-team", InstanceType="ml.t3.medium", RoleArn=ROLE)

    as_of = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=4)
    _heartbeat(s3, names["idle"], as_of - timedelta(minutes=3), as_of - timedelta(hours=2))
    _heartbeat(s3, names["busy"], as_of - timedelta(minutes=3), as_of - timedelta(minutes=10))
    _heartbeat(s3, names["exempt"], as_of - timedelta(minutes=3), as_of - timedelta(hours=3))
    _heartbeat(s3, names["stopped"], as_of - timedelta(hours=3), as_of - timedelta(hours=3))

    dag = dagbag.dags["notebook_autostop"]
    first = dag.test(run_after=as_of, logical_date=as_of, run_conf=CONF)
    states = task_states(dag.dag_id, first.run_id)
    assert first.state == "success", states
    assert states == {
        "find_idle": "success",
        "record_report": "success",
        f"stop_idle[{names['silent']}]": "success",
        f"stop_idle[{names['idle']}]": "success",
    }
    expected = {
        names["idle"]: "Stopped",
        names["silent"]: "Stopped",
        names["busy"]: "InService",
        names["exempt"]: "InService",
        names["stopped"]: "Stopped",
    }
    assert _statuses(sm) == expected
    assert sm.describe_notebook_instance(NotebookInstanceName="other-team")["NotebookInstanceStatus"] == "InService"

    (key, raw), *others = _reports(s3).items()
    assert others == []
    assert key.startswith(f"reports/{as_of:%Y/%m/%d}/") and key.endswith(".json")
    report = json.loads(raw)
    assert report["run_id"] == first.run_id and report["as_of"] == as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert report["stop"] == sorted([names["idle"], names["silent"]])
    decisions = {d["instance"]: d for d in report["decisions"]}
    assert set(decisions) == {names["idle"], names["busy"], names["silent"], names["exempt"]}
    assert (decisions[names["idle"]]["reason"], decisions[names["idle"]]["activity_source"]) == ("idle", "heartbeat")
    assert decisions[names["idle"]]["idle_minutes"] == 120.0
    assert (decisions[names["busy"]]["action"], decisions[names["busy"]]["idle_minutes"]) == ("keep", 10.0)
    assert decisions[names["silent"]]["activity_source"] == "last_modified"
    assert decisions[names["silent"]]["heartbeat_checked_at"] is None
    assert 235 <= decisions[names["silent"]]["idle_minutes"] <= 245
    assert (decisions[names["exempt"]]["action"], decisions[names["exempt"]]["reason"]) == ("keep", "exempt")

    # The same run again (same run id): the same report, byte for byte, at the same key; nothing left to stop.
    again = dag.test(run_after=as_of, logical_date=as_of, run_conf=CONF)
    assert again.run_id == first.run_id
    states = task_states(dag.dag_id, again.run_id)
    assert again.state == "success", states
    assert states == {"find_idle": "success", "record_report": "success", "stop_idle": "skipped"}
    assert _reports(s3) == {key: raw}
    assert _statuses(sm) == expected

    # The next hour's run: the busy instance is still within its hour, so nothing new is stopped.
    later = as_of + timedelta(hours=1)
    _heartbeat(s3, names["busy"], later - timedelta(minutes=2), later - timedelta(minutes=30))
    nxt = dag.test(run_after=later, logical_date=later, run_conf=CONF)
    assert nxt.state == "success" and task_states(dag.dag_id, nxt.run_id)["stop_idle"] == "skipped"
    reports = _reports(s3)
    assert len(reports) == 2
    newest = json.loads(next(v for k, v in reports.items() if k != key))
    assert newest["stop"] == [] and [d["instance"] for d in newest["decisions"]] == sorted(
        [names["busy"], names["exempt"]]
    )
    assert _statuses(sm) == expected
    assert_least_privilege(cloud, conn, "notebook_autostop")
