"""localcloud's Textract through boto3 against a live server: real OCR, Textract-shaped blocks, jobs that survive
restarts, limits and errors named as AWS names them.

OCR costs seconds a page on a 2-core machine, so the real fixture PDF is analysed once per module and the other
documents are small generated pages.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from PIL import Image, ImageDraw, ImageFont

from localcloud.process import LocalCloudProcess

pytest.importorskip("rapidocr")

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "textract-bank-statement"
FIXTURE_PDF = FIXTURES / "0001_NationalBank_2Pages.pdf"
MAX_JOBS = 2  # the module's server cap on jobs in progress, low so that the limit is cheap to reach
BUCKET = "textract-docs"
ROWS = [("Item", "Qty", "Price"), ("Bolts", "10", "4.50"), ("Nuts", "25", "3.10"), ("Washers", "100", "1.20")]


# -- documents -----------------------------------------------------------------------------------------------------
def _font(size: int = 24) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def table_page(title: str = "Invoice No: 12345") -> Image.Image:
    """A ruled 4x3 table under a 'Label: value' line."""
    image = Image.new("RGB", (900, 400), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 30), title, fill="black", font=_font())
    for r, row in enumerate(ROWS):
        y = 120 + r * 50
        draw.line((30, y - 12, 870, y - 12), fill="black", width=2)
        for c, text in enumerate(row):
            draw.text((50 + c * 280, y), text, fill="black", font=_font())
    draw.line((30, 120 + len(ROWS) * 50 - 12, 870, 120 + len(ROWS) * 50 - 12), fill="black", width=2)
    return image


def encoded(image: Image.Image, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return buffer.getvalue()


def text_pdf(pages: int) -> bytes:
    """An image-only PDF (a scan) of ``pages`` small pages at 100 ppi."""
    images = []
    for n in range(pages):
        image = Image.new("RGB", (700, 220), "white")
        ImageDraw.Draw(image).text((40, 90), f"Page {n + 1} total: {100 + n}.00", fill="black", font=_font(28))
        images.append(image)
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=100)
    return buffer.getvalue()


def encrypted_pdf() -> bytes:
    """A PDF whose trailer names a standard security handler: readers need a password for it."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> /P -4 >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Encrypt 4 0 R /ID [<{'ab' * 16}> <{'ab' * 16}>] >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    return out


# -- helpers -------------------------------------------------------------------------------------------------------
def location(key: str, bucket: str = BUCKET) -> dict:
    return {"S3Object": {"Bucket": bucket, "Name": key}}


