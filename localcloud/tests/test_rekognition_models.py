"""Custom Labels models in localcloud: real training in a process of its own, evaluation, start/stop, detection."""

from __future__ import annotations

import io
import json
import os
import time
import uuid

import numpy as np
import pytest
from botocore.exceptions import ClientError
from PIL import Image

from localcloud.process import LocalCloudProcess

pytest.importorskip("torch")

COLOURS = {0: ("Red", (220, 40, 40)), 1: ("Blue", (40, 60, 220))}


def _image(rng: np.random.Generator, label: int) -> tuple[bytes, list[int]]:
    pixels = rng.integers(90, 140, size=(128, 128, 3), dtype=np.uint8)
    w, h = (int(v) for v in rng.integers(36, 64, size=2))
    x, y = int(rng.integers(0, 128 - w)), int(rng.integers(0, 128 - h))
    pixels[y : y + h, x : x + w] = COLOURS[label][1]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue(), [x, y, w, h]


def _dataset(s3, bucket: str, name: str, count: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(count):
        label = i % 2
        data, (x, y, w, h) = _image(rng, label)
        key = f"{name}/{i}.png"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        lines.append(
            json.dumps(
                {
                    "source-ref": f"s3://{bucket}/{key}",
                    "bounding-box": {
                        "image_size": [{"width": 128, "height": 128, "depth": 3}],
                        "annotations": [{"class_id": label, "left": x, "top": y, "width": w, "height": h}],
                    },
                    "bounding-box-metadata": {
                        "objects": [{"confidence": 1}],
                        "class-map": {str(label): COLOURS[label][0]},
                        "type": "groundtruth/object-detection",
                        "human-annotated": "yes",
                        "creation-date": "2026-01-01T00:00:00",
                        "job-name": "labeling-job/rectangles",
                    },
                }
            )
        )
    s3.put_object(Bucket=bucket, Key=f"{name}.jsonl", Body=("\n".join(lines) + "\n").encode())
    return f"{name}.jsonl"


# A detector that trains for seconds, not minutes.
TRAINING_BUDGET = {
    "LOCALCLOUD_TRAIN_IMAGE_SIZE": "128",
    "LOCALCLOUD_TRAIN_EPOCHS": "3",
    "LOCALCLOUD_TRAIN_MAX_SECONDS": "30",
    "LOCALCLOUD_TRAIN_BATCH_SIZE": "4",
}


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    with LocalCloudProcess(tmp_path_factory.mktemp("trainer") / "data", env=TRAINING_BUDGET) as server:
        yield server


@pytest.fixture(scope="module")
def project(trainer):
    s3, rek = trainer.client("s3"), trainer.client("rekognition")
    bucket = f"cl-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    arn = rek.create_project(ProjectName="rectangles")["ProjectArn"]
    for kind, count, seed in (("TRAIN", 12, 1), ("TEST", 6, 2)):
        key = _dataset(s3, bucket, kind.lower(), count, seed)
        source = {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": key}}}
        dataset = rek.create_dataset(ProjectArn=arn, DatasetType=kind, DatasetSource=source)["DatasetArn"]
        deadline = time.monotonic() + 30
        while rek.describe_dataset(DatasetArn=dataset)["DatasetDescription"]["Status"] == "CREATE_IN_PROGRESS":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    return arn, bucket


def _version(rek, project_arn: str, name: str) -> dict:
    return rek.describe_project_versions(ProjectArn=project_arn, VersionNames=[name])["ProjectVersionDescriptions"][0]


def test_train_evaluate_start_detect_stop(trainer, project):
    rek, s3 = trainer.client("rekognition"), trainer.client("s3")
    project_arn, bucket = project
    output = {"S3Bucket": bucket, "S3KeyPrefix": "evaluation"}
    arn = rek.create_project_version(ProjectArn=project_arn, VersionName="v1", OutputConfig=output)["ProjectVersionArn"]
    assert _version(rek, project_arn, "v1")["Status"] == "TRAINING_IN_PROGRESS"
    with pytest.raises(ClientError) as exc:
        rek.create_project_version(ProjectArn=project_arn, VersionName="v1", OutputConfig=output)
    assert exc.value.response["Error"]["Code"] == "ResourceInUseException"

    # boto3's own waiter, as the Airflow operators will use it.
    rek.get_waiter("project_version_training_completed").wait(
        ProjectArn=project_arn, VersionNames=["v1"], WaiterConfig={"Delay": 2, "MaxAttempts": 90}
    )
    described = _version(rek, project_arn, "v1")
    assert described["Status"] == "TRAINING_COMPLETED"
    f1 = described["EvaluationResult"]["F1Score"]
    assert 0.0 <= f1 <= 1.0
    location = described["EvaluationResult"]["Summary"]["S3Object"]
    summary = json.loads(s3.get_object(Bucket=location["Bucket"], Key=location["Name"])["Body"].read())
    assert location["Name"].startswith("evaluation/")
    assert {r["Label"] for r in summary["LabelEvaluationResults"]} <= {"Red", "Blue"}
    assert summary["EvaluationResult"]["F1Score"] == pytest.approx(f1)

    image, _ = _image(np.random.default_rng(9), 0)
    with pytest.raises(ClientError) as exc:
        rek.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image})
    assert exc.value.response["Error"]["Code"] == "ResourceNotReadyException"

    assert rek.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)["Status"] == "STARTING"
    rek.get_waiter("project_version_running").wait(
        ProjectArn=project_arn, VersionNames=["v1"], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    found = rek.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image}, MinConfidence=0)["CustomLabels"]
    for label in found:
        assert label["Name"] in {"Red", "Blue"} and 0 <= label["Confidence"] <= 100
        box = label["Geometry"]["BoundingBox"]
        assert 0 <= box["Left"] <= 1 and 0 <= box["Top"] <= 1 and 0 < box["Width"] <= 1 and 0 < box["Height"] <= 1
    limited = rek.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": image}, MinConfidence=0, MaxResults=1)
    assert len(limited["CustomLabels"]) <= 1
    with pytest.raises(ClientError) as exc:
        rek.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": b"not an image"})
    assert exc.value.response["Error"]["Code"] == "InvalidImageFormatException"

    with pytest.raises(ClientError) as exc:
        rek.delete_project_version(ProjectVersionArn=arn)
    assert exc.value.response["Error"]["Code"] == "ResourceInUseException"
    assert rek.stop_project_version(ProjectVersionArn=arn)["Status"] == "STOPPING"
    assert _version(rek, project_arn, "v1")["Status"] == "STOPPED"
    with pytest.raises(ClientError) as exc:
        rek.delete_project(ProjectArn=project_arn)
    assert exc.value.response["Error"]["Code"] == "ResourceInUseException"


