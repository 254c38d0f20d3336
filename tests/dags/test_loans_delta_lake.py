"""e2e: loans_delta_lake with dag.test(): every step a real spark-submit (local master) on a file:// warehouse."""

from __future__ import annotations

import copy
import json
import os
import sys
import uuid
from pathlib import Path

import pytest

from tests.dags.test_train_custom_labels import _states

pytest.importorskip("pyspark")
pytestmark = pytest.mark.usefixtures("airflow_db")

ROWS = 300
BAD_RATE = 0.04
N_UPDATES = 12
N_NEW = 8


@pytest.fixture
def spark_env(monkeypatch):
    # spark-submit comes with pyspark in the venv; Airflow finds it on PATH (the Makefile puts .venv/bin first).
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))


def _xcoms(dag_id: str, run_id: str) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.dag_id == dag_id, XComModel.run_id == run_id).all()
        return {row.task_id: row.value for row in rows if row.key == "return_value"}


def test_the_whole_pipeline_then_reruns_of_its_tasks(dagbag, spark_env, tmp_path):
    from airflow.exceptions import AirflowException
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    dag = dagbag.dags["loans_delta_lake"]
    conf = {
        "warehouse": f"file://{tmp_path}/lake",
        "rows": ROWS,
        "bad_rate": BAD_RATE,
        "seed": 3,
        "batch_updates": N_UPDATES,
        "batch_new": N_NEW,
        "zorder_by": "addr_state",
    }
    run = dag.test(run_conf=conf)
    states = _states(dag.dag_id, run.run_id)
    assert run.state == "success", states
    x = {k: json.loads(v) if isinstance(v, str) else v for k, v in _xcoms(dag.dag_id, run.run_id).items()}

    bad = round(ROWS * BAD_RATE)
    ingest = x["ingest"]
    assert (ingest["rows_in"], ingest["rows_written"], ingest["rows_quarantined"]) == (ROWS, ROWS - bad, bad)
    # Versions pass from step to step: each builds on the one before.
    assert [x[t]["version"] for t in ("ingest", "evolve", "update", "upsert")] == [0, 1, 3, 4]
    assert x["query"]["is_delta"] is True and x["query"]["history"][0]["step"] == "ingest"
    assert (x["upsert"]["inserted"], x["upsert"]["updated"]) == (N_NEW, N_UPDATES)
    diff = x["time_travel"]["diff"]
    assert (diff["added"], diff["removed"], diff["changed"]) == (N_NEW, 0, N_UPDATES)
    report = Path(x["time_travel"]["report"].removeprefix("file://"))
    assert json.loads(report.read_text())["diff"]["added"] == N_NEW
    assert x["maintenance"]["optimize"]["zorder_by"] == ["addr_state"]
    assert x["maintenance"]["vacuum"]["files_deleted"] == 0

    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_run_id == run.run_id).all()
        assert len(events) == 1
        extra = events[0].extra
    assert extra["table"] == f"file://{tmp_path}/lake/loans"
    assert extra["versions"]["upsert"] == 4 and extra["quarantined"] == bad
    assert extra["diff"]["added"] == N_NEW

    # Every commit of the run names it.
    history = x["query"]["history"]
    assert {c["run"] for c in history} == {f"loans_delta_lake/{run.run_id}"}

    # Rerunning tasks of the same run (a retry, a clear) changes nothing: the job recognises the run's commits.
    version = x["maintenance"]["version"]
    for task_id, args in (
        (
            "ingest",
            ["--source", x["prepare_sources"]["source"], "--quarantine", f"file://{tmp_path}/lake/loans_quarantine"],
        ),
        ("update", ["--expect-version", str(x["evolve"]["version"])]),
    ):
        task = _rendered(dag.get_task(task_id), f"file://{tmp_path}/lake", args)
        again = task.execute({"run_id": run.run_id})
        assert again["version"] == x[task_id]["version"] and again["skipped"] is True, again
    # Another run that last saw version 0 is refused instead of building on a table it did not see.
    stale = _rendered(dag.get_task("evolve"), f"file://{tmp_path}/lake", ["--expect-version", "0"])
    # The hook's exception quotes the end of spark-submit's output: the job's own error.
    with pytest.raises(AirflowException, match="ConcurrentWriteError"):
        stale.execute({"run_id": "manual__someone-else"})
    assert _history_length(tmp_path / "lake" / "loans") == version + 1


