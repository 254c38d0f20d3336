"""localcloud's SageMaker models and batch transform through boto3, and the Amazon provider's AutoML, model and
transform operators run unchanged against it: real predictions from a model an AutoML job trained, in the output
format SageMaker writes for each response-key set, Accept and data-processing setting.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import signal
import tarfile
import time
import uuid

import pytest
from airflow_conn import point_aws_default
from test_sagemaker_automl import (
    BUCKET,
    ROLE,
    SERVER_ENV,
    TARGET,
    create,
    error,
    put,
    s3_object,
    table,
    wait,
)

from localcloud.process import LocalCloudProcess

pytest.importorskip("sklearn")
pytest.importorskip("xgboost")

FULL_KEYS = "predicted_label,probability,labels,probabilities"
RESOURCES = {"InstanceType": "ml.m5.large", "InstanceCount": 1}


# -- helpers -------------------------------------------------------------------------------------------------------
def feature_rows(count: int, seed: int) -> list[list[str]]:
    return [line.split(",") for line in table(count, seed=seed, drop=(TARGET,), header=False).splitlines()]


def csv_text(rows: list[list[str]]) -> str:
    return "".join(",".join(row) + "\n" for row in rows)


def wait_transform(sm, name: str, timeout: float = 120, seen: list | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        reply = sm.describe_transform_job(TransformJobName=name)
        if seen is not None and (not seen or seen[-1] != reply["TransformJobStatus"]):
            seen.append(reply["TransformJobStatus"])
        if reply["TransformJobStatus"] not in ("InProgress", "Stopping"):
            return reply
        assert time.monotonic() < deadline, f"transform job {name} still {reply['TransformJobStatus']}"
        time.sleep(0.15)


def transform(sm, name: str, model: str, source: str, output: str, *, accept: str | None = None, **extra) -> str:
    split = extra.pop("split", "Line")
    assemble = extra.pop("assemble", "Line")
    request = {
        "TransformJobName": name,
        "ModelName": model,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
            "ContentType": "text/csv",
            "SplitType": split,
        },
        "TransformOutput": {"S3OutputPath": output, "AssembleWith": assemble, **({"Accept": accept} if accept else {})},
        "TransformResources": RESOURCES,
        **extra,
    }
    return sm.create_transform_job(**request)["TransformJobArn"]


def keys_of(s3, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents") or [])


class TaskInstance:
    """What the operators push to XCom (their console links) when ``execute`` runs outside a DAG run."""

    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


# -- SageMaker's JSONPath subset, without a server -------------------------------------------------------------------
RECORD = ["id7", "a", "b", "c", "yes", "0.9"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", RECORD),
        ("", RECORD),
        ("$[1:]", ["a", "b", "c", "yes", "0.9"]),
        ("$[0,-1]", ["id7", "0.9"]),
        ("$[0,4:]", ["id7", "yes", "0.9"]),
        ("$[:2]", ["id7", "a"]),
        ("$[-2:]", ["yes", "0.9"]),
        ("$[1]", "a"),
    ],
)
def test_jsonpath_on_csv_records(path, expected):
    from localcloud.services.sagemaker.batch import parse_path, select

    assert select(parse_path(path), RECORD) == expected


def test_jsonpath_on_json_records_and_errors():
    from localcloud.services.sagemaker.batch import PathError, parse_path, select

    joined = {"SageMakerInput": RECORD, "SageMakerOutput": {"predicted_label": "yes", "probability": 0.9}}
    assert select(parse_path("$.SageMakerOutput.probability"), joined) == 0.9
    assert select(parse_path("$['SageMakerOutput']"), joined) == joined["SageMakerOutput"]
    picked = select(parse_path("$['SageMakerInput','SageMakerOutput']"), joined)
    assert picked == joined and list(picked) == ["SageMakerInput", "SageMakerOutput"]
    assert select(parse_path("$.SageMakerInput[0]"), joined) == "id7"
    for unsupported in ("$..x", "x[0]", "$[?(@.a)]", "$[1:2:3]", "$[a]"):
        with pytest.raises(PathError):
            parse_path(unsupported)
    with pytest.raises(PathError, match="Index 6 is outside a record of 6 fields"):
        select(parse_path("$[0,6]"), RECORD)
    with pytest.raises(PathError, match="no member 'nope'"):
        select(parse_path("$.nope"), joined)


# -- fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalCloudProcess(tmp_path_factory.mktemp("transform") / "data", env=SERVER_ENV) as process:
        yield process


@pytest.fixture(scope="module")
def trained(server, tmp_path_factory):
    """A churn model from a real AutoML job, registered as a SageMaker model, and the same model loaded here."""
    s3, sm = server.client("s3"), server.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    put(s3, "churn/train.csv", table())
    create(sm, "churn-for-batch", f"s3://{BUCKET}/churn/", budget={"MaxCandidates": 3})
    best = wait(sm, "churn-for-batch")["BestCandidate"]
    sm.create_model(ModelName="churn", Containers=best["InferenceContainers"], ExecutionRoleArn=ROLE)
    folder = tmp_path_factory.mktemp("model")
    with tarfile.open(fileobj=io.BytesIO(s3_object(s3, best["InferenceContainers"][0]["ModelDataUrl"]))) as tar:
        tar.extractall(folder, filter="data")
    from localcloud.engines import automl

    return s3, sm, best, automl.load(folder)


@pytest.fixture(scope="module")
def batch_input(trained):
    """Two objects of id + features, one in a sub-folder, as a scoring job would find them."""
    s3 = trained[0]
    a = [[f"a{i}", *row] for i, row in enumerate(feature_rows(6, seed=11))]
    b = [[f"b{i}", *row] for i, row in enumerate(feature_rows(3, seed=12))]
    put(s3, "score/a.csv", csv_text(a))
    put(s3, "score/more/b.csv", csv_text(b))
    return {"score/a.csv": a, "score/more/b.csv": b}


# -- models --------------------------------------------------------------------------------------------------------
def test_models_are_created_described_listed_and_deleted(trained):
    s3, sm, best, _ = trained
    container = best["InferenceContainers"][0]
    arn = sm.create_model(ModelName="Primary-One", PrimaryContainer=container)["ModelArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:model/primary-one"
    described = sm.describe_model(ModelName="Primary-One")
    assert described["PrimaryContainer"] == container and described["ModelArn"] == arn
    names = [m["ModelName"] for m in sm.list_models(NameContains="primary")["Models"]]
    assert names == ["Primary-One"]
    first = sm.list_models(SortBy="Name", SortOrder="Ascending", MaxResults=1)
    second = sm.list_models(SortBy="Name", SortOrder="Ascending", MaxResults=1, NextToken=first["NextToken"])
    assert [m["ModelName"] for m in first["Models"] + second["Models"]] == sorted(["Primary-One", "churn"])
    code, message = error(lambda: sm.create_model(ModelName="Primary-One", PrimaryContainer=container))
    assert code == "ValidationException" and "Cannot create already existing model" in message
    sm.delete_model(ModelName="Primary-One")
    code, message = error(lambda: sm.describe_model(ModelName="Primary-One"))
    assert code == "ValidationException" and message == f'Could not find model "{arn}".'
    assert error(lambda: sm.delete_model(ModelName="Primary-One"))[0] == "ValidationException"


def test_a_missing_model_artifact_is_refused(trained):
    _, sm, best, _ = trained
    missing = f"s3://{BUCKET}/nowhere/model.tar.gz"
    container = {**best["InferenceContainers"][0], "ModelDataUrl": missing}
    code, message = error(lambda: sm.create_model(ModelName="missing-data", PrimaryContainer=container))
    assert (code, message) == ("ValidationException", f"Could not find model data at {missing}.")


# -- only this localcloud's AutoML artifacts are loaded -----------------------------------------------------------
class _MakesMarker:
    """A pickle that creates ``marker`` (a folder) when it is loaded: proof that something was unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def repack(artifact: bytes, **replace: bytes) -> bytes:
    """``artifact``'s members, ``replace``d by name (the signature member kept as it was), in a new tarball."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(artifact)) as src, tarfile.open(fileobj=out, mode="w:gz") as tar:
        for member in src:
            data = replace.get(member.name.replace(".", "_"), src.extractfile(member).read())
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return out.getvalue()


def members(artifact: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(artifact)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}


def refused_transform(sm, s3, container: dict, name: str, artifact: bytes) -> str:
    """The FailureReason of a transform of ``artifact`` (uploaded as a model of its own), which must fail."""
    url = put(s3, f"foreign/{name}/model.tar.gz", artifact)
    sm.create_model(ModelName=name, PrimaryContainer={**container, "ModelDataUrl": url})  # AWS checks existence only
    put(s3, f"foreign-in/{name}/x.csv", csv_text(feature_rows(2, seed=3)))
    transform(sm, name, name, f"s3://{BUCKET}/foreign-in/{name}/", f"s3://{BUCKET}/foreign-out/{name}")
    reply = wait_transform(sm, name)
    assert reply["TransformJobStatus"] == "Failed", reply
    assert keys_of(s3, f"foreign-out/{name}/") == []
    return reply["FailureReason"]


def test_a_changed_or_repacked_model_artifact_is_refused_before_anything_is_unpickled(trained, tmp_path):
    s3, sm, best, _ = trained
    container = best["InferenceContainers"][0]
    original = s3_object(s3, container["ModelDataUrl"])
    files = members(original)
    flipped = bytearray(files["model.joblib"])
    flipped[len(flipped) // 2] ^= 0x01
    marker = tmp_path / "unpickled"
    evil = pickle.dumps(_MakesMarker(str(marker)))
    unsigned = io.BytesIO()
    with tarfile.open(fileobj=unsigned, mode="w:gz") as tar:
        for name, data in (("metadata.json", files["metadata.json"]), ("model.joblib", evil)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    cases = {
        "evil-pickle": (repack(original, model_joblib=evil), "the signature of model.joblib does not match"),
        "one-byte": (repack(original, model_joblib=bytes(flipped)), "the signature of model.joblib does not match"),
        "unsigned": (unsigned.getvalue(), "it has no localcloud-signature.json"),
        "other-metadata": (
            repack(original, metadata_json=files["metadata.json"].replace(b'"model.joblib"', b'"../x"')),
            "the signature of metadata.json does not match",
        ),
    }
    for name, (artifact, why) in cases.items():
        reason = refused_transform(sm, s3, container, name, artifact)
        assert not marker.exists(), f"{name}: the pickle was loaded"
        url = f"s3://{BUCKET}/foreign/{name}/model.tar.gz"
        assert reason.startswith(f"ClientError: The model data at {url} was not written by this localcloud's AutoML")
        assert why in reason, (name, reason)
    # What the AutoML job wrote, plus the server's signature: the member the refused artifacts lacked or misused.
    assert sorted(files) == ["localcloud-signature.json", "metadata.json", "model.joblib"]


def test_an_artifact_signed_by_another_localcloud_is_refused(trained, tmp_path):
    """Another data dir has its own key: its AutoML's artifacts are foreign here, and this server's are there."""
    s3, sm, best, _ = trained
    container = best["InferenceContainers"][0]
    original = s3_object(s3, container["ModelDataUrl"])
    with LocalCloudProcess(tmp_path / "other", env=SERVER_ENV) as other:
        o_s3, o_sm = other.client("s3"), other.client("sagemaker")
        o_s3.create_bucket(Bucket=BUCKET)
        reason = refused_transform(o_sm, o_s3, container, "from-elsewhere", original)
        assert "was not written by this localcloud's AutoML" in reason
        assert "does not match its bytes under this localcloud's key" in reason
        key = other.data_dir / "sagemaker-model-signing.key"
        assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    # The key is the data dir's: a restarted server keeps it, so what its AutoML signed still loads (see the
    # crash test), and the key never appears in what the API serves.
    assert key.read_bytes() not in original


# -- transform outputs ---------------------------------------------------------------------------------------------
FORMATS = [
    ("predicted_label", "text/csv"),
    ("predicted_label,probability", "text/csv"),
    (FULL_KEYS, "text/csv"),
    (FULL_KEYS, "application/jsonlines"),
    ("predicted_label,probability", "application/json"),
]


def test_each_response_key_set_and_accept_type_gives_the_containers_output(trained, batch_input):
    s3, sm, _, predictor = trained
    from localcloud.engines.automl import format_output

    for n, (keys, accept) in enumerate(FORMATS):
        transform(
            sm,
            f"keys-{n}",
            "churn",
            f"s3://{BUCKET}/score/",
            f"s3://{BUCKET}/keys-{n}",
            accept=accept,
            Environment={"SAGEMAKER_INFERENCE_OUTPUT": keys},
            DataProcessing={"InputFilter": "$[1:]"},
        )
    for n, (keys, accept) in enumerate(FORMATS):
        reply = wait_transform(sm, f"keys-{n}")
        assert reply["TransformJobStatus"] == "Completed", reply.get("FailureReason")
        assert reply["Environment"] == {"SAGEMAKER_INFERENCE_OUTPUT": keys}
        assert keys_of(s3, f"keys-{n}/") == [f"keys-{n}/a.csv.out", f"keys-{n}/more/b.csv.out"]
        for key, rows in batch_input.items():
            results = predictor.predict_csv_rows([row[1:] for row in rows], keys.split(","))
            # SplitType Line: one request a record; AssembleWith Line: one response a line.
            expected = "".join(format_output([r], keys.split(","), accept).rstrip("\n") + "\n" for r in results)
            got = s3_object(s3, f"s3://{BUCKET}/keys-{n}/{key[len('score/') :]}.out").decode()
            assert got == expected, (keys, accept)
    full = s3_object(s3, f"s3://{BUCKET}/keys-2/a.csv.out").decode().splitlines()[0]
    label, probability, labels, probabilities = next(csv.reader([full]))
    assert label in ("True.", "False.") and 0 <= float(probability) <= 1
    assert labels == "['False.', 'True.']" and probabilities.startswith("[")


def test_join_source_and_filters(trained, batch_input):
    s3, sm, _, predictor = trained
    rows = batch_input["score/a.csv"]
    results = predictor.predict_csv_rows([row[1:] for row in rows], ["predicted_label", "probability"])
    env = {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probability"}
    cases = {
        "join-all": ({"InputFilter": "$[1:]", "JoinSource": "Input"}, "text/csv"),
        "join-id": ({"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}, "text/csv"),
        "join-json": ({"InputFilter": "$[1:]", "JoinSource": "Input"}, "application/jsonlines"),
        "json-pick": ({"InputFilter": "$[1:]", "OutputFilter": "$.probability"}, "application/jsonlines"),
    }
    for name, (processing, accept) in cases.items():
        transform(
            sm,
            name,
            "churn",
            f"s3://{BUCKET}/score/a.csv",
            f"s3://{BUCKET}/{name}/",
            accept=accept,
            Environment=env,
            DataProcessing=processing,
        )
    outputs = {}
    for name in cases:
        reply = wait_transform(sm, name)
        assert reply["TransformJobStatus"] == "Completed", reply.get("FailureReason")
        assert keys_of(s3, f"{name}/") == [f"{name}/a.csv.out"]
        outputs[name] = s3_object(s3, f"s3://{BUCKET}/{name}/a.csv.out").decode().splitlines()
    assert outputs["join-all"] == [
        ",".join([*row, r["predicted_label"], repr(r["probability"])]) for row, r in zip(rows, results, strict=True)
    ]
    assert outputs["join-id"] == [f"{row[0]},{r['probability']!r}" for row, r in zip(rows, results, strict=True)]
    joined = [json.loads(line) for line in outputs["join-json"]]
    assert joined[0] == {"SageMakerInput": rows[0], "SageMakerOutput": results[0]}
    assert [json.loads(line) for line in outputs["json-pick"]] == [r["probability"] for r in results]


def test_split_none_sends_each_object_whole(trained, batch_input):
    s3, sm, _, predictor = trained
    from localcloud.engines.automl import format_output

    rows = batch_input["score/a.csv"]
    put(s3, "plain/a.csv", csv_text([row[1:] for row in rows]))
    transform(
        sm,
        "whole",
        "churn",
        f"s3://{BUCKET}/plain/",
        f"s3://{BUCKET}/whole",
        split="None",
        assemble="None",
        accept="application/json",
    )
    assert wait_transform(sm, "whole")["TransformJobStatus"] == "Completed"
    results = predictor.predict_csv_rows([row[1:] for row in rows], ["predicted_label"])
    got = s3_object(s3, f"s3://{BUCKET}/whole/a.csv.out").decode()
    assert got == format_output(results, ["predicted_label"], "application/json")
    assert len(json.loads(got)["predictions"]) == len(rows)


def test_a_manifest_names_the_objects_and_their_outputs(trained, batch_input):
    s3, sm, _, _ = trained
    manifest = [{"prefix": f"s3://{BUCKET}/score/"}, "more/b.csv", "a.csv"]
    put(s3, "manifests/score.json", json.dumps(manifest))
    sm.create_transform_job(
        TransformJobName="from-manifest",
        ModelName="churn",
        TransformInput={
            "DataSource": {
                "S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": f"s3://{BUCKET}/manifests/score.json"}
            },
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/manifest-out"},
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
        TransformResources=RESOURCES,
    )
    reply = wait_transform(sm, "from-manifest")
    assert reply["TransformJobStatus"] == "Completed", reply.get("FailureReason")
    assert keys_of(s3, "manifest-out/") == ["manifest-out/a.csv.out", "manifest-out/more/b.csv.out"]
    ids = [
        line.split(",")[0] for line in s3_object(s3, f"s3://{BUCKET}/manifest-out/more/b.csv.out").decode().splitlines()
    ]
    assert ids == [row[0] for row in batch_input["score/more/b.csv"]]


# -- failures ------------------------------------------------------------------------------------------------------
def test_a_record_with_the_wrong_column_count_fails_the_job_naming_file_and_line(trained, batch_input):
    s3, sm, _, _ = trained
    good = batch_input["score/a.csv"]
    put(s3, "ragged/1-good.csv", csv_text(good))
    put(s3, "ragged/2-bad.csv", csv_text([good[0], good[1][:5], good[2]]))
    put(s3, "ragged/3-later.csv", csv_text(good))
    transform(
        sm,
        "ragged",
        "churn",
        f"s3://{BUCKET}/ragged/",
        f"s3://{BUCKET}/ragged-out",
        DataProcessing={"InputFilter": "$[1:]"},
    )
    reply = wait_transform(sm, "ragged")
    assert reply["TransformJobStatus"] == "Failed"
    reason = reply["FailureReason"]
    assert reason.startswith(f"ClientError: Bad input in s3://{BUCKET}/ragged/2-bad.csv, line 2: ")
    assert "The record has 4 columns; the model expects 20" in reason
    # The object done before the failure has its output, as SageMaker writes each object's when it is done.
    assert keys_of(s3, "ragged-out/") == ["ragged-out/1-good.csv.out"]
    assert "TransformEndTime" in reply and reply["TransformEndTime"] >= reply["TransformStartTime"]


def test_jobs_that_cannot_run(trained, batch_input):
    s3, sm, _, _ = trained
    transform(sm, "no-input", "churn", f"s3://{BUCKET}/absent/", f"s3://{BUCKET}/absent-out")
    model_only_label = {**trained[2]["InferenceContainers"][0]}
    model_only_label["Environment"] = {"SAGEMAKER_INFERENCE_OUTPUT": "foo"}  # no SUPPORTED list to check it against
    sm.create_model(ModelName="odd-keys", PrimaryContainer=model_only_label)
    transform(
        sm,
        "odd-keys",
        "odd-keys",
        f"s3://{BUCKET}/score/",
        f"s3://{BUCKET}/odd-out",
        DataProcessing={"InputFilter": "$[1:]"},
    )
    transform(
        sm,
        "past-end",
        "churn",
        f"s3://{BUCKET}/score/a.csv",
        f"s3://{BUCKET}/past-out",
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[40]"},
    )
    transform(sm, "no-bucket", "churn", f"s3://{BUCKET}/score/", "s3://no-such-bucket/out")
    reply = wait_transform(sm, "no-bucket")
    assert reply["TransformJobStatus"] == "Failed"
    assert reply["FailureReason"].startswith(
        "ClientError: The S3 output path s3://no-such-bucket/out cannot be written"
    )
    reply = wait_transform(sm, "no-input")
    assert reply["TransformJobStatus"] == "Failed"
    assert reply["FailureReason"].startswith(f'ClientError: No S3 objects found under S3 URL "s3://{BUCKET}/absent/"')
    reply = wait_transform(sm, "odd-keys")
    assert reply["TransformJobStatus"] == "Failed" and "foo" in reply["FailureReason"]
    reply = wait_transform(sm, "past-end")
    assert reply["TransformJobStatus"] == "Failed"
    assert "a.csv, line 1: OutputFilter '$[40]': Index 40 is outside a record of 22 fields" in reply["FailureReason"]
    assert keys_of(s3, "odd-out/") == keys_of(s3, "past-out/") == []


def test_requests_refused_at_once(trained, batch_input):
    _, sm, _, _ = trained
    source, out = f"s3://{BUCKET}/score/", f"s3://{BUCKET}/refused"
    code, message = error(lambda: transform(sm, "unknown-model", "nope", source, out))
    assert (code, message) == (
        "ValidationException",
        'Could not find model "arn:aws:sagemaker:us-east-1:000000000000:model/nope".',
    )
    transform(sm, "twice", "churn", source, out, DataProcessing={"InputFilter": "$[1:]"})
    code, message = error(lambda: transform(sm, "twice", "churn", source, out))
    assert code == "ResourceInUse" and "transform-job/twice" in message
    code, message = error(lambda: sm.describe_transform_job(TransformJobName="never"))
    assert (code, message) == ("ValidationException", "Could not find requested job with name never")
    assert (
        error(lambda: transform(sm, "bad-path", "churn", source, out, DataProcessing={"InputFilter": "$..x"}))[0]
        == "ValidationException"
    )
    assert (
        error(lambda: transform(sm, "bad-accept", "churn", source, out, accept="image/png"))[0] == "ValidationException"
    )
    asks_too_much = {"SAGEMAKER_INFERENCE_OUTPUT": "probability", "SAGEMAKER_INFERENCE_SUPPORTED": "predicted_label"}
    code, message = error(lambda: transform(sm, "too-much", "churn", source, out, Environment=asks_too_much))
    assert code == "ValidationException" and "does not support" in message
    wait_transform(sm, "twice")
    listed = sm.list_transform_jobs(NameContains="twice")["TransformJobSummaries"]
    assert [(j["TransformJobName"], j["TransformJobStatus"]) for j in listed] == [("twice", "Completed")]
    by_name = sm.list_transform_jobs(SortBy="Name", SortOrder="Ascending", MaxResults=2)
    more = sm.list_transform_jobs(SortBy="Name", SortOrder="Ascending", MaxResults=2, NextToken=by_name["NextToken"])
    names = [j["TransformJobName"] for j in by_name["TransformJobSummaries"] + more["TransformJobSummaries"]]
    assert names == sorted(names) and len(set(names)) == len(names) == 4


def test_stop_transform_job_writes_nothing(trained, batch_input):
    s3, sm, _, _ = trained
    transform(
        sm,
        "stopped",
        "churn",
        f"s3://{BUCKET}/score/",
        f"s3://{BUCKET}/stopped-out",
        DataProcessing={"InputFilter": "$[1:]"},
    )
    sm.stop_transform_job(TransformJobName="stopped")  # while its process is still starting
    seen: list = []
    reply = wait_transform(sm, "stopped", seen=seen)
    assert seen[-1] == "Stopped" and reply["TransformJobStatus"] == "Stopped"
    assert keys_of(s3, "stopped-out/") == []
    code, message = error(lambda: sm.stop_transform_job(TransformJobName="stopped"))
    assert code == "ValidationException" and "Stopped" in message


def test_a_transform_interrupted_by_a_crash_resumes(tmp_path):
    data_dir = tmp_path / "data"
    server = LocalCloudProcess(data_dir, env=SERVER_ENV).start()
    try:
        s3, sm = server.client("s3"), server.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        put(s3, "churn/train.csv", table())
        create(sm, "for-restart", f"s3://{BUCKET}/churn/", budget={"MaxCandidates": 1})
        best = wait(sm, "for-restart")["BestCandidate"]
        sm.create_model(ModelName="m", Containers=best["InferenceContainers"])
        put(s3, "in/x.csv", csv_text(feature_rows(4, seed=5)))
        transform(sm, "survives", "m", f"s3://{BUCKET}/in/", f"s3://{BUCKET}/out")
        os.kill(server.proc.pid, signal.SIGKILL)  # before the job's process has finished starting
        server.proc.wait(10)
        server.stop()
        server = LocalCloudProcess(data_dir, port=server.port, env=SERVER_ENV).start()
        s3, sm = server.client("s3"), server.client("sagemaker")
        reply = wait_transform(sm, "survives")
        assert reply["TransformJobStatus"] == "Completed", reply.get("FailureReason")
        assert len(s3_object(s3, f"s3://{BUCKET}/out/x.csv.out").decode().splitlines()) == 4
    finally:
        server.stop()


# -- the Amazon provider's operators, unchanged ----------------------------------------------------------------------
def test_provider_operators_train_register_and_score(server, trained, batch_input, monkeypatch):
    from airflow.providers.amazon.aws.operators.sagemaker import (
        SageMakerAutoMLOperator,
        SageMakerModelOperator,
        SageMakerTransformOperator,
    )

    point_aws_default(server, monkeypatch)
    s3 = trained[0]
    suffix = uuid.uuid4().hex[:6]
    best = SageMakerAutoMLOperator(
        task_id="automl",
        job_name=f"op-{suffix}",
        s3_input=f"s3://{BUCKET}/churn/",
        target_attribute=TARGET,
        s3_output=f"s3://{BUCKET}/op-output",
        role_arn=ROLE,
        time_limit=20,
        extras={"AutoMLJobConfig": {"CompletionCriteria": {"MaxCandidates": 2, "MaxAutoMLJobRuntimeInSeconds": 20}}},
        check_interval=1,
    ).execute({})
    assert best["CandidateStatus"] == "Completed"
    model_config = {
        "ModelName": f"op-model-{suffix}",
        "Containers": best["InferenceContainers"],
        "ExecutionRoleArn": ROLE,
    }
    described = SageMakerModelOperator(task_id="model", config=model_config).execute({})
    assert described["Model"]["ModelName"] == f"op-model-{suffix}"

    transform_config = {
        "TransformJobName": f"op-score-{suffix}",
        "ModelName": f"op-model-{suffix}",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/score/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/op-scores/{suffix}", "AssembleWith": "Line"},
        "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": "1"},
    }
    ti = TaskInstance()
    result = SageMakerTransformOperator(task_id="score", config=transform_config, check_interval=1).execute({"ti": ti})
    assert result["Transform"]["TransformJobStatus"] == "Completed"
    assert result["Model"]["ModelName"] == f"op-model-{suffix}"
    scored = s3_object(s3, f"s3://{BUCKET}/op-scores/{suffix}/a.csv.out").decode().splitlines()
    assert [line.split(",")[0] for line in scored] == [row[0] for row in batch_input["score/a.csv"]]
    # A rerun finds the job and model names taken and picks new ones, through DescribeX's ValidationException.
    rerun = {"Model": dict(model_config), "Transform": dict(transform_config)}
    again = SageMakerTransformOperator(task_id="score", config=rerun, check_interval=1).execute({"ti": ti})
    assert again["Transform"]["TransformJobName"].startswith(f"op-score-{suffix}-")
    assert again["Model"]["ModelName"].startswith(f"op-model-{suffix}-")
