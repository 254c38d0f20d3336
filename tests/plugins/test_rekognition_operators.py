"""The Rekognition Custom Labels operators against localcloud: idempotent projects, datasets from manifests."""

from __future__ import annotations

import uuid

import pytest
from aws_ml.hooks.rekognition import RekognitionHook, project_name
from aws_ml.operators.rekognition import RekognitionCreateDatasetOperator, RekognitionCreateProjectOperator

from tests.offline import box_line, gray_png


def _manifest(s3, bucket: str, key: str, lines: list[str]) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode())


def test_project_name_from_arn():
    assert project_name("arn:aws:rekognition:us-east-1:000000000000:project/gearbox/1700000000000") == "gearbox"
    with pytest.raises(ValueError):
        project_name("arn:aws:s3:::bucket")


def test_create_project_is_idempotent(aws_default):
    name = f"ops-{uuid.uuid4().hex[:8]}"
    first = RekognitionCreateProjectOperator(task_id="p", project_name=name).execute({})
    again = RekognitionCreateProjectOperator(task_id="p", project_name=name).execute({})
    assert first == again
    assert RekognitionHook().describe_project(name)["ProjectArn"] == first


def test_create_dataset_waits_replaces_and_fails_clearly(aws_default, s3):
    bucket = f"ops-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"img/{i}.png", Body=gray_png())
    names = {0: "Gear"}
    _manifest(
        s3,
        bucket,
        "v1.jsonl",
        [box_line(f"s3://{bucket}/img/{i}.png", [(0, 5, 5, 20, 20)], names, (128, 96)) for i in range(2)],
    )
    _manifest(
        s3,
        bucket,
        "v2.jsonl",
        [box_line(f"s3://{bucket}/img/{i}.png", [(0, 5, 5, 20, 20)], names, (128, 96)) for i in range(3)],
    )
    _manifest(s3, bucket, "bad.jsonl", ["{not json"])
    project = RekognitionCreateProjectOperator(task_id="p", project_name=f"ds-{uuid.uuid4().hex[:8]}").execute({})
    hook = RekognitionHook()

    def create(key: str, **kwargs) -> str:
        return RekognitionCreateDatasetOperator(
            task_id="d",
            project_arn=project,
            dataset_type="TRAIN",
            manifest_bucket=bucket,
            manifest_key=key,
            waiter_delay=1,
            **kwargs,
        ).execute({})

    def total(arn: str) -> int:
        return hook.conn.describe_dataset(DatasetArn=arn)["DatasetDescription"]["DatasetStats"]["TotalEntries"]

    first = create("v1.jsonl")
    assert total(first) == 2
    kept = create("v2.jsonl", replace=False)
    assert kept == first and total(kept) == 2
    replaced = create("v2.jsonl")
    assert replaced != first and total(replaced) == 3
    # Exactly one TRAIN dataset, whatever the reruns.
    project_datasets = hook.describe_project(project_name(project))["Datasets"]
    assert [d["DatasetArn"] for d in project_datasets if d["DatasetType"] == "TRAIN"] == [replaced]

    with pytest.raises(Exception, match="was not created"):
        create("bad.jsonl")
    # A failed import is replaced by the next good one.
    assert total(create("v1.jsonl")) == 2
