"""localcloud's SageMaker Autopilot through boto3 against a live server: real training on tiny budgets (600 churn rows,
a few candidates, seconds), AWS's statuses and secondary statuses, candidates and their model artifacts in S3, data
that Autopilot rejects, stops and restarts.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import signal
import tarfile
import time
from pathlib import Path

import pytest
import tabular_data as churn
from botocore.exceptions import ClientError

from localcloud.process import LocalCloudProcess

pytest.importorskip("sklearn")
pytest.importorskip("xgboost")

BUCKET = "automl-data"
ROLE = "arn:aws:iam::000000000000:role/autopilot"
TARGET = "Churn?"
BUDGET = {"MaxCandidates": 4, "MaxAutoMLJobRuntimeInSeconds": 20}
ORDER = ["Starting", "AnalyzingData", "FeatureEngineering", "ModelTuning", "GeneratingExplainabilityReport"]
SERVER_ENV = {"LOCALCLOUD_SAGEMAKER_AUTOML_WORKERS": "2", "LOCALCLOUD_AUTOML_THREADS": "1"}


# -- helpers -------------------------------------------------------------------------------------------------------
def table(rows: int = 600, seed: int = 1, *, drop: tuple[str, ...] = (), header: bool = True) -> str:
    """Churn rows as CSV text."""
    records = churn.generate(rows, seed)
    columns = [c for c in records[0] if c not in drop]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def put(s3, key: str, text: str | bytes, bucket: str = BUCKET) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=text.encode() if isinstance(text, str) else text)
    return f"s3://{bucket}/{key}"


def channel(uri: str, target: str = TARGET, **extra) -> dict:
    return {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
        "TargetAttributeName": target,
        **extra,
    }


def create(sm, name: str, uri: str, *, target: str = TARGET, budget: dict | None = None, **extra) -> str:
    return sm.create_auto_ml_job(
        AutoMLJobName=name,
        InputDataConfig=[channel(uri, target)],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        RoleArn=ROLE,
        AutoMLJobConfig={"CompletionCriteria": budget or BUDGET},
        **extra,
    )["AutoMLJobArn"]


def wait(sm, name: str, timeout: float = 180, seen: list | None = None, v2: bool = False) -> dict:
    """The job's description once it has ended; ``seen`` collects the (status, secondary status) pairs polled."""
    describe = sm.describe_auto_ml_job_v2 if v2 else sm.describe_auto_ml_job
    deadline = time.monotonic() + timeout
    while True:
        reply = describe(AutoMLJobName=name)
        pair = (reply["AutoMLJobStatus"], reply["AutoMLJobSecondaryStatus"])
        if seen is not None and (not seen or seen[-1] != pair):
            seen.append(pair)
        if pair[0] not in ("InProgress", "Stopping"):
            return reply
        assert time.monotonic() < deadline, f"AutoML job {name} still {pair} after {timeout} s"
        time.sleep(0.15)


