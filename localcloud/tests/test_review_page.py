"""The A2I reviewer page in a real headless Chromium: a person's path through it, by keyboard and mouse, from the
queue to a submitted correction that lands in the loop's output.json in S3."""

from __future__ import annotations

import json
import uuid

import pytest
from browser import launch, require_chromium, wait_until
from test_a2i import ACTIVATION, make_flow, statement_input

from localcloud.process import LocalCloudProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalCloudProcess(tmp_path_factory.mktemp("review-page") / "data", env=ACTIVATION) as cloud:
        yield cloud


def test_a_reviewer_corrects_a_cell_and_a_header_and_submits(server, tmp_path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    s3, a2i = server.client("s3"), server.client("sagemaker-a2i-runtime")
    bucket = f"review-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    flow = make_flow(server, bucket)
    content = statement_input(s3, bucket, "stmt-page")
    name = f"page-{uuid.uuid4().hex[:6]}"
    a2i.start_human_loop(
        HumanLoopName=name, FlowDefinitionArn=flow, HumanLoopInput={"InputContent": json.dumps(content)}
    )

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.goto(f"{server.endpoint}/_localcloud/review/", timeout=15_000)

            # The queue lists the pending loop with its document and flow definition.
            wait_until(page, "window.reviewState.view === 'list' && window.reviewState.loaded")
            row = page.locator("table.loops tr", has_text=name)
            assert "stmt-page.pdf" in row.inner_text() and flow.rsplit("/", 1)[1] in row.inner_text()

            page.fill("#reviewer", "Rita Reviewer")
            page.keyboard.press("Tab")  # the name is kept (change event) before the reviewer opens a loop
            row.get_by_role("link", name=name).click()
            wait_until(
                page, "window.reviewState.view === 'loop' && window.reviewState.loaded && window.reviewState.accepted"
            )
            wait_until(page, "document.querySelector('.frame img').naturalWidth === 800")

            # Every cell with a box is drawn over the page, coloured by confidence; flagged ones are marked.
            assert page.locator(".frame .box").count() == 4 * 4 + 2 * 2 - 1
            assert page.locator(".box.low").count() == 2  # 61.5 and 88.0 under a threshold of 90
            assert page.locator(".box.near").count() == 1  # 92.0
            assert page.locator(".box.flagged").count() == 2
            flagged = page.locator("#table-0 details.flags").inner_text()
            assert "not a number; balance does not reconcile" in flagged
            low_cell = page.get_by_label("Table t1, row 3, Amount")
            assert "confidence 61.5" in low_cell.get_attribute("title")
            assert "cell low flagged" in low_cell.get_attribute("class")

            # Clicking a flagged entry focuses its cell, and the focused cell's box is highlighted on the page.
            page.locator("#table-0 details.flags button", has_text="row 3, Amount").click()
            assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Table t1, row 3, Amount"
            assert page.locator(".box.focus").count() == 1
            page.keyboard.press("Control+A")
            page.keyboard.type("2,500.00")
            page.keyboard.press("Tab")  # keyboard order runs along the row
            assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Table t1, row 3, Balance"
            page.keyboard.press("Enter")  # and Enter goes down the column
            assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Table t1, row 4, Balance"
            page.keyboard.type(" oops")
            page.keyboard.press("Escape")  # undoes this cell
            assert page.get_by_label("Table t1, row 4, Balance").input_value() == "2,257.90"
            assert page.locator(".box.edited").count() == 1

            page.get_by_label("Table t1, header 2").fill("Details")
            page.get_by_label("Type of table t2").select_option("summary")
            count = page.locator(".submit-bar .count").inner_text()
            assert count == "2 corrections · 1 table type changed"
            page.screenshot(path=str(tmp_path / "review.png"), full_page=True)

            page.get_by_label("Table t1, row 1, Date").focus()
            page.keyboard.press("Control+Enter")
            wait_until(page, "window.reviewState.submitted !== null", timeout=15_000)
            submitted = page.evaluate("window.reviewState.submitted")
            wait_until(page, "window.reviewState.view === 'list' && window.reviewState.loaded")
            assert page.locator("table.loops tr", has_text=name).count() == 0  # no longer pending
        finally:
            browser.close()

    assert errors == [], "\n".join(errors)
    assert submitted["status"] == "Completed"
    described = a2i.describe_human_loop(HumanLoopName=name)
    assert described["HumanLoopStatus"] == "Completed"
    key = described["HumanLoopOutput"]["OutputS3Uri"].split("/", 3)[3]
    output = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    (human,) = output["humanAnswers"]
    answer = human["answerContent"]
    assert answer["reviewer"] == "Rita Reviewer" and human["workerMetadata"]["identityData"]["sub"] == "Rita Reviewer"
    assert answer["corrections"] == [
        {"table_id": "t1", "row": -1, "col": 1, "old": "Description", "new": "Details"},
        {"table_id": "t1", "row": 2, "col": 2, "old": "2,5OO.00", "new": "2,500.00"},
    ]
    assert [t["table_type"] for t in answer["tables"]] == ["transactions", "summary"]
    assert answer["tables"][0]["rows"][2] == ["2024-01-09", "Salary", "2,500.00", "3,457.90"]
    assert output["inputContent"] == content
