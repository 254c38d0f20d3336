"""Amazon Augmented AI hooks: flow definitions and task UIs (SageMaker API) and human loops (A2I runtime API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from botocore.exceptions import ClientError

WAITERS = Path(__file__).resolve().parents[1] / "waiters" / "a2i.json"
NOT_FOUND = ("ResourceNotFound", "ResourceNotFoundException", "ValidationException")


class A2IRuntimeHook(AwsBaseHook):
    """Human loops (``sagemaker-a2i-runtime``) through ``aws_default``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "sagemaker-a2i-runtime"
        super().__init__(*args, **kwargs)

    @property
    def waiter_path(self) -> Path:
        return WAITERS

    def describe_loop(self, name: str) -> dict[str, Any] | None:
        """The human loop called ``name``, or None."""
        try:
            return self.conn.describe_human_loop(HumanLoopName=name)
        except ClientError as err:
            if err.response["Error"]["Code"] in ("ResourceNotFoundException",):
                return None
            raise

    def get_output(self, name: str, s3: Any) -> dict[str, Any]:
        """A Completed loop's output document (``humanAnswers`` etc.), read from its OutputS3Uri."""
        loop = self.conn.describe_human_loop(HumanLoopName=name)
        if loop["HumanLoopStatus"] != "Completed":
            raise ValueError(f"human loop {name} is {loop['HumanLoopStatus']}, not Completed")
        # The provider's parser: plugins stay free of include/ (the project's own s3uri module).
        bucket, key = S3Hook.parse_s3_url(loop["HumanLoopOutput"]["OutputS3Uri"])
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


class A2IFlowHook(AwsBaseHook):
    """Flow definitions and human task UIs (the ``sagemaker`` API)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "sagemaker"
        super().__init__(*args, **kwargs)

    def describe_flow_definition(self, name: str) -> dict[str, Any] | None:
        try:
            return self.conn.describe_flow_definition(FlowDefinitionName=name)
        except ClientError as err:
            if err.response["Error"]["Code"] in NOT_FOUND:
                return None
            raise

    def describe_human_task_ui(self, name: str) -> dict[str, Any] | None:
        try:
            return self.conn.describe_human_task_ui(HumanTaskUiName=name)
        except ClientError as err:
            if err.response["Error"]["Code"] in NOT_FOUND:
                return None
            raise
