"""Amazon Augmented AI hooks: flow definitions and task UIs (SageMaker API) and human loops (A2I runtime API)."""

from __future__ import annotations

import json
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from aws_ml.hooks.base import ServiceHook, or_none

NOT_FOUND = ("ResourceNotFound", "ResourceNotFoundException", "ValidationException")


class A2IRuntimeHook(ServiceHook):
    """Human loops (``sagemaker-a2i-runtime``) through ``aws_default``."""

    service, waiters = "sagemaker-a2i-runtime", "a2i"

    def describe_loop(self, name: str) -> dict[str, Any] | None:
        """The human loop called ``name``, or None."""
        return or_none(lambda: self.conn.describe_human_loop(HumanLoopName=name), ("ResourceNotFoundException",))

    def get_output(self, name: str, s3: Any) -> dict[str, Any]:
        """A Completed loop's output document (``humanAnswers`` etc.), read from its OutputS3Uri."""
        loop = self.conn.describe_human_loop(HumanLoopName=name)
        if loop["HumanLoopStatus"] != "Completed":
            raise ValueError(f"human loop {name} is {loop['HumanLoopStatus']}, not Completed")
        # The provider's parser: plugins stay free of include/ (the project's own s3uri module).
        bucket, key = S3Hook.parse_s3_url(loop["HumanLoopOutput"]["OutputS3Uri"])
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


class A2IFlowHook(ServiceHook):
    """Flow definitions and human task UIs (the ``sagemaker`` API)."""

    service = "sagemaker"

    def describe_flow_definition(self, name: str) -> dict[str, Any] | None:
        return or_none(lambda: self.conn.describe_flow_definition(FlowDefinitionName=name), NOT_FOUND)

    def describe_human_task_ui(self, name: str) -> dict[str, Any] | None:
        return or_none(lambda: self.conn.describe_human_task_ui(HumanTaskUiName=name), NOT_FOUND)
