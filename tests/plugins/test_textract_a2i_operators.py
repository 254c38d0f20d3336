"""Textract and A2I operators and sensors against localcloud: poke and deferrable modes, idempotent reruns."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from airflow.providers.common.compat.sdk import AirflowException, TaskDeferred
from aws_ml.operators.textract import (
    A2ICreateFlowDefinitionOperator,
    A2IStartHumanLoopOperator,
    TextractGetDocumentAnalysisOperator,
    TextractStartDocumentAnalysisOperator,
)
from aws_ml.sensors.textract import A2IHumanLoopCompleteSensor, TextractJobCompleteSensor
from aws_ml.triggers.textract import A2IHumanLoopCompleteTrigger, TextractJobCompleteTrigger
from PIL import Image, ImageDraw

from tests.conftest import point_aws_default, running_localcloud
from tests.offline import A2I_ACTIVATION, review


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from running_localcloud(tmp_path_factory.mktemp("ops-docs") / "data", A2I_ACTIVATION)


@pytest.fixture
def bucket(server, monkeypatch):
    point_aws_default(server, monkeypatch)
    name = f"ops-{uuid.uuid4().hex[:8]}"
    server.client("s3").create_bucket(Bucket=name)
    return name


def _page() -> bytes:
    image = Image.new("RGB", (900, 500), "white")
    draw = ImageDraw.Draw(image)
    for y, text in enumerate(["Date  Description  Amount", "2026-01-05  Coffee  3.50", "2026-01-06  Train  12.00"]):
        draw.text((40, 60 + 60 * y), text, fill="black", font_size=28)
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(200, 200))
    return out.getvalue()


def test_textract_start_sensor_and_results(server, bucket):
    server.client("s3").put_object(Bucket=bucket, Key="in/page.png", Body=_page())
    start = dict(task_id="start", document_bucket=bucket, document_key="in/page.png", feature_types=["TABLES"])
    job = TextractStartDocumentAnalysisOperator(**start).execute({})
    assert TextractStartDocumentAnalysisOperator(**start).execute({}) == job  # same file: same job, not a new one

    with pytest.raises(TaskDeferred) as deferred:
        TextractJobCompleteSensor(task_id="wait", job_id=job, deferrable=True, poke_interval=1).execute({})
    assert isinstance(deferred.value.trigger, TextractJobCompleteTrigger)
    TextractJobCompleteSensor(task_id="wait", job_id=job, poke_interval=1, timeout=120, mode="poke").execute({})

    result = TextractGetDocumentAnalysisOperator(
        task_id="get", job_id=job, output_bucket=bucket, output_key="out/textract.json"
    ).execute({})
    assert result["status"] == "SUCCEEDED" and result["pages"] == 1 and result["blocks"]["PAGE"] == 1
    saved = json.loads(server.client("s3").get_object(Bucket=bucket, Key="out/textract.json")["Body"].read())
    words = " ".join(b["Text"] for b in saved["Blocks"] if b["BlockType"] == "WORD")
    assert "Coffee" in words and "12.00" in words

    with pytest.raises(Exception, match="InvalidS3ObjectException|Not Found|404"):
        TextractStartDocumentAnalysisOperator(**{**start, "document_key": "in/missing.png"}).execute({})


def test_a2i_flow_loop_and_sensor(server, bucket):
    flow_args = dict(
        task_id="flow",
        flow_definition_name=f"flow-{uuid.uuid4().hex[:6]}",
        human_task_ui_name=f"ui-{uuid.uuid4().hex[:6]}",
        ui_template="<crowd-form></crowd-form>",
        output_s3_uri=f"s3://{bucket}/a2i",
        role_arn="arn:aws:iam::000000000000:role/a2i",
        workteam_arn="arn:aws:sagemaker:us-east-1:000000000000:workteam/private-crowd/team",
    )
    flow = A2ICreateFlowDefinitionOperator(**flow_args).execute({})
    assert A2ICreateFlowDefinitionOperator(**flow_args).execute({}) == flow  # idempotent
    with pytest.raises(ValueError, match="one of ui_template"):
        A2ICreateFlowDefinitionOperator(**{**flow_args, "ui_template_file": "x.html"})

    name = f"loop-{uuid.uuid4().hex[:6]}"
    loop_args = dict(task_id="loop", human_loop_name=name, flow_definition_arn=flow, input_content={"x": 1})
    started = A2IStartHumanLoopOperator(**loop_args).execute({})
    assert A2IStartHumanLoopOperator(**loop_args).execute({}) == started  # the rerun finds the same loop
    assert A2IStartHumanLoopOperator(**{**loop_args, "human_loop_name": ""}).execute({}) is None  # nothing to review
    with pytest.raises(TaskDeferred) as deferred:
        A2IStartHumanLoopOperator(**loop_args, deferrable=True).execute({})
    assert isinstance(deferred.value.trigger, A2IHumanLoopCompleteTrigger)

    sensor = A2IHumanLoopCompleteSensor(task_id="wait", human_loop_name=name, poke_interval=1)
    assert sensor.poke({}) is False
    path = f"api/loops/us-east-1/{name}"
    assert review(server, f"{path}/accept", {"reviewer": "r"})[0] == 200
    assert review(server, f"{path}/answer", {"answer": {"ok": True, "reviewer": "r"}})[0] == 200
    assert sensor.poke({}) is True

    stopped = f"loop-{uuid.uuid4().hex[:6]}"
    A2IStartHumanLoopOperator(**{**loop_args, "human_loop_name": stopped}).execute({})
    server.client("sagemaker-a2i-runtime").stop_human_loop(HumanLoopName=stopped)
    with pytest.raises(AirflowException, match="Stopp"):
        A2IHumanLoopCompleteSensor(task_id="wait", human_loop_name=stopped).poke({})
