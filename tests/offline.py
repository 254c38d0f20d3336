"""What the project's tests need to drive localcloud beyond plain boto3 calls: server settings for trainings that
take seconds, a small labelled detection dataset written with the project's own Ground Truth writer, an A2I flow
definition, a statement page to review, and the reviewer page's HTTP API (a person's clicks, as JSON)."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from include.groundtruth import dumps_line, manifest_line
from include.rendering.types import Box, RenderedImage
from localcloud.process import LocalCloudProcess

# A Custom Labels detector that trains for seconds, not minutes (mechanics, not quality).
TRAINING_BUDGET = {
    "LOCALCLOUD_TRAIN_IMAGE_SIZE": "128",
    "LOCALCLOUD_TRAIN_EPOCHS": "3",
    "LOCALCLOUD_TRAIN_MAX_SECONDS": "30",
    "LOCALCLOUD_TRAIN_BATCH_SIZE": "4",
}
# Human loops become reviewable after 0.2 s instead of A2I's realistic delay.
A2I_ACTIVATION = {"LOCALCLOUD_A2I_ACTIVATION_SECONDS": "0.2"}

# The two classes of ``detection_dataset``: a coloured rectangle on grey noise.
COLOURS = {0: ("Red", (220, 40, 40)), 1: ("Blue", (40, 60, 220))}
SIZE = 128


def rectangle_image(rng: np.random.Generator, label: int) -> tuple[bytes, list[int]]:
    """A 128 px PNG with one rectangle of ``label``'s colour, and its box as [left, top, width, height]."""
    pixels = rng.integers(90, 140, size=(SIZE, SIZE, 3), dtype=np.uint8)
    w, h = (int(v) for v in rng.integers(36, 64, size=2))
    x, y = int(rng.integers(0, SIZE - w)), int(rng.integers(0, SIZE - h))
    pixels[y : y + h, x : x + w] = COLOURS[label][1]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue(), [x, y, w, h]


def gray_png(width: int = 128, height: int = 96) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 90, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def box_line(
    source_ref: str, boxes: list[tuple[int, int, int, int, int]], class_map: dict[int, str], size: tuple[int, int]
) -> str:
    """One manifest line for an image of ``size`` (width, height) with ``boxes`` as (class_id, left, top, w, h)."""
    image = RenderedImage(
        source_ref.rsplit("/", 1)[-1], *size, [Box(c, x, y, w, h, w * h, 1.0) for c, x, y, w, h in boxes]
    )
    line = manifest_line(image, source_ref, class_map, job_name="boxes", creation_date="2026-01-01T00:00:00")
    return dumps_line(line)


def detection_dataset(s3: Any, bucket: str, name: str, count: int, seed: int) -> str:
    """``count`` images alternating Red/Blue under ``name/`` and their manifest ``name.jsonl``; returns its key."""
    rng = np.random.default_rng(seed)
    class_map = {label: colour[0] for label, colour in COLOURS.items()}
    lines = []
    for i in range(count):
        label = i % 2
        data, (x, y, w, h) = rectangle_image(rng, label)
        key = f"{name}/{i}.png"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        lines.append(box_line(f"s3://{bucket}/{key}", [(label, x, y, w, h)], class_map, (SIZE, SIZE)))
    s3.put_object(Bucket=bucket, Key=f"{name}.jsonl", Body=("\n".join(lines) + "\n").encode())
    return f"{name}.jsonl"


def review(server: LocalCloudProcess, path: str, body: dict | None = None) -> tuple[int, Any]:
    """(status, JSON) of the reviewer page's API at ``path`` (relative to /_localcloud/review/)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{server.endpoint}/_localcloud/review/{path}",
        data=data,
        headers={"Content-Type": "application/json"} if data is not None else {},
        method="POST" if data is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if "json" in response.headers.get("Content-Type", "") else raw
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw


def make_flow(server: LocalCloudProcess, bucket: str, prefix: str = "a2i") -> str:
    """An Active flow definition (and its task UI) writing under ``s3://bucket/prefix``; returns its ARN."""
    sm = server.client("sagemaker")
    name = f"flow-{uuid.uuid4().hex[:8]}"
    template = "<crowd-form><p>{{ task.input.document.name }}</p></crowd-form>"
    ui = sm.create_human_task_ui(HumanTaskUiName=f"ui-{name}", UiTemplate={"Content": template})["HumanTaskUiArn"]
    arn = sm.create_flow_definition(
        FlowDefinitionName=name,
        HumanLoopConfig={
            "WorkteamArn": "arn:aws:sagemaker:us-east-1:000000000000:workteam/private-crowd/reviewers",
            "HumanTaskUiArn": ui,
            "TaskTitle": "Check statement tables",
            "TaskDescription": "Correct the cells the OCR doubts.",
            "TaskCount": 1,
        },
        OutputConfig={"S3OutputPath": f"s3://{bucket}/{prefix}"},
        RoleArn="arn:aws:iam::000000000000:role/a2i-review",
    )["FlowDefinitionArn"]
    deadline = time.monotonic() + 10
    while sm.describe_flow_definition(FlowDefinitionName=name)["FlowDefinitionStatus"] == "Initializing":
        assert time.monotonic() < deadline, "flow definition stayed Initializing"
        time.sleep(0.05)
    return arn


# A bank-statement page to review, in the table-review contract the project's A2I template and localcloud's page share.
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
