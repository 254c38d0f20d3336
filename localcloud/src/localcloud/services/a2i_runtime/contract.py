"""The table-review contract between the documents pipeline's augment stage and a human reviewer.

The same JSON travels to localcloud's reviewer page (``/_localcloud/review/``) and, on AWS, to the custom
worker template ``include/documents/a2i_review_template.html``; both give back the same answer.

Input: ``HumanLoopInput.InputContent`` of StartHumanLoop, a JSON object::

    {
        "document": {
            "id": str,
            "name": str,
            "source": "s3://bucket/original.pdf",
            "pages": [{"page": 1, "image": "s3://bucket/key.png", "width": px, "height": px}, ...],
        },
        "threshold": 90.0,
        "tables": [
            {
                "table_id": str,  # unique within the input
                "page": int,  # one of document.pages[].page
                "table_type": "transactions" | "summary" | "other",
                "headers": [str, ...],
                "rows": [
                    [
                        {
                            "text": str,
                            "confidence": float,  # 0..100, as Textract reports it
                            "bbox": {"Left": f, "Top": f, "Width": f, "Height": f} | null,  # normalized to the page
                            "flags": [str, ...],
                        },
                        ...,
                    ],
                    ...,
                ],  # why a rule doubts the cell; may be empty
            }
        ],
    }

Every row has exactly ``len(headers)`` cells (the augment stage pads ragged Textract rows). Page images are
read from S3 by the reviewer page (localcloud) or presigned by ``grant_read_access`` (AWS).

Answer: the ``answerContent`` of each ``humanAnswers`` entry in the loop's ``output.json``::

    {
        "tables": [{"table_id": str, "table_type": str, "headers": [str, ...], "rows": [[str, ...], ...]}],
        "corrections": [{"table_id": str, "row": int, "col": int, "old": str, "new": str}],
        "reviewer": str,
    }

``tables`` lists every input table, in input order, with the same number of headers, rows and cells: the reviewer
corrects text, header names and the table type but never reshapes a table. ``row`` and ``col`` are 0-based into
``rows``; a header edit has ``row = -1``. ``corrections`` are exactly the cells and headers whose text changed,
headers first, then rows in reading order; localcloud rejects an answer whose corrections disagree with its
tables. Crowd-html forms submit every field as a string, so on AWS ``tables`` and ``corrections`` arrive as JSON
text: :func:`normalize_answer` turns either form into the one above.

Confidence bands, shared by the page and the template: ``low`` below ``threshold``, ``near`` within
``NEAR_BAND`` points above it, ``ok`` otherwise.
"""

from __future__ import annotations

import json
from typing import Any

TABLE_TYPES = ("transactions", "summary", "other")
NEAR_BAND = 5.0
BBOX_KEYS = ("Left", "Top", "Width", "Height")


def band(confidence: float, threshold: float) -> str:
    if confidence < threshold:
        return "low"
    return "near" if confidence < threshold + NEAR_BAND else "ok"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def s3_location(uri: Any) -> tuple[str, str] | None:
    """(bucket, key) of an ``s3://bucket/key`` URI, or None when it is not one."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    return (bucket, key) if bucket and key else None


def _cell_problems(cell: Any, where: str) -> list[str]:
    if not isinstance(cell, dict):
        return [f"{where} is not an object"]
    problems = []
    if not isinstance(cell.get("text"), str):
        problems.append(f"{where}.text is not a string")
    if not _number(cell.get("confidence")) or not 0 <= cell["confidence"] <= 100:
        problems.append(f"{where}.confidence is not a number in 0..100")
    bbox = cell.get("bbox")
    if bbox is not None and (
        not isinstance(bbox, dict) or not all(_number(bbox.get(k)) and -0.01 <= bbox[k] <= 1.01 for k in BBOX_KEYS)
    ):
        problems.append(f"{where}.bbox is neither null nor a normalized Left/Top/Width/Height box")
    flags = cell.get("flags")
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        problems.append(f"{where}.flags is not a list of strings")
    return problems


def input_problems(content: Any) -> list[str]:
    """Every way ``content`` departs from the input contract; empty when it follows it."""
    if not isinstance(content, dict):
        return ["the input is not a JSON object"]
    problems: list[str] = []
    document = content.get("document")
    pages: set[int] = set()
    if not isinstance(document, dict):
        problems.append("document is not an object")
    else:
        for key in ("id", "name", "source"):
            if not isinstance(document.get(key), str):
                problems.append(f"document.{key} is not a string")
        if not isinstance(document.get("pages"), list) or not document["pages"]:
            problems.append("document.pages is not a non-empty list")
        else:
            for i, page in enumerate(document["pages"]):
                where = f"document.pages[{i}]"
                if not isinstance(page, dict):
                    problems.append(f"{where} is not an object")
                    continue
                if not _int(page.get("page")) or page["page"] < 1 or page["page"] in pages:
                    problems.append(f"{where}.page is not a unique page number >= 1")
                else:
                    pages.add(page["page"])
                if s3_location(page.get("image")) is None:
                    problems.append(f"{where}.image is not an s3://bucket/key URI")
                for key in ("width", "height"):
                    if not _int(page.get(key)) or page[key] <= 0:
                        problems.append(f"{where}.{key} is not a positive integer")
    if not _number(content.get("threshold")) or not 0 <= content["threshold"] <= 100:
        problems.append("threshold is not a number in 0..100")
    tables = content.get("tables")
    if not isinstance(tables, list):
        return [*problems, "tables is not a list"]
    ids: set[str] = set()
    for t, table in enumerate(tables):
        where = f"tables[{t}]"
        if not isinstance(table, dict):
            problems.append(f"{where} is not an object")
            continue
        if not isinstance(table.get("table_id"), str) or table["table_id"] in ids:
            problems.append(f"{where}.table_id is not a unique string")
        else:
            ids.add(table["table_id"])
        if not _int(table.get("page")) or (pages and table["page"] not in pages):
            problems.append(f"{where}.page is not one of the document's pages")
        if table.get("table_type") not in TABLE_TYPES:
            problems.append(f"{where}.table_type is not one of {', '.join(TABLE_TYPES)}")
        headers = table.get("headers")
        if not isinstance(headers, list) or not all(isinstance(h, str) for h in headers):
            problems.append(f"{where}.headers is not a list of strings")
            headers = None
        rows = table.get("rows")
        if not isinstance(rows, list):
            problems.append(f"{where}.rows is not a list")
            continue
        for r, row in enumerate(rows):
            if not isinstance(row, list):
                problems.append(f"{where}.rows[{r}] is not a list")
                continue
            if headers is not None and len(row) != len(headers):
                problems.append(f"{where}.rows[{r}] has {len(row)} cells for {len(headers)} headers")
            for c, cell in enumerate(row):
                problems.extend(_cell_problems(cell, f"{where}.rows[{r}][{c}]"))
    return problems


def derive_corrections(content: dict[str, Any], tables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The corrections that turn the input's tables into ``tables`` (which must fit their shapes)."""
    by_id = {t["table_id"]: t for t in tables}
    corrections = []
    for original in content["tables"]:
        edited = by_id[original["table_id"]]
        for col, (old, new) in enumerate(zip(original["headers"], edited["headers"], strict=True)):
            if old != new:
                corrections.append({"table_id": original["table_id"], "row": -1, "col": col, "old": old, "new": new})
        for r, (old_row, new_row) in enumerate(zip(original["rows"], edited["rows"], strict=True)):
            for col, (cell, new) in enumerate(zip(old_row, new_row, strict=True)):
                if cell["text"] != new:
                    corrections.append(
                        {"table_id": original["table_id"], "row": r, "col": col, "old": cell["text"], "new": new}
                    )
    return corrections


