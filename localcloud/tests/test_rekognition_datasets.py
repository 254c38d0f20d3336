"""localcloud's Rekognition Custom Labels projects and datasets, through boto3."""

from __future__ import annotations

import io
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from localcloud.core import RequestContext
from localcloud.services.rekognition.backend import RekognitionBackend
from localcloud.services.s3.backend import S3Backend


def _png(width: int = 128, height: int = 96) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 90, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def _line(bucket: str, key: str, boxes: list[tuple[int, int, int, int, int]], class_map: dict[int, str]) -> str:
    return json.dumps(
        {
            "source-ref": f"s3://{bucket}/{key}",
            "bounding-box": {
                "image_size": [{"width": 128, "height": 96, "depth": 3}],
                "annotations": [
                    {"class_id": c, "left": x, "top": y, "width": w, "height": h} for c, x, y, w, h in boxes
                ],
            },
            "bounding-box-metadata": {
                "objects": [{"confidence": 1} for _ in boxes],
                "class-map": {str(c): class_map[c] for c, *_ in boxes},
                "type": "groundtruth/object-detection",
                "human-annotated": "no",
                "creation-date": "2026-01-01T00:00:00",
                "job-name": "labeling-job/test",
            },
        }
    )


@pytest.fixture
def manifest(s3) -> tuple[str, str]:
    """A manifest of 4 lines: 3 good (2 labelled), 1 whose box leaves the image."""
    bucket = f"rek-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    names = {0: "Gear", 1: "Flange"}
    for i in range(4):
        s3.put_object(Bucket=bucket, Key=f"images/{i}.png", Body=_png())
    lines = [
        _line(bucket, "images/0.png", [(0, 10, 10, 30, 30), (1, 50, 20, 40, 40)], names),
        _line(bucket, "images/1.png", [(0, 5, 5, 20, 20)], names),
        _line(bucket, "images/2.png", [], names),
        _line(bucket, "images/3.png", [(1, 100, 10, 60, 20)], names),  # 100 + 60 > 128: an error entry
    ]
    s3.put_object(Bucket=bucket, Key="manifest.jsonl", Body=("\n".join(lines) + "\n").encode())
    return bucket, "manifest.jsonl"


