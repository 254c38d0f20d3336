"""localcloud's EMR Serverless: boto3 and the Amazon provider's operators against applications whose Spark job runs
really run (spark-submit on this machine, S3A on localcloud's S3).

The Spark tests need Java and, on a fresh machine, download hadoop-aws and the AWS SDK bundle once (~690 MB, cached
in ~/.ivy2.5.2). A Spark job run takes 10-30 s here, so only one of the tests starts a SparkSession; the others'
job runs are plain Python scripts, still run by spark-submit."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import signal
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from airflow_conn import point_aws_default
from botocore.exceptions import ClientError

from localcloud import jobprocs
from localcloud.core import AwsError
from localcloud.services.emr_serverless import constraints, releases, submit

ROLE = "arn:aws:iam::000000000000:role/EMRServerlessJobRole"
RELEASE = "emr-7.5.0"
TERMINAL = ("SUCCESS", "FAILED", "CANCELLED")

CSV_TO_PARQUET = b"""
import sys
from pyspark.sql import SparkSession, functions as F

source, target, table = sys.argv[1], sys.argv[2], sys.argv[3]
spark = SparkSession.builder.appName("csv-to-parquet").getOrCreate()
frame = spark.read.csv(source, header=True, inferSchema=True)
frame.withColumn("amount_x2", F.col("amount") * 2).write.mode("overwrite").parquet(target)
back = spark.read.parquet(target)
print(f"rows={back.count()} total={back.agg(F.sum('amount_x2')).first()[0]}")
frame.write.format("delta").mode("overwrite").save(table)
print(f"delta rows={spark.read.format('delta').load(table).count()}")
spark.stop()
"""
# How EMR Serverless jobs load the Delta Lake jars of the EMR image (localcloud maps them to the Maven package).
EMR_DELTA = (
    "--conf spark.jars=/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar "
    "--conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension "
    "--conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog"
)
FAILING = b"""
print("about to fail", flush=True)
raise ValueError("boom from the job")
"""
SLEEPING = b"""
import time
print("sleeping", flush=True)
time.sleep(600)
"""
# The operators' test needs a run that succeeds, not Spark's start-up time: the CSV-to-Parquet test runs Spark.
HELLO = b"""
import sys
print("hello from", sys.argv[1])
"""


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def _status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _bucket(s3) -> str:
    name = f"emr-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _script(s3, bucket: str, body: bytes, name: str = "job.py") -> str:
    key = f"code/{uuid.uuid4().hex[:8]}/{name}"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def _application(emr, **extra) -> str:
    return emr.create_application(name=f"app-{uuid.uuid4().hex[:6]}", releaseLabel=RELEASE, type="SPARK", **extra)[
        "applicationId"
    ]


def _start(
    emr, app_id: str, entry_point: str, *args: str, log_uri: str | None = None, parameters: str = "", **extra
) -> str:
    overrides = {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": log_uri}}} if log_uri else {}
    driver = {"entryPoint": entry_point, "entryPointArguments": list(args)}
    if parameters:
        driver["sparkSubmitParameters"] = parameters
    return emr.start_job_run(
        applicationId=app_id,
        executionRoleArn=ROLE,
        jobDriver={"sparkSubmit": driver},
        configurationOverrides=overrides,
        **extra,
    )["jobRunId"]


def _wait_job(emr, app_id: str, job_id: str, states=TERMINAL, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = emr.get_job_run(applicationId=app_id, jobRunId=job_id)["jobRun"]
        if run["state"] in states:
            return run
        time.sleep(0.25)
    raise AssertionError(f"job run {job_id} still {run['state']} after {timeout}s")


def _processes(job_dir: Path) -> list[int]:
    """Processes working on a job run: its driver, spark-submit's JVM, the PySpark driver."""
    needle = str(job_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _until(condition, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s")
        time.sleep(0.2)


def _keys(s3, bucket: str, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def _log(s3, log_uri: str, app_id: str, job_id: str, name: str) -> str:
    bucket, _, prefix = log_uri[len("s3://") :].partition("/")
    key = f"{prefix.rstrip('/')}/applications/{app_id}/jobs/{job_id}/SPARK_DRIVER/{name}.gz"
    return gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).decode()


def _trigger_event(server, trigger_class, **kwargs):
    """The first event of a provider trigger (deferrable mode), run to completion here."""
    trigger = trigger_class(waiter_delay=1, waiter_max_attempts=120, aws_conn_id="aws_default", **kwargs)

    async def first():
        async for event in trigger.run():
            return event

    return asyncio.run(first())


@pytest.fixture
def emr(localcloud):
    return localcloud.client("emr-serverless")


# -- the wire: validation as AWS's front end does it ------------------------------------------------------------
def test_missing_execution_role_is_a_validation_exception(localcloud, s3, emr):
    raw = localcloud.client("emr-serverless", parameter_validation=False)
    app_id = _application(emr)
    with pytest.raises(ClientError) as exc:
        raw.start_job_run(
            applicationId=app_id, clientToken="t1", jobDriver={"sparkSubmit": {"entryPoint": "s3://b/k.py"}}
        )
    assert (_code(exc), _status(exc)) == ("ValidationException", 400)
    assert "executionRoleArn" in exc.value.response["Error"]["Message"]


def test_constraints_botocore_leaves_to_the_service(emr):
    app_id = _application(emr)
    with pytest.raises(ClientError) as exc:  # botocore checks types and presence, not patterns
        emr.start_job_run(
            applicationId=app_id,
            executionRoleArn="arn:aws:iam::0:role/EMRJob",
            jobDriver={"sparkSubmit": {"entryPoint": "s3://b/k"}},
        )
    assert _code(exc) == "ValidationException"
    assert "Value 'arn:aws:iam::0:role/EMRJob' at 'executionRoleArn' failed to satisfy constraint" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        emr.list_job_runs(applicationId=app_id, states=["RUNNING", "DONE"])
    assert _code(exc) == "ValidationException" and "enum value set" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        emr.get_application(applicationId="NotAnId")
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        emr.get_application(applicationId="00doesnotexist00")
    assert (_code(exc), _status(exc)) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as exc:
        emr.create_application(releaseLabel=RELEASE, type="PRESTO")
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        emr.create_application(releaseLabel="emr-9.99.0", type="SPARK")
    assert _code(exc) == "ValidationException" and "emr-9.99.0" in str(exc.value)
    # A release EMR Serverless has but localcloud does not stand in for (Spark 3.4) is not run on another Spark.
    with pytest.raises(ClientError) as exc:
        emr.create_application(releaseLabel="emr-6.15.0", type="SPARK")
    assert (_code(exc), _status(exc)) == ("NotImplemented", 501) and "emr-6.15.0" in str(exc.value)


def test_hive_job_drivers_and_unparsable_parameters_are_refused(emr):
    app_id = _application(emr)
    with pytest.raises(ClientError) as exc:
        emr.start_job_run(applicationId=app_id, executionRoleArn=ROLE, jobDriver={"hive": {"query": "SELECT 1"}})
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        emr.start_job_run(
            applicationId=app_id,
            executionRoleArn=ROLE,
            jobDriver={"sparkSubmit": {"entryPoint": "s3://b/k.py", "sparkSubmitParameters": "--conf 'unclosed"}},
        )
    assert _code(exc) == "ValidationException"


# -- applications ------------------------------------------------------------------------------------------------
def test_application_lifecycle_with_the_providers_waiters(localcloud, emr, monkeypatch):
    from airflow.providers.amazon.aws.hooks.emr import EmrServerlessHook
    from airflow.providers.amazon.aws.triggers.emr import EmrServerlessStartApplicationTrigger

    point_aws_default(localcloud, monkeypatch)
    hook = EmrServerlessHook(aws_conn_id="aws_default")
    fast = {"Delay": 1, "MaxAttempts": 30}
    token = uuid.uuid4().hex
    created = emr.create_application(name="lifecycle", releaseLabel=RELEASE, type="SPARK", clientToken=token)
    app_id = created["applicationId"]
    assert created["arn"] == f"arn:aws:emr-serverless:us-east-1:000000000000:/applications/{app_id}"
    # clientToken: the same request is the same application; another request with it is a conflict.
    again = emr.create_application(name="lifecycle", releaseLabel=RELEASE, type="SPARK", clientToken=token)
    assert again["applicationId"] == app_id
    with pytest.raises(ClientError) as exc:
        emr.create_application(name="other", releaseLabel=RELEASE, type="SPARK", clientToken=token)
    assert (_code(exc), _status(exc)) == ("ConflictException", 409)

    assert emr.get_application(applicationId=app_id)["application"]["state"] == "CREATING"
    hook.get_waiter("serverless_app_created").wait(applicationId=app_id, WaiterConfig=fast)
    app = emr.get_application(applicationId=app_id)["application"]
    assert app["autoStartConfiguration"] == {"enabled": True}
    assert app["autoStopConfiguration"] == {"enabled": True, "idleTimeoutMinutes": 15}
    emr.start_application(applicationId=app_id)
    assert emr.get_application(applicationId=app_id)["application"]["state"] == "STARTING"
    event = _trigger_event(localcloud, EmrServerlessStartApplicationTrigger, application_id=app_id)
    assert event.payload == {"status": "success", "application_id": app_id}
    with pytest.raises(ClientError) as exc:
        emr.delete_application(applicationId=app_id)
    assert _code(exc) == "ValidationException"
    emr.stop_application(applicationId=app_id)
    hook.get_waiter("serverless_app_stopped").wait(applicationId=app_id, WaiterConfig=fast)
    emr.delete_application(applicationId=app_id)
    hook.get_waiter("serverless_app_terminated").wait(applicationId=app_id, WaiterConfig=fast)
    listed = emr.list_applications(states=["TERMINATED"])["applications"]
    assert app_id in [a["id"] for a in listed]
    assert app_id not in [a["id"] for a in emr.list_applications(states=["STARTED"])["applications"]]
    with pytest.raises(ClientError) as exc:
        emr.start_job_run(
            applicationId=app_id, executionRoleArn=ROLE, jobDriver={"sparkSubmit": {"entryPoint": "s3://b/k"}}
        )
    assert _code(exc) == "ValidationException"


def test_tags_on_applications(emr):
    app_id = _application(emr, tags={"team": "lakehouse"})
    arn = emr.get_application(applicationId=app_id)["application"]["arn"]
    emr.tag_resource(resourceArn=arn, tags={"env": "local"})
    assert emr.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "lakehouse", "env": "local"}
    emr.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert emr.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "local"}
    with pytest.raises(ClientError) as exc:
        emr.list_tags_for_resource(resourceArn=arn.replace(app_id, "00nosuchapp00000"))
    assert _code(exc) == "ResourceNotFoundException"


