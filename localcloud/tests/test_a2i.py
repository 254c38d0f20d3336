"""A2I on localcloud: SageMaker flow definitions and human task UIs, the A2I runtime's human loops, and a reviewer
acting through the reviewer page's HTTP API until the loop's output.json lands in S3 in A2I's format."""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from PIL import Image, ImageDraw

from localcloud.process import LocalCloudProcess

ACTIVATION = {"LOCALCLOUD_A2I_ACTIVATION_SECONDS": "0.2"}
ROLE = "arn:aws:iam::000000000000:role/a2i-review"
WORKTEAM = "arn:aws:sagemaker:us-east-1:000000000000:workteam/private-crowd/reviewers"
TEMPLATE = "<crowd-form><p>{{ task.input.document.name }}</p></crowd-form>"


# ---------------------------------------------------------------------------------------------------------------------
# Helpers shared with test_review_page
# ---------------------------------------------------------------------------------------------------------------------
def statement_page(rows: list[list[str]], size: tuple[int, int] = (800, 600)) -> tuple[bytes, list[list[dict]]]:
    """A bank-statement page (PNG) drawing ``rows`` as a table, and each cell's normalized box."""
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 30), "ACME BANK  Statement of account", fill="black")
    left, top, col_w, row_h = 40, 80, 180, 40
    boxes = []
    for r, row in enumerate(rows):
        line = []
        for c, text in enumerate(row):
            x, y = left + c * col_w, top + r * row_h
            draw.rectangle((x, y, x + col_w, y + row_h), outline=(150, 150, 150))
            draw.text((x + 6, y + 14), text, fill="black")
            line.append({"Left": x / width, "Top": y / height, "Width": col_w / width, "Height": row_h / height})
        boxes.append(line)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), boxes


def statement_input(s3, bucket: str, doc_id: str = "stmt-001") -> dict:
    """InputContent following the table-review contract: one page, a transactions table and a summary table."""
    headers = ["Date", "Description", "Amount", "Balance"]
    body = [
        ["2024-01-02", "Opening balance", "", "1,000.00"],
        ["2024-01-05", "Card ACME STORE", "-42.10", "957.90"],
        ["2024-01-09", "Salary", "2,5OO.00", "3,457.90"],
        ["2024-01-12", "Rent", "-1,200.00", "2,257.90"],
    ]
    summary = [["Total in", "2,500.00"], ["Total out", "-1,242.10"]]
    png, boxes = statement_page([headers, *body, *summary])
    key = f"documents/{doc_id}/page-1.png"
    s3.put_object(Bucket=bucket, Key=key, Body=png, ContentType="image/png")
    confidence = {(3, 2): 61.5, (2, 1): 92.0, (4, 3): 88.0}
    flags = {(3, 2): ["not a number", "balance does not reconcile"], (4, 3): ["balance does not reconcile"]}

    def cell(r: int, c: int, text: str) -> dict:
        return {
            "text": text,
            "confidence": confidence.get((r, c), 99.1),
            "bbox": boxes[r][c],
            "flags": flags.get((r, c), []),
        }

    transactions = [[cell(r, c, text) for c, text in enumerate(row)] for r, row in enumerate(body, start=1)]
    totals = [[cell(r, c, text) for c, text in enumerate(row)] for r, row in enumerate(summary, start=5)]
    totals[1][1]["bbox"] = None  # a cell Textract gave no geometry for
    return {
        "document": {
            "id": doc_id,
            "name": f"{doc_id}.pdf",
            "source": f"s3://{bucket}/documents/{doc_id}.pdf",
            "pages": [{"page": 1, "image": f"s3://{bucket}/{key}", "width": 800, "height": 600}],
        },
        "threshold": 90.0,
        "tables": [
            {"table_id": "t1", "page": 1, "table_type": "transactions", "headers": headers, "rows": transactions},
            {"table_id": "t2", "page": 1, "table_type": "other", "headers": ["Item", "Value"], "rows": totals},
        ],
    }


