"""Training, gate and blue/green operators against a localcloud that trains for real on a tiny budget."""

from __future__ import annotations

import uuid

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowSkipException, TaskDeferred
from aws_ml.operators.rekognition import (
    RekognitionCreateDatasetOperator,
    RekognitionCreateProjectOperator,
    RekognitionDetectCustomLabelsOperator,
    RekognitionEvaluationGateOperator,
    RekognitionStartProjectVersionOperator,
    RekognitionTrainProjectVersionOperator,
)
from aws_ml.triggers.rekognition import RekognitionTrainingCompleteTrigger

from tests.conftest import point_aws_default, running_localcloud
from tests.offline import TRAINING_BUDGET, detection_dataset

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from running_localcloud(tmp_path_factory.mktemp("ops-trainer") / "data", TRAINING_BUDGET)


@pytest.fixture
def project(server, monkeypatch):
    point_aws_default(server, monkeypatch)
    s3 = server.client("s3")
    bucket = f"ops-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    arn = RekognitionCreateProjectOperator(task_id="p", project_name=f"ops-{uuid.uuid4().hex[:6]}").execute({})
    for kind, count, seed in (("TRAIN", 8, 3), ("TEST", 4, 4)):
        key = detection_dataset(s3, bucket, kind.lower(), count, seed)
        RekognitionCreateDatasetOperator(
            task_id="d", project_arn=arn, dataset_type=kind, manifest_bucket=bucket, manifest_key=key, waiter_delay=1
        ).execute({})
    return arn, bucket


def _train(arn: str, bucket: str, version: str, **kwargs) -> str:
    return RekognitionTrainProjectVersionOperator(
        task_id="t",
        project_arn=arn,
        version_name=version,
        output_bucket=bucket,
        output_prefix="eval",
        waiter_delay=1,
        **kwargs,
    ).execute({})


def test_train_gate_and_blue_green(server, project):
    arn, bucket = project
    first = _train(arn, bucket, "v1")
    assert _train(arn, bucket, "v1") == first  # a rerun reuses the trained version

    gate = dict(task_id="g", project_arn=arn, version_name="v1")
    scores = RekognitionEvaluationGateOperator(min_f1=0.0, **gate).execute({})
    assert 0.0 <= scores["f1"] <= 1.0 and set(scores["labels"]) <= {"Red", "Blue"}
    with pytest.raises(AirflowException, match="below the gate"):
        RekognitionEvaluationGateOperator(min_f1=scores["f1"] + 1e-6, **gate).execute({})
    with pytest.raises(AirflowSkipException):
        RekognitionEvaluationGateOperator(min_f1=scores["f1"] + 1e-6, soft_fail=True, **gate).execute({})

    start = dict(task_id="s", project_arn=arn, waiter_delay=1)
    assert RekognitionStartProjectVersionOperator(version_name="v1", **start).execute({}) == first
    # A rerun of training once the version serves returns at once (deferring would wait for a status long gone).
    assert _train(arn, bucket, "v1", deferrable=True) == first
    second = _train(arn, bucket, "v2")
    assert RekognitionStartProjectVersionOperator(version_name="v2", **start).execute({}) == second
    rek = server.client("rekognition")
    statuses = {
        d["ProjectVersionArn"]: d["Status"]
        for d in rek.describe_project_versions(ProjectArn=arn)["ProjectVersionDescriptions"]
    }
    assert statuses == {first: "STOPPED", second: "RUNNING"}  # exactly one version serves

    # Text thresholds (params rendered without native objects) behave like numbers.
    assert RekognitionEvaluationGateOperator(min_f1="0", min_label_f1="0.0", **gate).execute({})["f1"] == scores["f1"]
    with pytest.raises(AirflowSkipException):
        RekognitionEvaluationGateOperator(min_f1="2", soft_fail="True", **gate).execute({})

    # Smoke check: the serving version answers; the stopped one fails with Rekognition's own error.
    images = [f"s3://{bucket}/test/{i}.png" for i in range(4)]
    expected = {uri: ["Red" if i % 2 == 0 else "Blue"] for i, uri in enumerate(images)}
    smoke = dict(task_id="smoke", images=images, expected_labels=expected, min_confidence=0.0)
    result = RekognitionDetectCustomLabelsOperator(project_version_arn=second, **smoke).execute({})
    assert result["images"] == 4 and [r["image"] for r in result["detections"]] == images
    assert 0.0 <= result["hit_rate"] <= 1.0
    for label in (x for r in result["detections"] for x in r["labels"]):
        assert label["name"] in {"Red", "Blue"}
        assert all(0.0 <= label["box"][k] <= 1.0 for k in ("Left", "Top", "Width", "Height"))
    with pytest.raises(AirflowException, match="hit rate"):
        RekognitionDetectCustomLabelsOperator(project_version_arn=second, min_hit_rate=1.01, **smoke).execute({})
    with pytest.raises(AirflowException, match="ResourceNotReadyException"):
        RekognitionDetectCustomLabelsOperator(project_version_arn=first, **smoke).execute({})
    with pytest.raises(ValueError, match="not an s3://"):
        RekognitionDetectCustomLabelsOperator(task_id="bad", project_version_arn=second, images=["test/0.png"]).execute(
            {}
        )


def test_deferrable_training_hands_off_to_its_trigger(server, project):
    arn, bucket = project
    with pytest.raises(TaskDeferred) as deferred:
        _train(arn, bucket, "deferred", deferrable=True)
    trigger = deferred.value.trigger
    assert isinstance(trigger, RekognitionTrainingCompleteTrigger)
    path, kwargs = trigger.serialize()
    assert path == "aws_ml.triggers.rekognition.RekognitionTrainingCompleteTrigger"
    assert kwargs["project_arn"] == arn and kwargs["version_name"] == "deferred"
