"""From the real Textract response to a corrected workbook, through the review page in a real headless Chromium.

A reviewer opens the page, fixes a cell Textract misread ("80,00"), submits; the pipeline merges the answer and
the catalog workbook shows the corrected value, marked as corrected.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest

from include.documents import pipeline, reshape, rules, tracking
from include.documents.convert import convert
from tests import REPO
from tests.browser import launch, require_chromium, wait_until
from tests.conftest import running_localcloud
from tests.offline import A2I_ACTIVATION, make_flow

FIXTURE = REPO / "tests" / "fixtures" / "textract-bank-statement"
PDF = FIXTURE / "0001_NationalBank_2Pages.pdf"
RESPONSE = FIXTURE / "0001_NationalBank_2Pages_TextractOutput_1.json"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from running_localcloud(tmp_path_factory.mktemp("review-workbook") / "data", A2I_ACTIVATION)


def test_a_correction_made_on_the_page_reaches_the_workbook(server, tmp_path: Path) -> None:
    if not (PDF.exists() and RESPONSE.exists()):
        pytest.skip(f"the shared Textract fixture is missing under {FIXTURE}")
    require_chromium()
    from openpyxl import load_workbook
    from playwright.sync_api import sync_playwright

    s3, ddb, a2i = server.client("s3"), server.client("dynamodb"), server.client("sagemaker-a2i-runtime")
    bucket, table = f"review-{uuid.uuid4().hex[:8]}", f"tracking-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    params = {"bucket": bucket, "tracking_table": table, "confidence_threshold": 90.0}
    doc = {
        "document_id": "national-bank-1",
        "key": "acquire/p0/national.pdf",
        "name": "national.pdf",
        "priority": 0,
        "label": "p0",
        "etag": "x",
    }
    tracking.ensure_table(ddb, table)
    tracking.register(ddb, table, doc)

    # What the pipeline holds before review: page images, and the real response reshaped and checked.
    converted = convert(PDF.read_bytes(), doc["name"])
    pages = []
    for number, png in enumerate(converted.pages, start=1):
        key = f"work/{doc['document_id']}/pages/page-{number:04d}.png"
        s3.put_object(Bucket=bucket, Key=key, Body=png)
        width, height = converted.sizes[number - 1]
        pages.append({"page": number, "image": f"s3://{bucket}/{key}", "width": width, "height": height})
    blocks = json.loads(RESPONSE.read_text())["Blocks"]
    tables, lines = reshape.tables_from_blocks(blocks), reshape.lines_from_blocks(blocks)
    report = rules.operate(tables, confidence_threshold=90.0, lines=lines)
    assert report["needs_review"]
    tables_key = f"work/{doc['document_id']}/tables.json"
    s3.put_object(
        Bucket=bucket, Key=tables_key, Body=json.dumps({"tables": tables, "report": report, "lines": lines}).encode()
    )
    tables_uri = f"s3://{bucket}/{tables_key}"
    content = pipeline.review_input(params, doc, {"pages": pages}, tables_uri, s3)
    flow = make_flow(server, bucket)
    name = pipeline.loop_name(doc, tables_uri, s3)
    a2i.start_human_loop(
        HumanLoopName=name, FlowDefinitionArn=flow, HumanLoopInput={"InputContent": json.dumps(content)}
    )

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{server.endpoint}/_localcloud/review/", timeout=15_000)
            wait_until(page, "window.reviewState.view === 'list' && window.reviewState.loaded")
            page.fill("#reviewer", "Rita Reviewer")
            page.keyboard.press("Tab")
            page.locator("table.loops tr", has_text=name).get_by_role("link", name=name).click()
            wait_until(page, "window.reviewState.view === 'loop' && window.reviewState.loaded")
            # The misread amount, found the way a person would: by what it says.
            found = page.evaluate(
                "(() => { const c = [...document.querySelectorAll('input')].find(i => i.value === '80,00');"
                " if (!c) return null; c.focus(); return c.getAttribute('aria-label'); })()"
            )
            assert found, "the misread cell '80,00' is not on the page"
            page.keyboard.press("Control+A")
            page.keyboard.type("80.00")
            page.keyboard.press("Control+Enter")
            wait_until(page, "window.reviewState.submitted !== null", timeout=15_000)
        finally:
            browser.close()
    assert errors == [], errors

    described = a2i.describe_human_loop(HumanLoopName=name)
    assert described["HumanLoopStatus"] == "Completed"
    out_bucket, out_key = described["HumanLoopOutput"]["OutputS3Uri"].removeprefix("s3://").split("/", 1)
    output = json.loads(s3.get_object(Bucket=out_bucket, Key=out_key)["Body"].read())
    merged = pipeline.merge_review(params, doc, tables_uri, output, s3, ddb=ddb)
    done = pipeline.catalog(params, doc, merged["tables_uri"], s3, "2026-01-01T00:00:00", ddb=ddb)

    workbook_key = done["workbook"].removeprefix(f"s3://{bucket}/")
    book = load_workbook(io.BytesIO(s3.get_object(Bucket=bucket, Key=workbook_key)["Body"].read()))
    corrected = [
        cell
        for sheet in book.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.comment and "corrected by reviewer" in cell.comment.text and "80,00" in cell.comment.text
    ]
    assert len(corrected) == 1 and corrected[0].value == pytest.approx(80.0)
    item = tracking.get(ddb, table, doc["document_id"])
    assert item["stages"]["augment"]["state"] == "done" and item["stage"] == "catalog" and item["state"] == "done"