def answer_for(content: dict, reviewer: str, edits: dict | None = None, table_types: dict | None = None) -> dict:
    """An answerContent that applies ``edits`` {(table_id, row, col): new} (row -1: header); no corrections list."""
    edits, table_types = edits or {}, table_types or {}
    tables = []
    for table in content["tables"]:
        tid = table["table_id"]
        tables.append(
            {
                "table_id": tid,
                "table_type": table_types.get(tid, table["table_type"]),
                "headers": [edits.get((tid, -1, c), h) for c, h in enumerate(table["headers"])],
                "rows": [
                    [edits.get((tid, r, c), cell["text"]) for c, cell in enumerate(row)]
                    for r, row in enumerate(table["rows"])
                ],
            }
        )
    return {"tables": tables, "reviewer": reviewer}


def review(server: LocalCloudProcess, path: str, body: dict | None = None, headers: dict | None = None):
    """(status, JSON) of the reviewer page's API at ``path`` (relative to /_localcloud/review/)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{server.endpoint}/_localcloud/review/{path}",
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})} if data is not None else headers or {},
        method="POST" if data is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            kind = response.headers.get("Content-Type", "")
            return response.status, json.loads(raw) if "json" in kind else raw
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw


def wait_active(sm, name: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = sm.describe_flow_definition(FlowDefinitionName=name)
        if found["FlowDefinitionStatus"] != "Initializing":
            return found
        assert time.monotonic() < deadline, "flow definition stayed Initializing"
        time.sleep(0.05)


def make_flow(server: LocalCloudProcess, bucket: str, *, task_count: int = 1, prefix: str = "a2i", **config) -> str:
    """An Active flow definition (and its UI) writing under ``s3://bucket/prefix``; returns its ARN."""
    sm = server.client("sagemaker")
    name = f"flow-{uuid.uuid4().hex[:8]}"
    ui = sm.create_human_task_ui(HumanTaskUiName=f"ui-{name}", UiTemplate={"Content": TEMPLATE})["HumanTaskUiArn"]
    arn = sm.create_flow_definition(
        FlowDefinitionName=name,
        HumanLoopConfig={
            "WorkteamArn": WORKTEAM,
            "HumanTaskUiArn": ui,
            "TaskTitle": "Check statement tables",
            "TaskDescription": "Correct the cells the OCR doubts.",
            "TaskCount": task_count,
            **config,
        },
        OutputConfig={"S3OutputPath": f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"},
        RoleArn=ROLE,
    )["FlowDefinitionArn"]
    assert wait_active(sm, name)["FlowDefinitionStatus"] == "Active"
    return arn


def error_of(call, *args, **kwargs) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    error = exc.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Message"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalCloudProcess(tmp_path_factory.mktemp("a2i") / "data", env=ACTIVATION) as cloud:
        yield cloud


@pytest.fixture(scope="module")
def bucket(server) -> str:
    name = f"a2i-{uuid.uuid4().hex[:8]}"
    server.client("s3").create_bucket(Bucket=name)
    return name


# ---------------------------------------------------------------------------------------------------------------------
# SageMaker: human task UIs and flow definitions
# ---------------------------------------------------------------------------------------------------------------------
def test_both_services_share_the_port_and_the_signing_name(server) -> None:
    assert {"sagemaker", "sagemaker-a2i-runtime", "s3"} <= set(server.health["services"])
    sm, a2i = server.client("sagemaker"), server.client("sagemaker-a2i-runtime")
    assert sm.meta.service_model.signing_name == a2i.meta.service_model.signing_name == "sagemaker"
    assert "FlowDefinitionSummaries" in sm.list_flow_definitions()
    flow = "arn:aws:sagemaker:us-east-1:000000000000:flow-definition/none"
    code, status, _ = error_of(a2i.list_human_loops, FlowDefinitionArn=flow)
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_s3_keeps_buckets_whose_names_look_like_a2i_paths(server) -> None:
    s3 = server.client("s3")
    s3.create_bucket(Bucket="human-loops")
    s3.put_object(Bucket="human-loops", Key="stop", Body=b"not an A2I call")
    assert s3.get_object(Bucket="human-loops", Key="stop")["Body"].read() == b"not an A2I call"
    legacy = server.client("s3", signature_version="s3")  # SigV2 presigned URLs carry no credential scope
    url = legacy.generate_presigned_url("get_object", Params={"Bucket": "human-loops", "Key": "stop"})
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == b"not an A2I call"


def test_human_task_ui_lifecycle(server) -> None:
    sm = server.client("sagemaker")
    name = f"ui-{uuid.uuid4().hex[:8]}"
    arn = sm.create_human_task_ui(HumanTaskUiName=name, UiTemplate={"Content": TEMPLATE})["HumanTaskUiArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:000000000000:human-task-ui/{name}"
    code, _, message = error_of(sm.create_human_task_ui, HumanTaskUiName=name, UiTemplate={"Content": "x"})
    assert code == "ResourceInUse" and name in message

    found = sm.describe_human_task_ui(HumanTaskUiName=name)
    assert found["HumanTaskUiArn"] == arn and found["HumanTaskUiStatus"] == "Active"
    assert found["UiTemplate"]["ContentSha256"] == hashlib.sha256(TEMPLATE.encode()).hexdigest()
    with urllib.request.urlopen(found["UiTemplate"]["Url"], timeout=5) as response:
        assert response.read().decode() == TEMPLATE
        assert response.headers["Content-Type"].startswith("text/plain")

    second = f"{name}-b"
    sm.create_human_task_ui(HumanTaskUiName=second, UiTemplate={"Content": TEMPLATE})
    first_page = sm.list_human_task_uis(SortOrder="Ascending", MaxResults=1)
    names = [s["HumanTaskUiName"] for s in first_page["HumanTaskUiSummaries"]]
    token = first_page.get("NextToken")
    while token:
        page = sm.list_human_task_uis(SortOrder="Ascending", MaxResults=1, NextToken=token)
        names += [s["HumanTaskUiName"] for s in page["HumanTaskUiSummaries"]]
        token = page.get("NextToken")
    assert names.index(name) < names.index(second) and len(names) == len(set(names))
    newest = sm.list_human_task_uis(CreationTimeAfter=found["CreationTime"])["HumanTaskUiSummaries"]
    assert [s["HumanTaskUiName"] for s in newest] == [second]

    sm.delete_human_task_ui(HumanTaskUiName=name)
    assert error_of(sm.describe_human_task_ui, HumanTaskUiName=name)[0] == "ResourceNotFound"
    assert error_of(sm.delete_human_task_ui, HumanTaskUiName=name)[0] == "ResourceNotFound"
    assert error_of(sm.create_human_task_ui, HumanTaskUiName="Bad_Name", UiTemplate={"Content": "x"})[0] == (
        "ValidationException"
    )


def test_flow_definition_lifecycle(server, bucket) -> None:
    sm = server.client("sagemaker")
    name = f"flow-{uuid.uuid4().hex[:8]}"
    ui = sm.create_human_task_ui(HumanTaskUiName=f"ui-{name}", UiTemplate={"Content": TEMPLATE})["HumanTaskUiArn"]
    loop_config = {
        "WorkteamArn": WORKTEAM,
        "HumanTaskUiArn": ui,
        "TaskTitle": "Check statement tables",
        "TaskDescription": "Correct the cells the OCR doubts.",
        "TaskCount": 1,
        "TaskAvailabilityLifetimeInSeconds": 3600,
        "TaskTimeLimitInSeconds": 600,
    }
    output = {"S3OutputPath": f"s3://{bucket}/reviews"}
    arn = sm.create_flow_definition(
        FlowDefinitionName=name, HumanLoopConfig=loop_config, OutputConfig=output, RoleArn=ROLE
    )["FlowDefinitionArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:000000000000:flow-definition/{name}"
    assert sm.describe_flow_definition(FlowDefinitionName=name)["FlowDefinitionStatus"] == "Initializing"
    code, _, _ = error_of(
        sm.create_flow_definition,
        FlowDefinitionName=name,
        HumanLoopConfig=loop_config,
        OutputConfig=output,
        RoleArn=ROLE,
    )
    assert code == "ResourceInUse"

    found = wait_active(sm, name)
    assert found["FlowDefinitionStatus"] == "Active"
    assert found["HumanLoopConfig"] == loop_config and found["OutputConfig"] == output and found["RoleArn"] == ROLE
    listed = sm.list_flow_definitions(CreationTimeAfter=found["CreationTime"] - timedelta(seconds=1))
    assert name in [s["FlowDefinitionName"] for s in listed["FlowDefinitionSummaries"]]

    # Validated asynchronously, as on AWS: a missing UI fails the flow definition with a reason.
    broken = f"{name}-noui"
    sm.create_flow_definition(
        FlowDefinitionName=broken,
        HumanLoopConfig={**loop_config, "HumanTaskUiArn": f"{ui}-missing"},
        OutputConfig=output,
        RoleArn=ROLE,
    )
    failed = wait_active(sm, broken)
    assert failed["FlowDefinitionStatus"] == "Failed" and "does not exist" in failed["FailureReason"]
    a2i = server.client("sagemaker-a2i-runtime")
    code, _, message = error_of(
        a2i.start_human_loop,
        HumanLoopName="on-a-failed-flow",
        FlowDefinitionArn=failed["FlowDefinitionArn"],
        HumanLoopInput={"InputContent": "{}"},
    )
    assert code == "ValidationException" and "Failed" in message

    sm.delete_flow_definition(FlowDefinitionName=broken)
    sm.delete_flow_definition(FlowDefinitionName=name)
    assert error_of(sm.describe_flow_definition, FlowDefinitionName=name)[0] == "ResourceNotFound"
    assert error_of(sm.delete_flow_definition, FlowDefinitionName=name)[0] == "ResourceNotFound"
    code, _, message = error_of(
        sm.create_flow_definition,
        FlowDefinitionName=f"{name}-https",
        HumanLoopConfig=loop_config,
        OutputConfig={"S3OutputPath": "https://example.com/x"},
        RoleArn=ROLE,
    )
    assert code == "ValidationException" and "s3://" in message


# ---------------------------------------------------------------------------------------------------------------------
# The A2I runtime: human loops
# ---------------------------------------------------------------------------------------------------------------------
def test_human_loop_start_describe_list_stop_delete(server, bucket) -> None:
    a2i, sm = server.client("sagemaker-a2i-runtime"), server.client("sagemaker")
    flow = make_flow(server, bucket)
    content = json.dumps({"document": {"id": "x"}})
    started = a2i.start_human_loop(
        HumanLoopName="loop-a", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": content}
    )
    assert started["HumanLoopArn"] == "arn:aws:sagemaker:us-east-1:000000000000:human-loop/loop-a"
    # A retried start is the same loop; the same name with other input is a conflict.
    again = a2i.start_human_loop(
        HumanLoopName="loop-a", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": content}
    )
    assert again["HumanLoopArn"] == started["HumanLoopArn"]
    code, status, _ = error_of(
        a2i.start_human_loop, HumanLoopName="loop-a", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": "{}"}
    )
    assert (code, status) == ("ConflictException", 409)

    found = a2i.describe_human_loop(HumanLoopName="loop-a")
    assert found["HumanLoopStatus"] == "InProgress" and found["FlowDefinitionArn"] == flow
    assert "HumanLoopOutput" not in found and "FailureReason" not in found
    assert abs(found["CreationTime"] - datetime.now(UTC)) < timedelta(seconds=30)

    for name in ("loop-b", "loop-c"):
        time.sleep(0.01)  # distinct creation times, so the order below is the creation order
        a2i.start_human_loop(HumanLoopName=name, FlowDefinitionArn=flow, HumanLoopInput={"InputContent": content})
    ascending = a2i.list_human_loops(FlowDefinitionArn=flow, SortOrder="Ascending")["HumanLoopSummaries"]
    assert [s["HumanLoopName"] for s in ascending] == ["loop-a", "loop-b", "loop-c"]
    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = a2i.list_human_loops(FlowDefinitionArn=flow, MaxResults=2, **kwargs)
        pages.append([s["HumanLoopName"] for s in page["HumanLoopSummaries"]])
        token = page.get("NextToken")
        if not token:
            break
    assert pages == [["loop-c", "loop-b"], ["loop-a"]]  # Descending by default
    after = a2i.list_human_loops(FlowDefinitionArn=flow, CreationTimeAfter=found["CreationTime"])
    assert [s["HumanLoopName"] for s in after["HumanLoopSummaries"]] == ["loop-c", "loop-b"]
    before = a2i.list_human_loops(
        FlowDefinitionArn=flow, CreationTimeBefore=found["CreationTime"] + timedelta(milliseconds=1)
    )
    assert [s["HumanLoopName"] for s in before["HumanLoopSummaries"]] == ["loop-a"]
    paginator = a2i.get_paginator("list_human_loops")
    names = [
        s["HumanLoopName"]
        for p in paginator.paginate(FlowDefinitionArn=flow, PaginationConfig={"PageSize": 1})
        for s in p["HumanLoopSummaries"]
    ]
    assert sorted(names) == ["loop-a", "loop-b", "loop-c"]
    assert error_of(a2i.list_human_loops, FlowDefinitionArn=flow, NextToken="garbage")[0] == "ValidationException"

    # An active loop can neither be deleted nor have its flow definition deleted under it.
    code, status, message = error_of(a2i.delete_human_loop, HumanLoopName="loop-a")
    assert (code, status) == ("ValidationException", 400) and "stop it" in message
    flow_name = flow.rsplit("/", 1)[1]
    assert error_of(sm.delete_flow_definition, FlowDefinitionName=flow_name)[0] == "ResourceInUse"

    # Nobody is working on it: stopping is immediate.
    a2i.stop_human_loop(HumanLoopName="loop-a")
    assert a2i.describe_human_loop(HumanLoopName="loop-a")["HumanLoopStatus"] == "Stopped"
    a2i.stop_human_loop(HumanLoopName="loop-a")  # stopping a stopped loop changes nothing
    code, _, _ = error_of(
        a2i.start_human_loop, HumanLoopName="loop-a", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": content}
    )
    assert code == "ValidationException"  # the name is taken until the loop is deleted
    a2i.delete_human_loop(HumanLoopName="loop-a")
    code, status, _ = error_of(a2i.describe_human_loop, HumanLoopName="loop-a")
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert error_of(a2i.stop_human_loop, HumanLoopName="loop-a")[0] == "ResourceNotFoundException"
    assert error_of(a2i.delete_human_loop, HumanLoopName="loop-a")[0] == "ResourceNotFoundException"
    # Deleted, its name can be used again.
    a2i.start_human_loop(HumanLoopName="loop-a", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": "{}"})
    for name in ("loop-a", "loop-b", "loop-c"):
        a2i.stop_human_loop(HumanLoopName=name)
    sm.delete_flow_definition(FlowDefinitionName=flow_name)


def test_start_human_loop_refusals(server, bucket) -> None:
    a2i = server.client("sagemaker-a2i-runtime")
    flow = make_flow(server, bucket)
    unknown = flow + "-unknown"

    def refused(name: str = "refused", arn: str = flow, content: str = "{}") -> tuple[str, int, str]:
        return error_of(
            a2i.start_human_loop, HumanLoopName=name, FlowDefinitionArn=arn, HumanLoopInput={"InputContent": content}
        )

    code, status, message = refused(arn=unknown)
    assert (code, status) == ("ValidationException", 400) and "does not exist" in message
    assert refused(content="not json")[0] == "ValidationException"
    assert refused(content="[1, 2]")[0] == "ValidationException"
    assert refused(content=json.dumps({"x": "y" * 3_145_728}))[0] == "ValidationException"
    assert refused(name="Upper-Case")[0] == "ValidationException"
    assert refused(name="a" * 64)[0] == "ValidationException"
    assert refused(name="double--dash-ok-but-trailing-")[0] == "ValidationException"
    other_region = server.client("sagemaker-a2i-runtime", region="eu-west-1")
    code, _, _ = error_of(
        other_region.start_human_loop,
        HumanLoopName="elsewhere",
        FlowDefinitionArn=flow,
        HumanLoopInput={"InputContent": "{}"},
    )
    assert code == "ValidationException"


def test_a_reviewer_completes_a_loop_and_the_output_lands_in_s3(server, bucket) -> None:
    s3, a2i = server.client("s3"), server.client("sagemaker-a2i-runtime")
    flow = make_flow(server, bucket, prefix="reviews/out")
    content = statement_input(s3, bucket, "stmt-api")
    name = f"stmt-api-{uuid.uuid4().hex[:6]}"
    a2i.start_human_loop(
        HumanLoopName=name, FlowDefinitionArn=flow, HumanLoopInput={"InputContent": json.dumps(content)}
    )
    created = a2i.describe_human_loop(HumanLoopName=name)["CreationTime"]

    status, listed = review(server, "api/loops")
    mine = [loop for loop in listed["loops"] if loop["name"] == name]
    assert status == 200 and len(mine) == 1
    assert mine[0]["document"] == {"id": "stmt-api", "name": "stmt-api.pdf"} and mine[0]["tables"] == 2
    assert mine[0]["flowDefinitionName"] == flow.rsplit("/", 1)[1] and mine[0]["status"] == "InProgress"

    status, loop = review(server, f"api/loops/us-east-1/{name}")
    assert status == 200 and loop["problems"] == [] and loop["input"] == content
    assert loop["pages"] == [
        {"page": 1, "url": f"/_localcloud/review/api/loops/us-east-1/{name}/pages/1", "width": 800, "height": 600}
    ]
    status, image = review(server, loop["pages"][0]["url"][len("/_localcloud/review/") :])
    stored = s3.get_object(Bucket=bucket, Key="documents/stmt-api/page-1.png")["Body"].read()
    assert status == 200 and image == stored
    assert review(server, f"api/loops/us-east-1/{name}/pages/2")[0] == 404  # only pages the input names

    # Answers that do not fit the contract are refused, and the loop stays open.
    bad_shape = answer_for(content, "ann")
    bad_shape["tables"][0]["rows"].pop()
    status, body = review(server, f"api/loops/us-east-1/{name}/answer", {"answer": bad_shape})
    assert status == 400 and "rows" in body["error"]
    lying = answer_for(content, "ann", {("t1", 2, 2): "2,500.00"})
    lying["corrections"] = []
    status, body = review(server, f"api/loops/us-east-1/{name}/answer", {"answer": lying})
    assert status == 400 and "corrections" in body["error"]
    assert review(server, f"api/loops/us-east-1/{name}/accept", {"reviewer": " "})[0] == 400

    status, accepted = review(server, f"api/loops/us-east-1/{name}/accept", {"reviewer": "ann"})
    assert status == 200 and accepted["reviewer"] == "ann"
    edits = {("t1", 2, 2): "2,500.00", ("t1", -1, 1): "Details", ("t2", 1, 1): "-1,242.10 "}
    answer = answer_for(content, "ann", edits, {"t2": "summary"})
    status, result = review(server, f"api/loops/us-east-1/{name}/answer", {"answer": answer})
    assert status == 200, result
    assert result["status"] == "Completed" and result["answered"] == 1

    described = a2i.describe_human_loop(HumanLoopName=name)
    assert described["HumanLoopStatus"] == "Completed"
    uri = described["HumanLoopOutput"]["OutputS3Uri"]
    flow_name = flow.rsplit("/", 1)[1]
    stamp = created.astimezone(UTC).strftime("%Y/%m/%d/%H/%M/%S")
    assert uri == f"s3://{bucket}/reviews/out/{flow_name}/{stamp}/{name}/output.json"
    output = json.loads(s3.get_object(Bucket=bucket, Key=uri.split("/", 3)[3])["Body"].read())
    assert set(output) == {"flowDefinitionArn", "humanAnswers", "humanLoopName", "inputContent"}
    assert output["flowDefinitionArn"] == flow and output["humanLoopName"] == name
    assert output["inputContent"] == content
    (human,) = output["humanAnswers"]
    assert set(human) == {
        "acceptanceTime",
        "answerContent",
        "submissionTime",
        "timeSpentInSeconds",
        "workerId",
        "workerMetadata",
    }
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    assert iso.match(human["acceptanceTime"]) and iso.match(human["submissionTime"])
    assert human["acceptanceTime"] <= human["submissionTime"] and human["timeSpentInSeconds"] >= 0
    assert human["workerMetadata"]["identityData"]["sub"] == "ann" and human["workerId"]
    got = human["answerContent"]
    assert got["reviewer"] == "ann"
    assert [t["table_type"] for t in got["tables"]] == ["transactions", "summary"]
    assert got["tables"][0]["headers"] == ["Date", "Details", "Amount", "Balance"]
    assert got["tables"][0]["rows"][2][2] == "2,500.00"
    assert got["corrections"] == [
        {"table_id": "t1", "row": -1, "col": 1, "old": "Description", "new": "Details"},
        {"table_id": "t1", "row": 2, "col": 2, "old": "2,5OO.00", "new": "2,500.00"},
        {"table_id": "t2", "row": 1, "col": 1, "old": "-1,242.10", "new": "-1,242.10 "},
    ]

    # Done: no second answer, no longer pending, still listed among all loops.
    status, body = review(server, f"api/loops/us-east-1/{name}/answer", {"answer": answer})
    assert status == 409
    assert name not in [loop["name"] for loop in review(server, "api/loops")[1]["loops"]]
    assert name in [loop["name"] for loop in review(server, "api/loops?status=")[1]["loops"]]


def test_two_reviewers_per_loop_and_an_answer_given_as_crowd_form_text(server, bucket) -> None:
    s3, a2i = server.client("s3"), server.client("sagemaker-a2i-runtime")
    flow = make_flow(server, bucket, task_count=2, prefix="")
    content = statement_input(s3, bucket, "stmt-two")
    name = f"two-{uuid.uuid4().hex[:6]}"
    a2i.start_human_loop(
        HumanLoopName=name, FlowDefinitionArn=flow, HumanLoopInput={"InputContent": json.dumps(content)}
    )
    first = answer_for(content, "ann", {("t1", 2, 2): "2,500.00"})
    assert review(server, f"api/loops/us-east-1/{name}/answer", {"answer": first})[1]["status"] == "InProgress"
    assert a2i.describe_human_loop(HumanLoopName=name)["HumanLoopStatus"] == "InProgress"
    # The AWS template's crowd-form sends tables and corrections as JSON text; both forms are one answer.
    second = answer_for(content, "bob")
    second = {"tables": json.dumps(second["tables"]), "corrections": "[]", "reviewer": "bob"}
    assert review(server, f"api/loops/us-east-1/{name}/accept", {"reviewer": "bob"})[0] == 200
    assert review(server, f"api/loops/us-east-1/{name}/accept", {"reviewer": "cy"})[0] == 409  # both tasks taken
    status, result = review(server, f"api/loops/us-east-1/{name}/answer", {"answer": second})
    assert status == 200 and result["status"] == "Completed"
    uri = a2i.describe_human_loop(HumanLoopName=name)["HumanLoopOutput"]["OutputS3Uri"]
    assert uri.startswith(f"s3://{bucket}/{flow.rsplit('/', 1)[1]}/")  # no prefix in the S3OutputPath
    output = json.loads(s3.get_object(Bucket=bucket, Key=uri.split("/", 3)[3])["Body"].read())
    answers = [h["answerContent"] for h in output["humanAnswers"]]
    assert [a["reviewer"] for a in answers] == ["ann", "bob"]
    assert len(answers[0]["corrections"]) == 1 and answers[1]["corrections"] == []
    assert isinstance(answers[1]["tables"], list)


def test_stopping_waits_for_the_reviewer_at_work(server, bucket) -> None:
    s3, a2i = server.client("s3"), server.client("sagemaker-a2i-runtime")
    flow = make_flow(server, bucket)
    content = statement_input(s3, bucket, "stmt-stop")
    name = f"stop-{uuid.uuid4().hex[:6]}"
    a2i.start_human_loop(
        HumanLoopName=name, FlowDefinitionArn=flow, HumanLoopInput={"InputContent": json.dumps(content)}
    )
    assert review(server, f"api/loops/us-east-1/{name}/accept", {"reviewer": "ann"})[0] == 200
    a2i.stop_human_loop(HumanLoopName=name)
    assert a2i.describe_human_loop(HumanLoopName=name)["HumanLoopStatus"] == "Stopping"
    assert error_of(a2i.delete_human_loop, HumanLoopName=name)[0] == "ValidationException"
    assert review(server, f"api/loops/us-east-1/{name}/accept", {"reviewer": "bob"})[0] == 409
    status, result = review(server, f"api/loops/us-east-1/{name}/answer", {"answer": answer_for(content, "ann")})
    assert status == 200 and result["status"] == "Stopped"
    found = a2i.describe_human_loop(HumanLoopName=name)
    assert found["HumanLoopStatus"] == "Stopped" and found["HumanLoopOutput"]["OutputS3Uri"].endswith("output.json")
    a2i.delete_human_loop(HumanLoopName=name)


def test_loops_expire_and_unwritable_output_fails_the_loop(server, bucket) -> None:
    a2i = server.client("sagemaker-a2i-runtime")
    flow = make_flow(server, bucket, TaskAvailabilityLifetimeInSeconds=1)
    a2i.start_human_loop(HumanLoopName="expiring", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": "{}"})
    time.sleep(1.1)
    found = a2i.describe_human_loop(HumanLoopName="expiring")
    assert found["HumanLoopStatus"] == "Failed" and found["FailureCode"] == "Expired"
    assert "TaskAvailabilityLifetimeInSeconds" in found["FailureReason"]
    summary = a2i.list_human_loops(FlowDefinitionArn=flow)["HumanLoopSummaries"][0]
    assert summary["HumanLoopStatus"] == "Failed" and summary["FailureReason"] == found["FailureReason"]
    a2i.delete_human_loop(HumanLoopName="expiring")

    missing = make_flow(server, f"no-such-bucket-{uuid.uuid4().hex[:6]}")
    a2i.start_human_loop(HumanLoopName="nowhere", FlowDefinitionArn=missing, HumanLoopInput={"InputContent": "{}"})
    # Input outside the table contract takes any JSON object as the answer.
    status, body = review(server, "api/loops/us-east-1/nowhere/answer", {"answer": {"reviewer": "ann", "ok": 1}})
    assert status == 502 and "NoSuchBucket" in body["error"]
    found = a2i.describe_human_loop(HumanLoopName="nowhere")
    assert found["HumanLoopStatus"] == "Failed" and found["FailureCode"] == "InternalError"
    a2i.delete_human_loop(HumanLoopName="nowhere")


def test_the_review_routes_refuse_foreign_hosts_and_cross_site_writes(server) -> None:
    status, page = review(server, "")
    assert status == 200 and b"static/review.js" in page and b"https://" not in page
    with urllib.request.urlopen(f"{server.endpoint}/_localcloud/review/", timeout=5) as response:
        csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    for name in ("review.js", "review.css"):
        status, body = review(server, f"static/{name}")
        assert status == 200 and b"https://" not in body and b"http://" not in body
    assert review(server, "static/../backend.py")[0] == 404

    # A rebound DNS name reaching the loopback port is not served.
    assert review(server, "api/loops", headers={"Host": "attacker.example:80"})[0] == 403
    # Writes: same-origin JSON only.
    assert (
        review(server, "api/loops/us-east-1/x/accept", {"reviewer": "a"}, {"Origin": "http://evil.example"})[0] == 403
    )
    request = urllib.request.Request(
        f"{server.endpoint}/_localcloud/review/api/loops/us-east-1/x/accept",
        data=b'{"reviewer": "a"}',
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=5)
    assert exc.value.code == 403
    assert review(server, "api/loops/us-east-1/no-such-loop")[0] == 404
    same_origin = {"Origin": server.endpoint}
    assert review(server, "api/loops/us-east-1/no-such-loop/accept", {"reviewer": "a"}, same_origin)[0] == 404


def test_loops_and_reviews_survive_a_restart(tmp_path) -> None:
    server = LocalCloudProcess(tmp_path / "data", env=ACTIVATION).start()
    try:
        s3 = server.client("s3")
        s3.create_bucket(Bucket="restart")
        flow = make_flow(server, "restart")
        content = statement_input(s3, "restart", "stmt-restart")
        a2i = server.client("sagemaker-a2i-runtime")
        a2i.start_human_loop(
            HumanLoopName="survivor", FlowDefinitionArn=flow, HumanLoopInput={"InputContent": json.dumps(content)}
        )
        assert review(server, "api/loops/us-east-1/survivor/accept", {"reviewer": "ann"})[0] == 200
        before = a2i.describe_human_loop(HumanLoopName="survivor")
    finally:
        server.stop()
    restarted = LocalCloudProcess(server.data_dir, port=server.port, env=ACTIVATION).start()
    try:
        a2i, sm = restarted.client("sagemaker-a2i-runtime"), restarted.client("sagemaker")
        flow_name = flow.rsplit("/", 1)[1]
        assert sm.describe_flow_definition(FlowDefinitionName=flow_name)["FlowDefinitionStatus"] == "Active"
        after = a2i.describe_human_loop(HumanLoopName="survivor")
        assert {k: after[k] for k in ("HumanLoopStatus", "CreationTime", "HumanLoopArn")} == {
            k: before[k] for k in ("HumanLoopStatus", "CreationTime", "HumanLoopArn")
        }
        status, loop = review(restarted, "api/loops/us-east-1/survivor")
        assert status == 200 and [t["reviewer"] for t in loop["tasks"]] == ["ann"]
        answer = answer_for(content, "ann", {("t1", 2, 2): "2,500.00"})
        assert review(restarted, "api/loops/us-east-1/survivor/answer", {"answer": answer})[1]["status"] == "Completed"
        assert a2i.describe_human_loop(HumanLoopName="survivor")["HumanLoopStatus"] == "Completed"
    finally:
        restarted.stop()
