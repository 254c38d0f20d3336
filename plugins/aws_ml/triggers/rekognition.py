"""Deferrable waits for Rekognition Custom Labels, on boto3's own Rekognition waiters."""

from __future__ import annotations

from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger

from aws_ml.hooks.rekognition import RekognitionHook


class _ProjectVersionTrigger(AwsBaseWaiterTrigger):
    aws_hook_class = RekognitionHook
    waiter = ""

    def __init__(
        self,
        project_arn: str,
        version_name: str,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 360,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict | None = None,
    ) -> None:
        super().__init__(
            serialized_fields={"project_arn": project_arn, "version_name": version_name},
            waiter_name=self.waiter,
            waiter_args={"ProjectArn": project_arn, "VersionNames": [version_name]},
            failure_message=f"Project version {version_name} failed",
            status_message=f"Project version {version_name}",
            status_queries=["ProjectVersionDescriptions[0].Status", "ProjectVersionDescriptions[0].StatusMessage"],
            return_key="version_name",
            return_value=version_name,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )


class RekognitionTrainingCompleteTrigger(_ProjectVersionTrigger):
    """Fires when a project version reaches TRAINING_COMPLETED (or with an error on TRAINING_FAILED)."""

    waiter = "project_version_training_completed"


class RekognitionProjectVersionRunningTrigger(_ProjectVersionTrigger):
    """Fires when a project version reaches RUNNING (or with an error on FAILED)."""

    waiter = "project_version_running"