def _loads_if_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def normalize_answer(answer: Any) -> Any:
    """An answerContent with ``tables``/``corrections`` as JSON values, whether they came as JSON or as text."""
    if not isinstance(answer, dict):
        return answer
    out = dict(answer)
    for key in ("tables", "corrections"):
        if key in out:
            out[key] = _loads_if_text(out[key])
    return out


def _answer_table_problems(original: dict[str, Any], table: Any, where: str) -> list[str]:
    if not isinstance(table, dict):
        return [f"{where} is not an object"]
    problems = []
    if table.get("table_type") not in TABLE_TYPES:
        problems.append(f"{where}.table_type is not one of {', '.join(TABLE_TYPES)}")
    headers = table.get("headers")
    if (
        not isinstance(headers, list)
        or len(headers) != len(original["headers"])
        or not all(isinstance(h, str) for h in headers)
    ):
        problems.append(f"{where}.headers is not a list of {len(original['headers'])} strings")
    rows = table.get("rows")
    if not isinstance(rows, list) or len(rows) != len(original["rows"]):
        return [*problems, f"{where}.rows is not a list of {len(original['rows'])} rows"]
    for r, (row, old) in enumerate(zip(rows, original["rows"], strict=True)):
        if not isinstance(row, list) or len(row) != len(old) or not all(isinstance(v, str) for v in row):
            problems.append(f"{where}.rows[{r}] is not a list of {len(old)} strings")
    return problems


def _correction_key(item: Any) -> tuple:
    if not isinstance(item, dict):
        return ("?", repr(item))
    return tuple(item.get(k) for k in ("table_id", "row", "col", "old", "new"))


def check_answer(content: dict[str, Any], answer: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """(the answer, normalized and with its corrections filled in when absent, or None; its problems)."""
    answer = normalize_answer(answer)
    if not isinstance(answer, dict):
        return None, ["the answer is not a JSON object"]
    problems = []
    if not isinstance(answer.get("reviewer"), str) or not answer["reviewer"].strip():
        problems.append("reviewer is not a non-empty string")
    tables = answer.get("tables")
    originals = content["tables"]
    if not isinstance(tables, list) or [t.get("table_id") if isinstance(t, dict) else None for t in tables] != [
        t["table_id"] for t in originals
    ]:
        return None, [*problems, "tables must list every input table, by table_id, in input order"]
    for t, (original, table) in enumerate(zip(originals, tables, strict=True)):
        problems.extend(_answer_table_problems(original, table, f"tables[{t}]"))
    if problems:
        return None, problems
    derived = derive_corrections(content, tables)
    given = answer.get("corrections")
    if given is None:
        answer["corrections"] = derived
    elif not isinstance(given, list) or sorted(map(_correction_key, given), key=repr) != sorted(
        map(_correction_key, derived), key=repr
    ):
        return None, ["corrections do not match the differences between the input and the answer's tables"]
    return answer, []