def _history_length(table: Path) -> int:
    return len(list((table / "_delta_log").glob("*.json")))


def _rendered(task, warehouse: str, args: list[str]):
    """A copy of a DAG task with its templated fields filled in as the run had them."""
    task = copy.copy(task)
    task.warehouse, task.table, task.step_args = warehouse, f"{warehouse}/loans", args
    return task


def test_a_step_on_s3_reads_and_writes_through_s3a_with_the_connections_credentials(
    localcloud, spark_env, monkeypatch, tmp_path
):
    """The same operator with an s3:// warehouse: hadoop-aws, the endpoint and the keys all come from aws_default,
    which assumes the lakehouse role: S3A gets that session's temporary keys and token."""
    from airflow.sdk import DAG

    from include.lakehouse.operators import DeltaSparkSubmitOperator

    s3, bucket, warehouse, inputs, conn = _lake_on_s3(localcloud, monkeypatch, rows=60)
    with DAG("loans_delta_lake_on_s3", schedule=None):
        op = DeltaSparkSubmitOperator(
            task_id="ingest",
            step="ingest",
            table=f"{warehouse}/loans",
            warehouse=warehouse,
            step_args=["--source", inputs["source"], "--quarantine", f"{warehouse}/loans_quarantine"],
            conn_id="spark_default",
        )
    result = op.execute({"run_id": "manual__s3a"})
    assert (result["rows_in"], result["rows_written"], result["rows_quarantined"]) == (60, 57, 3)
    assert result["table"] == f"s3a://{bucket}/lake/loans"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="lake/loans/_delta_log/")["Contents"]]
    assert "lake/loans/_delta_log/00000000000000000000.json" in keys
    # The role session's keys and token reached spark-submit through its environment, not its command line, and
    # S3A's credentials provider reads all three from there.
    env = op.env_vars
    assert env["AWS_ACCESS_KEY_ID"] != localcloud.access_key and env["AWS_SESSION_TOKEN"]
    command = " ".join(op._hook._build_spark_submit_command(op.application))
    assert env["AWS_SECRET_ACCESS_KEY"] not in command and env["AWS_SESSION_TOKEN"] not in command
    assert op.conf["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith("EnvironmentVariableCredentialsProvider")
    # Spark's S3A calls were the role's: its statements for this engine allow them, and each is used.
    _assert_least_privilege(localcloud, conn, "spark-submit")


def _lake_on_s3(localcloud, monkeypatch, rows: int, **settings: str) -> tuple:
    """A fresh bucket with a warehouse in it, aws_default assuming the lakehouse role on it, and inputs (5% bad rows)
    generated as prepare_sources does, with the role. Returns the admin S3 client (for checks) and the connection."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from include.lakehouse.sources import prepare
    from tests.conftest import point_aws_default

    s3 = localcloud.client("s3")
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    warehouse = f"s3://{bucket}/lake"
    conn = point_aws_default(
        localcloud,
        monkeypatch,
        family="lakehouse",
        settings={"warehouse_bucket": bucket, "warehouse_prefix": "lake", **settings},
    )
    role_s3 = S3Hook(aws_conn_id="aws_default").get_conn()
    inputs = prepare(warehouse, rows=rows, bad_rate=0.05, seed=2, n_updates=2, n_new=2, s3=role_s3)
    return s3, bucket, warehouse, inputs, conn


def _assert_least_privilege(localcloud, conn: dict, engine: str) -> None:
    """``assert_least_privilege`` held to one engine's statements: the DAG's are both engines' (a deployment runs
    one), so one engine's run uses only its share of them."""
    from include.iam.families.lakehouse import ENGINE_GRANTS
    from tests.conftest import assert_least_privilege

    assert_least_privilege(localcloud, conn, "loans_delta_lake", {g.sid for g in ENGINE_GRANTS[engine]})