# -- job runs ----------------------------------------------------------------------------------------------------
def test_spark_job_reads_csv_and_writes_parquet_on_s3(localcloud, s3, emr, monkeypatch):
    """The whole path: auto-start, entry point from S3, s3:// and s3a:// through S3A, EMR's Delta jars, the provider's
    waiter, the driver's logs."""
    from airflow.providers.amazon.aws.hooks.emr import EmrServerlessHook

    point_aws_default(localcloud, monkeypatch)
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="in/loans.csv", Body=b"id,amount\n1,10.5\n2,20\n3,30\n")
    entry = _script(s3, bucket, CSV_TO_PARQUET)
    log_uri = f"s3://{bucket}/logs/"
    app_id = _application(emr)  # never started: StartJobRun auto-starts it
    job_id = _start(
        emr,
        app_id,
        entry,
        f"s3://{bucket}/in/loans.csv",
        f"s3a://{bucket}/out/loans",
        f"s3://{bucket}/delta/loans",
        log_uri=log_uri,
        parameters=EMR_DELTA,
    )
    assert emr.get_job_run(applicationId=app_id, jobRunId=job_id)["jobRun"]["state"] in ("SUBMITTED", "PENDING")

    EmrServerlessHook(aws_conn_id="aws_default").get_waiter("serverless_job_completed").wait(
        applicationId=app_id, jobRunId=job_id, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    run = emr.get_job_run(applicationId=app_id, jobRunId=job_id)["jobRun"]
    assert run["state"] == "SUCCESS", run["stateDetails"]
    assert run["executionRole"] == ROLE and run["releaseLabel"] == RELEASE
    assert run["totalExecutionDurationSeconds"] >= 0 and run["startedAt"] <= run["endedAt"]
    assert emr.get_application(applicationId=app_id)["application"]["state"] == "STARTED"
    assert [j["id"] for j in emr.list_job_runs(applicationId=app_id, states=["SUCCESS"])["jobRuns"]] == [job_id]

    keys = _keys(s3, bucket, "out/loans/")
    assert "out/loans/_SUCCESS" in keys
    tables = [
        pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read()))
        for k in keys
        if k.endswith(".parquet")
    ]
    rows = sorted(r for t in tables for r in zip(*t.to_pydict().values(), strict=True))
    assert rows == [(1, 10.5, 21.0), (2, 20.0, 40.0), (3, 30.0, 60.0)]

    assert "_delta_log/00000000000000000000.json" in " ".join(_keys(s3, bucket, "delta/loans/"))
    stdout = _log(s3, log_uri, app_id, job_id, "stdout")
    assert "rows=3 total=121.0" in stdout and "delta rows=3" in stdout
    assert "SparkContext" in _log(s3, log_uri, app_id, job_id, "stderr")
    assert not (localcloud.data_dir / "emr-serverless-jobs" / job_id / "work").exists()


