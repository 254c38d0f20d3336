"""localcloud's Glue: job definitions over boto3 and the Amazon provider's GlueJobOperator, and job runs whose scripts
really run on this machine as the job's IAM role (a session STS issues to glue.amazonaws.com).

Every run here is a plain Python script (no Spark session), so each takes a second or two."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest
from airflow_conn import point_aws_default
from botocore.exceptions import ClientError

from localcloud.iam_policy import parse_policy, trust_allows
from localcloud.process import LocalCloudProcess
from localcloud.services.glue import backend

ACCOUNT = "000000000000"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED")
TRUST_GLUE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
TRUST_ACCOUNT = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    ],
}
# Writes what it is (caller identity, argv, environment) to the bucket it may write, then tries the one it may not.
WHOAMI = b"""
import json, os, sys
import boto3
from botocore.exceptions import ClientError

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
s3 = boto3.client("s3")
identity = boto3.client("sts").get_caller_identity()
try:
    s3.put_object(Bucket=args["--forbidden"], Key="x.txt", Body=b"no")
    forbidden = "written"
except ClientError as exc:
    forbidden = exc.response["Error"]["Code"]
report = {
    "arn": identity["Arn"],
    "argv": sys.argv[1:],
    "cwd": os.getcwd(),
    "forbidden": forbidden,
    "env": sorted(k for k in os.environ if k.startswith(("AWS_", "LOCALCLOUD_", "AIRFLOW_CONN_"))),
}
s3.put_object(Bucket=args["--bucket"], Key=args["--key"], Body=json.dumps(report).encode())
print("done", flush=True)
"""
FAILING = b"""
import sys
print("about to fail", flush=True)
print("some warning", file=sys.stderr)
raise ValueError("boom from the glue job")
"""
SLEEPING = b"""
import time
print("sleeping", flush=True)
time.sleep(600)
"""
HELLO = b"""
import sys
print("hello from glue", sys.argv[1:], flush=True)
"""


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _bucket(s3) -> str:
    name = _name("glue")
    s3.create_bucket(Bucket=name)
    return name


def _script(s3, bucket: str, body: bytes, name: str = "job.py") -> str:
    key = f"scripts/{uuid.uuid4().hex[:8]}/{name}"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def _role(iam, trust: dict, buckets: list[str] = ()) -> tuple[str, str]:
    """A role (name, ARN) whose inline policy allows reading and writing ``buckets`` only."""
    name = _name("glue-role")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if buckets:
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{b}{suffix}" for b in buckets for suffix in ("", "/*")],
                }
            ],
        }
        iam.put_role_policy(RoleName=name, PolicyName="data", PolicyDocument=json.dumps(policy))
    return name, arn


def _job(glue, role: str, script: str, command: str = "pythonshell", **extra) -> str:
    name = _name("job")
    glue.create_job(Name=name, Role=role, Command={"Name": command, "ScriptLocation": script}, **extra)
    return name


def _wait(glue, job: str, run_id: str, states=TERMINAL, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        if run["JobRunState"] in states:
            return run
        time.sleep(0.1)
    raise AssertionError(f"job run {run_id} still {run['JobRunState']} after {timeout}s")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _script_pids(job_dir: Path) -> list[int]:
    needle = str(job_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes() and _alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def glue(localcloud):
    return localcloud.client("glue")


@pytest.fixture(scope="module")
def iam(localcloud):
    return localcloud.client("iam")


@pytest.fixture(scope="module")
def code_bucket(localcloud) -> str:
    return _bucket(localcloud.client("s3"))


@pytest.fixture(scope="module")
def glue_role(iam, code_bucket) -> tuple[str, str]:
    return _role(iam, TRUST_GLUE, [code_bucket])


# -- definitions -------------------------------------------------------------------------------------------------
def test_job_crud_defaults_paging_and_tags(localcloud, glue, glue_role, code_bucket):
    name = _job(glue, glue_role[1], f"s3://{code_bucket}/a.py", Tags={"team": "data"})
    job = glue.get_job(JobName=name)["Job"]
    assert job["Role"] == glue_role[1] and job["Command"] == {
        "Name": "pythonshell",
        "ScriptLocation": f"s3://{code_bucket}/a.py",
    }
    assert (job["Timeout"], job["MaxRetries"], job["MaxCapacity"]) == (2880, 0, 0.0625)
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    assert job["CreatedOn"] == job["LastModifiedOn"]
    with pytest.raises(ClientError) as exc:
        glue.create_job(Name=name, Role="r", Command={"Name": "pythonshell", "ScriptLocation": "s3://b/k.py"})
    assert _code(exc) == "AlreadyExistsException"

    # UpdateJob replaces the whole definition, as Glue's does.
    glue.update_job(
        JobName=name,
        JobUpdate={
            "Role": glue_role[0],
            "Command": {"Name": "glueetl", "ScriptLocation": "s3://b/etl.py"},
            "Timeout": 5,
        },
    )
    job = glue.get_job(JobName=name)["Job"]
    assert (job["Role"], job["Command"]["Name"], job["Timeout"], job["MaxCapacity"]) == (
        glue_role[0],
        "glueetl",
        5,
        10.0,
    )
    assert "Description" not in job and job["LastModifiedOn"] >= job["CreatedOn"]
    with pytest.raises(ClientError) as exc:
        glue.update_job(JobName=_name("nope"), JobUpdate={"Role": "r", "Command": {"Name": "glueetl"}})
    assert _code(exc) == "EntityNotFoundException"

    arn = f"arn:aws:glue:us-east-1:{ACCOUNT}:job/{name}"
    assert glue.get_tags(ResourceArn=arn)["Tags"] == {"team": "data"}
    glue.tag_resource(ResourceArn=arn, TagsToAdd={"env": "dev"})
    glue.untag_resource(ResourceArn=arn, TagsToRemove=["team"])
    assert glue.get_tags(ResourceArn=arn)["Tags"] == {"env": "dev"}
    assert name in glue.list_jobs(Tags={"env": "dev"})["JobNames"]
    assert name not in glue.list_jobs(Tags={"env": "prod"})["JobNames"]

    other = _job(glue, glue_role[1], "s3://b/k.py")
    names, token = [], None
    while True:
        page = glue.get_jobs(MaxResults=1, **({"NextToken": token} if token else {}))
        assert len(page["Jobs"]) <= 1
        names += [j["Name"] for j in page["Jobs"]]
        token = page.get("NextToken")
        if not token:
            break
    assert {name, other} <= set(names) and len(names) == len(set(names))
    assert names == sorted(names)

    assert glue.delete_job(JobName=name)["JobName"] == name
    assert glue.delete_job(JobName=name)["JobName"] == name  # Glue answers a missing job as deleted
    with pytest.raises(ClientError) as exc:
        glue.get_job(JobName=name)
    assert _code(exc) == "EntityNotFoundException"
    with pytest.raises(ClientError) as exc:
        glue.get_tags(ResourceArn=arn)
    assert _code(exc) == "EntityNotFoundException"


def test_requests_are_validated_by_the_model_as_invalid_input(localcloud, glue):
    raw = localcloud.client("glue", parameter_validation=False)
    with pytest.raises(ClientError) as exc:  # botocore's own check, made by the server
        raw.create_job(Name=_name("job"), Command={"Name": "pythonshell"})
    assert _code(exc) == "InvalidInputException" and "Role" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:  # the maximum botocore leaves to the service
        glue.create_job(Name="j" * 256, Role="r", Command={"Name": "pythonshell"})
    assert _code(exc) == "InvalidInputException" and "length less than or equal to 255" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        glue.create_job(Name=_name("job"), Role="r", Command={"Name": "glueetl"}, WorkerType="G.3X", NumberOfWorkers=2)
    assert _code(exc) == "InvalidInputException" and "enum value set" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        glue.get_job_runs(JobName=_name("job"), MaxResults=500)
    assert _code(exc) == "InvalidInputException"
    # Glue's own rules on a definition.
    with pytest.raises(ClientError) as exc:
        glue.create_job(Name=_name("job"), Role="r", Command={"Name": "pyshell"})
    assert _code(exc) == "InvalidInputException" and "pyshell" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        glue.create_job(Name=_name("job"), Role="r", Command={"Name": "pythonshell"}, MaxCapacity=10.0)
    assert _code(exc) == "InvalidInputException" and "0.0625 or 1" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        glue.create_job(Name=_name("job"), Role="r", Command={"Name": "glueetl"}, WorkerType="G.1X")
    assert _code(exc) == "InvalidInputException"
    with pytest.raises(ClientError) as exc:
        glue.get_job(JobName=_name("missing"))
    assert _code(exc) == "EntityNotFoundException"
    with pytest.raises(ClientError) as exc:
        glue.start_job_run(JobName=_name("missing"))
    assert _code(exc) == "EntityNotFoundException"
    streaming = _job(glue, "r", "s3://b/k.py", command="gluestreaming")
    with pytest.raises(ClientError) as exc:
        glue.start_job_run(JobName=streaming)
    assert _code(exc) == "InvalidInputException" and "gluestreaming" in str(exc.value)
    no_script = _name("job")
    glue.create_job(Name=no_script, Role="r", Command={"Name": "pythonshell"})
    with pytest.raises(ClientError) as exc:
        glue.start_job_run(JobName=no_script)
    assert _code(exc) == "InvalidInputException" and "ScriptLocation" in str(exc.value)


def test_trust_allows_service_principals_only_when_asked():
    trust = parse_policy(json.dumps(TRUST_GLUE), "trust")
    account_trust = parse_policy(json.dumps(TRUST_ACCOUNT), "trust")
    assert trust_allows(trust, [], ACCOUNT, {}, service="glue.amazonaws.com")
    assert not trust_allows(trust, [], ACCOUNT, {}, service="lambda.amazonaws.com")
    assert not trust_allows(trust, [f"arn:aws:iam::{ACCOUNT}:root"], ACCOUNT, {})  # a service principal is no user
    assert not trust_allows(account_trust, [], ACCOUNT, {}, service="glue.amazonaws.com")
    assert trust_allows(account_trust, [f"arn:aws:iam::{ACCOUNT}:root"], ACCOUNT, {})


def test_script_environment_drops_every_other_credential():
    base = {
        "PATH": "/bin",
        "AWS_PROFILE": "prod",
        "AWS_ACCESS_KEY_ID": "AKIAREAL",
        "LOCALCLOUD_ACCESS_KEY_ID": "localcloud",
        "LOCALCLOUD_SECRET_ACCESS_KEY": "localcloud-secret",
        "AIRFLOW_CONN_AWS_DEFAULT": "{}",
        "PYTHONPATH": "/elsewhere",
    }
    session = {"AccessKeyId": "ASIAX", "SecretAccessKey": "s", "SessionToken": "t"}
    env = backend.script_environment(base, session, "http://127.0.0.1:4566", "eu-west-1")
    assert env["AWS_ACCESS_KEY_ID"] == "ASIAX" and env["AWS_SESSION_TOKEN"] == "t"
    assert (env["AWS_ENDPOINT_URL"], env["AWS_REGION"], env["AWS_DEFAULT_REGION"]) == (
        "http://127.0.0.1:4566",
        "eu-west-1",
        "eu-west-1",
    )
    assert not {
        "AWS_PROFILE",
        "LOCALCLOUD_ACCESS_KEY_ID",
        "LOCALCLOUD_SECRET_ACCESS_KEY",
        "AIRFLOW_CONN_AWS_DEFAULT",
    } & set(env)
    # The server's search path is not the script's: a Glue script sees its own file and the runtime's libraries.
    assert "PYTHONPATH" not in env and env["PATH"] == "/bin"


# -- runs --------------------------------------------------------------------------------------------------------
def test_pythonshell_run_acts_as_the_role_session(localcloud, glue, iam, code_bucket):
    s3 = localcloud.client("s3")
    forbidden = _bucket(s3)
    role_name, role_arn = _role(iam, TRUST_GLUE, [code_bucket])
    script = _script(s3, code_bucket, WHOAMI)
    job = _job(
        glue,
        role_name,  # Glue takes a role name as well as an ARN
        script,
        DefaultArguments={"--bucket": code_bucket, "--key": "default", "--forbidden": forbidden, "--tenant": "a"},
        MaxCapacity=1.0,
    )
    key = f"out/{uuid.uuid4().hex[:8]}.json"
    run_id = glue.start_job_run(JobName=job, Arguments={"--key": key, "--tenant": "b"})["JobRunId"]
    assert run_id.startswith("jr_") and len(run_id) == 67
    run = _wait(glue, job, run_id)
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert run["Arguments"] == {"--key": key, "--tenant": "b"}
    assert (run["JobName"], run["Id"], run["Attempt"], run["MaxCapacity"], run["Timeout"]) == (
        job,
        run_id,
        0,
        1.0,
        2880,
    )
    assert run["StartedOn"] <= run["LastModifiedOn"] and run["CompletedOn"] >= run["StartedOn"]
    assert isinstance(run["ExecutionTime"], int) and "ErrorMessage" not in run

    report = json.loads(s3.get_object(Bucket=code_bucket, Key=key)["Body"].read())
    assert report["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/GlueJobRunnerSession"
    assert report["forbidden"] == "AccessDenied"  # the role's policy does not cover that bucket
    args = report["argv"]
    assert args[:4] == ["--JOB_NAME", job, "--JOB_RUN_ID", run_id]
    assert dict(zip(args[4::2], args[5::2], strict=True)) == {
        "--bucket": code_bucket,
        "--key": key,
        "--forbidden": forbidden,
        "--tenant": "b",
    }
    assert Path(report["cwd"]).name == run_id
    assert not [k for k in report["env"] if k.startswith(("LOCALCLOUD_", "AIRFLOW_CONN_"))]
    assert {"AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"} <= set(report["env"])
    output = (localcloud.data_dir / "glue-jobs" / run_id / "output").read_text()
    assert "done" in output
    runs = glue.get_job_runs(JobName=job)["JobRuns"]
    assert [r["Id"] for r in runs] == [run_id]

    # A run's ExecutionRoleSessionPolicy narrows the role's session: here it may not write at all.
    read_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    narrowed = glue.start_job_run(JobName=job, ExecutionRoleSessionPolicy=json.dumps(read_only))["JobRunId"]
    run = _wait(glue, job, narrowed)
    assert run["JobRunState"] == "FAILED" and "AccessDenied" in run["ErrorMessage"]
    assert run["ExecutionRoleSessionPolicy"] == json.dumps(read_only)
    assert role_arn == f"arn:aws:iam::{ACCOUNT}:role/{role_name}"


def test_failed_script_reports_its_error_and_retries(localcloud, glue, glue_role, code_bucket):
    s3 = localcloud.client("s3")
    job = _job(glue, glue_role[1], _script(s3, code_bucket, FAILING), MaxRetries=1)
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    run = _wait(glue, job, run_id)
    assert run["JobRunState"] == "FAILED"
    assert "ValueError: boom from the glue job" in run["ErrorMessage"]
    assert "exited with code 1" in run["ErrorMessage"] and "about to fail" not in run["ErrorMessage"]
    retry_id = f"{run_id}_attempt_1"
    retry = _wait(glue, job, retry_id)
    assert (retry["JobRunState"], retry["Attempt"], retry["PreviousRunId"]) == ("FAILED", 1, run_id)
    time.sleep(0.3)
    assert {r["Id"] for r in glue.get_job_runs(JobName=job)["JobRuns"]} == {run_id, retry_id}  # no third attempt

    missing = _job(glue, glue_role[1], f"s3://{code_bucket}/no/such/script.py")
    run = _wait(glue, missing, glue.start_job_run(JobName=missing)["JobRunId"])
    assert run["JobRunState"] == "FAILED"
    assert f"s3://{code_bucket}/no/such/script.py cannot be read from S3: NoSuchKey" in run["ErrorMessage"]


def test_role_must_exist_and_trust_glue(localcloud, glue, iam, code_bucket):
    s3 = localcloud.client("s3")
    script = _script(s3, code_bucket, HELLO)
    _, untrusting = _role(iam, TRUST_ACCOUNT, [code_bucket])
    job = _job(glue, untrusting, script)
    run = _wait(glue, job, glue.start_job_run(JobName=job)["JobRunId"])
    assert run["JobRunState"] == "FAILED"
    assert "could not assume the job's role" in run["ErrorMessage"]
    assert '"Service": "glue.amazonaws.com"' in run["ErrorMessage"]

    missing = f"arn:aws:iam::{ACCOUNT}:role/{_name('no-such-role')}"
    job = _job(glue, missing, script)
    run = _wait(glue, job, glue.start_job_run(JobName=job)["JobRunId"])
    assert run["JobRunState"] == "FAILED" and "does not exist" in run["ErrorMessage"]

    # Glue reads the script as the job's role: a role that may not read it never gets to run it.
    other = f"glue-other-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=other)
    _, blind = _role(iam, TRUST_GLUE, [other])
    job = _job(glue, blind, script)
    run = _wait(glue, job, glue.start_job_run(JobName=job)["JobRunId"])
    assert run["JobRunState"] == "FAILED" and run.get("StartedOn") is not None
    assert "cannot be read from S3: AccessDenied" in run["ErrorMessage"]
    assert "(Glue reads it as the job's role)" in run["ErrorMessage"]


def test_stop_and_max_concurrent_runs(localcloud, glue, glue_role, code_bucket):
    s3 = localcloud.client("s3")
    job = _job(glue, glue_role[1], _script(s3, code_bucket, SLEEPING), ExecutionProperty={"MaxConcurrentRuns": 1})
    first = glue.start_job_run(JobName=job)["JobRunId"]
    with pytest.raises(ClientError) as exc:
        glue.start_job_run(JobName=job)
    assert _code(exc) == "ConcurrentRunsExceededException"
    _wait(glue, job, first, states=("RUNNING",))
    job_dir = localcloud.data_dir / "glue-jobs" / first
    deadline = time.monotonic() + 10
    while not _script_pids(job_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _script_pids(job_dir)

    unknown = "jr_" + "0" * 64
    answer = glue.batch_stop_job_run(JobName=job, JobRunIds=[first, unknown])
    assert answer["SuccessfulSubmissions"] == [{"JobName": job, "JobRunId": first}]
    assert [(e["JobRunId"], e["ErrorDetail"]["ErrorCode"]) for e in answer["Errors"]] == [
        (unknown, "EntityNotFoundException")
    ]
    run = _wait(glue, job, first)
    assert run["JobRunState"] == "STOPPED"
    deadline = time.monotonic() + 5
    while _script_pids(job_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _script_pids(job_dir)
    answer = glue.batch_stop_job_run(JobName=job, JobRunIds=[first])
    assert answer["Errors"][0]["ErrorDetail"]["ErrorCode"] == "InvalidInputException"

    # The slot is free again; a run stopped while STARTING never runs its script.
    second = glue.start_job_run(JobName=job)["JobRunId"]
    glue.batch_stop_job_run(JobName=job, JobRunIds=[second])
    assert _wait(glue, job, second)["JobRunState"] == "STOPPED"


# -- the provider's operator -------------------------------------------------------------------------------------
class _TaskInstance:
    dag_id, task_id, run_id, map_index, try_number = "glue_dag", "glue_task", "manual", -1, 1

    def __init__(self) -> None:
        self.pushed: dict = {}
        self.stats_tags: dict = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def test_glue_job_operator_uploads_creates_updates_and_runs(localcloud, monkeypatch, tmp_path, iam, glue):
    from airflow.providers.amazon.aws.operators.glue import GlueJobOperator

    point_aws_default(localcloud, monkeypatch)
    s3 = localcloud.client("s3")
    bucket = _bucket(s3)
    role_name, _ = _role(iam, TRUST_GLUE, [bucket])
    script = tmp_path / f"etl_{uuid.uuid4().hex[:6]}.py"
    script.write_bytes(HELLO)
    job = _name("airflow-job")
    common = {
        "job_name": job,
        "iam_role_name": role_name,  # the hook looks the role's ARN up in IAM
        "s3_bucket": bucket,
        "job_poll_interval": 0.2,
        "script_args": {"--day": "2026-01-01"},
    }
    # A local script_location is uploaded to s3_bucket; the job's Command defaults to glueetl.
    ti = _TaskInstance()
    run_id = GlueJobOperator(task_id="create", script_location=str(script), **common).execute({"ti": ti})
    uploaded = f"s3://{bucket}/artifacts/glue-scripts/{script.name}"
    definition = glue.get_job(JobName=job)["Job"]
    assert definition["Command"] == {"Name": "glueetl", "ScriptLocation": uploaded}
    assert definition["LogUri"] == f"s3://{bucket}/logs/glue-logs/{job}"
    run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
    assert run["JobRunState"] == "SUCCEEDED" and run["Arguments"] == {"--day": "2026-01-01"}
    assert ti.pushed["glue_job_run_id"] == run_id
    output = (localcloud.data_dir / "glue-jobs" / run_id / "output").read_text()
    assert "hello from glue" in output and "2026-01-01" in output

    # update_config turns the same job into a Python shell job, then runs it.
    run_id = GlueJobOperator(
        task_id="update",
        script_location=uploaded,
        update_config=True,
        num_of_dpus=1,
        create_job_kwargs={"Command": {"Name": "pythonshell", "ScriptLocation": uploaded, "PythonVersion": "3.9"}},
        **common,
    ).execute({"ti": _TaskInstance()})
    assert glue.get_job(JobName=job)["Job"]["Command"]["Name"] == "pythonshell"
    assert glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"] == "SUCCEEDED"

    # A failing script fails the task.
    s3.put_object(Bucket=bucket, Key="artifacts/glue-scripts/failing.py", Body=FAILING)
    with pytest.raises(Exception, match="FAILED"):
        GlueJobOperator(
            task_id="fail",
            script_location=f"s3://{bucket}/artifacts/glue-scripts/failing.py",
            **{**common, "job_name": _name("airflow-fail")},
        ).execute({"ti": _TaskInstance()})


# -- timeouts and restarts, on a server of their own ------------------------------------------------------------
def test_timeout_and_runs_interrupted_by_a_restart(tmp_path):
    server = LocalCloudProcess(tmp_path / "data", env={"LOCALCLOUD_GLUE_TIMEOUT_MINUTE_SECONDS": "1"}).start()
    try:
        s3, iam, glue = server.client("s3"), server.client("iam"), server.client("glue")
        bucket = _bucket(s3)
        _, role = _role(iam, TRUST_GLUE, [bucket])
        job = _job(glue, role, _script(s3, bucket, SLEEPING), Timeout=1, ExecutionProperty={"MaxConcurrentRuns": 2})
        timed_out = glue.start_job_run(JobName=job)["JobRunId"]
        interrupted = glue.start_job_run(JobName=job, Timeout=60)["JobRunId"]
        run = _wait(glue, job, timed_out)
        assert run["JobRunState"] == "TIMEOUT" and "Timeout of 1 minute" in run["ErrorMessage"]
        assert _wait(glue, job, interrupted, states=("RUNNING",))["JobRunState"] == "RUNNING"
        job_dir = server.data_dir / "glue-jobs" / interrupted
        deadline = time.monotonic() + 10
        while not _script_pids(job_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(server.proc.pid, 9)  # a crash: nothing is closed
        server.proc.wait()
        assert _script_pids(job_dir)  # the script outlived the server
        server.start()
        run = server.client("glue").get_job_run(JobName=job, RunId=interrupted)["JobRun"]
        assert run["JobRunState"] == "FAILED" and "localcloud restarted" in run["ErrorMessage"]
        assert not _script_pids(job_dir)
    finally:
        server.stop()
