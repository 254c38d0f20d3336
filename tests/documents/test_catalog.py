"""The Excel catalog: sheets, typed values, highlights and comments, byte-stable output."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import zipfile
from datetime import date, datetime

import openpyxl
import pytest

from include.documents.catalog import CORRECTED_FILL, FLAG_FILL, REVIEWED_FILL, build_workbook, sheet_name
from include.documents.reshape import lines_from_blocks, tables_from_blocks
from include.documents.rules import apply_corrections, operate
from tests import REPO
from tests.documents import FIXTURE_JSON, fixture_blocks, make_table

DOCUMENT = {
    "name": "0001_NationalBank_2Pages.pdf",
    "pages": 2,
    "priority": "high",
    "source_uri": "s3://statements-inbox/2021/0001_NationalBank_2Pages.pdf",
    "processed_at": "2024-05-01T12:30:00Z",
    "document_id": "doc-0001",
}


def corrected_fixture() -> tuple[list[dict], dict]:
    blocks = fixture_blocks()
    tables = tables_from_blocks(blocks)
    page_1, page_2 = tables[1]["table_id"], tables[3]["table_id"]
    tables = apply_corrections(
        tables,
        [
            {"table_id": page_1, "row": 4, "col": 3, "text": "80.00"},
            {"table_id": page_2, "row": 1, "col": 5, "text": "1054.50"},  # confirmed as printed
        ],
    )
    return tables, operate(tables, lines=lines_from_blocks(blocks))


@pytest.fixture(scope="module")
def workbook_bytes() -> bytes:
    tables, report = corrected_fixture()
    return build_workbook(DOCUMENT, tables, report)


@pytest.fixture(scope="module")
def workbook(workbook_bytes):
    return openpyxl.load_workbook(io.BytesIO(workbook_bytes))


def fill(cell) -> str | None:
    return cell.fill.fgColor.rgb if cell.fill.fill_type == "solid" else None


def test_sheets(workbook):
    assert workbook.sheetnames == ["summary", "other p1", "transactions p1", "other p2", "transactions p2"]


def test_summary_sheet(workbook):
    sheet = workbook["summary"]
    facts = {}
    for label, value in sheet.iter_rows(min_row=2, max_col=2, values_only=True):
        if label is None:
            break
        facts[label] = value
    assert facts["name"] == "0001_NationalBank_2Pages.pdf"
    assert facts["pages"] == 2
    assert facts["priority"] == "high"
    assert facts["source"] == "s3://statements-inbox/2021/0001_NationalBank_2Pages.pdf"
    assert facts["processed at"] == datetime(2024, 5, 1, 12, 30)
    assert facts["statement period"] == "2021-01-01 – 2021-02-01"
    assert facts["account number"] == "001-1234-56-78"
    assert facts["review status"] == "needs review"
    assert facts["document_id"] == "doc-0001"

    rows = [r for r in sheet.iter_rows(values_only=True)]
    rules = {
        r[0]: (r[2], r[3]) for r in rows[rows.index(("rule", "description", "passed", "failed", None, None)) + 1 :]
    }
    assert rules["balance"] == (30, 1)
    assert rules["totals"] == (2, 0)
    assert rules["amount"] == (60, 3)  # "80,00" corrected to "80.00"
    listing = rows.index(("sheet", "table type", "page", "rows", "columns", "flags"))
    assert rows[listing + 2][:5] == ("transactions p1", "transactions", 1, 22, 6)


def test_headers_and_typed_values(workbook):
    sheet = workbook["transactions p1"]
    assert [c.value for c in sheet[1]] == ["date", "description", "reference", "withdrawals", "deposits", "balance"]
    assert sheet["F1"].comment.text.startswith("printed header: 'Baiance'")
    assert sheet.freeze_panes == "A2"
    first = sheet[2]  # the "Previous balance" row: the header row is not repeated as data
    assert first[0].value == datetime(2021, 1, 1) and first[0].is_date
    assert first[0].number_format == "yyyy-mm-dd"
    assert first[1].value == "Previous balance"
    assert first[5].value == 652.19 and "#,##0.00" in first[5].number_format
    assert first[3].value is None
    assert sheet["C4"].value == "2133" and sheet["C4"].data_type == "s"  # references stay text
    assert sheet.max_row == 22
    assert workbook["transactions p2"].max_row == 12  # the ten empty ruled rows are left out


def test_flags_and_corrections_are_highlighted(workbook):
    sheet = workbook["transactions p1"]
    corrected = sheet["D5"]  # table row 4, col 3
    assert corrected.value == 80.0
    assert fill(corrected) == CORRECTED_FILL.fgColor.rgb
    assert corrected.comment.text == "corrected by reviewer; was '80,00'"

    comma = sheet["F8"]  # "1303,92" (table row 7): still flagged, typed with the sensible reading
    assert comma.value == 1303.92
    assert fill(comma) == FLAG_FILL.fgColor.rgb
    assert "amount: '1303,92' has a comma where the decimal point belongs; read as 1,303.92" in comma.comment.text
    assert "confidence: 60.4 < 90" in comma.comment.text
    assert fill(sheet["F1"]) == FLAG_FILL.fgColor.rgb  # the header "Baiance" is low-confidence

    page_2 = workbook["transactions p2"]
    balance, withdrawal = page_2["F2"], page_2["D2"]
    assert fill(withdrawal) == FLAG_FILL.fgColor.rgb
    assert fill(balance) == REVIEWED_FILL.fgColor.rgb  # a reviewer confirmed the printed 1054.50
    assert "balance: 1,054.50 - 120.00 + 0.00 = 934.50 ≠ 1,054.50 (seen by a reviewer)" in balance.comment.text
    assert "reference: '32.809' is not a number" in page_2["C7"].comment.text
    assert page_2["B2"].comment is None and fill(page_2["B2"]) is None


def test_properties_and_zip_are_deterministic(workbook_bytes, workbook):
    assert workbook.properties.created == workbook.properties.modified == datetime(2024, 5, 1, 12, 30)
    with zipfile.ZipFile(io.BytesIO(workbook_bytes)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    tables, report = corrected_fixture()
    assert build_workbook(DOCUMENT, tables, report) == workbook_bytes
    later = build_workbook({**DOCUMENT, "processed_at": "2024-05-02T00:00:00Z"}, tables, report)
    assert later != workbook_bytes


def test_bytes_are_stable_across_processes(workbook_bytes):
    if not FIXTURE_JSON.is_file():
        pytest.skip("real Textract fixture not found")
    script = (
        "import hashlib, sys\n"
        "from tests.documents.test_catalog import DOCUMENT, corrected_fixture\n"
        "from include.documents.catalog import build_workbook\n"
        "tables, report = corrected_fixture()\n"
        "sys.stdout.write(hashlib.sha256(build_workbook(DOCUMENT, tables, report)).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert out.stdout == hashlib.sha256(workbook_bytes).hexdigest()


def test_sheet_names_are_excel_safe_and_unique():
    taken = {"summary"}
    assert sheet_name("transactions", 1, taken) == "transactions p1"
    assert sheet_name("transactions", 1, taken) == "transactions p1 (2)"
    assert sheet_name("TRANSACTIONS", 1, taken) == "TRANSACTIONS p1 (3)"
    long = sheet_name("a/very:long*table?type[name]that goes on", 12, taken)
    assert len(long) <= 31 and not set("[]:*?/\\") & set(long)
    again = sheet_name("a/very:long*table?type[name]that goes on", 12, taken)
    assert len(again) <= 31 and again != long


def test_text_is_never_a_formula_and_other_tables_stay_text():
    table = make_table([['=HYPERLINK("http://x")', "2021-01-01"], ["+1", "12.00"]])
    report = operate([table])
    data = build_workbook({"name": "x"}, [table], report)
    sheet = openpyxl.load_workbook(io.BytesIO(data))["other p1"]
    assert [c.value for c in sheet[1]] == ["column_0", "column_1"]
    assert sheet["A2"].value == '=HYPERLINK("http://x")' and sheet["A2"].data_type == "s"
    assert sheet["B2"].value == "2021-01-01" and sheet["B3"].value == "12.00"


def test_summary_without_review_needed():
    table = make_table(
        [
            ["Date", "Description", "Withdrawals", "Deposits", "Balance"],
            ["Jan 01", "Opening balance", "", "", "100.00"],
            ["Jan 02", "Salary", "", "50.00", "150.00"],
        ]
    )
    report = operate([table], context={"year": 2021})
    assert report["needs_review"] is False
    sheet = openpyxl.load_workbook(io.BytesIO(build_workbook({"name": "s"}, [table], report)))
    facts = dict(sheet["summary"].iter_rows(min_row=2, max_row=12, max_col=2, values_only=True))
    assert facts["review status"] == "passed"
    assert sheet["transactions p1"]["A3"].value.date() == date(2021, 1, 2)  # year from the context


def test_pipeline_facts_and_review_details():
    table = make_table([["Opening balance", "1.00"], ["Closing balance", "1.00"]])
    report = operate([table]) | {"review": {"reviewer": "jill", "corrections": 2, "submitted": "2024-05-01T13:00Z"}}
    document = {"name": "n.pdf", "source": "s3://b/n.pdf", "pages": [{"page": 1}, {"page": 2}], "processed_at": ""}
    sheet = openpyxl.load_workbook(io.BytesIO(build_workbook(document, [table], report)))["summary"]
    facts = dict(sheet.iter_rows(min_row=2, max_row=15, max_col=2, values_only=True))
    assert facts["source"] == "s3://b/n.pdf"
    assert facts["pages"] == 2
    assert facts["reviewer"] == "jill" and facts["corrections"] == 2
