"""Sensors for Amazon Textract jobs and Amazon A2I human loops (poke or deferrable), shaped like the provider's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException

from aws_ml.hooks.a2i import A2IRuntimeHook
from aws_ml.hooks.textract import TextractHook, with_backoff
from aws_ml.triggers.textract import A2IHumanLoopCompleteTrigger, TextractJobCompleteTrigger


class _StatusSensor(AwsBaseSensor):
    SUCCESS: tuple[str, ...] = ()
    FAILURE: tuple[str, ...] = ()

    def __init__(self, *, deferrable: bool = False, max_attempts: int = 360, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deferrable = deferrable
        self.max_attempts = max_attempts

    def status(self) -> tuple[str, str | None]:
        raise NotImplementedError

    def poke(self, context: Any) -> bool:
        state, message = self.status()
        if state in self.FAILURE:
            raise AirflowException(f"{self.task_id}: {state}: {message}")
        return state in self.SUCCESS

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if not self.poke(context):  # already done: no trigger needed
            self.defer(trigger=self.trigger(), method_name="execute_complete")
        return None

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> None:
        if not event or event.get("status") != "success":
            raise AirflowException(f"{self.task_id}: {event}")


class TextractJobCompleteSensor(_StatusSensor):
    """Wait for a document analysis job to SUCCEEDED (or PARTIAL_SUCCESS); fail on FAILED with its message."""

    aws_hook_class = TextractHook
    template_fields: Sequence[str] = aws_template_fields("job_id")
    SUCCESS = ("SUCCEEDED", "PARTIAL_SUCCESS")
    FAILURE = ("FAILED",)

    def __init__(self, *, job_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("poke_interval", 5)
        super().__init__(**kwargs)
        self.job_id = job_id

    def status(self) -> tuple[str, str | None]:
        job = with_backoff(lambda: self.hook.conn.get_document_analysis(JobId=self.job_id, MaxResults=1), log=self.log)
        return job["JobStatus"], job.get("StatusMessage")

    def trigger(self) -> TextractJobCompleteTrigger:
        return TextractJobCompleteTrigger(
            job_id=self.job_id,
            waiter_delay=int(self.poke_interval),
            waiter_max_attempts=self.max_attempts,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
        )


class A2IHumanLoopCompleteSensor(_StatusSensor):
    """Wait for a human loop to be Completed; fail when it Failed or was stopped."""

    aws_hook_class = A2IRuntimeHook
    template_fields: Sequence[str] = aws_template_fields("human_loop_name")
    SUCCESS = ("Completed",)
    FAILURE = ("Failed", "Stopped", "Stopping")

    def __init__(self, *, human_loop_name: str, **kwargs: Any) -> None:
        kwargs.setdefault("poke_interval", 30)
        super().__init__(**kwargs)
        self.human_loop_name = human_loop_name

    def status(self) -> tuple[str, str | None]:
        loop = self.hook.conn.describe_human_loop(HumanLoopName=self.human_loop_name)
        return loop["HumanLoopStatus"], loop.get("FailureReason")

    def trigger(self) -> A2IHumanLoopCompleteTrigger:
        return A2IHumanLoopCompleteTrigger(
            human_loop_name=self.human_loop_name,
            waiter_delay=int(self.poke_interval),
            waiter_max_attempts=self.max_attempts,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
        )