def test_failing_job_is_failed_with_its_exception(localcloud, s3, emr, monkeypatch):
    from airflow.providers.amazon.aws.triggers.emr import EmrServerlessStartJobTrigger

    point_aws_default(localcloud, monkeypatch)
    bucket = _bucket(s3)
    log_uri = f"s3://{bucket}/logs"
    app_id = _application(emr)
    token = uuid.uuid4().hex
    job_id = _start(emr, app_id, _script(s3, bucket, FAILING), log_uri=log_uri, clientToken=token)
    run = _wait_job(emr, app_id, job_id)
    assert run["state"] == "FAILED"
    again = emr.start_job_run(
        applicationId=app_id,
        executionRoleArn=ROLE,
        jobDriver=run["jobDriver"],
        configurationOverrides=run["configurationOverrides"],
        clientToken=token,
    )
    assert again["jobRunId"] == job_id  # clientToken: the same request is the same run, not a second one
    assert run["stateDetails"].startswith("Job failed, please check complete logs in configured logging destination.")
    assert "ExitCode: 1" in run["stateDetails"] and "ValueError: boom from the job" in run["stateDetails"]
    assert "about to fail" in _log(s3, log_uri, app_id, job_id, "stdout")
    assert "Traceback" in _log(s3, log_uri, app_id, job_id, "stdout")  # PythonRunner merges the two

    # Deferrable operators wait in a trigger, on aiobotocore: it sees the same states.
    event = _trigger_event(localcloud, EmrServerlessStartJobTrigger, application_id=app_id, job_id=job_id)
    assert event.payload["status"] != "success"

    missing = _start(emr, app_id, f"s3://{bucket}/code/missing.py", log_uri=log_uri)
    run = _wait_job(emr, app_id, missing)
    assert run["state"] == "FAILED" and "NoSuchKey" in run["stateDetails"]
    assert "missing.py cannot be read from S3" in _log(s3, log_uri, app_id, missing, "stderr")


