"""The digitization DAG's stages, free of Airflow: plain data in and out, S3 and DynamoDB clients passed in.

Layout in the bucket::

    acquire/[p<n>/]<name>                  where documents land (p0 first; no priority folder: last)
    work/<document_id>/document.pdf        the converted PDF Textract reads
    work/<document_id>/pages/page-0001.png page images for reviewers
    work/<document_id>/textract.json       every block of the analysis
    work/<document_id>/tables.json         reshaped tables + rule report (after review: tables-reviewed.json)
    catalog/<name>.xlsx                    the workbook

Each stage updates the document's tracking item (``tracking.py``) before and after its work, so the table
always says where every document is, and why one failed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from include import s3uri
from include.documents import acquire as acquiring
from include.documents import tracking
from include.documents.convert import DocumentError, convert

log = logging.getLogger(__name__)


def work_key(document_id: str, name: str) -> str:
    return f"work/{document_id}/{name}"


def catalog_key(document: dict[str, Any]) -> str:
    stem = document["name"].rsplit(".", 1)[0]
    return f"catalog/{stem}-{document['document_id'][-10:]}.xlsx"


def _json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _put_json(s3: Any, bucket: str, key: str, value: Any) -> str:
    body = json.dumps(value, sort_keys=True, default=str).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return s3uri.join(bucket, key)


def staged(stage: str) -> Callable:
    """Run a stage with tracking: running before, done (with its outputs) after, failed with the error."""

    def wrap(func: Callable) -> Callable:
        def run(params: dict[str, Any], document: dict[str, Any], *args: Any, ddb: Any, **kwargs: Any) -> Any:
            table, doc_id = params["tracking_table"], document["document_id"]
            tracking.update(ddb, table, doc_id, stage, "running")
            try:
                result = func(params, document, *args, **kwargs)
            except Exception as err:
                tracking.update(ddb, table, doc_id, stage, "failed", error=f"{type(err).__name__}: {err}")
                raise
            outputs = result.get("outputs") if isinstance(result, dict) else None
            tracking.update(ddb, table, doc_id, stage, "done", outputs=outputs)
            return result

        run.__name__ = func.__name__
        run.__doc__ = func.__doc__
        return run

    return wrap


def acquire(params: dict[str, Any], s3: Any, ddb: Any) -> list[dict[str, Any]]:
    """Documents to process this run, in priority order; finished ones (same file, state done) are skipped."""
    tracking.ensure_table(ddb, params["tracking_table"])
    found = acquiring.list_documents(s3, params["bucket"])
    todo, skipped = [], 0
    for document in found:
        item = tracking.register(ddb, params["tracking_table"], document)
        # register() starts a changed file (another ETag) over, so a done item is this very file, done.
        if item.get("stage") == "catalog" and item.get("state") == "done":
            skipped += 1
            continue
        todo.append(document)
    limit = int(params.get("max_documents") or 0)
    if limit:
        todo = todo[:limit]
    log.info("%d document(s) found, %d already done, %d to process", len(found), skipped, len(todo))
    return todo


@staged("convert")
def convert_document(params: dict[str, Any], document: dict[str, Any], s3: Any) -> dict[str, Any]:
    """The document as one PDF plus page images, under work/<document_id>/."""
    bucket, doc_id = params["bucket"], document["document_id"]
    data = s3.get_object(Bucket=bucket, Key=document["key"])["Body"].read()
    converted = convert(data, document["name"])
    pdf_key = work_key(doc_id, "document.pdf")
    s3.put_object(Bucket=bucket, Key=pdf_key, Body=converted.pdf, ContentType="application/pdf")
    pages = []
    for number, (png, (width, height)) in enumerate(zip(converted.pages, converted.sizes, strict=True), start=1):
        key = work_key(doc_id, f"pages/page-{number:04d}.png")
        s3.put_object(Bucket=bucket, Key=key, Body=png, ContentType="image/png")
        pages.append({"page": number, "image": s3uri.join(bucket, key), "width": width, "height": height})
    return {
        "pdf_key": pdf_key,
        "pages": pages,
        "source_format": converted.source_format,
        "outputs": {"pdf": s3uri.join(bucket, pdf_key), "pages": len(pages)},
    }


@staged("operate")
def reshape_and_operate(params: dict[str, Any], document: dict[str, Any], analysis_uri: str, s3: Any) -> dict:
    """Textract blocks -> tables -> business rules; tables and report saved to work/<id>/tables.json."""
    from include.documents import reshape, rules

    bucket, key = s3uri.parse(analysis_uri)
    analysis = _json(s3, bucket, key)
    tables = reshape.tables_from_blocks(analysis["Blocks"])
    # The page lines carry the statement period (the year of "Jan 05") and the account number.
    lines = reshape.lines_from_blocks(analysis["Blocks"])
    report = rules.operate(tables, confidence_threshold=float(params["confidence_threshold"]), lines=lines)
    saved = {"tables": tables, "report": report, "lines": lines}
    uri = _put_json(s3, params["bucket"], work_key(document["document_id"], "tables.json"), saved)
    flagged = report.get("flag_count", 0)
    return {
        "tables_uri": uri,
        "tables": len(tables),
        "needs_review": bool(report.get("needs_review")),
        "outputs": {"tables": len(tables), "flagged_cells": flagged, "needs_review": bool(report.get("needs_review"))},
    }


def loop_name(document: dict[str, Any], tables_uri: str, s3: Any) -> str:
    """A2I loop names are 1-63 of [a-z0-9-]; the same document and tables give the same loop on a rerun."""
    bucket, key = s3uri.parse(tables_uri)
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    digest = hashlib.sha256(f"{document['document_id']}:{etag}".encode()).hexdigest()[:8]
    return f"{document['document_id'][:50]}-{digest}".lower()


def review_input(params: dict[str, Any], document: dict[str, Any], converted: dict, tables_uri: str, s3: Any) -> dict:
    """The human loop's InputContent (the contract the review page and the A2I template both read)."""
    bucket, key = s3uri.parse(tables_uri)
    saved = _json(s3, bucket, key)
    by_table = {t["table_id"]: t for t in saved["report"].get("tables", [])}
    tables = []
    for table in saved["tables"]:
        checked = by_table.get(table["table_id"], {})
        flags: dict[tuple[int, int], list[str]] = {}
        for flag in checked.get("flags", []):
            flags.setdefault((flag["row"], flag["col"]), []).append(flag["reason"])
        headers = list(checked.get("headers") or [])
        headers += [f"column_{c}" for c in range(len(headers), table["n_cols"])]
        tables.append(
            {
                "table_id": table["table_id"],
                "page": table["page"],
                "table_type": checked.get("table_type", "other"),
                "headers": headers[: table["n_cols"]],
                "rows": [
                    [
                        {
                            "text": cell["text"],
                            "confidence": cell["confidence"] if cell["confidence"] is not None else 0.0,
                            "bbox": cell.get("bbox"),
                            "flags": flags.get((r, c), []),
                        }
                        for c, cell in enumerate(row)
                    ]
                    for r, row in enumerate(table["rows"])
                ],
            }
        )
    return {
        "document": {
            "id": document["document_id"],
            "name": document["name"],
            "source": s3uri.join(params["bucket"], document["key"]),
            "pages": converted["pages"],
        },
        "threshold": float(params["confidence_threshold"]),
        "tables": tables,
    }