def _wait(rek, arn: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description = rek.describe_dataset(DatasetArn=arn)["DatasetDescription"]
        if description["Status"] != "CREATE_IN_PROGRESS":
            return description
        time.sleep(0.1)
    raise TimeoutError(arn)


def _project(rek) -> str:
    return rek.create_project(ProjectName=f"gearbox-{uuid.uuid4().hex[:8]}")["ProjectArn"]


def test_project_lifecycle(localcloud):
    rek = localcloud.client("rekognition")
    name = f"gearbox-{uuid.uuid4().hex[:8]}"
    arn = rek.create_project(ProjectName=name)["ProjectArn"]
    assert arn.startswith("arn:aws:rekognition:us-east-1:000000000000:project/" + name + "/")
    with pytest.raises(ClientError) as exc:
        rek.create_project(ProjectName=name)
    assert exc.value.response["Error"]["Code"] == "ResourceInUseException"
    described = rek.describe_projects(ProjectNames=[name])["ProjectDescriptions"]
    assert [(d["ProjectArn"], d["Status"], d["Datasets"]) for d in described] == [(arn, "CREATED", [])]
    assert rek.delete_project(ProjectArn=arn)["Status"] == "DELETING"
    assert rek.describe_projects(ProjectNames=[name])["ProjectDescriptions"] == []
    with pytest.raises(ClientError) as exc:
        rek.delete_project(ProjectArn=arn)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_dataset_from_manifest_counts_bad_lines_instead_of_crashing(localcloud, manifest):
    rek = localcloud.client("rekognition")
    bucket, key = manifest
    project = _project(rek)
    source = {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": key}}}
    arn = rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)["DatasetArn"]
    description = _wait(rek, arn)
    assert description["Status"] == "CREATE_COMPLETE"
    assert description["StatusMessageCode"] == "SUCCESS"
    assert description["DatasetStats"] == {"TotalEntries": 4, "ErrorEntries": 1, "LabeledEntries": 2, "TotalLabels": 2}

    entries = rek.list_dataset_entries(DatasetArn=arn)["DatasetEntries"]
    assert len(entries) == 4
    errors = rek.list_dataset_entries(DatasetArn=arn, HasErrors=True)["DatasetEntries"]
    assert [json.loads(e)["source-ref"] for e in errors] == [f"s3://{bucket}/images/3.png"]
    flange = rek.list_dataset_entries(DatasetArn=arn, ContainsLabels=["Flange"])["DatasetEntries"]
    assert [json.loads(e)["source-ref"] for e in flange] == [f"s3://{bucket}/images/0.png"]
    first = rek.list_dataset_entries(DatasetArn=arn, MaxResults=3)
    rest = rek.list_dataset_entries(DatasetArn=arn, MaxResults=3, NextToken=first["NextToken"])
    assert first["DatasetEntries"] + rest["DatasetEntries"] == entries and "NextToken" not in rest

    labels = rek.list_dataset_labels(DatasetArn=arn)["DatasetLabelDescriptions"]
    assert labels == [
        {"LabelName": "Flange", "LabelStats": {"EntryCount": 1, "BoundingBoxCount": 1}},
        {"LabelName": "Gear", "LabelStats": {"EntryCount": 2, "BoundingBoxCount": 2}},
    ]
    datasets = rek.describe_projects()["ProjectDescriptions"]
    assert any(d["DatasetArn"] == arn and d["DatasetType"] == "TRAIN" for p in datasets for d in p["Datasets"])
    with pytest.raises(ClientError) as exc:
        rek.create_dataset(ProjectArn=project, DatasetType="TRAIN", DatasetSource=source)
    assert exc.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"


def test_dataset_errors(localcloud, s3, manifest):
    rek = localcloud.client("rekognition")
    bucket, _ = manifest
    project = _project(rek)
    missing = {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": "nope.jsonl"}}}
    with pytest.raises(ClientError) as exc:
        rek.create_dataset(ProjectArn=project, DatasetType="TEST", DatasetSource=missing)
    assert exc.value.response["Error"]["Code"] == "InvalidS3ObjectException"
    with pytest.raises(ClientError) as exc:
        rek.create_dataset(ProjectArn=project + "0", DatasetType="TEST", DatasetSource=missing)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"

    s3.put_object(Bucket=bucket, Key="garbage.jsonl", Body=b'not json\n{"source-ref": 3}\n')
    garbage = {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": "garbage.jsonl"}}}
    arn = rek.create_dataset(ProjectArn=project, DatasetType="TEST", DatasetSource=garbage)["DatasetArn"]
    description = _wait(rek, arn)
    assert (description["Status"], description["StatusMessageCode"]) == ("CREATE_FAILED", "CLIENT_ERROR")
    assert description["DatasetStats"]["ErrorEntries"] == 2


def test_interrupted_import_resumes_on_restart(tmp_path, manifest, localcloud):
    """A dataset left CREATE_IN_PROGRESS by a crash is imported by the next server, not left stuck."""
    bucket, key = manifest
    data = localcloud.data_dir  # the S3 objects live there; open a second backend pair on a copy of its state
    s3 = S3Backend(data)
    first = RekognitionBackend(tmp_path, s3)
    ctx = RequestContext()
    project = first.create_project(ctx, {"ProjectName": "resume"})["ProjectArn"]
    first._jobs.shutdown(wait=True)  # simulate a crash: the import below is never run by this process
    first._jobs = _NeverRuns()
    source = {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": key}}}
    arn = first.create_dataset(ctx, {"ProjectArn": project, "DatasetType": "TRAIN", "DatasetSource": source})[
        "DatasetArn"
    ]
    assert first.describe_dataset(ctx, {"DatasetArn": arn})["DatasetDescription"]["Status"] == "CREATE_IN_PROGRESS"
    first._store.close()

    second = RekognitionBackend(tmp_path, s3)
    try:
        deadline = time.monotonic() + 30
        while second.describe_dataset(ctx, {"DatasetArn": arn})["DatasetDescription"]["Status"] == "CREATE_IN_PROGRESS":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert second.describe_dataset(ctx, {"DatasetArn": arn})["DatasetDescription"]["Status"] == "CREATE_COMPLETE"
    finally:
        second.close()
        s3.close()


class _NeverRuns:
    def submit(self, *args, **kwargs) -> None:
        return None

    def shutdown(self, *args, **kwargs) -> None:
        return None