def test_cancel_kills_the_driver_and_everything_it_started(localcloud, s3, emr):
    bucket = _bucket(s3)
    app_id = _application(emr)
    job_id = _start(emr, app_id, _script(s3, bucket, SLEEPING, name="sleeper.py"))
    job_dir = localcloud.data_dir / "emr-serverless-jobs" / job_id
    _wait_job(emr, app_id, job_id, states=("RUNNING",), timeout=60)
    # The driver, spark-submit's JVM and the Python script it started (its path is in the job dir).
    _until(lambda: len(_processes(job_dir)) >= 3, what="the driver's processes")
    _until(lambda: "sleeping" in (job_dir / "stdout").read_text(), what="the script's output")
    assert emr.cancel_job_run(applicationId=app_id, jobRunId=job_id)["jobRunId"] == job_id
    run = _wait_job(emr, app_id, job_id, timeout=30)
    assert run["state"] == "CANCELLED"
    assert _processes(job_dir) == []
    with pytest.raises(ClientError) as exc:
        emr.cancel_job_run(applicationId=app_id, jobRunId=job_id)
    assert _code(exc) == "ValidationException"
    # With no job run active, the application can be stopped.
    emr.stop_application(applicationId=app_id)


def test_stop_application_refuses_while_a_job_run_is_active(s3, emr):
    bucket = _bucket(s3)
    app_id = _application(emr)
    job_id = _start(emr, app_id, _script(s3, bucket, SLEEPING))
    with pytest.raises(ClientError) as exc:
        emr.stop_application(applicationId=app_id)
    assert _code(exc) == "ValidationException"
    emr.cancel_job_run(applicationId=app_id, jobRunId=job_id)
    assert _wait_job(emr, app_id, job_id, timeout=60)["state"] == "CANCELLED"