@staged("augment")
def merge_review(params: dict[str, Any], document: dict[str, Any], tables_uri: str, output: dict, s3: Any) -> dict:
    """Apply the reviewer's answer to the tables and check the rules again; saved as tables-reviewed.json."""
    from include.documents import rules

    bucket, key = s3uri.parse(tables_uri)
    saved = _json(s3, bucket, key)
    answers = output.get("humanAnswers") or []
    if not answers:
        raise ValueError(f"human loop output for {document['document_id']} has no answers")
    answer = dict(answers[0]["answerContent"])
    for field in ("tables", "corrections"):  # A2I's crowd-form submits every field as text
        if isinstance(answer.get(field), str):
            answer[field] = json.loads(answer[field])
    tables = rules.apply_corrections(saved["tables"], answer)
    report = rules.operate(tables, confidence_threshold=float(params["confidence_threshold"]), lines=saved.get("lines"))
    report["review"] = {
        "reviewer": answer.get("reviewer") or answers[0].get("workerId"),
        "corrections": len(answer.get("corrections", [])),
        "submitted": answers[0].get("submissionTime"),
    }
    uri = _put_json(
        s3,
        params["bucket"],
        work_key(document["document_id"], "tables-reviewed.json"),
        {"tables": tables, "report": report, "lines": saved.get("lines")},
    )
    return {"tables_uri": uri, "outputs": {"corrections": report["review"]["corrections"]}}


@staged("catalog")
def catalog(params: dict[str, Any], document: dict[str, Any], tables_uri: str, s3: Any, processed_at: str) -> dict:
    """The document's Excel workbook under catalog/."""
    from include.documents.catalog import build_workbook

    bucket, key = s3uri.parse(tables_uri)
    saved = _json(s3, bucket, key)
    facts = {
        "name": document["name"],
        "document_id": document["document_id"],
        "source": s3uri.join(params["bucket"], document["key"]),
        "priority": document["label"],
        "processed_at": processed_at,
    }
    workbook = build_workbook(facts, saved["tables"], saved["report"])
    out = catalog_key(document)
    s3.put_object(
        Bucket=params["bucket"],
        Key=out,
        Body=workbook,
        ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    return {"workbook": s3uri.join(params["bucket"], out), "outputs": {"workbook": s3uri.join(params["bucket"], out)}}


def status(ddb: Any, table: str) -> list[dict[str, Any]]:
    """Every tracked document with its stage and state, in processing order."""
    return [
        {
            "document_id": item["document_id"],
            "key": item.get("key"),
            "priority": item.get("priority"),
            "stage": item.get("stage"),
            "state": item.get("state"),
            "updated_at": item.get("updated_at"),
            "error": item.get("error"),
            "workbook": (item.get("outputs") or {}).get("workbook"),
        }
        for item in tracking.scan(ddb, table)
    ]


__all__ = ["DocumentError", "acquire", "catalog", "convert_document", "merge_review", "reshape_and_operate", "status"]