def wait(textract, job_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while (reply := textract.get_document_analysis(JobId=job_id))["JobStatus"] == "IN_PROGRESS":
        assert time.monotonic() < deadline, f"job {job_id} still IN_PROGRESS after {timeout} s"
        time.sleep(0.3)
    return reply


def all_blocks(textract, job_id: str, **kwargs) -> list[dict]:
    reply = textract.get_document_analysis(JobId=job_id, **kwargs)
    blocks = list(reply["Blocks"])
    while reply.get("NextToken"):
        reply = textract.get_document_analysis(JobId=job_id, NextToken=reply["NextToken"], **kwargs)
        blocks.extend(reply["Blocks"])
    return blocks


def error_code(call) -> str:
    with pytest.raises(ClientError) as exc:
        call()
    return exc.value.response["Error"]["Code"]


def children(block: dict, by_id: dict, kind: str = "CHILD") -> list[dict]:
    return [by_id[i] for r in block.get("Relationships") or [] if r["Type"] == kind for i in r["Ids"]]


def grid(table: dict, by_id: dict) -> list[list[str]]:
    cells = [c for c in children(table, by_id) if c["BlockType"] == "CELL"]
    rows, cols = max(c["RowIndex"] for c in cells), max(c["ColumnIndex"] for c in cells)
    out = [[""] * cols for _ in range(rows)]
    for cell in cells:
        out[cell["RowIndex"] - 1][cell["ColumnIndex"] - 1] = " ".join(w["Text"] for w in children(cell, by_id))
    return out


def check_structure(blocks: list[dict]) -> None:
    """The invariants consumers of real Textract output rely on."""
    by_id = {b["Id"]: b for b in blocks}
    assert len(by_id) == len(blocks), "block Ids are unique"
    owner_cell: dict[str, str] = {}
    for block in blocks:
        for relationship in block.get("Relationships") or []:
            assert all(i in by_id for i in relationship["Ids"]), f"{block['BlockType']} points at missing blocks"
        box = block["Geometry"]["BoundingBox"]
        assert 0 <= box["Left"] <= 1 and 0 <= box["Top"] <= 1
        assert box["Left"] + box["Width"] <= 1 + 1e-6 and box["Top"] + box["Height"] <= 1 + 1e-6
        assert len(block["Geometry"]["Polygon"]) == 4
        assert all(0 <= p["X"] <= 1 and 0 <= p["Y"] <= 1 for p in block["Geometry"]["Polygon"])
        if block["BlockType"] != "PAGE":
            assert 0 <= block["Confidence"] <= 100
        kids = children(block, by_id)
        assert all(k["Page"] == block["Page"] for k in kids)
        if block["BlockType"] == "PAGE":
            assert {k["BlockType"] for k in kids} <= {"LINE", "TABLE", "KEY_VALUE_SET"}
        elif block["BlockType"] == "LINE":
            assert kids and all(k["BlockType"] == "WORD" for k in kids)
            assert block["Text"] == " ".join(k["Text"] for k in kids)
        elif block["BlockType"] == "TABLE":
            cells = kids
            assert cells and all(c["BlockType"] == "CELL" for c in cells)
            positions = {(c["RowIndex"], c["ColumnIndex"]) for c in cells}
            rows, cols = max(r for r, _ in positions), max(c for _, c in positions)
            assert len(positions) == len(cells) == rows * cols, "every grid position has exactly one CELL"
            merged = children(block, by_id, "MERGED_CELL")
            assert all(m["BlockType"] == "MERGED_CELL" for m in merged)
            for merge in merged:
                assert {c["Id"] for c in children(merge, by_id)} <= {c["Id"] for c in cells}
                assert len(children(merge, by_id)) == merge["RowSpan"] * merge["ColumnSpan"]
        elif block["BlockType"] == "CELL":
            assert block["RowIndex"] >= 1 and block["ColumnIndex"] >= 1
            assert block["RowSpan"] == block["ColumnSpan"] == 1
            cell = block["Geometry"]["BoundingBox"]
            for word in kids:
                assert word["BlockType"] == "WORD"
                assert word["Id"] not in owner_cell, "a WORD belongs to one CELL at most"
                owner_cell[word["Id"]] = block["Id"]
                w = word["Geometry"]["BoundingBox"]
                cx, cy = w["Left"] + w["Width"] / 2, w["Top"] + w["Height"] / 2
                slack = 0.01
                assert cell["Left"] - slack <= cx <= cell["Left"] + cell["Width"] + slack
                assert cell["Top"] - slack <= cy <= cell["Top"] + cell["Height"] + slack
        elif block["BlockType"] == "KEY_VALUE_SET" and "KEY" in block["EntityTypes"]:
            (value,) = children(block, by_id, "VALUE")
            assert value["EntityTypes"] == ["VALUE"]
            assert all(w["BlockType"] == "WORD" for w in children(block, by_id))
    lines_of_words = {k["Id"] for b in blocks if b["BlockType"] == "LINE" for k in children(b, by_id)}
    assert lines_of_words == {b["Id"] for b in blocks if b["BlockType"] == "WORD"}, "every WORD is in one LINE"


# -- fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"LOCALCLOUD_TEXTRACT_MAX_JOBS": str(MAX_JOBS)}
    with LocalCloudProcess(tmp_path_factory.mktemp("textract") / "data", env=env) as process:
        yield process


@pytest.fixture(scope="module")
def clients(server):
    s3, textract = server.client("s3"), server.client("textract")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="table.png", Body=encoded(table_page()))
    s3.put_object(Bucket=BUCKET, Key="three-pages.pdf", Body=text_pdf(3))
    s3.put_object(Bucket=BUCKET, Key="one-page.pdf", Body=text_pdf(1))
    if FIXTURE_PDF.exists():
        s3.put_object(Bucket=BUCKET, Key="statement.pdf", Body=FIXTURE_PDF.read_bytes())
    return s3, textract