def test_job_runs_survive_a_restart_as_failed(fresh_localcloud):
    """A crash (SIGKILL) leaves the driver orphaned: the restart kills it. A clean stop kills it itself."""
    server = fresh_localcloud
    s3, emr = server.client("s3"), server.client("emr-serverless")
    bucket = _bucket(s3)
    entry = _script(s3, bucket, SLEEPING)
    app_id = _application(emr)
    crashed = _start(emr, app_id, entry)
    crashed_dir = server.data_dir / "emr-serverless-jobs" / crashed
    _wait_job(emr, app_id, crashed, states=("RUNNING",), timeout=60)
    _until(lambda: len(_processes(crashed_dir)) >= 2, what="the driver's processes")

    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    server.log.close()
    assert _processes(crashed_dir), "the job's processes are in a session of their own"
    server.start()
    emr = server.client("emr-serverless")
    run = emr.get_job_run(applicationId=app_id, jobRunId=crashed)["jobRun"]
    assert run["state"] == "FAILED" and "localcloud restarted" in run["stateDetails"]
    assert _processes(crashed_dir) == []
    assert emr.get_application(applicationId=app_id)["application"]["state"] == "STARTED"

    stopped = _start(emr, app_id, entry)
    stopped_dir = server.data_dir / "emr-serverless-jobs" / stopped
    _wait_job(emr, app_id, stopped, states=("RUNNING",), timeout=60)
    server.stop()
    assert _processes(stopped_dir) == []
    server.start()
    run = server.client("emr-serverless").get_job_run(applicationId=app_id, jobRunId=stopped)["jobRun"]
    assert run["state"] == "FAILED" and "localcloud stopped" in run["stateDetails"]


def test_the_providers_operators_end_to_end(localcloud, s3, monkeypatch):
    """Create (and start), run a job, stop and delete, with the stock operators and their waiters."""
    from airflow.providers.amazon.aws.operators.emr import (
        EmrServerlessCreateApplicationOperator,
        EmrServerlessDeleteApplicationOperator,
        EmrServerlessStartJobOperator,
        EmrServerlessStopApplicationOperator,
    )

    point_aws_default(localcloud, monkeypatch)
    bucket = _bucket(s3)
    entry = _script(s3, bucket, HELLO)
    log_uri = f"s3://{bucket}/logs/"
    waits = {"waiter_delay": 1, "waiter_max_attempts": 300}
    app_id = EmrServerlessCreateApplicationOperator(
        task_id="create", release_label=RELEASE, job_type="SPARK", config={"name": "airflow-e2e"}, **waits
    ).execute({})
    emr = localcloud.client("emr-serverless")
    assert emr.get_application(applicationId=app_id)["application"]["state"] == "STARTED"

    class TaskInstance:
        def __init__(self) -> None:
            self.pushed: dict = {}

        def xcom_push(self, key: str, value: object) -> None:
            self.pushed[key] = value

    ti = TaskInstance()
    job_id = EmrServerlessStartJobOperator(
        task_id="run",
        application_id=app_id,
        execution_role_arn=ROLE,
        job_driver={
            "sparkSubmit": {
                "entryPoint": entry,
                "entryPointArguments": ["airflow"],
                "sparkSubmitParameters": "--conf spark.executor.cores=1",
            }
        },
        configuration_overrides={"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": log_uri}}},
        **waits,
    ).execute({"ti": ti})
    assert emr.get_job_run(applicationId=app_id, jobRunId=job_id)["jobRun"]["state"] == "SUCCESS"
    assert "hello from airflow" in _log(s3, log_uri, app_id, job_id, "stdout")
    assert ti.pushed["emr_serverless_s3_logs"]["log_uri"] == log_uri

    EmrServerlessStopApplicationOperator(task_id="stop", application_id=app_id, **waits).execute({})
    assert emr.get_application(applicationId=app_id)["application"]["state"] == "STOPPED"
    EmrServerlessDeleteApplicationOperator(task_id="delete", application_id=app_id, **waits).execute({})
    assert emr.get_application(applicationId=app_id)["application"]["state"] == "TERMINATED"


