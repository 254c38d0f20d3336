"""The project's A2I worker template (include/documents/a2i_review_template.html), as AWS's worker portal would show
it, gives back an answer that localcloud's table-review contract takes as it is: the same answer its own reviewer page
gives, so a DAG written against localcloud reads the same corrections from real A2I."""

from __future__ import annotations

import html
import json
import re
import urllib.request
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from localcloud.process import LocalCloudProcess
from tests import REPO
from tests.browser import launch, require_chromium, wait_until
from tests.offline import A2I_ACTIVATION, make_flow, review, statement_input


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cloud = LocalCloudProcess(tmp_path_factory.mktemp("template") / "data", env=A2I_ACTIVATION).start()
    yield cloud
    cloud.stop()


TEMPLATE = REPO / "include" / "documents" / "a2i_review_template.html"
# A stand-in for crowd-html-elements.js (AWS's worker portal script, unreachable here): a <crowd-form> that, like the
# real one, runs its onsubmit handler and then sends every named field inside it as a string.
CROWD_FORM_STUB = """
customElements.define("crowd-form", class extends HTMLElement {
  connectedCallback() {
    const button = document.createElement("button");
    button.type = "button";
    button.id = "crowd-submit";
    button.textContent = "Submit";
    button.addEventListener("click", () => {
      const event = new Event("submit", { cancelable: true });
      this.dispatchEvent(event);
      if (event.defaultPrevented) return;
      const answer = {};
      for (const field of this.querySelectorAll("[name]")) answer[field.getAttribute("name")] = field.value;
      window.crowdAnswer = answer;
    });
    this.append(button);
  }
});
"""


def render_liquid(template: str, context: dict, filters: dict) -> str:
    """The little Liquid the template uses: ``{% for x in a.b %}`` (not nested) and ``{{ a.b | filter }}``, with
    output HTML-escaped as A2I does by default."""

    def lookup(path: str, scope: dict):
        value = scope
        for part in path.split("."):
            value = value[part]
        return value

    def render(text: str, scope: dict) -> str:
        def loop(match: re.Match) -> str:
            items = lookup(match.group(2), scope)
            return "".join(render(match.group(3), {**scope, match.group(1): item}) for item in items)

        def output(match: re.Match) -> str:
            value = lookup(match.group(1), scope)
            for name in filter(None, (f.strip() for f in match.group(2).split("|"))):
                value = filters[name](value)
            return html.escape(str(value))

        text = re.sub(r"{%\s*for (\w+) in ([\w.]+)\s*%}(.*?){%\s*endfor\s*%}", loop, text, flags=re.S)
        return re.sub(r"{{\s*([\w.]+)\s*((?:\|\s*\w+\s*)*)}}", output, text)

    return render(template, context)


def test_the_aws_template_gives_back_the_same_answer(server) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    s3, a2i, sm = server.client("s3"), server.client("sagemaker-a2i-runtime"), server.client("sagemaker")
    bucket = f"template-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    content = statement_input(s3, bucket, "stmt-aws")
    source = TEMPLATE.read_text()
    assert len(source) <= 128_000  # CreateHumanTaskUi's limit
    ui = f"statement-review-{uuid.uuid4().hex[:6]}"
    sm.create_human_task_ui(HumanTaskUiName=ui, UiTemplate={"Content": source})
    assert sm.describe_human_task_ui(HumanTaskUiName=ui)["HumanTaskUiStatus"] == "Active"

    def grant_read_access(uri: str) -> str:
        bucket_name, _, key = uri[len("s3://") :].partition("/")
        presigned = s3.generate_presigned_url("get_object", Params={"Bucket": bucket_name, "Key": key}, ExpiresIn=600)
        # Served through the fake worker origin: Chromium keeps a public origin from loading loopback URLs.
        return "http://worker.test/s3?" + urlencode({"url": presigned})

    def presigned_get(route) -> None:
        url = parse_qs(urlsplit(route.request.url).query)["url"][0]
        with urllib.request.urlopen(url, timeout=10) as response:
            route.fulfill(body=response.read(), content_type=response.headers["Content-Type"])

    rendered = render_liquid(
        source, {"task": {"input": content}}, {"to_json": json.dumps, "grant_read_access": grant_read_access}
    )
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.route(
                "https://assets.crowd.aws/**",
                lambda route: route.fulfill(body=CROWD_FORM_STUB, content_type="text/javascript"),
            )
            page.route("http://worker.test/task", lambda route: route.fulfill(body=rendered, content_type="text/html"))
            page.route("http://worker.test/s3?*", presigned_get)
            page.goto("http://worker.test/task", timeout=15_000)
            wait_until(
                page,
                "document.querySelector('#pages img') && document.querySelector('#pages img').naturalWidth === 800",
            )
            assert page.locator("h2").inner_text() == "stmt-aws.pdf"
            assert page.locator(".box").count() == 4 * 4 + 2 * 2 - 1
            assert page.locator(".box.low").count() == 2 and page.locator(".box.flagged").count() == 2

            page.click("#crowd-submit")  # no name yet: refused
            assert page.evaluate("window.crowdAnswer === undefined")
            page.fill("#reviewer", "Aws Worker")
            page.locator(".flags button", has_text="row 3, Amount").click()
            page.keyboard.press("Control+A")
            page.keyboard.type("2,500.00")
            page.keyboard.press("Enter")
            assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Table t1, row 4, Amount"
            page.get_by_label("Type of table t2").select_option("summary")
            page.click("#crowd-submit")
            answer = page.evaluate("window.crowdAnswer")
        finally:
            browser.close()

    assert errors == []
    assert set(answer) == {"reviewer", "tables", "corrections"} and isinstance(answer["tables"], str)
    # The same answer the local page gives: localcloud's contract check takes it as it is, via the reviewer API.
    flow = make_flow(server, bucket)
    name = f"aws-{uuid.uuid4().hex[:6]}"
    a2i.start_human_loop(
        HumanLoopName=name, FlowDefinitionArn=flow, HumanLoopInput={"InputContent": json.dumps(content)}
    )
    status, result = review(server, f"api/loops/us-east-1/{name}/answer", {"answer": answer})
    assert status == 200 and result["status"] == "Completed", result
    key = result["outputS3Uri"].split("/", 3)[3]
    stored = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["humanAnswers"][0]["answerContent"]
    assert stored["corrections"] == [{"table_id": "t1", "row": 2, "col": 2, "old": "2,5OO.00", "new": "2,500.00"}]
    assert [t["table_type"] for t in stored["tables"]] == ["transactions", "summary"]
    assert stored["reviewer"] == "Aws Worker"