def test_restart_during_training_fails_the_version_with_a_reason(trainer, project):
    rek = trainer.client("rekognition")
    project_arn, bucket = project
    rek.create_project_version(
        ProjectArn=project_arn, VersionName="interrupted", OutputConfig={"S3Bucket": bucket, "S3KeyPrefix": "eval"}
    )
    time.sleep(1.0)
    trainer.stop()
    trainer.start()
    described = _version(trainer.client("rekognition"), project_arn, "interrupted")
    assert described["Status"] == "TRAINING_FAILED"
    assert "while this version was training" in described["StatusMessage"]


def test_crash_during_training_is_recovered_on_the_next_start(trainer, project):
    """SIGKILL leaves no chance to clean up: the next server fails the version and stops its orphaned job."""
    import signal

    rek = trainer.client("rekognition")
    project_arn, bucket = project
    rek.create_project_version(
        ProjectArn=project_arn, VersionName="crashed", OutputConfig={"S3Bucket": bucket, "S3KeyPrefix": "eval"}
    )
    time.sleep(1.0)
    os.kill(trainer.proc.pid, signal.SIGKILL)
    trainer.proc.wait(10)
    trainer.start()
    described = _version(trainer.client("rekognition"), project_arn, "crashed")
    assert described["Status"] == "TRAINING_FAILED"
    assert described["StatusMessage"].startswith("localcloud restarted")
    jobs = [p for p in os.popen("ps -eo args").read().splitlines() if "engines.detector.job" in p and "crashed" in p]
    assert jobs == []
