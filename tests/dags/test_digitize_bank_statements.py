"""e2e: digitize_bank_statements with dag.test() against localcloud (real OCR, a real human loop), run twice.

A thread plays the reviewer through the review page's HTTP API, correcting the amount the balance rule caught.
"""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.request
import uuid

import pytest

from include.datagen.statements import generate_statement
from include.documents import pipeline, tracking
from tests.conftest import assert_least_privilege, point_aws_default, running_localcloud
from tests.dags.test_train_custom_labels import _states

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    yield from running_localcloud(tmp_path_factory.mktemp("documents") / "data")


def _pdf(statement) -> bytes:
    out = io.BytesIO()
    statement.pages[0].save(out, format="PDF", resolution=float(statement.dpi))
    return out.getvalue()


def _png(statement) -> bytes:
    out = io.BytesIO()
    statement.pages[0].save(out, format="PNG", dpi=(statement.dpi, statement.dpi))
    return out.getvalue()


def _xcom(dag_id: str, run_id: str, task_id: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.task_id == task_id)
            .one()
        )
        return XComModel.deserialize_value(row)


class Reviewer(threading.Thread):
    """Takes every pending loop, replaces ``fixes`` (wrong text -> right text) in its cells, and submits."""

    def __init__(self, endpoint: str, fixes: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.base = f"{endpoint}/_localcloud/review/api"
        self.fixes = fixes
        self.done: list[str] = []
        self.stop = threading.Event()

    def _call(self, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base}/{path}", data=data, method="POST" if data else "GET")
        if data:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def run(self) -> None:
        while not self.stop.is_set():
            listing = self._call("loops?status=InProgress")
            for summary in listing.get("loops", listing if isinstance(listing, list) else []):
                path = f"loops/{summary['region']}/{summary['name']}"
                loop = self._call(path)
                self._call(f"{path}/accept", {"reviewer": "test-reviewer"})
                tables = []
                for table in loop["input"]["tables"]:
                    rows = [[self.fixes.get(cell["text"], cell["text"]) for cell in row] for row in table["rows"]]
                    tables.append(
                        {
                            "table_id": table["table_id"],
                            "table_type": table["table_type"],
                            "headers": table["headers"],
                            "rows": rows,
                        }
                    )
                self._call(f"{path}/answer", {"answer": {"tables": tables, "reviewer": "test-reviewer"}})
                self.done.append(summary["name"])
            time.sleep(0.5)


def test_pipeline_prioritises_reviews_catalogues_and_reruns_idempotently(cloud, dagbag, monkeypatch, tmp_path):
    from openpyxl import load_workbook

    s3 = cloud.client("s3")
    bucket, table = f"docs-{uuid.uuid4().hex[:8]}", f"tracking-{uuid.uuid4().hex[:8]}"
    conn = point_aws_default(
        cloud, monkeypatch, family="documents", settings={"bucket": bucket, "tracking_table": table}
    )
    conf = {"bucket": bucket, "tracking_table": table, "review_poke_seconds": 1}
    dag = dagbag.dags["digitize_bank_statements"]

    # A first run on a new bucket creates it (and the flow definition); nothing is there to process yet.
    empty = dag.test(run_conf=conf)
    assert empty.state == "success", _states(dag.dag_id, empty.run_id)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    clean = generate_statement(11, layout="national", dpi=200, pages=1, name="clean")
    altered = generate_statement(12, layout="national", dpi=200, pages=1, name="altered", alter=True)
    change = altered.truth["alteration"]
    s3.put_object(Bucket=bucket, Key="acquire/p1/clean.pdf", Body=_pdf(clean))
    s3.put_object(Bucket=bucket, Key="acquire/p0/altered.png", Body=_png(altered))
    s3.put_object(Bucket=bucket, Key="acquire/broken.pdf", Body=b"%PDF-1.7\nnot really a pdf")

    reviewer = Reviewer(cloud.endpoint, {change["altered_text"]: change["original_text"]})
    reviewer.start()
    try:
        run = dag.test(run_conf=conf)
    finally:
        reviewer.stop.set()
    states = _states(dag.dag_id, run.run_id)
    # The broken PDF fails alone (and the run says so); the two good ones are catalogued.
    assert run.state == "failed" and states["status"] == "failed", states

    ddb = cloud.client("dynamodb")
    rows = {r["key"]: r for r in pipeline.status(ddb, table)}
    assert [r["key"] for r in pipeline.status(ddb, table)] == [
        "acquire/p0/altered.png",
        "acquire/p1/clean.pdf",
        "acquire/broken.pdf",
    ]
    assert rows["acquire/broken.pdf"]["state"] == "failed" and "corrupt PDF" in rows["acquire/broken.pdf"]["error"]
    for key in ("acquire/p0/altered.png", "acquire/p1/clean.pdf"):
        assert (rows[key]["stage"], rows[key]["state"]) == ("catalog", "done"), rows[key]
    items = {r["key"]: r for r in tracking.scan(ddb, table)}
    # Map index order is priority order (the scheduler takes lower map indexes first at equal priority weight).
    assert [d["key"] for d in _xcom(dag.dag_id, run.run_id, "acquire")] == [
        "acquire/p0/altered.png",
        "acquire/p1/clean.pdf",
        "acquire/broken.pdf",
    ]

    # The balance rule caught the altered amount, the reviewer corrected it, and the workbook marks it.
    altered_id = items["acquire/p0/altered.png"]["document_id"]
    first = json.loads(s3.get_object(Bucket=bucket, Key=f"work/{altered_id}/tables.json")["Body"].read())
    assert any(f["rule"] == "balance" for t in first["report"]["tables"] for f in t["flags"])
    assert reviewer.done and "augment" in items["acquire/p0/altered.png"]["stages"]
    workbook_key = rows["acquire/p0/altered.png"]["workbook"].removeprefix(f"s3://{bucket}/")
    book = load_workbook(io.BytesIO(s3.get_object(Bucket=bucket, Key=workbook_key)["Body"].read()))
    comments = [c.comment.text for ws in book.worksheets for r in ws.iter_rows() for c in r if c.comment]
    assert any("corrected by reviewer" in text and change["altered_text"] in text for text in comments), comments
    clean_key = rows["acquire/p1/clean.pdf"]["workbook"].removeprefix(f"s3://{bucket}/")
    before = {k: s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in (workbook_key, clean_key)}
    flow = cloud.client("sagemaker").describe_flow_definition(FlowDefinitionName="statement-review")
    a2i = cloud.client("sagemaker-a2i-runtime")
    loops = a2i.list_human_loops(FlowDefinitionArn=flow["FlowDefinitionArn"])["HumanLoopSummaries"]
    assert len(loops) == len(reviewer.done) >= 1 and all(x["HumanLoopStatus"] == "Completed" for x in loops)

    # A rerun skips the finished documents: no new work, same workbooks; only the broken one fails again.
    again = dag.test(run_conf=conf)
    assert again.state == "failed"
    assert {k: s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in before} == before
    assert a2i.list_human_loops(FlowDefinitionArn=flow["FlowDefinitionArn"])["HumanLoopSummaries"] == loops
    after = {r["key"]: r for r in pipeline.status(ddb, table)}
    assert after["acquire/p1/clean.pdf"]["updated_at"] == rows["acquire/p1/clean.pdf"]["updated_at"]
    assert_least_privilege(cloud, conn, "digitize_bank_statements")
