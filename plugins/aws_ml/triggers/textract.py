"""Deferrable waits for Amazon Textract and Amazon A2I, on our waiters (boto3 ships none for either)."""

from __future__ import annotations

from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger

from aws_ml.hooks.a2i import A2IRuntimeHook
from aws_ml.hooks.textract import TextractHook


class TextractJobCompleteTrigger(AwsBaseWaiterTrigger):
    """Fires when a document analysis job SUCCEEDED (or PARTIAL_SUCCESS); errors on FAILED."""

    aws_hook_class = TextractHook

    def __init__(
        self,
        job_id: str,
        waiter_delay: int = 5,
        waiter_max_attempts: int = 360,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict | None = None,
    ) -> None:
        super().__init__(
            serialized_fields={"job_id": job_id},
            waiter_name="document_analysis_complete",
            waiter_args={"JobId": job_id, "MaxResults": 1},
            failure_message=f"Textract job {job_id} failed",
            status_message=f"Textract job {job_id}",
            status_queries=["JobStatus", "StatusMessage"],
            return_key="job_id",
            return_value=job_id,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )


class A2IHumanLoopCompleteTrigger(AwsBaseWaiterTrigger):
    """Fires when a human loop is Completed; errors when it Failed or was stopped."""

    aws_hook_class = A2IRuntimeHook

    def __init__(
        self,
        human_loop_name: str,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 2880,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict | None = None,
    ) -> None:
        super().__init__(
            serialized_fields={"human_loop_name": human_loop_name},
            waiter_name="human_loop_completed",
            waiter_args={"HumanLoopName": human_loop_name},
            failure_message=f"Human loop {human_loop_name} did not complete",
            status_message=f"Human loop {human_loop_name}",
            status_queries=["HumanLoopStatus", "FailureReason"],
            return_key="human_loop_name",
            return_value=human_loop_name,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )
