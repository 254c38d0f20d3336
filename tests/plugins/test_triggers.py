"""The waiter triggers serialize what the triggerer needs to build them again, and return their resource's name."""

from __future__ import annotations

import importlib

import pytest
from aws_ml.triggers.rekognition import RekognitionProjectVersionRunningTrigger, RekognitionTrainingCompleteTrigger
from aws_ml.triggers.textract import A2IHumanLoopCompleteTrigger, TextractJobCompleteTrigger


@pytest.mark.parametrize(
    ("trigger", "fields", "waiter"),
    [
        (TextractJobCompleteTrigger("job-1"), {"job_id": "job-1"}, "document_analysis_complete"),
        (A2IHumanLoopCompleteTrigger("loop-1"), {"human_loop_name": "loop-1"}, "human_loop_completed"),
        (
            RekognitionTrainingCompleteTrigger("arn:p", "v1"),
            {"project_arn": "arn:p", "version_name": "v1"},
            "project_version_training_completed",
        ),
        (
            RekognitionProjectVersionRunningTrigger("arn:p", "v1", region_name="eu-west-1"),
            {"project_arn": "arn:p", "version_name": "v1", "region_name": "eu-west-1"},
            "project_version_running",
        ),
    ],
)
def test_round_trip(trigger, fields: dict, waiter: str) -> None:
    path, kwargs = trigger.serialize()
    assert kwargs == {
        "waiter_delay": trigger.waiter_delay,
        "waiter_max_attempts": trigger.attempts,
        "aws_conn_id": "aws_default",
        **fields,
    }
    module, _, name = path.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (path, kwargs)
    assert again.waiter_name == waiter
    key = next(k for k in fields if k != "project_arn" and k != "region_name")
    assert (again.return_key, again.return_value) == (key, fields[key])