@pytest.fixture(scope="module")
def statement(clients):
    """The real two-page scan, analysed once: (JobId, first reply, every block)."""
    if not FIXTURE_PDF.exists():
        pytest.skip(f"{FIXTURE_PDF} is not there")
    _, textract = clients
    job_id = textract.start_document_analysis(
        DocumentLocation=location("statement.pdf"), FeatureTypes=["TABLES"], ClientRequestToken="statement-1"
    )["JobId"]
    reply = wait(textract, job_id)
    return job_id, reply, all_blocks(textract, job_id)


# -- the real statement --------------------------------------------------------------------------------------------
def test_statement_tables_read_like_textract(statement):
    _, reply, blocks = statement
    assert reply["JobStatus"] == "SUCCEEDED"
    assert reply["DocumentMetadata"] == {"Pages": 2}
    assert reply["AnalyzeDocumentModelVersion"]
    by_id = {b["Id"]: b for b in blocks}
    assert [b["Page"] for b in blocks if b["BlockType"] == "PAGE"] == [1, 2]
    main = [
        t for t in blocks if t["BlockType"] == "TABLE" and t["Geometry"]["BoundingBox"]["Width"] > 0.7
    ]  # the transactions, one per page; the statement-period box is the other table
    assert [t["Page"] for t in main] == [1, 2]
    first, second = grid(main[0], by_id), grid(main[1], by_id)
    # Real Textract: 22 x 6 on both pages (page 2 keeps its ten empty ruled rows).
    assert (len(first), len(first[0])) == (22, 6) and (len(second), len(second[0])) == (22, 6)
    assert first[0][:2] == ["Date", "Description"]
    assert first[21] == ["2021-01-19", "Dining - DELIVERY", "89356", "46.62", "", "1054.50"]
    assert second[1][0] == "2021-01-19" and second[1][5] == "1054.50"
    assert all(cell == "" for row in second[12:] for cell in row)
    header = [c for c in children(main[0], by_id) if c["RowIndex"] == 1]
    assert all(c.get("EntityTypes") == ["COLUMN_HEADER"] for c in header)


def test_statement_block_structure(statement):
    check_structure(statement[2])


