"""The idle-stop decision on hand-made instances and heartbeats, and the report's key and bytes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from include.ops.notebooks import autostop

AS_OF = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def _instance(name: str = "nb", started: datetime = AS_OF - timedelta(hours=5)) -> dict:
    return {"NotebookInstanceName": name, "LastModifiedTime": started}


def _heartbeat(last: datetime | None, checked: datetime = AS_OF - timedelta(minutes=4)) -> autostop.Heartbeat:
    return autostop.Heartbeat(checked_at=checked, last_activity=last, kernels=1, busy_kernels=0, terminals=0)


def test_heartbeat_activity_decides_when_newer_than_the_start():
    idle = autostop.decide(_instance(), [], _heartbeat(AS_OF - timedelta(minutes=61)), AS_OF, 60)
    assert (idle.action, idle.reason, idle.activity_source, idle.idle_minutes) == ("stop", "idle", "heartbeat", 61.0)
    busy = autostop.decide(_instance(), [], _heartbeat(AS_OF - timedelta(minutes=59)), AS_OF, 60)
    assert (busy.action, busy.reason) == ("keep", "active")
    # Exactly the threshold is not "longer than" it.
    edge = autostop.decide(_instance(), [], _heartbeat(AS_OF - timedelta(minutes=60)), AS_OF, 60)
    assert edge.action == "keep"


def test_a_heartbeat_from_before_the_last_start_does_not_count():
    # Restarted 10 minutes ago; the heartbeat still in S3 is from the session before the stop.
    instance = _instance(started=AS_OF - timedelta(minutes=10))
    old = _heartbeat(AS_OF - timedelta(hours=6), checked=AS_OF - timedelta(hours=5))
    decision = autostop.decide(instance, [], old, AS_OF, 60)
    assert (decision.action, decision.activity_source, decision.idle_minutes) == ("keep", "last_modified", 10.0)
    assert decision.heartbeat_checked_at == "2025-06-02T07:00:00Z"


def test_without_heartbeat_or_activity_the_start_time_decides():
    assert autostop.decide(_instance(), [], None, AS_OF, 60).activity_source == "last_modified"
    assert autostop.decide(_instance(), [], _heartbeat(None), AS_OF, 60).idle_minutes == 300.0


@pytest.mark.parametrize(
    ("tags", "exempt"),
    [
        ([{"Key": "autostop", "Value": "false"}], True),
        ([{"Key": "autostop", "Value": " FALSE "}], True),
        ([{"Key": "autostop", "Value": "true"}], False),
        ([{"Key": "AutoStop", "Value": "false"}], False),
        ([{"Key": "team", "Value": "false"}], False),
        ([], False),
    ],
)
def test_only_autostop_false_exempts(tags, exempt):
    decision = autostop.decide(_instance(), tags, None, AS_OF, 60)
    assert (decision.action, decision.reason) == (("keep", "exempt") if exempt else ("stop", "idle"))


def test_heartbeat_parsing():
    doc = {
        "schema_version": 1,
        "instance": "nb",
        "checked_at": "2025-06-02T11:55:00Z",
        "last_activity": "2025-06-02T11:00:00+01:00",
        "kernels": 2,
        "busy_kernels": 0,
        "terminals": 1,
    }
    beat = autostop.parse_heartbeat(json.dumps(doc).encode())
    assert beat.last_activity == datetime(2025, 6, 2, 10, 0, tzinfo=UTC)
    assert (beat.kernels, beat.terminals) == (2, 1)
    assert autostop.parse_heartbeat(json.dumps({**doc, "last_activity": None}).encode()).last_activity is None
    for bad in (b"{not json", b"[]", json.dumps({**doc, "schema_version": 2}).encode(), b'{"schema_version": 1}'):
        with pytest.raises(ValueError):
            autostop.parse_heartbeat(bad)


def test_report_key_and_bytes_are_deterministic():
    key = autostop.report_key("/notebooks/autostop/", "scheduled__2025-06-02T12:00:00+00:00", AS_OF)
    assert key == "notebooks/autostop/2025/06/02/scheduled__2025-06-02T12_00_00_00_00.json"
    report = autostop.build_report(
        dag_id="notebook_autostop",
        run_id="r",
        as_of=AS_OF,
        idle_minutes=60,
        heartbeats="s3://b/hb/",
        decisions=[{"instance": "a", "action": "stop"}, {"instance": "b", "action": "keep"}],
    )
    assert report["stop"] == ["a"] and report["as_of"] == "2025-06-02T12:00:00Z"
    assert autostop.report_bytes(report) == autostop.report_bytes(json.loads(autostop.report_bytes(report)))


def test_a_broken_heartbeat_is_reported_and_the_start_time_used(localcloud):
    s3, sm = localcloud.client("s3"), localcloud.client("sagemaker")
    bucket = f"hb-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    name = f"broken-{uuid.uuid4().hex[:6]}"
    s3.put_object(Bucket=bucket, Key=f"hb/{name}/heartbeat.json", Body=b"{truncated")
    beat, error = autostop.read_heartbeat(s3, bucket, "hb", name)
    assert beat is None and error.startswith(f"s3://{bucket}/hb/{name}/heartbeat.json: not JSON")
    assert autostop.read_heartbeat(s3, bucket, "hb", "no-such-instance") == (None, None)

    sm.create_notebook_instance(
        NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn="arn:aws:iam::000000000000:role/nb"
    )
    sm.get_waiter("notebook_instance_in_service").wait(NotebookInstanceName=name, WaiterConfig={"Delay": 1})
    decisions, to_stop = autostop.assess(
        sm,
        s3,
        bucket=bucket,
        heartbeat_prefix="hb",
        as_of=datetime.now(UTC) + timedelta(hours=2),
        idle_minutes=60,
        name_contains=name,
    )
    assert to_stop == [name]
    (decision,) = decisions
    assert decision["activity_source"] == "last_modified" and "not JSON" in decision["heartbeat_error"]


def test_an_earlier_report_that_cannot_be_read_fails_instead_of_reading_as_none(localcloud):
    s3 = localcloud.client("s3")
    bucket = f"rep-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    assert autostop.read_report(s3, bucket, "reports/none.json") is None
    with pytest.raises(s3.exceptions.NoSuchBucket):
        autostop.read_report(s3, f"{bucket}-gone", "reports/none.json")
