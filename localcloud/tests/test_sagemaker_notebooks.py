"""localcloud's SageMaker notebook instances and lifecycle configurations: the state machine with botocore's
waiters (through the provider's hook), AWS's errors, listing, tags, and state across a restart.

Tests that look at a transient state (Pending, Stopping, ...) right after a call use a localcloud of their own
whose transitions take 2 s, so that a loaded machine cannot miss the state; the others use the shared session
localcloud and its default of 1 s."""

from __future__ import annotations

import base64
import time
import uuid

import pytest
from airflow_conn import point_aws_default
from botocore.exceptions import ClientError

from localcloud.process import LocalCloudProcess

ROLE = "arn:aws:iam::000000000000:role/notebooks"
ARN = "arn:aws:sagemaker:us-east-1:000000000000"
FAST = {"Delay": 1, "MaxAttempts": 20}


@pytest.fixture
def sm(localcloud):
    return localcloud.client("sagemaker")


@pytest.fixture(scope="module")
def slow_cloud(tmp_path_factory):
    server = LocalCloudProcess(
        tmp_path_factory.mktemp("notebooks") / "data", env={"LOCALCLOUD_NOTEBOOK_TRANSITION_SECONDS": "2"}
    ).start()
    yield server
    server.stop()


def _name(label: str) -> str:
    return f"nb-{label}-{uuid.uuid4().hex[:8]}"


def _create(sm, name: str, **extra) -> str:
    return sm.create_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=ROLE, **extra)[
        "NotebookInstanceArn"
    ]


def _status(sm, name: str) -> str:
    return sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"]


