"""Amazon Textract and Amazon A2I operators, shaped like the Amazon provider's (AwsBaseOperator, template fields)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.amazon.aws.utils.waiter_with_logging import wait
from airflow.providers.common.compat.sdk import AirflowException
from botocore.exceptions import ClientError

from aws_ml.hooks.a2i import A2IFlowHook, A2IRuntimeHook
from aws_ml.hooks.textract import TextractHook, with_backoff
from aws_ml.triggers.textract import A2IHumanLoopCompleteTrigger, TextractJobCompleteTrigger


def request_token(*parts: str) -> str:
    """A ClientRequestToken (1-64 chars of [a-zA-Z0-9-_]) that is the same for the same inputs."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:64]


class TextractStartDocumentAnalysisOperator(AwsBaseOperator[TextractHook]):
    """Start an async document analysis (TABLES, optionally FORMS) of a PDF/PNG/JPEG/TIFF in S3.

    Idempotent: the ClientRequestToken defaults to a hash of the object (bucket, key, ETag) and the features, so
    a rerun gets the same JobId instead of paying for a second analysis. Throttling is retried with backoff.
    With ``wait_for_completion`` it also waits (or defers) until the job ends. Returns the JobId.
    """

    aws_hook_class = TextractHook
    template_fields: Sequence[str] = aws_template_fields(
        "document_bucket", "document_key", "feature_types", "client_request_token", "job_tag"
    )

    def __init__(
        self,
        *,
        document_bucket: str,
        document_key: str,
        feature_types: Sequence[str] = ("TABLES",),
        client_request_token: str | None = None,
        job_tag: str | None = None,
        wait_for_completion: bool = False,
        deferrable: bool = False,
        waiter_delay: int = 5,
        waiter_max_attempts: int = 360,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.document_bucket = document_bucket
        self.document_key = document_key
        self.feature_types = feature_types
        self.client_request_token = client_request_token
        self.job_tag = job_tag
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts

    def execute(self, context: Any) -> str:
        features = sorted(set(self.feature_types))
        token = self.client_request_token
        if not token:
            s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
            etag = s3.head_object(Bucket=self.document_bucket, Key=self.document_key)["ETag"]
            token = request_token(self.document_bucket, self.document_key, etag, *features)
        request: dict[str, Any] = {
            "DocumentLocation": {"S3Object": {"Bucket": self.document_bucket, "Name": self.document_key}},
            "FeatureTypes": features,
            "ClientRequestToken": token,
        }
        if self.job_tag:
            request["JobTag"] = self.job_tag
        job_id = with_backoff(lambda: self.hook.conn.start_document_analysis(**request), log=self.log)["JobId"]
        self.log.info("Textract job %s analyses s3://%s/%s", job_id, self.document_bucket, self.document_key)
        if self.deferrable:
            self.defer(
                trigger=TextractJobCompleteTrigger(
                    job_id=job_id,
                    waiter_delay=self.waiter_delay,
                    waiter_max_attempts=self.waiter_max_attempts,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                ),
                method_name="execute_complete",
            )
        if self.wait_for_completion:
            wait(
                waiter=self.hook.get_waiter("document_analysis_complete"),
                waiter_delay=self.waiter_delay,
                waiter_max_attempts=self.waiter_max_attempts,
                args={"JobId": job_id, "MaxResults": 1},
                failure_message=f"Textract job {job_id} failed",
                status_message=f"Textract job {job_id}",
                status_args=["JobStatus", "StatusMessage"],
            )
        return job_id

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> str:
        if not event or event.get("status") != "success":
            raise AirflowException(f"Textract job failed: {event}")
        return event["job_id"]


class TextractGetDocumentAnalysisOperator(AwsBaseOperator[TextractHook]):
    """Fetch every page of a finished job's results (NextToken) and store them as one JSON object in S3.

    Blocks are far too large for XCom; the task returns the S3 URI and counts instead.
    """

    aws_hook_class = TextractHook
    template_fields: Sequence[str] = aws_template_fields("job_id", "output_bucket", "output_key")

    def __init__(self, *, job_id: str, output_bucket: str, output_key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.output_bucket = output_bucket
        self.output_key = output_key

    def execute(self, context: Any) -> dict[str, Any]:
        result = self.hook.get_document_analysis(self.job_id)
        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        body = json.dumps(result, sort_keys=True).encode()
        s3.put_object(Bucket=self.output_bucket, Key=self.output_key, Body=body, ContentType="application/json")
        kinds: dict[str, int] = {}
        for block in result["Blocks"]:
            kinds[block["BlockType"]] = kinds.get(block["BlockType"], 0) + 1
        self.log.info("Job %s: %d blocks %s", self.job_id, len(result["Blocks"]), kinds)
        return {
            "uri": f"s3://{self.output_bucket}/{self.output_key}",
            "pages": result["DocumentMetadata"].get("Pages"),
            "blocks": kinds,
            "status": result["JobStatus"],
        }


class A2ICreateFlowDefinitionOperator(AwsBaseOperator[A2IFlowHook]):
    """Create a human task UI and a flow definition, or reuse the existing ones of those names; wait until Active.

    Returns the flow definition ARN.
    """

    aws_hook_class = A2IFlowHook
    template_fields: Sequence[str] = aws_template_fields(
        "flow_definition_name", "human_task_ui_name", "output_s3_uri", "role_arn", "workteam_arn"
    )

    def __init__(
        self,
        *,
        flow_definition_name: str,
        human_task_ui_name: str,
        output_s3_uri: str,
        role_arn: str,
        workteam_arn: str,
        task_title: str = "Review extracted tables",
        task_description: str = "Correct the cells the pipeline is unsure of",
        task_count: int = 1,
        ui_template: str | None = None,
        ui_template_file: str | None = None,
        waiter_delay: int = 2,
        waiter_max_attempts: int = 60,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.flow_definition_name = flow_definition_name
        self.human_task_ui_name = human_task_ui_name
        if (ui_template is None) == (ui_template_file is None):
            raise ValueError("give one of ui_template (the HTML) or ui_template_file (a path to it)")
        # Not a template field: a worker task template is Liquid, whose {{ }} Jinja would try to render.
        self.ui_template = ui_template
        self.ui_template_file = ui_template_file
        self.output_s3_uri = output_s3_uri
        self.role_arn = role_arn
        self.workteam_arn = workteam_arn
        self.task_title = task_title
        self.task_description = task_description
        self.task_count = task_count
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts

    def execute(self, context: Any) -> str:
        ui = self.hook.describe_human_task_ui(self.human_task_ui_name)
        if ui is None:
            ui_arn = self._create(
                lambda: self.hook.conn.create_human_task_ui(
                    HumanTaskUiName=self.human_task_ui_name, UiTemplate={"Content": self._template()}
                )["HumanTaskUiArn"],
                lambda: self.hook.describe_human_task_ui(self.human_task_ui_name)["HumanTaskUiArn"],
            )
        else:
            ui_arn = ui["HumanTaskUiArn"]
        flow = self.hook.describe_flow_definition(self.flow_definition_name)
        if flow is None:
            arn = self._create(
                lambda: self.hook.conn.create_flow_definition(
                    FlowDefinitionName=self.flow_definition_name,
                    HumanLoopConfig={
                        "WorkteamArn": self.workteam_arn,
                        "HumanTaskUiArn": ui_arn,
                        "TaskTitle": self.task_title,
                        "TaskDescription": self.task_description,
                        "TaskCount": int(self.task_count),
                    },
                    OutputConfig={"S3OutputPath": self.output_s3_uri},
                    RoleArn=self.role_arn,
                )["FlowDefinitionArn"],
                lambda: self.hook.describe_flow_definition(self.flow_definition_name)["FlowDefinitionArn"],
            )
            self.log.info("Created flow definition %s", arn)
        else:
            arn = flow["FlowDefinitionArn"]
            self.log.info("Flow definition %s exists (%s)", arn, flow["FlowDefinitionStatus"])
        for _ in range(self.waiter_max_attempts):
            status = self.hook.describe_flow_definition(self.flow_definition_name)
            if status["FlowDefinitionStatus"] == "Active":
                return arn
            if status["FlowDefinitionStatus"] == "Failed":
                raise AirflowException(f"Flow definition {arn} failed: {status.get('FailureReason')}")
            time.sleep(self.waiter_delay)
        raise AirflowException(f"Flow definition {arn} is not Active after {self.waiter_max_attempts} checks")

    def _template(self) -> str:
        if self.ui_template is not None:
            return self.ui_template
        with open(self.ui_template_file, encoding="utf-8") as handle:
            return handle.read()

    @staticmethod
    def _create(create: Any, find: Any) -> str:
        try:
            return create()
        except ClientError as err:  # created by a concurrent run between our look-up and the create
            if err.response["Error"]["Code"] not in ("ResourceInUse", "ResourceInUseException"):
                raise
            return find()


class A2IStartHumanLoopOperator(AwsBaseOperator[A2IRuntimeHook]):
    """Start a human loop with ``input_content`` (dict or JSON text); a rerun reuses the loop of that name.

    With ``deferrable`` the task also waits (deferred) until the loop completes, so a pool caps open loops. An
    empty ``human_loop_name`` means nothing needs review: the task succeeds and returns None. Returns the loop's
    name and ARN.
    """

    aws_hook_class = A2IRuntimeHook
    template_fields: Sequence[str] = aws_template_fields(
        "human_loop_name", "flow_definition_arn", "input_content", "waiter_delay"
    )

    def __init__(
        self,
        *,
        human_loop_name: str,
        flow_definition_arn: str,
        input_content: dict | str,
        deferrable: bool = False,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 2880,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.human_loop_name = human_loop_name
        self.flow_definition_arn = flow_definition_arn
        self.input_content = input_content
        self.deferrable = deferrable
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts

    def execute(self, context: Any) -> dict[str, str] | None:
        if not self.human_loop_name:  # the upstream decided there is nothing to review (mapped groups cannot branch)
            self.log.info("No human loop name: nothing to review")
            return None
        existing = self.hook.describe_loop(self.human_loop_name)
        if existing is None:
            content = self.input_content if isinstance(self.input_content, str) else json.dumps(self.input_content)
            arn = self.hook.conn.start_human_loop(
                HumanLoopName=self.human_loop_name,
                FlowDefinitionArn=self.flow_definition_arn,
                HumanLoopInput={"InputContent": content},
            )["HumanLoopArn"]
            self.log.info("Started human loop %s", arn)
        else:
            arn = existing["HumanLoopArn"]
            self.log.info("Human loop %s exists (%s)", arn, existing["HumanLoopStatus"])
            if existing["HumanLoopStatus"] in ("Failed", "Stopped", "Stopping"):
                raise AirflowException(
                    f"Human loop {self.human_loop_name} is {existing['HumanLoopStatus']}: "
                    f"{existing.get('FailureReason')}; delete it or use another name"
                )
            if existing["HumanLoopStatus"] == "Completed":
                return {"name": self.human_loop_name, "arn": arn}
        if self.deferrable:  # one task holds its pool slot for the loop's whole life: pools cap open loops
            self.defer(
                trigger=A2IHumanLoopCompleteTrigger(
                    human_loop_name=self.human_loop_name,
                    waiter_delay=int(self.waiter_delay),
                    waiter_max_attempts=self.waiter_max_attempts,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                ),
                method_name="execute_complete",
            )
        return {"name": self.human_loop_name, "arn": arn}

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, str]:
        if not event or event.get("status") != "success":
            raise AirflowException(f"Human loop {self.human_loop_name}: {event}")
        loop = self.hook.conn.describe_human_loop(HumanLoopName=self.human_loop_name)
        return {"name": self.human_loop_name, "arn": loop["HumanLoopArn"]}
