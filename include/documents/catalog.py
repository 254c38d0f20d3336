"""The catalog stage: one Excel workbook per document, built with openpyxl, as deterministic bytes.

Layout:

- Sheet "summary" first: the document's facts (name, pages, priority, source URI, processed time, statement
  period, account number, review status, flag counts), every rule with its passed/failed counts, the tables with
  their sheets, and any document-level flags.
- One sheet per table, named ``"<table type> p<page>"`` (``" (2)"`` etc. when a page has several of a type; at
  most 31 characters, none of ``[]:*?/\\``). Row 1 holds the canonical headers (frozen); the header text as printed
  on the statement is a comment on that header cell, so the data below stays a plain grid for anyone who reads
  the sheet back. Then one Excel row per table row below the header, skipping blank rows that carry no flags; a
  merged cell's value is written once, at its top-left position, as the rules read it.

Decisions:

- Values are typed by canonical column: ``date`` cells become Excel dates, ``withdrawals``/``deposits``/
  ``balance``/``amount`` numbers with a currency format (the reading :func:`~include.documents.rules.parse_amount`
  settled on, so "80,00" lands as 80.00 and stays flagged); what does not parse, and every other column
  (references keep leading zeros), is text. Text is always stored as a string, never a formula, so an OCR'd
  "=..." cannot run in Excel.
- Fills: an open flag is red, a flag a reviewer has already seen amber, a reviewer's correction green; the
  comment gives every reason and, for a correction, "corrected by reviewer; was '…'".
- Same input, same bytes: no clock reads (the core properties take ``processed_at``), and the zip is rewritten
  with fixed member timestamps and attributes because openpyxl stamps each member with the current time.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter

from include.documents.reshape import merge_followers
from include.documents.rules import parse_amount, parse_date

AUTHOR = "document-digitization"
FLAG_FILL = PatternFill("solid", fgColor="FFC7CE")
REVIEWED_FILL = PatternFill("solid", fgColor="FFEB9C")
CORRECTED_FILL = PatternFill("solid", fgColor="C6EFCE")
HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")
BOLD = Font(bold=True)
DATE_FORMAT = "yyyy-mm-dd"
MONEY_COLUMNS = ("withdrawals", "deposits", "balance", "amount")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip member can carry
DEFAULT_TIME = datetime(2000, 1, 1)
SHEET_NAME_LIMIT = 31


def _processed_at(document: Mapping[str, Any]) -> datetime:
    value = document.get("processed_at")
    if isinstance(value, datetime):
        moment = value
    elif value:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    else:
        return DEFAULT_TIME
    # Core properties are written as UTC without an offset.
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _text(value: Any) -> str:
    return ILLEGAL_CHARACTERS_RE.sub("", "" if value is None else str(value))


def _put(sheet, row: int, col: int, value: Any):
    cell = sheet.cell(row=row, column=col)
    if isinstance(value, str):
        cell.value = _text(value)
        cell.data_type = "s"  # openpyxl would store a leading "=" as a formula
    else:
        cell.value = value
    return cell


def sheet_name(table_type: str, page: Any, taken: set[str]) -> str:
    """An Excel-safe, workbook-unique (case-insensitively) sheet name like ``"transactions p1"``."""
    base = re.sub(r"[\[\]:*?/\\]", "_", f"{table_type} p{page}").strip("'")[:SHEET_NAME_LIMIT] or "table"
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        suffix = f" ({n})"
        name = base[: SHEET_NAME_LIMIT - len(suffix)] + suffix
    taken.add(name.lower())
    return name


def _money_format(document: Mapping[str, Any]) -> str:
    symbol = str(document.get("currency_symbol") or "$").replace('"', "")
    return f'"{symbol}"#,##0.00;-"{symbol}"#,##0.00'


def _typed(text: str, header: str, context: Mapping[str, Any], money_format: str) -> tuple[Any, str | None]:
    if not text:
        return None, None
    if header == "date":
        when = parse_date(text, dict(context))
        if when is not None:
            return when, DATE_FORMAT
    elif header in MONEY_COLUMNS:
        value, _ = parse_amount(text)
        if value is not None:
            # As the rules read them: withdrawals and deposits are magnitudes, balances and amounts keep a sign.
            return float(abs(value) if header in ("withdrawals", "deposits") else value), money_format
    return text, None


def _widths(sheet, widths: dict[int, int]) -> None:
    for col, width in sorted(widths.items()):
        sheet.column_dimensions[get_column_letter(col)].width = min(max(width + 2, 8), 60)


def _comment(lines: list[str]) -> Comment:
    text = "\n".join(lines)
    comment = Comment(_text(text), AUTHOR)
    comment.width = 320
    comment.height = 40 + 20 * len(lines)
    return comment


def _decorate(cell, sources: list[tuple[int, dict]], flags: dict, notes: list[str]) -> int:
    """Fill and comment an Excel cell for the flags and corrections of its table cells; returns the flags shown."""
    seen = [flag for r, source in sources for flag in flags.get((r, source["col"]), [])]
    notes = notes + [flag["reason"] + (" (seen by a reviewer)" if flag.get("reviewed") else "") for flag in seen]
    corrected = [source for _, source in sources if source.get("corrected")]
    notes += [f"corrected by reviewer; was '{source.get('original', '')}'" for source in corrected]
    if seen:
        cell.fill = FLAG_FILL if any(not flag.get("reviewed") for flag in seen) else REVIEWED_FILL
    elif corrected:
        cell.fill = CORRECTED_FILL
    if notes:
        cell.comment = _comment(notes)
    return len(seen)


def _table_sheet(sheet, table: dict, result: dict, context: Mapping[str, Any], money_format: str) -> int:
    """Write one table; returns the number of flags shown."""
    n_cols = table.get("n_cols", 0)
    headers = result.get("headers") or [f"column_{c}" for c in range(n_cols)]
    original = result.get("original_headers") or [""] * n_cols
    header_row = result.get("header_row")
    shown = 0
    flags: dict[tuple[int, int], list[dict]] = {}
    for flag in result.get("flags", []):
        flags.setdefault((flag["row"], flag["col"]), []).append(flag)

    rows = table.get("rows", [])
    header_rows = rows[: header_row + 1] if header_row is not None else []
    widths: dict[int, int] = {}
    for c, name in enumerate(headers, start=1):
        cell = _put(sheet, 1, c, name)
        cell.font, cell.fill = BOLD, HEADER_FILL
        # The printed header rows are not repeated as data, so their flags and corrections show on this cell.
        sources = [(r, line[c - 1]) for r, line in enumerate(header_rows)]
        notes = [f"printed header: '{original[c - 1]}'"] if original[c - 1] else []
        shown += _decorate(cell, sources, flags, notes)
        widths[c] = len(name)
    sheet.freeze_panes = "A2"

    out = 2
    first = 0 if header_row is None else header_row + 1
    followers = merge_followers(table)
    for r, row in enumerate(rows[first:], start=first):
        texts = ["" if (r, c) in followers else (cell.get("text") or "").strip() for c, cell in enumerate(row)]
        if not any(texts) and not any((r, c) in flags for c in range(n_cols)):
            continue
        for c, source in enumerate(row):
            value, number_format = _typed(texts[c], headers[c], context, money_format)
            cell = _put(sheet, out, c + 1, value)
            if number_format:
                cell.number_format = number_format
            widths[c + 1] = max(widths.get(c + 1, 0), len(texts[c]))
            shown += _decorate(cell, [(r, source)], flags, [])
        out += 1
    _widths(sheet, widths)
    return shown


def _review_status(report: Mapping[str, Any], tables: list[dict]) -> str:
    touched = any(cell.get("reviewed") for t in tables for row in t.get("rows", []) for cell in row)
    if report.get("needs_review"):
        return "needs review"
    return "passed after review" if touched else "passed"


def _summary_sheet(sheet, document: Mapping[str, Any], report: Mapping[str, Any], status: str, listing: list) -> None:
    context = report.get("context") or {}
    period = ""
    if context.get("period_start") or context.get("period_end"):
        period = f"{context.get('period_start') or '?'} – {context.get('period_end') or '?'}"
    facts: list[tuple[str, Any]] = [
        ("name", document.get("name")),
        ("pages", _page_count(document.get("pages"))),
        ("priority", document.get("priority")),
        ("source", document.get("source_uri") or document.get("s3_uri") or document.get("source")),
        ("processed at", _processed_at(document) if document.get("processed_at") else None),
        ("statement period", period),
        ("account number", context.get("account_number")),
        ("review status", status),
        ("flags", report.get("flag_count", 0)),
        ("open flags", report.get("open_flag_count", 0)),
        ("confidence threshold", report.get("confidence_threshold")),
    ]
    review = report.get("review") or {}
    if review:
        facts += [
            ("reviewer", review.get("reviewer")),
            ("corrections", review.get("corrections")),
            ("review submitted", review.get("submitted")),
        ]
    known = {"name", "pages", "priority", "source_uri", "s3_uri", "source", "processed_at", "currency_symbol"}
    facts += [(key, document[key]) for key in sorted(document) if key not in known and _scalar(document[key])]

    _put(sheet, 1, 1, "document").font = BOLD
    row = 2
    for label, value in facts:
        _put(sheet, row, 1, label)
        cell = _put(sheet, row, 2, "" if value is None else value)
        if isinstance(value, datetime):
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
        if label == "review status":
            cell.font = BOLD
            cell.fill = FLAG_FILL if status == "needs review" else CORRECTED_FILL
        row += 1

    row += 1
    for c, title in enumerate(("rule", "description", "passed", "failed"), start=1):
        _put(sheet, row, c, title).font = BOLD
    for rule in report.get("rules", []):
        row += 1
        _put(sheet, row, 1, rule["rule"])
        _put(sheet, row, 2, rule.get("description", ""))
        _put(sheet, row, 3, rule.get("passed", 0))
        failed = _put(sheet, row, 4, rule.get("failed", 0))
        if rule.get("failed"):
            failed.fill = FLAG_FILL

    row += 2
    for c, title in enumerate(("sheet", "table type", "page", "rows", "columns", "flags"), start=1):
        _put(sheet, row, c, title).font = BOLD
    for entry in listing:
        row += 1
        for c, value in enumerate(entry, start=1):
            _put(sheet, row, c, value)

    if report.get("document_flags"):
        row += 2
        for c, title in enumerate(("page", "rule", "reason"), start=1):
            _put(sheet, row, c, title).font = BOLD
        for flag in report["document_flags"]:
            row += 1
            _put(sheet, row, 1, flag.get("page"))
            _put(sheet, row, 2, flag.get("rule"))
            _put(sheet, row, 3, flag.get("reason")).fill = REVIEWED_FILL if flag.get("reviewed") else FLAG_FILL
    _widths(sheet, {1: 22, 2: 60, 3: 12, 4: 10, 5: 10, 6: 8})


def _page_count(pages: Any) -> Any:
    # The pipeline may hand over its list of page images rather than a count.
    return len(pages) if isinstance(pages, list | tuple) else pages


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | Decimal) or value is None


def _stable_zip(data: bytes) -> bytes:
    """The same archive with fixed member timestamps and attributes (openpyxl stamps the current time)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    target_buffer = io.BytesIO()
    with zipfile.ZipFile(target_buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.create_system = 0
            member.external_attr = 0
            target.writestr(member, source.read(info.filename))
    return target_buffer.getvalue()


def build_workbook(document: dict, tables: list[dict], report: dict) -> bytes:
    """The catalog workbook (xlsx bytes) for one document's tables and its :func:`~include.documents.rules.operate` report.

    ``document``: ``{"name", "pages", "priority", "source_uri" (or "source"), "processed_at" (ISO 8601 or
    datetime)}``, optional ``currency_symbol`` (default "$"); other scalar keys are listed on the summary sheet
    too, and so is ``report["review"]`` (``reviewer``, ``corrections``, ``submitted``) when the stage adds it.
    """
    workbook = Workbook()
    summary = workbook.active
    summary.title = "summary"
    moment = _processed_at(document)
    workbook.properties.created = moment
    workbook.properties.modified = moment
    workbook.properties.creator = AUTHOR
    workbook.properties.lastModifiedBy = AUTHOR
    workbook.properties.title = _text(document.get("name") or "")

    results = {t["table_id"]: t for t in report.get("tables", [])}
    context = report.get("context") or {}
    money_format = _money_format(document)
    taken = {"summary"}
    listing = []
    for table in sorted(tables, key=lambda t: (t.get("page", 1), t.get("index", 0))):
        result = results.get(table["table_id"], {})
        table_type = result.get("table_type", "other")
        sheet = workbook.create_sheet(sheet_name(table_type, table.get("page"), taken))
        shown = _table_sheet(sheet, table, result, context, money_format)
        listing.append((sheet.title, table_type, table.get("page"), table.get("n_rows"), table.get("n_cols"), shown))
    _summary_sheet(summary, document, report, _review_status(report, tables), listing)

    buffer = io.BytesIO()
    # ExcelWriter directly: save_workbook() would overwrite the modified time with the clock.
    ExcelWriter(workbook, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True)).save()
    return _stable_zip(buffer.getvalue())