# -- the command line, without a server --------------------------------------------------------------------------
def test_spark_submit_command_merges_packages_defaults_and_s3a(tmp_path):
    command = submit.build(
        {
            "entryPoint": "s3://code/jobs/main.py",
            "entryPointArguments": ["s3://data/in", "--day", "2026-01-01"],
            "sparkSubmitParameters": (
                "--conf spark.executor.memory=4g --packages org.example:lib:1.0 --py-files s3://code/deps.zip,local:/opt/x.zip "
                "--conf spark.jars=/usr/share/aws/delta/lib/delta-spark.jar --conf spark.emr-serverless.driverEnv.STAGE=dev "
                "--conf spark.hadoop.fs.s3a.endpoint=https://s3.amazonaws.com"
            ),
        },
        tmp_path,
        release_label=RELEASE,
        endpoint_url="http://127.0.0.1:4566",
        region="eu-west-1",
        application_defaults={"spark.sql.shuffle.partitions": "8", "spark.driver.cores": "2"},
        job_defaults={"spark.sql.shuffle.partitions": "16"},
        app_name="nightly",
    )
    argv = command.argv
    assert argv[-4:] == [str(tmp_path / "files/entrypoint/0/main.py"), "s3://data/in", "--day", "2026-01-01"]
    assert (
        argv[argv.index("--packages") + 1]
        == "org.example:lib:1.0,io.delta:delta-spark_4.2_2.13:4.4.0,org.apache.hadoop:hadoop-aws:3.5.0"
    )
    assert argv[argv.index("--py-files") + 1] == f"{tmp_path / 'files/deps/1/deps.zip'},local:/opt/x.zip"
    assert [(d.uri, d.target) for d in command.downloads] == [
        ("s3://code/jobs/main.py", str(tmp_path / "files/entrypoint/0/main.py")),
        ("s3://code/deps.zip", str(tmp_path / "files/deps/1/deps.zip")),
    ]
    confs = [argv[i + 1] for i, a in enumerate(argv) if a == "--conf"]
    # The user's S3A endpoint is kept in the list but localcloud's comes later, and the later --conf wins.
    assert confs.index("spark.hadoop.fs.s3a.endpoint=http://127.0.0.1:4566") > confs.index(
        "spark.hadoop.fs.s3a.endpoint=https://s3.amazonaws.com"
    )
    assert "spark.hadoop.fs.s3.impl=org.apache.hadoop.fs.s3a.S3AFileSystem" in confs
    assert "spark.hadoop.fs.s3a.endpoint.region=eu-west-1" in confs
    assert "spark.jars=" in confs
    assert command.env == {"STAGE": "dev"}
    assert command.defaults["spark.master"] == "local[*]"
    assert command.defaults["spark.sql.shuffle.partitions"] == "16"
    assert command.defaults["spark.app.name"] == "nightly"
    assert command.defaults["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    with pytest.raises(submit.SubmitError):
        submit.build(
            {"entryPoint": "hdfs://x/y.py"},
            tmp_path,
            release_label=RELEASE,
            endpoint_url="",
            region="",
            application_defaults={},
            job_defaults={},
            app_name=None,
        )


def test_release_labels_name_what_aws_bundles_and_the_local_stand_ins():
    bundled = releases.release(RELEASE)
    assert (bundled.spark, bundled.delta) == ("3.5.2", "3.2.1-amzn-0")
    # Locally every release runs on the installed pyspark 4.2.0: these coordinates must match it.
    assert bundled.delta_package == "io.delta:delta-spark_4.2_2.13:4.4.0"
    assert bundled.hadoop_aws_package == "org.apache.hadoop:hadoop-aws:3.5.0"
    with pytest.raises(AwsError) as exc:
        releases.release("emr-5.36.0")
    assert exc.value.code == "ValidationException"


def test_the_job_reaches_localcloud_on_the_loopback_address_the_caller_used():
    assert jobprocs.endpoint_for("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert jobprocs.endpoint_for("localhost:4566") == "http://localhost:4566"
    assert jobprocs.endpoint_for("[::1]:4566") == "http://[::1]:4566"
    # A Host header naming another machine never gets the job's credentials sent to it.
    assert jobprocs.endpoint_for("attacker.example:4566") == "http://127.0.0.1:4566"
    assert jobprocs.endpoint_for("") == "http://127.0.0.1:4566"


def test_constraint_messages_follow_aws():
    from localcloud.protocols.shapes import service_model

    shape = service_model("emr-serverless").operation_model("StartJobRun").input_shape
    with pytest.raises(Exception) as exc:
        constraints.check({"applicationId": "ABC", "executionRoleArn": "x" * 30, "mode": "NIGHTLY"}, shape)
    assert str(exc.value).startswith(
        "ValidationException: 3 validation errors detected: Value 'ABC' at 'applicationId'"
    )
    constraints.check({"applicationId": "00abc", "executionRoleArn": ROLE, "name": "n"}, shape)