def _error(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def _script(text: str) -> list[dict[str, str]]:
    return [{"Content": base64.b64encode(text.encode()).decode()}]


def test_lifecycle_with_the_providers_waiters(slow_cloud, monkeypatch):
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    point_aws_default(slow_cloud, monkeypatch)
    sm = slow_cloud.client("sagemaker")
    hook_client = SageMakerHook(aws_conn_id="aws_default").conn
    name = _name("life")
    arn = _create(sm, name, VolumeSizeInGB=20)
    assert arn == f"{ARN}:notebook-instance/{name}"
    described = sm.describe_notebook_instance(NotebookInstanceName=name)
    assert described["NotebookInstanceStatus"] == "Pending"
    assert described["Url"] == f"{name}.notebook.us-east-1.sagemaker.aws"
    assert (described["VolumeSizeInGB"], described["DirectInternetAccess"], described["RootAccess"]) == (
        20,
        "Enabled",
        "Enabled",
    )
    created = described["CreationTime"]

    hook_client.get_waiter("notebook_instance_in_service").wait(NotebookInstanceName=name, WaiterConfig=FAST)
    started = sm.describe_notebook_instance(NotebookInstanceName=name)["LastModifiedTime"]
    assert started > created

    sm.stop_notebook_instance(NotebookInstanceName=name)
    assert _status(sm, name) == "Stopping"
    # What SageMakerStopNotebookOperator waits with (its own delay is AWS's 30 s; 1 s here).
    hook_client.get_waiter("notebook_instance_stopped").wait(NotebookInstanceName=name, WaiterConfig=FAST)
    stopped = sm.describe_notebook_instance(NotebookInstanceName=name)
    assert stopped["NotebookInstanceStatus"] == "Stopped"
    assert stopped["LastModifiedTime"] > started and stopped["CreationTime"] == created

    sm.start_notebook_instance(NotebookInstanceName=name)
    assert _status(sm, name) == "Pending"
    hook_client.get_waiter("notebook_instance_in_service").wait(NotebookInstanceName=name, WaiterConfig=FAST)
    sm.stop_notebook_instance(NotebookInstanceName=name)
    hook_client.get_waiter("notebook_instance_stopped").wait(NotebookInstanceName=name, WaiterConfig=FAST)

    sm.update_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.large")
    assert _status(sm, name) == "Updating"
    hook_client.get_waiter("notebook_instance_stopped").wait(NotebookInstanceName=name, WaiterConfig=FAST)
    assert sm.describe_notebook_instance(NotebookInstanceName=name)["InstanceType"] == "ml.t3.large"

    sm.delete_notebook_instance(NotebookInstanceName=name)
    assert _status(sm, name) == "Deleting"
    hook_client.get_waiter("notebook_instance_deleted").wait(NotebookInstanceName=name, WaiterConfig=FAST)
    assert name not in [n["NotebookInstanceName"] for n in sm.list_notebook_instances()["NotebookInstances"]]


def test_wrong_states_and_unknown_names_answer_aws_errors(slow_cloud):
    sm = slow_cloud.client("sagemaker")
    name = _name("err")
    arn = _create(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.stop_notebook_instance(NotebookInstanceName=name)
    assert _error(exc) == (
        "ValidationException",
        f"Status (Pending) not in ([InService]). Unable to transition to (Stopping) for Notebook Instance ({arn}).",
    )
    with pytest.raises(ClientError) as exc:
        _create(sm, name.upper())  # names differing only in case are one instance, as their ARNs are lower-case
    assert _error(exc) == ("ValidationException", f"Cannot create a duplicate Notebook Instance ({arn})")
    sm.get_waiter("notebook_instance_in_service").wait(NotebookInstanceName=name, WaiterConfig=FAST)
    for call, target, allowed in (
        (sm.start_notebook_instance, "Pending", "Stopped, Failed"),
        (sm.delete_notebook_instance, "Deleting", "Stopped, Failed"),
    ):
        with pytest.raises(ClientError) as exc:
            call(NotebookInstanceName=name)
        assert _error(exc) == (
            "ValidationException",
            f"Status (InService) not in ([{allowed}]). Unable to transition to ({target}) for Notebook Instance "
            f"({arn}).",
        )
    with pytest.raises(ClientError) as exc:
        sm.update_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.large")
    assert _error(exc)[0] == "ValidationException" and "Status (InService) not in ([Stopped, Failed])" in _error(exc)[1]
    sm.stop_notebook_instance(NotebookInstanceName=name)
    with pytest.raises(ClientError) as exc:
        sm.stop_notebook_instance(NotebookInstanceName=name)
    assert "Status (Stopping) not in ([InService])" in _error(exc)[1]

    missing = _name("missing")
    for call in (
        sm.describe_notebook_instance,
        sm.start_notebook_instance,
        sm.stop_notebook_instance,
        sm.delete_notebook_instance,
        sm.update_notebook_instance,
    ):
        with pytest.raises(ClientError) as exc:
            call(NotebookInstanceName=missing)
        assert _error(exc) == ("ValidationException", "RecordNotFound")
    with pytest.raises(ClientError) as exc:
        _create(sm, "bad_name")
    assert _error(exc)[0] == "ValidationException" and "notebookInstanceName" in _error(exc)[1]
    with pytest.raises(ClientError) as exc:
        _create(sm, _name("lc"), LifecycleConfigName="no-such-config")
    assert _error(exc)[0] == "ValidationException" and "does not exist" in _error(exc)[1]


def test_list_filters_sort_and_pagination(sm):
    tag = uuid.uuid4().hex[:6]
    names = [f"list-{tag}-{i}" for i in range(5)]
    config = f"lc-{tag}"
    sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=config, OnStart=_script("true"))
    for i, name in enumerate(names):
        _create(sm, name, **({"LifecycleConfigName": config} if i == 4 else {}))
        time.sleep(0.01)  # distinct CreationTimes
    sm.get_waiter("notebook_instance_in_service").wait(NotebookInstanceName=names[-1], WaiterConfig=FAST)
    sm.stop_notebook_instance(NotebookInstanceName=names[0])
    sm.get_waiter("notebook_instance_stopped").wait(NotebookInstanceName=names[0], WaiterConfig=FAST)

    def listed(**kwargs) -> list[str]:
        return [n["NotebookInstanceName"] for n in sm.list_notebook_instances(**kwargs)["NotebookInstances"]]

    contains = {"NameContains": f"LIST-{tag}"}  # case-insensitive
    assert listed(**contains) == names  # by Name, ascending, by default
    assert listed(**contains, SortBy="CreationTime", SortOrder="Descending") == names[::-1]
    assert listed(**contains, StatusEquals="Stopped") == [names[0]]
    assert listed(**contains, StatusEquals="InService") == names[1:]
    assert listed(**contains, SortBy="Status", SortOrder="Descending")[0] == names[0]
    assert listed(NotebookInstanceLifecycleConfigNameContains=config) == [names[4]]

    pages = list(sm.get_paginator("list_notebook_instances").paginate(**contains, PaginationConfig={"PageSize": 2}))
    assert [len(p["NotebookInstances"]) for p in pages] == [2, 2, 1]
    assert [n["NotebookInstanceName"] for p in pages for n in p["NotebookInstances"]] == names
    token = sm.list_notebook_instances(**contains, MaxResults=2)["NextToken"]
    with pytest.raises(ClientError) as exc:
        sm.list_notebook_instances(**contains, MaxResults=2, NextToken=token, SortBy="CreationTime")
    assert _error(exc)[0] == "ValidationException"
    summary = sm.list_notebook_instances(NameContains=names[4])["NotebookInstances"][0]
    assert summary["NotebookInstanceLifecycleConfigName"] == config
    assert summary["InstanceType"] == "ml.t3.medium" and summary["NotebookInstanceStatus"] == "InService"


def test_lifecycle_configurations(sm):
    name = f"lc-{uuid.uuid4().hex[:8]}"
    arn = f"{ARN}:notebook-instance-lifecycle-config/{name}"
    on_start = _script("#!/bin/bash\necho start\n")
    created = sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name, OnStart=on_start)
    assert created["NotebookInstanceLifecycleConfigArn"] == arn
    described = sm.describe_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name)
    assert (described["OnStart"], described["OnCreate"]) == (on_start, [])
    assert described["LastModifiedTime"] == described["CreationTime"]
    with pytest.raises(ClientError) as exc:
        sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name, OnStart=on_start)
    assert _error(exc) == (
        "ValidationException",
        f"Unable to create Notebook Instance Lifecycle Config {arn}. "
        "(Details: Notebook Instance Lifecycle Config already exists.)",
    )

    time.sleep(0.01)
    on_create = _script("echo create")
    sm.update_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name, OnCreate=on_create)
    updated = sm.describe_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name)
    assert (updated["OnStart"], updated["OnCreate"]) == (on_start, on_create)  # a hook left out is kept
    assert updated["LastModifiedTime"] > updated["CreationTime"] == described["CreationTime"]

    too_long = [{"Content": "A" * 16388}]
    with pytest.raises(ClientError) as exc:
        sm.update_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name, OnStart=too_long)
    assert _error(exc)[0] == "ValidationException"
    assert (
        "at 'onStart.1.member.content' failed to satisfy constraint: Member must have length less than or equal "
        "to 16384" in _error(exc)[1]
    )
    with pytest.raises(ClientError) as exc:
        sm.create_notebook_instance_lifecycle_config(
            NotebookInstanceLifecycleConfigName=f"{name}-x", OnStart=on_start + on_start
        )
    assert "Member must have length less than or equal to 1" in _error(exc)[1]
    with pytest.raises(ClientError) as exc:
        sm.create_notebook_instance_lifecycle_config(
            NotebookInstanceLifecycleConfigName=f"{name}-y", OnStart=[{"Content": "not base64!"}]
        )
    assert _error(exc)[0] == "ValidationException"

    listed = sm.list_notebook_instance_lifecycle_configs(NameContains=name)["NotebookInstanceLifecycleConfigs"]
    assert [c["NotebookInstanceLifecycleConfigName"] for c in listed] == [name]
    sm.delete_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name)
    for call, verb in (
        (sm.describe_notebook_instance_lifecycle_config, "describe"),
        (sm.delete_notebook_instance_lifecycle_config, "delete"),
    ):
        with pytest.raises(ClientError) as exc:
            call(NotebookInstanceLifecycleConfigName=name)
        assert _error(exc) == (
            "ValidationException",
            f"Unable to {verb} Notebook Instance Lifecycle Config '{arn}'. "
            "(Details: Notebook Instance Lifecycle Config does not exist.)",
        )


