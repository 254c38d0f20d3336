"""The lifecycle configuration generator against localcloud: render, create, no-op, update, attach, and its CLI."""

from __future__ import annotations

import base64
import subprocess
import uuid

import pytest

from include.ops.notebooks import lifecycle
from tests.conftest import point_aws_default

FAST = {"Delay": 1, "MaxAttempts": 20}


@pytest.fixture
def sm(localcloud):
    return localcloud.client("sagemaker")


def _on_start(sm, name: str) -> str:
    described = sm.describe_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name)
    return base64.b64decode(described["OnStart"][0]["Content"]).decode()


def test_render_sets_the_defaults_and_stays_valid_bash(tmp_path):
    script = lifecycle.render_on_start("ops-bucket", "/team-a/heartbeats/", 10)
    assert 'HEARTBEAT_BUCKET="${HEARTBEAT_BUCKET:-ops-bucket}"' in script
    assert 'HEARTBEAT_PREFIX="${HEARTBEAT_PREFIX:-team-a/heartbeats}"' in script
    assert 'HEARTBEAT_INTERVAL_MINUTES="${HEARTBEAT_INTERVAL_MINUTES:-10}"' in script
    assert lifecycle.render_on_start("ops-bucket", "/team-a/heartbeats/", 10) == script
    rendered = tmp_path / "on-start.sh"
    rendered.write_text(script)
    subprocess.run(["bash", "-n", str(rendered)], check=True)
    assert len(lifecycle.encode_hook(script)) <= lifecycle.MAX_CONTENT_CHARS


@pytest.mark.parametrize(
    ("bucket", "prefix", "interval"),
    [
        ("Bad_Bucket", "hb", 5),
        ("ok-bucket", "hb with space", 5),
        ("ok-bucket", "a//b", 5),
        ("ok-bucket", "$(reboot)", 5),
        ("ok-bucket", "hb", 0),
        ("ok-bucket", "hb", 60),
    ],
)
def test_render_refuses_what_cannot_go_into_the_script(bucket, prefix, interval):
    with pytest.raises(ValueError):
        lifecycle.render_on_start(bucket, prefix, interval)


def test_content_over_aws_limit_is_refused_before_any_call():
    with pytest.raises(ValueError, match="16384"):
        lifecycle.encode_hook("#!/bin/bash\n" + "echo padding\n" * 1300)


def test_create_then_nothing_then_update(sm):
    name = f"heartbeat-{uuid.uuid4().hex[:8]}"
    script = lifecycle.render_on_start("ops-bucket")
    assert lifecycle.ensure_lifecycle_config(sm, name, script) == "created"
    assert _on_start(sm, name) == script
    first = sm.describe_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name)

    assert lifecycle.ensure_lifecycle_config(sm, name, script) == "unchanged"
    second = sm.describe_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name)
    assert second["LastModifiedTime"] == first["LastModifiedTime"]

    changed = lifecycle.render_on_start("ops-bucket", interval_minutes=15)
    assert lifecycle.ensure_lifecycle_config(sm, name, changed) == "updated"
    assert _on_start(sm, name) == changed
    assert lifecycle.ensure_lifecycle_config(sm, name, changed) == "unchanged"


def test_attach_only_to_a_stopped_instance(sm):
    config = f"heartbeat-{uuid.uuid4().hex[:8]}"
    lifecycle.ensure_lifecycle_config(sm, config, lifecycle.render_on_start("ops-bucket"))
    instance = f"attach-{uuid.uuid4().hex[:8]}"
    sm.create_notebook_instance(
        NotebookInstanceName=instance, InstanceType="ml.t3.medium", RoleArn="arn:aws:iam::000000000000:role/nb"
    )
    sm.get_waiter("notebook_instance_in_service").wait(NotebookInstanceName=instance, WaiterConfig=FAST)
    with pytest.raises(RuntimeError, match="is InService; stop it"):
        lifecycle.attach(sm, instance, config)
    sm.stop_notebook_instance(NotebookInstanceName=instance)
    sm.get_waiter("notebook_instance_stopped").wait(NotebookInstanceName=instance, WaiterConfig=FAST)
    assert lifecycle.attach(sm, instance, config) == "attached"
    assert lifecycle.attach(sm, instance, config) == "unchanged"


def test_command_line(localcloud, sm, monkeypatch, capsys):
    point_aws_default(localcloud, monkeypatch)
    assert lifecycle.main(["render", "--bucket", "cli-bucket", "--prefix", "hb"]) == 0
    assert capsys.readouterr().out == lifecycle.render_on_start("cli-bucket", "hb")

    name = f"cli-{uuid.uuid4().hex[:8]}"
    args = ["apply", "--name", name, "--bucket", "cli-bucket", "--prefix", "hb"]
    assert lifecycle.main(args) == 0
    # Airflow's own logging may share stdout; the result is the last line.
    assert capsys.readouterr().out.splitlines()[-1] == f"lifecycle config {name}: created"
    assert lifecycle.main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"lifecycle config {name}: unchanged"
    assert _on_start(sm, name) == lifecycle.render_on_start("cli-bucket", "hb")
