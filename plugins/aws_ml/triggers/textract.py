"""Deferrable waits for Amazon Textract and Amazon A2I, on our waiters (boto3 ships none for either)."""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger

from aws_ml.hooks.a2i import A2IRuntimeHook
from aws_ml.hooks.textract import TextractHook
from aws_ml.triggers.base import resource_fields


class TextractJobCompleteTrigger(AwsBaseWaiterTrigger):
    """Fires when a document analysis job SUCCEEDED (or PARTIAL_SUCCESS); errors on FAILED."""

    aws_hook_class = TextractHook

    def __init__(self, job_id: str, waiter_delay: int = 5, waiter_max_attempts: int = 360, **connection: Any) -> None:
        super().__init__(
            **resource_fields(
                "job_id",
                job_id,
                subject=f"Textract job {job_id}",
                failure_message=f"Textract job {job_id} failed",
            ),
            waiter_name="document_analysis_complete",
            waiter_args={"JobId": job_id, "MaxResults": 1},
            status_queries=["JobStatus", "StatusMessage"],
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            **connection,
        )


class A2IHumanLoopCompleteTrigger(AwsBaseWaiterTrigger):
    """Fires when a human loop is Completed; errors when it Failed or was stopped."""

    aws_hook_class = A2IRuntimeHook

    def __init__(
        self, human_loop_name: str, waiter_delay: int = 30, waiter_max_attempts: int = 2880, **connection: Any
    ) -> None:
        super().__init__(
            **resource_fields(
                "human_loop_name",
                human_loop_name,
                subject=f"Human loop {human_loop_name}",
                failure_message=f"Human loop {human_loop_name} did not complete",
            ),
            waiter_name="human_loop_completed",
            waiter_args={"HumanLoopName": human_loop_name},
            status_queries=["HumanLoopStatus", "FailureReason"],
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            **connection,
        )