def wait_for_secondary(sm, name: str, wanted: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (reply := sm.describe_auto_ml_job(AutoMLJobName=name))["AutoMLJobSecondaryStatus"] != wanted:
        assert reply["AutoMLJobStatus"] == "InProgress", reply.get("FailureReason")
        assert time.monotonic() < deadline, f"{name} never reached {wanted}"
        time.sleep(0.1)
    return reply


def error(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call()
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def all_candidates(sm, name: str, **kwargs) -> list[dict]:
    reply = sm.list_candidates_for_auto_ml_job(AutoMLJobName=name, **kwargs)
    out = list(reply["Candidates"])
    while reply.get("NextToken"):
        reply = sm.list_candidates_for_auto_ml_job(AutoMLJobName=name, NextToken=reply["NextToken"], **kwargs)
        out += reply["Candidates"]
    return out


def s3_object(s3, uri: str) -> bytes:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def runner_pids(data_dir: Path) -> list[int]:
    """The job processes working in ``data_dir`` (their command line names the job directory)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"services.sagemaker.runner" in cmdline and str(data_dir).encode() in cmdline:
                pids.append(int(proc.name))
    return pids


# -- fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalCloudProcess(tmp_path_factory.mktemp("automl") / "data", env=SERVER_ENV) as process:
        yield process


@pytest.fixture(scope="module")
def clients(server):
    s3, sm = server.client("s3"), server.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    put(s3, "churn/train.csv", table())
    return s3, sm


@pytest.fixture(scope="module")
def trained(clients):
    """One v1 job on the churn table, and the statuses seen while it ran."""
    s3, sm = clients
    seen: list = []
    create(sm, "churn-v1", f"s3://{BUCKET}/churn/")
    return wait(sm, "churn-v1", seen=seen), seen


# -- a job that trains -----------------------------------------------------------------------------------------------
def test_job_runs_through_autopilots_statuses(trained):
    reply, seen = trained
    assert seen[0] == ("InProgress", "Starting")
    running = [secondary for status, secondary in seen if status == "InProgress"]
    assert [ORDER.index(s) for s in running] == sorted(ORDER.index(s) for s in running), seen
    assert seen[-1] == ("Completed", "MaxCandidatesReached"), reply.get("FailureReason")
    assert reply["EndTime"] >= reply["CreationTime"] and "FailureReason" not in reply
    assert reply["ResolvedAttributes"] == {
        "AutoMLJobObjective": {"MetricName": "F1"},
        "ProblemType": "BinaryClassification",
        "CompletionCriteria": {"MaxCandidates": 4, "MaxAutoMLJobRuntimeInSeconds": 20},
    }
    assert reply["InputDataConfig"][0]["TargetAttributeName"] == TARGET
    assert reply["AutoMLJobConfig"] == {"CompletionCriteria": BUDGET}
    assert reply["GenerateCandidateDefinitionsOnly"] is False


def test_best_candidate_is_served_from_a_real_model_artifact(clients, trained, tmp_path):
    s3, _ = clients
    best = trained[0]["BestCandidate"]
    assert best["CandidateStatus"] == "Completed" and best["ObjectiveStatus"] == "Succeeded"
    metric = best["FinalAutoMLJobObjectiveMetric"]
    assert metric["MetricName"] == "F1" and metric["Type"] == "Maximize" and 0 < metric["Value"] <= 1
    assert best["CandidateSteps"][0]["CandidateStepType"] == "AWS::SageMaker::TrainingJob"
    (container,) = best["InferenceContainers"]
    assert container["Image"].endswith(".dkr.ecr.us-east-1.amazonaws.com/sagemaker-sklearn-automl:2.5-1-cpu-py3")
    assert container["Environment"]["SAGEMAKER_INFERENCE_OUTPUT"] == "predicted_label"
    assert (
        container["Environment"]["SAGEMAKER_INFERENCE_SUPPORTED"] == "predicted_label,probability,labels,probabilities"
    )
    url = container["ModelDataUrl"]
    assert url == f"s3://{BUCKET}/output/churn-v1/tuning/{best['CandidateName']}/output/model.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(s3_object(s3, url))) as tar:
        tar.extractall(tmp_path / "model", filter="data")
    from localcloud.engines.automl import load

    rows = [line.split(",") for line in table(3, seed=9, drop=(TARGET,), header=False).splitlines()]
    results = load(tmp_path / "model").predict_csv_rows(rows, ["predicted_label", "probability"])
    assert [r["predicted_label"] in ("True.", "False.") for r in results] == [True] * 3
    explainability = best["CandidateProperties"]["CandidateArtifactLocations"]["Explainability"]
    assert s3_object(s3, f"{explainability}/feature_importance.json")
    artifacts = trained[0]["AutoMLJobArtifacts"]
    assert json.loads(s3_object(s3, artifacts["DataExplorationNotebookLocation"]))["nbformat"] == 4
    assert s3_object(s3, artifacts["CandidateDefinitionNotebookLocation"])


def test_list_candidates_sorts_filters_and_pages(clients, trained):
    _, sm = clients
    best = trained[0]["BestCandidate"]["CandidateName"]
    every = all_candidates(sm, "churn-v1")
    assert len(every) == 4
    created = [c["CreationTime"] for c in every]
    assert created == sorted(created), "CreationTime, Ascending by default"
    completed = [c for c in every if c["CandidateStatus"] == "Completed"]
    by_value = all_candidates(sm, "churn-v1", SortBy="FinalObjectiveMetricValue", SortOrder="Descending")
    values = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in by_value if c["CandidateStatus"] == "Completed"]
    assert values == sorted(values, reverse=True) and by_value[0]["CandidateName"] == best
    ascending = all_candidates(sm, "churn-v1", SortBy="FinalObjectiveMetricValue", SortOrder="Ascending")
    assert [c["CandidateName"] for c in ascending] == [c["CandidateName"] for c in reversed(by_value)]

    paged, token = [], None
    while True:
        reply = sm.list_candidates_for_auto_ml_job(
            AutoMLJobName="churn-v1", MaxResults=1, **({"NextToken": token} if token else {})
        )
        assert len(reply["Candidates"]) <= 1
        paged += [c["CandidateName"] for c in reply["Candidates"]]
        token = reply.get("NextToken")
        if not token:
            break
    assert paged == [c["CandidateName"] for c in every]
    only = all_candidates(sm, "churn-v1", StatusEquals="Completed")
    assert {c["CandidateName"] for c in only} == {c["CandidateName"] for c in completed}
    (one,) = all_candidates(sm, "churn-v1", CandidateNameEquals=best)
    assert one["CandidateName"] == best
    assert (
        error(lambda: sm.list_candidates_for_auto_ml_job(AutoMLJobName="churn-v1", NextToken="bm90IGEgdG9rZW4="))[0]
        == "ValidationException"
    )
    assert error(lambda: sm.list_candidates_for_auto_ml_job(AutoMLJobName="no-such-job"))[0] == "ResourceNotFound"


def test_list_jobs_and_describe_v2_of_a_v1_job(clients, trained):
    _, sm = clients
    summaries = sm.list_auto_ml_jobs(NameContains="churn-v", StatusEquals="Completed")["AutoMLJobSummaries"]
    assert [s["AutoMLJobName"] for s in summaries] == ["churn-v1"]
    assert summaries[0]["AutoMLJobSecondaryStatus"] == "MaxCandidatesReached"
    v2 = sm.describe_auto_ml_job_v2(AutoMLJobName="churn-v1")
    assert v2["AutoMLProblemTypeConfigName"] == "Tabular"
    assert v2["AutoMLProblemTypeConfig"]["TabularJobConfig"]["TargetAttributeName"] == TARGET
    tabular = v2["ResolvedAttributes"]["AutoMLProblemTypeResolvedAttributes"]["TabularResolvedAttributes"]
    assert tabular == {"ProblemType": "BinaryClassification"}
    assert v2["BestCandidate"]["CandidateName"] == trained[0]["BestCandidate"]["CandidateName"]


def test_v2_regression_with_gzipped_parts_and_a_validation_channel(clients):
    s3, sm = clients
    text = table(700, seed=3)
    header, *rows = text.splitlines()
    put(s3, "parts/a.csv.gz", gzip.compress(("\n".join([header, *rows[:350]]) + "\n").encode()))
    put(s3, "parts/b.csv.gz", gzip.compress(("\n".join([header, *rows[350:600]]) + "\n").encode()))
    put(s3, "holdout/v.csv", "\n".join([header, *rows[600:]]) + "\n")
    source = {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/parts/"}}
    sm.create_auto_ml_job_v2(
        AutoMLJobName="night-charge",
        AutoMLJobInputDataConfig=[
            {"ChannelType": "training", "CompressionType": "Gzip", "DataSource": source},
            {
                "ChannelType": "validation",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/holdout/"}},
            },
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        AutoMLProblemTypeConfig={
            "TabularJobConfig": {
                "TargetAttributeName": "Night Charge",
                "ProblemType": "Regression",
                "CompletionCriteria": {"MaxCandidates": 2},
            }
        },
        RoleArn=ROLE,
    )
    reply = wait(sm, "night-charge", v2=True)
    assert reply["AutoMLJobStatus"] == "Completed", reply.get("FailureReason")
    assert reply["AutoMLJobInputDataConfig"][0]["CompressionType"] == "Gzip"
    assert reply["ResolvedAttributes"]["AutoMLJobObjective"] == {"MetricName": "MSE"}
    assert reply["ResolvedAttributes"]["CompletionCriteria"]["MaxCandidates"] == 2
    best = reply["BestCandidate"]
    assert best["FinalAutoMLJobObjectiveMetric"]["Type"] == "Minimize"
    assert best["InferenceContainers"][0]["Environment"]["SAGEMAKER_INFERENCE_SUPPORTED"] == "predicted_label"
    v1 = sm.describe_auto_ml_job(AutoMLJobName="night-charge")
    assert [c.get("ChannelType") for c in v1["InputDataConfig"]] == ["training", "validation"]
    assert {c["TargetAttributeName"] for c in v1["InputDataConfig"]} == {"Night Charge"}


# -- data Autopilot rejects ----------------------------------------------------------------------------------------
BAD_DATA = {
    "no-target": (lambda: table(drop=(TARGET,)), "The target attribute 'Churn?' is not a column"),
    "one-class": (lambda: table().replace("True.", "False."), "has the single value 'False.'"),
    "empty-file": (lambda: "", "The input data is empty"),
    "header-only": (lambda: table().splitlines()[0] + "\n", "has a header but no data rows"),
    "few-rows": (lambda: table(100), "a minimum of 500 rows is required"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_data_autopilot_rejects_fails_the_job_with_a_reason(clients, case):
    s3, sm = clients
    make, reason = BAD_DATA[case]
    put(s3, f"bad/{case}/data.csv", make())
    create(sm, f"bad-{case}", f"s3://{BUCKET}/bad/{case}/")
    reply = wait(sm, f"bad-{case}")
    assert (reply["AutoMLJobStatus"], reply["AutoMLJobSecondaryStatus"]) == ("Failed", "Failed")
    assert reply["FailureReason"].startswith("ClientError: ") and reason in reply["FailureReason"]
    assert "BestCandidate" not in reply
    assert sm.list_candidates_for_auto_ml_job(AutoMLJobName=f"bad-{case}")["Candidates"] == []


def test_inputs_that_cannot_be_read_fail_the_job(clients):
    s3, sm = clients
    create(sm, "nothing-there", f"s3://{BUCKET}/no/such/prefix/")
    header, *rows = table().splitlines()
    put(s3, "mixed/a.csv", "\n".join([header, *rows[:300]]) + "\n")
    put(s3, "mixed/b.csv", "\n".join([header.replace("State", "Region"), *rows[300:]]) + "\n")
    create(sm, "header-mismatch", f"s3://{BUCKET}/mixed/")
    reply = wait(sm, "nothing-there")
    assert reply["AutoMLJobStatus"] == "Failed"
    assert reply["FailureReason"].startswith(
        f'ClientError: No S3 objects found under S3 URL "s3://{BUCKET}/no/such/prefix/"'
    )
    reply = wait(sm, "header-mismatch")
    assert reply["AutoMLJobStatus"] == "Failed"
    assert (
        f"The header of s3://{BUCKET}/mixed/b.csv does not match the header of s3://{BUCKET}/mixed/a.csv"
        in reply["FailureReason"]
    )


def test_requests_refused_at_once(clients, trained):
    _, sm = clients
    uri = f"s3://{BUCKET}/churn/"
    code, message = error(lambda: create(sm, "churn-v1", uri))
    assert code == "ResourceInUse" and "automl-job/churn-v1" in message
    assert error(lambda: sm.describe_auto_ml_job(AutoMLJobName="never-made"))[0] == "ResourceNotFound"
    code, message = error(
        lambda: create(
            sm, "mse-binary", uri, ProblemType="BinaryClassification", AutoMLJobObjective={"MetricName": "MSE"}
        )
    )
    assert code == "ValidationException" and "not supported for problem type BinaryClassification" in message
    assert error(lambda: create(sm, "x" * 33, uri))[0] == "ValidationException"
    assert (
        error(lambda: create(sm, "deploys", uri, ModelDeployConfig={"EndpointName": "ep"}))[0] == "ValidationException"
    )
    ensembling = {
        "AutoMLJobName": "ensemble",
        "InputDataConfig": [channel(uri)],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "RoleArn": ROLE,
        "AutoMLJobConfig": {"Mode": "ENSEMBLING"},
    }
    assert error(lambda: sm.create_auto_ml_job(**ensembling))[0] == "ValidationException"
    code, message = error(lambda: sm.stop_auto_ml_job(AutoMLJobName="churn-v1"))
    assert code == "ValidationException" and "Completed" in message


def test_generate_candidate_definitions_only(clients):
    s3, sm = clients
    create(sm, "definitions", f"s3://{BUCKET}/churn/", GenerateCandidateDefinitionsOnly=True)
    reply = wait(sm, "definitions")
    assert (reply["AutoMLJobStatus"], reply["AutoMLJobSecondaryStatus"]) == (
        "Completed",
        "CandidateDefinitionsGenerated",
    )
    assert "BestCandidate" not in reply and reply["GenerateCandidateDefinitionsOnly"] is True
    assert reply["ResolvedAttributes"]["ProblemType"] == "BinaryClassification"
    notebook = s3_object(s3, reply["AutoMLJobArtifacts"]["CandidateDefinitionNotebookLocation"])
    assert b"xgboost" in notebook and b"linear-learner" in notebook


def test_runtime_budget_ends_with_max_runtime_reached(clients):
    _, sm = clients
    create(sm, "short-budget", f"s3://{BUCKET}/churn/", budget={"MaxAutoMLJobRuntimeInSeconds": 4})
    started = time.monotonic()
    reply = wait(sm, "short-budget")
    assert (reply["AutoMLJobStatus"], reply["AutoMLJobSecondaryStatus"]) == ("Completed", "MaxAutoMLJobRuntimeReached")
    assert time.monotonic() - started < 30
    assert reply["BestCandidate"]["CandidateStatus"] == "Completed"


def test_stop_keeps_the_candidates_trained_so_far(clients):
    _, sm = clients
    create(sm, "to-stop", f"s3://{BUCKET}/churn/", budget={"MaxAutoMLJobRuntimeInSeconds": 120})
    wait_for_secondary(sm, "to-stop", "ModelTuning")
    time.sleep(1.0)  # a candidate or two
    sm.stop_auto_ml_job(AutoMLJobName="to-stop")
    sm.stop_auto_ml_job(AutoMLJobName="to-stop")  # stopping twice is no error
    seen: list = []
    reply = wait(sm, "to-stop", seen=seen, timeout=60)
    assert ("Stopping", "Stopping") in seen or seen[0][0] == "Stopped"
    assert (reply["AutoMLJobStatus"], reply["AutoMLJobSecondaryStatus"]) == ("Stopped", "Stopped")
    candidates = all_candidates(sm, "to-stop")
    if candidates:
        assert reply["BestCandidate"]["CandidateName"] in {c["CandidateName"] for c in candidates}


# -- restarts ------------------------------------------------------------------------------------------------------
def test_a_job_interrupted_by_a_crash_fails_with_a_reason_and_its_process_is_ended(tmp_path):
    data_dir = tmp_path / "data"
    server = LocalCloudProcess(data_dir, env=SERVER_ENV).start()
    try:
        s3, sm = server.client("s3"), server.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        put(s3, "churn/train.csv", table())
        create(sm, "crashes", f"s3://{BUCKET}/churn/", budget={"MaxAutoMLJobRuntimeInSeconds": 300})
        wait_for_secondary(sm, "crashes", "ModelTuning")
        orphans = runner_pids(data_dir)
        assert orphans
        os.kill(server.proc.pid, signal.SIGKILL)  # a crash: nothing closes
        server.proc.wait(10)
        server.stop()
        server = LocalCloudProcess(data_dir, port=server.port, env=SERVER_ENV).start()
        sm = server.client("sagemaker")
        reply = sm.describe_auto_ml_job(AutoMLJobName="crashes")
        assert (reply["AutoMLJobStatus"], reply["AutoMLJobSecondaryStatus"]) == ("Failed", "Failed")
        assert "localcloud restarted while this job was in progress" in reply["FailureReason"]
        deadline = time.monotonic() + 5
        while runner_pids(data_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not runner_pids(data_dir), "the orphaned job process was ended"
    finally:
        server.stop()
