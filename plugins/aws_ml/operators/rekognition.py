"""Rekognition Custom Labels operators, shaped like the Amazon provider's (AwsBaseOperator, template fields)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.amazon.aws.utils.waiter_with_logging import wait
from airflow.providers.common.compat.sdk import AirflowException
from botocore.exceptions import ClientError

from aws_ml.hooks.rekognition import RekognitionHook


class RekognitionCreateProjectOperator(AwsBaseOperator[RekognitionHook]):
    """Create a Custom Labels project, or return the existing one of that name. Returns the project ARN."""

    aws_hook_class = RekognitionHook
    template_fields: Sequence[str] = aws_template_fields("project_name")

    def __init__(self, *, project_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project_name = project_name

    def execute(self, context: Any) -> str:
        existing = self.hook.describe_project(self.project_name)
        if existing:
            self.log.info("Project %s already exists: %s", self.project_name, existing["ProjectArn"])
            return existing["ProjectArn"]
        try:
            arn = self.hook.conn.create_project(ProjectName=self.project_name)["ProjectArn"]
        except ClientError as err:  # created by a concurrent run between our look-up and the create
            if err.response["Error"]["Code"] != "ResourceInUseException":
                raise
            arn = self.hook.describe_project(self.project_name)["ProjectArn"]
        self.log.info("Created project %s", arn)
        return arn


class RekognitionCreateDatasetOperator(AwsBaseOperator[RekognitionHook]):
    """Create a project's TRAIN or TEST dataset from a Ground Truth manifest in S3 and wait until it is ready.

    With ``replace`` (the default) an existing dataset of that type is deleted first, so a rerun or a new dataset
    version always imports ``manifest``; without it an existing, complete dataset is kept. A manifest Rekognition
    refuses fails the task with Rekognition's status message. Returns the dataset ARN.
    """

    aws_hook_class = RekognitionHook
    template_fields: Sequence[str] = aws_template_fields(
        "project_arn", "dataset_type", "manifest_bucket", "manifest_key"
    )

    def __init__(
        self,
        *,
        project_arn: str,
        dataset_type: str,
        manifest_bucket: str,
        manifest_key: str,
        replace: bool = True,
        wait_for_completion: bool = True,
        waiter_delay: int = 5,
        waiter_max_attempts: int = 120,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project_arn = project_arn
        self.dataset_type = dataset_type
        self.manifest_bucket = manifest_bucket
        self.manifest_key = manifest_key
        self.replace = replace
        self.wait_for_completion = wait_for_completion
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts

    def execute(self, context: Any) -> str:
        if self.dataset_type not in ("TRAIN", "TEST"):
            raise ValueError(f"dataset_type must be TRAIN or TEST, not {self.dataset_type!r}")
        existing = self.hook.find_dataset(self.project_arn, self.dataset_type)
        if existing and not self.replace and existing["Status"] != "CREATE_FAILED":
            self.log.info("Keeping the existing %s dataset %s", self.dataset_type, existing["DatasetArn"])
            arn = existing["DatasetArn"]
        else:
            if existing:
                self.log.info("Replacing the %s dataset %s", self.dataset_type, existing["DatasetArn"])
                if existing["Status"] == "CREATE_IN_PROGRESS":
                    self._settle(existing["DatasetArn"])  # an import in progress cannot be deleted
                self.hook.conn.delete_dataset(DatasetArn=existing["DatasetArn"])
            source = {"GroundTruthManifest": {"S3Object": {"Bucket": self.manifest_bucket, "Name": self.manifest_key}}}
            arn = self.hook.conn.create_dataset(
                ProjectArn=self.project_arn, DatasetType=self.dataset_type, DatasetSource=source
            )["DatasetArn"]
            self.log.info(
                "Creating %s dataset %s from s3://%s/%s",
                self.dataset_type,
                arn,
                self.manifest_bucket,
                self.manifest_key,
            )
        if self.wait_for_completion:
            self._wait(arn)
            stats = self.hook.conn.describe_dataset(DatasetArn=arn)["DatasetDescription"].get("DatasetStats", {})
            self.log.info("Dataset %s is ready: %s", arn, stats)
        return arn

    def _wait(self, arn: str) -> None:
        wait(
            waiter=self.hook.get_waiter("dataset_create_complete"),
            waiter_delay=self.waiter_delay,
            waiter_max_attempts=self.waiter_max_attempts,
            args={"DatasetArn": arn},
            failure_message=f"Dataset {arn} was not created",
            status_message="Dataset status",
            status_args=["DatasetDescription.Status", "DatasetDescription.StatusMessage"],
        )

    def _settle(self, arn: str) -> None:
        """Wait for an import to end either way: a failed old import is about to be replaced anyway."""
        try:
            self._wait(arn)
        except AirflowException:
            status = self.hook.conn.describe_dataset(DatasetArn=arn)["DatasetDescription"]["Status"]
            if status != "CREATE_FAILED":
                raise