def test_attach_and_detach_a_lifecycle_configuration(sm):
    config = f"lc-{uuid.uuid4().hex[:8]}"
    sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=config, OnStart=_script("true"))
    name = _name("attach")
    _create(sm, name)
    sm.get_waiter("notebook_instance_in_service").wait(NotebookInstanceName=name, WaiterConfig=FAST)
    sm.stop_notebook_instance(NotebookInstanceName=name)
    sm.get_waiter("notebook_instance_stopped").wait(NotebookInstanceName=name, WaiterConfig=FAST)
    sm.update_notebook_instance(NotebookInstanceName=name, LifecycleConfigName=config)
    assert sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceLifecycleConfigName"] == config
    sm.get_waiter("notebook_instance_stopped").wait(NotebookInstanceName=name, WaiterConfig=FAST)
    sm.update_notebook_instance(NotebookInstanceName=name, DisassociateLifecycleConfig=True)
    assert "NotebookInstanceLifecycleConfigName" not in sm.describe_notebook_instance(NotebookInstanceName=name)


def test_tags_on_notebook_instances_and_configs(sm):
    name = _name("tags")
    arn = _create(sm, name, Tags=[{"Key": "autostop", "Value": "false"}, {"Key": "team", "Value": "a"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [
        {"Key": "autostop", "Value": "false"},
        {"Key": "team", "Value": "a"},
    ]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "b"}, {"Key": "cost", "Value": "ml"}])
    sm.delete_tags(ResourceArn=arn, TagKeys=["autostop"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "b"}, {"Key": "cost", "Value": "ml"}]
    config = f"lc-{uuid.uuid4().hex[:8]}"
    config_arn = sm.create_notebook_instance_lifecycle_config(
        NotebookInstanceLifecycleConfigName=config, OnStart=_script("true"), Tags=[{"Key": "k", "Value": "v"}]
    )["NotebookInstanceLifecycleConfigArn"]
    assert sm.list_tags(ResourceArn=config_arn)["Tags"] == [{"Key": "k", "Value": "v"}]

    with pytest.raises(ClientError) as exc:
        sm.list_tags(ResourceArn=f"{ARN}:notebook-instance/{_name('gone')}")
    assert _error(exc) == ("ValidationException", "RecordNotFound")
    # Tags of other SageMaker resources are not kept by localcloud: an honest 501, not an empty list.
    with pytest.raises(ClientError) as exc:
        sm.list_tags(ResourceArn=f"{ARN}:model/some-model")
    assert exc.value.response["Error"]["Code"] == "NotImplemented"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_state_and_transitions_survive_a_restart(fresh_localcloud):
    server = fresh_localcloud
    sm = server.client("sagemaker")
    config = "persisted-config"
    on_start = _script("echo persisted")
    sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=config, OnStart=on_start)
    _create(sm, "persisted", LifecycleConfigName=config, Tags=[{"Key": "autostop", "Value": "false"}])
    _create(sm, "in-flight")
    sm.get_waiter("notebook_instance_in_service").wait(NotebookInstanceName="in-flight", WaiterConfig=FAST)
    sm.stop_notebook_instance(NotebookInstanceName="in-flight")
    before = sm.describe_notebook_instance(NotebookInstanceName="persisted")

    server.stop()
    server.start()
    sm = server.client("sagemaker")
    # The stop begun before the restart still completes after it.
    assert _status(sm, "in-flight") in ("Stopping", "Stopped")
    sm.get_waiter("notebook_instance_stopped").wait(NotebookInstanceName="in-flight", WaiterConfig=FAST)
    after = sm.describe_notebook_instance(NotebookInstanceName="persisted")
    assert after["NotebookInstanceStatus"] == "InService"
    assert after["CreationTime"] == before["CreationTime"]
    assert after["NotebookInstanceLifecycleConfigName"] == config
    assert sm.list_tags(ResourceArn=after["NotebookInstanceArn"])["Tags"] == [{"Key": "autostop", "Value": "false"}]
    kept = sm.describe_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=config)
    assert kept["OnStart"] == on_start


def test_transition_time_comes_from_the_environment(tmp_path):
    server = LocalCloudProcess(tmp_path / "data", env={"LOCALCLOUD_NOTEBOOK_TRANSITION_SECONDS": "0"}).start()
    try:
        sm = server.client("sagemaker")
        _create(sm, "instant")
        assert _status(sm, "instant") == "InService"
        sm.stop_notebook_instance(NotebookInstanceName="instant")
        assert _status(sm, "instant") == "Stopped"
    finally:
        server.stop()