def test_pagination_reassembles_the_same_blocks(clients, statement):
    _, textract = clients
    job_id, _, blocks = statement
    pages, reply = [], textract.get_document_analysis(JobId=job_id, MaxResults=250)
    pages.append(reply["Blocks"])
    while reply.get("NextToken"):
        reply = textract.get_document_analysis(JobId=job_id, MaxResults=250, NextToken=reply["NextToken"])
        pages.append(reply["Blocks"])
    assert all(len(p) <= 250 for p in pages) and len(pages) == -(-len(blocks) // 250)
    assert [b["Id"] for p in pages for b in p] == [b["Id"] for b in blocks]
    # Above AWS's maximum of 1000, MaxResults is clamped to it.
    assert len(textract.get_document_analysis(JobId=job_id, MaxResults=5000)["Blocks"]) == min(len(blocks), 1000)
    bad = error_code(lambda: textract.get_document_analysis(JobId=job_id, NextToken="not-a-token"))
    assert bad == "InvalidParameterException"


def test_client_request_token_is_idempotent(clients, statement):
    _, textract = clients
    job_id = statement[0]
    again = textract.start_document_analysis(
        DocumentLocation=location("statement.pdf"), FeatureTypes=["TABLES"], ClientRequestToken="statement-1"
    )
    assert again["JobId"] == job_id
    mismatch = error_code(
        lambda: textract.start_document_analysis(
            DocumentLocation=location("statement.pdf"), FeatureTypes=["FORMS"], ClientRequestToken="statement-1"
        )
    )
    assert mismatch == "IdempotentParameterMismatchException"


# -- generated documents -------------------------------------------------------------------------------------------
def test_async_image_with_output_config(clients):
    s3, textract = clients
    job_id = textract.start_document_analysis(
        DocumentLocation=location("table.png"),
        FeatureTypes=["TABLES", "FORMS"],
        JobTag="invoices",
        OutputConfig={"S3Bucket": BUCKET, "S3Prefix": "analysis"},
        NotificationChannel={
            "SNSTopicArn": "arn:aws:sns:us-east-1:000000000000:t",
            "RoleArn": "arn:aws:iam::000000000000:role/textract",
        },
    )["JobId"]
    reply = wait(textract, job_id)
    assert reply["JobStatus"] == "SUCCEEDED" and reply["DocumentMetadata"] == {"Pages": 1}
    blocks = all_blocks(textract, job_id)
    check_structure(blocks)
    by_id = {b["Id"]: b for b in blocks}
    (table,) = [b for b in blocks if b["BlockType"] == "TABLE"]
    assert grid(table, by_id) == [list(r) for r in ROWS]
    written = json.loads(s3.get_object(Bucket=BUCKET, Key=f"analysis/{job_id}/1")["Body"].read())
    assert written["JobStatus"] == "SUCCEEDED"
    assert [b["Id"] for b in written["Blocks"]] == [b["Id"] for b in blocks]


def test_analyze_document_sync(clients):
    s3, textract = clients
    reply = textract.analyze_document(Document={"Bytes": encoded(table_page())}, FeatureTypes=["TABLES", "FORMS"])
    assert reply["DocumentMetadata"] == {"Pages": 1}
    blocks = reply["Blocks"]
    check_structure(blocks)
    by_id = {b["Id"]: b for b in blocks}
    (table,) = [b for b in blocks if b["BlockType"] == "TABLE"]
    assert grid(table, by_id) == [list(r) for r in ROWS]
    keys = [b for b in blocks if b["BlockType"] == "KEY_VALUE_SET" and b["EntityTypes"] == ["KEY"]]
    pairs = {
        " ".join(w["Text"] for w in children(k, by_id)): " ".join(
            w["Text"] for v in children(k, by_id, "VALUE") for w in children(v, by_id)
        )
        for k in keys
    }
    assert pairs == {"Invoice No:": "12345"}
    # The same page from S3, as JPEG, tables only.
    s3.put_object(Bucket=BUCKET, Key="table.jpg", Body=encoded(table_page(), "JPEG"))
    reply = textract.analyze_document(Document=location("table.jpg"), FeatureTypes=["TABLES"])
    assert not [b for b in reply["Blocks"] if b["BlockType"] == "KEY_VALUE_SET"]
    assert [b["BlockType"] for b in reply["Blocks"]].count("TABLE") == 1


# -- errors --------------------------------------------------------------------------------------------------------
def test_errors_are_named_as_aws_names_them(clients):
    s3, textract = clients
    s3.put_object(Bucket=BUCKET, Key="notes.txt", Body=b"just text, not a document")
    s3.put_object(Bucket=BUCKET, Key="broken.pdf", Body=b"%PDF-1.4\n garbage that is no PDF at all")
    s3.put_object(Bucket=BUCKET, Key="locked.pdf", Body=encrypted_pdf())

    def start(key: str, bucket: str = BUCKET, features: tuple = ("TABLES",)):
        return lambda: textract.start_document_analysis(DocumentLocation=location(key, bucket), FeatureTypes=features)

    assert error_code(start("missing.pdf")) == "InvalidS3ObjectException"
    assert error_code(start("x.pdf", bucket="no-such-bucket")) == "InvalidS3ObjectException"
    assert error_code(start("notes.txt")) == "UnsupportedDocumentException"
    assert error_code(start("broken.pdf")) == "UnsupportedDocumentException"
    assert error_code(start("locked.pdf")) == "UnsupportedDocumentException"
    assert error_code(start("table.png", features=())) == "InvalidParameterException"
    assert error_code(start("table.png", features=("QUERIES",))) == "InvalidParameterException"
    assert error_code(lambda: textract.get_document_analysis(JobId="f" * 64)) == "InvalidJobIdException"

    def analyze(document: dict, features: tuple = ("TABLES",)):
        return lambda: textract.analyze_document(Document=document, FeatureTypes=features)

    assert error_code(analyze(location("three-pages.pdf"))) == "UnsupportedDocumentException"
    assert error_code(analyze({"Bytes": b"GIF89a not supported"})) == "UnsupportedDocumentException"
    assert error_code(analyze(location("missing.png"))) == "InvalidS3ObjectException"
    too_big = b"\x89PNG\r\n\x1a\n" + bytes(10 * 1024 * 1024)
    assert error_code(analyze({"Bytes": too_big})) == "DocumentTooLargeException"
    tiny = encoded(Image.new("RGB", (8, 8), "white"))
    assert error_code(analyze({"Bytes": tiny})) == "BadDocumentException"


def test_job_limit_throttles_then_recovers(clients):
    _, textract = clients

    def start():
        return textract.start_document_analysis(DocumentLocation=location("one-page.pdf"), FeatureTypes=["TABLES"])

    running = [start()["JobId"] for _ in range(MAX_JOBS)]
    with pytest.raises(ClientError) as exc:
        start()
    assert exc.value.response["Error"]["Code"] == "LimitExceededException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    for job_id in running:
        assert wait(textract, job_id)["JobStatus"] == "SUCCEEDED"
    assert wait(textract, start()["JobId"])["JobStatus"] == "SUCCEEDED"


# -- restarts ------------------------------------------------------------------------------------------------------
def test_restart_mid_job_resumes_or_fails_with_a_reason(tmp_path):
    data = tmp_path / "data"
    server = LocalCloudProcess(data).start()
    try:
        s3, textract = server.client("s3"), server.client("textract")
        s3.create_bucket(Bucket="docs")
        s3.put_object(Bucket="docs", Key="four.pdf", Body=text_pdf(4))
        resumed = textract.start_document_analysis(
            DocumentLocation=location("four.pdf", "docs"), FeatureTypes=["TABLES"]
        )["JobId"]
        orphaned = textract.start_document_analysis(
            DocumentLocation=location("four.pdf", "docs"), FeatureTypes=["FORMS"]
        )["JobId"]
        first_page = data / "textract-jobs" / resumed / "pages" / "00001.json"
        deadline = time.monotonic() + 120
        while not first_page.exists():
            assert time.monotonic() < deadline, "the first page never finished"
            time.sleep(0.1)
        done_before = json.loads(first_page.read_text())
    finally:
        server.stop()
    assert not (data / "textract-jobs" / resumed / "result.json").exists(), "stopped before the job ended"
    shutil.rmtree(data / "textract-jobs" / orphaned)  # a job whose files are lost cannot resume

    server = LocalCloudProcess(data, port=server.port).start()
    try:
        textract = server.client("textract")
        reply = wait(textract, resumed)
        assert reply["JobStatus"] == "SUCCEEDED" and reply["DocumentMetadata"] == {"Pages": 4}
        blocks = all_blocks(textract, resumed)
        check_structure(blocks)
        page_one = [b["Id"] for b in blocks if b["Page"] == 1]
        assert page_one == [b["Id"] for b in done_before], "the finished page was kept, not analysed again"
        lines = [b["Text"] for b in blocks if b["BlockType"] == "LINE"]
        assert any("Page 4" in line for line in lines)
        failed = wait(textract, orphaned)
        assert failed["JobStatus"] == "FAILED" and failed["StatusMessage"]
    finally:
        server.stop()