class _TaskInstance:
    """What EmrServerlessStartJobOperator touches of ``context["ti"]`` (its console links)."""

    def xcom_push(self, key: str, value: object) -> None:
        pass


def test_a_step_on_emr_serverless_runs_the_same_job(localcloud, monkeypatch):
    """The EMR Serverless engine: the job file staged on S3, one step run by localcloud's EMR Serverless."""
    from airflow.providers.amazon.aws.hooks.emr import EmrServerlessHook
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import DAG

    from include.lakehouse.operators import DeltaEmrServerlessOperator
    from include.lakehouse.sources import stage_job
    from tests.conftest import point_aws_default

    point_aws_default(localcloud, monkeypatch)  # the application is the deployment's: made with admin keys
    app_id = localcloud.client("emr-serverless").create_application(
        name="lakehouse", releaseLabel="emr-7.5.0", type="SPARK"
    )["applicationId"]
    # As on AWS, an application is CREATING for a moment and cannot be started before it is CREATED.
    emr = EmrServerlessHook(aws_conn_id="aws_default")
    emr.get_waiter("serverless_app_created").wait(applicationId=app_id, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    # Stopped, as an idle application auto-stops: the step starts it (and waits) before submitting its job.
    emr.conn.stop_application(applicationId=app_id)
    emr.get_waiter("serverless_app_stopped").wait(applicationId=app_id, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    role = "arn:aws:iam::000000000000:role/emr-serverless-lakehouse"
    s3, bucket, warehouse, inputs, conn = _lake_on_s3(
        localcloud, monkeypatch, rows=40, emr_application_id=app_id, emr_role_arn=role
    )
    with DAG("loans_delta_lake_on_emr", schedule=None):
        op = DeltaEmrServerlessOperator(
            task_id="ingest",
            step="ingest",
            table=f"{warehouse}/loans",
            warehouse=warehouse,
            entry_point=stage_job(warehouse, S3Hook(aws_conn_id="aws_default").get_conn()),  # as stage_job_code
            step_args=["--source", inputs["source"], "--quarantine", f"{warehouse}/loans_quarantine"],
            application_id=app_id,
            execution_role_arn=role,
            waiter_delay=2,
            waiter_max_attempts=300,
        )
    result = op.execute({"run_id": "manual__emr", "ti": _TaskInstance()})
    assert (result["rows_in"], result["rows_written"], result["rows_quarantined"]) == (40, 38, 2)
    assert result["table"] == f"s3://{bucket}/lake/loans"
    assert op.job_driver["sparkSubmit"]["entryPoint"].startswith(f"s3://{bucket}/lake/_code/loans_delta-")
    log = s3.list_objects_v2(Bucket=bucket, Prefix="lake/loans/_delta_log/")["Contents"]
    assert any(o["Key"].endswith("00000000000000000000.json") for o in log)
    _assert_least_privilege(localcloud, conn, "emr-serverless")


def test_the_emr_serverless_engine_is_wired_by_the_deployment(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from include.lakehouse.operators import DeltaEmrServerlessOperator

    monkeypatch.setenv("LAKEHOUSE_SPARK_ENGINE", "emr-serverless")
    monkeypatch.setenv("LAKEHOUSE_EMR_APPLICATION_ID", "00abcdef12345678")
    monkeypatch.setenv("LAKEHOUSE_EMR_ROLE_ARN", "arn:aws:iam::123456789012:role/lakehouse")
    bag = DagBag(dag_folder=str(Path(__file__).parents[2] / "dags" / "lakehouse" / "loans_delta_lake.py"))
    assert not bag.import_errors
    dag = bag.dags["loans_delta_lake"]
    steps = [t for t in dag.tasks if isinstance(t, DeltaEmrServerlessOperator)]
    assert {t.task_id for t in steps} == {"ingest", "query", "evolve", "update", "upsert", "time_travel", "maintenance"}
    assert all(t.application_id == "00abcdef12345678" for t in steps)
    assert "stage_job_code" in dag.get_task("ingest").upstream_task_ids
