"""Acquire (priority order), tracking items in DynamoDB, and convert (bad files fail alone, with a reason)."""

from __future__ import annotations

import io
import uuid

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from include.documents import acquire, pipeline, tracking
from include.documents.convert import DocumentError, convert


def _png(size=(600, 800), dpi=150) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "white").save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()


# A PDF whose trailer names an /Encrypt dictionary with a password nobody knows: what a protected scan looks like.
ENCRYPTED_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"4 0 obj<</Filter/Standard/V 1/R 2/Length 40/P -4"
    b"/O<0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef>"
    b"/U<fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210>>>endobj\n"
    b"trailer<</Root 1 0 R/Encrypt 4 0 R/ID[<00112233445566778899aabbccddeeff><00112233445566778899aabbccddeeff>]"
    b"/Size 5>>\n%%EOF\n"
)


def test_priority_order_and_unprioritised_last():
    keys = ["acquire/z.pdf", "acquire/p1/b.pdf", "acquire/p0/c.png", "acquire/p10/a.tiff", "acquire/p0/a.pdf"]
    parsed = sorted((acquire.parse_key(k) for k in keys), key=lambda d: (d["priority"], d["key"]))
    assert [d["key"] for d in parsed] == [
        "acquire/p0/a.pdf",
        "acquire/p0/c.png",
        "acquire/p1/b.pdf",
        "acquire/p10/a.tiff",
        "acquire/z.pdf",
    ]
    assert acquire.parse_key("acquire/p0/") is None and acquire.parse_key("acquire/notes.txt") is None
    assert acquire.parse_key("acquire/urgent/x.pdf")["priority"] == acquire.NO_PRIORITY  # not a p<n> folder
    assert acquire.document_id("acquire/p0/Bank Statement #1.pdf").startswith("bank-statement-1-")


def test_list_documents_in_priority_order(s3):
    bucket = f"docs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    for key in ("acquire/late.pdf", "acquire/p2/x.png", "acquire/p0/y.png", "other/ignored.pdf"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    docs = acquire.list_documents(s3, bucket)
    assert [d["key"] for d in docs] == ["acquire/p0/y.png", "acquire/p2/x.png", "acquire/late.pdf"]
    assert all(d["etag"] and d["document_id"] for d in docs)


def test_tracking_items_follow_every_stage(ddb):
    table = f"tracking-{uuid.uuid4().hex[:8]}"
    tracking.ensure_table(ddb, table)
    tracking.ensure_table(ddb, table)  # idempotent
    doc = {"document_id": "a-1", "key": "acquire/p0/a.pdf", "name": "a.pdf", "priority": 0, "etag": "e1"}
    item = tracking.register(ddb, table, doc)
    assert item["stage"] == "acquire" and item["state"] == "pending"
    tracking.update(ddb, table, "a-1", "convert", "running")
    tracking.update(ddb, table, "a-1", "convert", "failed", error="DocumentError: corrupt PDF")
    failed = tracking.get(ddb, table, "a-1")
    assert (failed["stage"], failed["state"], failed["error"]) == ("convert", "failed", "DocumentError: corrupt PDF")
    assert failed["stages"]["convert"]["error"] == "DocumentError: corrupt PDF"
    tracking.update(ddb, table, "a-1", "catalog", "done", outputs={"workbook": "s3://b/catalog/a.xlsx"})
    done = tracking.get(ddb, table, "a-1")
    assert done["state"] == "done" and "error" not in done and done["outputs"]["workbook"] == "s3://b/catalog/a.xlsx"
    assert set(done["stages"]) == {"acquire", "convert", "catalog"}
    assert tracking.register(ddb, table, doc)["state"] == "done"  # same file: kept as it is
    assert tracking.register(ddb, table, {**doc, "etag": "e2"})["state"] == "pending"  # a new version starts over
    with pytest.raises(ValueError, match="unknown stage"):
        tracking.update(ddb, table, "a-1", "nonsense", "done")
    with pytest.raises(ClientError):  # never creates an item for a document that was not acquired
        tracking.update(ddb, table, "nobody", "convert", "done")


def test_convert_images_to_one_pdf_with_page_previews():
    one = convert(_png(), "a.png")
    assert one.source_format == "png" and one.pdf.startswith(b"%PDF-") and len(one.pages) == 1
    assert convert(_png(), "a.png").pdf == one.pdf  # same scan, same bytes (the Textract request token uses them)
    tiff = io.BytesIO()
    page = Image.new("RGB", (500, 700), "white")
    page.save(tiff, format="TIFF", save_all=True, append_images=[page, page])
    three = convert(tiff.getvalue(), "b.tiff")
    assert three.source_format == "tiff" and len(three.pages) == 3
    again = convert(three.pdf, "b.pdf")  # PDFs pass through
    assert again.pdf == three.pdf and len(again.pages) == 3


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"%PDF-1.7\nthis is not a pdf", "corrupt PDF"),
        (ENCRYPTED_PDF, "encrypted PDF"),
        (b"GIF89a...", "not a PDF, PNG, JPEG or TIFF"),
        (_png()[:200], "corrupt"),
    ],
)
def test_bad_files_fail_with_the_reason(data, reason):
    with pytest.raises(DocumentError, match=reason):
        convert(data, "x")


def test_a_corrupt_document_fails_alone_and_is_tracked(s3, ddb):
    bucket, table = f"docs-{uuid.uuid4().hex[:8]}", f"tracking-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="acquire/p0/bad.pdf", Body=b"%PDF-1.4 broken")
    s3.put_object(Bucket=bucket, Key="acquire/p1/good.png", Body=_png())
    params = {"bucket": bucket, "tracking_table": table}
    docs = pipeline.acquire(params, s3, ddb)
    assert [d["name"] for d in docs] == ["bad.pdf", "good.png"]
    with pytest.raises(DocumentError, match="corrupt PDF"):
        pipeline.convert_document(params, docs[0], s3, ddb=ddb)
    good = pipeline.convert_document(params, docs[1], s3, ddb=ddb)
    assert good["pages"][0]["image"].endswith("/pages/page-0001.png")
    rows = {r["key"]: r for r in pipeline.status(ddb, table)}
    assert rows["acquire/p0/bad.pdf"]["state"] == "failed" and "corrupt PDF" in rows["acquire/p0/bad.pdf"]["error"]
    assert rows["acquire/p1/good.png"]["stage"] == "convert" and rows["acquire/p1/good.png"]["state"] == "done"
    assert s3.head_object(Bucket=bucket, Key=good["pdf_key"])["ContentLength"] > 0
