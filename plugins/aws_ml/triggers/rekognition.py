"""Deferrable waits for Rekognition Custom Labels, on boto3's own Rekognition waiters."""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger

from aws_ml.hooks.rekognition import RekognitionHook
from aws_ml.triggers.base import resource_fields


class _ProjectVersionTrigger(AwsBaseWaiterTrigger):
    aws_hook_class = RekognitionHook
    waiter = ""

    def __init__(
        self,
        project_arn: str,
        version_name: str,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 360,
        **connection: Any,
    ) -> None:
        super().__init__(
            **resource_fields(
                "version_name",
                version_name,
                serialized_fields={"project_arn": project_arn, "version_name": version_name},
                subject=f"Project version {version_name}",
                failure_message=f"Project version {version_name} failed",
            ),
            waiter_name=self.waiter,
            waiter_args={"ProjectArn": project_arn, "VersionNames": [version_name]},
            status_queries=["ProjectVersionDescriptions[0].Status", "ProjectVersionDescriptions[0].StatusMessage"],
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            **connection,
        )


class RekognitionTrainingCompleteTrigger(_ProjectVersionTrigger):
    """Fires when a project version reaches TRAINING_COMPLETED (or with an error on TRAINING_FAILED)."""

    waiter = "project_version_training_completed"


class RekognitionProjectVersionRunningTrigger(_ProjectVersionTrigger):
    """Fires when a project version reaches RUNNING (or with an error on FAILED)."""

    waiter = "project_version_running"
