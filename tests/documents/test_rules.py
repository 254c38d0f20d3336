"""Business rules: table types, fuzzy headers, value formats, balance arithmetic across pages, corrections."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal

import pytest

from include.documents.reshape import lines_from_blocks, tables_from_blocks
from include.documents.rules import (
    apply_corrections,
    detect_table_type,
    find_dates,
    match_header,
    normalize_headers,
    operate,
    parse_amount,
    parse_date,
    statement_context,
    validate,
)
from tests.documents import fixture_blocks, make_table

HEADER = ["Date", "Description", "Ref.", "Withdrawals", "Deposits", "Balance"]
CANONICAL = ["date", "description", "reference", "withdrawals", "deposits", "balance"]


def fixture_tables() -> list[dict]:
    return tables_from_blocks(fixture_blocks())


def non_confidence(flags: list[dict]) -> list[tuple[int, int, str]]:
    return [(f["row"], f["col"], f["rule"]) for f in flags if f["rule"] != "confidence"]


def statement(*rows: list[str], header: list[str] = HEADER, **kwargs) -> dict:
    return make_table([header, *rows], **kwargs)


# --- the real statement --------------------------------------------------------------------------------------------


def test_fixture_page_1_is_transactions_and_its_balances_reconcile():
    table = fixture_tables()[1]
    assert detect_table_type(table) == "transactions"
    assert normalize_headers(table) == dict(enumerate(CANONICAL))  # "Baiance" is the balance column

    result = validate(table, context={"period_start": "2021-01-01", "period_end": "2021-02-01"})
    assert result["header_row"] == 0
    assert result["original_headers"] == ["Date", "Description", "Ref.", "Withdrawals", "Deposits", "Baiance"]
    # Every balance reconciles once the three commas Textract read for decimal points are taken as decimal points;
    # those three cells are exactly what gets flagged.
    assert result["checks"]["balance"] == {"passed": 20, "failed": 0}
    assert [(f["row"], f["col"], f["rule"], f["reason"]) for f in result["flags"]] == [
        (4, 3, "amount", "amount: '80,00' has a comma where the decimal point belongs; read as 80.00"),
        (7, 5, "amount", "amount: '1303,92' has a comma where the decimal point belongs; read as 1,303.92"),
        (14, 4, "amount", "amount: '944,13' has a comma where the decimal point belongs; read as 944.13"),
    ]
    assert result["carry"]["balance"] == "1054.50"
    assert result["carry"]["opening_balance"] == "652.19"  # the "Previous balance" row
    assert result["checks"]["one_amount"] == {"passed": 21, "failed": 0}
    assert result["checks"]["date_period"] == {"passed": 20, "failed": 0}


def test_fixture_whole_document():
    blocks = fixture_blocks()
    tables, lines = tables_from_blocks(blocks), lines_from_blocks(blocks)
    report = operate(tables, lines=lines)
    assert json.loads(json.dumps(report)) == report

    assert [t["table_type"] for t in report["tables"]] == ["other", "transactions", "other", "transactions"]
    assert report["context"] == {
        "period_start": "2021-01-01",
        "period_end": "2021-02-01",
        "account_number": "001-1234-56-78",
        "year": 2021,
    }
    assert report["totals"] == {
        "withdrawals": "2527.45",
        "deposits": "2143.25",
        "opening_balance": "652.19",
        "closing_balance": "387.99",
    }
    page_2 = report["tables"][3]
    # The scan itself repeats 1054.50 after page 2's first withdrawal (1054.50 - 120.00 is 934.50): the continuation
    # check against page 1's last balance catches it, and the chain picks up again from the printed figure.
    assert [(f["row"], f["col"], f["rule"], f["reason"]) for f in page_2["flags"] if f["rule"] != "confidence"] == [
        (1, 3, "balance", "balance: 1,054.50 - 120.00 + 0.00 = 934.50 ≠ 1,054.50"),
        (1, 5, "balance", "balance: 1,054.50 - 120.00 + 0.00 = 934.50 ≠ 1,054.50"),
        (4, 3, "amount", "amount: '120,00' has a comma where the decimal point belongs; read as 120.00"),
        (6, 2, "reference", "reference: '32.809' is not a number"),
    ]
    rules = {r["rule"]: (r["passed"], r["failed"]) for r in report["rules"]}
    assert rules["balance"] == (30, 1)
    assert rules["totals"] == (2, 0)  # the "TOTAL 2527.45 2143.25" line under page 2's table
    assert rules["amount"] == (59, 4)
    assert rules["reference"] == (26, 1)
    assert rules["confidence"] == (262, 20)
    assert rules["summary_balance"] == (0, 0)
    assert [r["rule"] for r in report["rules"]][:2] == ["confidence", "date"]
    assert report["needs_review"] is True
    assert report["flag_count"] == report["open_flag_count"] == 20 + 3 + 4
    assert report["document_flags"] == []


def test_an_altered_amount_is_caught_on_its_row_only():
    tables = fixture_tables()
    tables[1]["rows"][8][3]["text"] = "11.80"  # printed 11.30
    report = operate(tables, confidence_threshold=0)
    flags = [f for f in report["tables"][1]["flags"] if f["rule"] == "balance"]
    assert [(f["row"], f["col"]) for f in flags] == [(8, 3), (8, 5)]
    assert flags[0]["reason"] == "balance: 1,303.92 - 11.80 + 0.00 = 1,292.12 ≠ 1,292.62"


def test_an_altered_balance_fails_its_row_and_the_next():
    tables = fixture_tables()
    tables[1]["rows"][10][5]["text"] = "935.52"  # printed 953.52
    report = operate(tables, confidence_threshold=0)
    flags = [(f["row"], f["col"]) for f in report["tables"][1]["flags"] if f["rule"] == "balance"]
    assert flags == [(10, 3), (10, 5), (11, 3), (11, 5)]


def test_statement_context_from_lines():
    context = statement_context(lines_from_blocks(fixture_blocks()))
    assert context["period_start"] == "2021-01-01" and context["period_end"] == "2021-02-01"
    assert context["account_number"] == "001-1234-56-78"  # not the phone number above it


# --- table types and headers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Baiance", "balance"),
        ("Balance ($)", "balance"),
        ("Running Balance", "balance"),
        ("Withdrawls", "withdrawals"),
        ("Debits", "withdrawals"),
        ("Money out", "withdrawals"),
        ("Paid out", "withdrawals"),
        ("Checks and Debits", "withdrawals"),
        ("Deposits", "deposits"),
        ("Credits", "deposits"),
        ("Money in", "deposits"),
        ("Paid in", "deposits"),
        ("Cheque No.", "reference"),
        ("Ref", "reference"),
        ("Reference", "reference"),
        ("#", "reference"),
        ("Posting Date", "date"),
        ("Transaction Date", "date"),
        ("Transaction Details", "description"),
        ("Particulars", "description"),
        ("Rate", None),
        ("Amount", None),
        ("Statement", None),
    ],
)
def test_header_fuzzy_matching(text, canonical):
    assert match_header(text) == canonical


@pytest.mark.parametrize(
    "header",
    [
        ["Date", "Details", "Cheque No.", "Debits", "Credits", "Balance"],
        ["Date", "Description", "Money out", "Money in", "Baiance"],
        ["Posting Date", "Transaction", "Paid in", "Paid out", "Balance"],
    ],
)
def test_transaction_layouts(header):
    table = make_table([header, ["2021-01-02"] + [""] * (len(header) - 1)], header_rows=1)
    assert detect_table_type(table) == "transactions"
    names = normalize_headers(table)
    assert names[0] == "date" and names[len(header) - 1] == "balance"
    assert {"withdrawals", "deposits", "description"} <= set(names.values())


def test_unknown_columns_keep_their_index():
    table = make_table([["Date", "Description", "Withdrawals", "Deposits", "Balance", "Category"], [""] * 6])
    assert normalize_headers(table) == {
        0: "date",
        1: "description",
        2: "withdrawals",
        3: "deposits",
        4: "balance",
        5: "column_5",
    }


def test_summary_and_other_tables():
    summary = make_table(
        [
            ["Account summary", ""],
            ["Opening balance", "$652.19"],
            ["Deposits and other credits", "2,143.25"],
            ["Withdrawals and other debits", "2,527.45"],
            ["Closing balance", "$267.99"],
        ]
    )
    assert detect_table_type(summary) == "summary"
    assert normalize_headers(summary) == {0: "label", 1: "amount"}
    assert validate(summary)["checks"]["summary_balance"] == {"passed": 1, "failed": 0}

    summary["rows"][4][1]["text"] = "$387.99"
    flags = validate(summary)["flags"]
    assert [(f["row"], f["col"]) for f in flags] == [(1, 1), (2, 1), (3, 1), (4, 1)]
    assert flags[0]["reason"] == "summary_balance: 652.19 + 2,143.25 - 2,527.45 = 267.99 ≠ 387.99"

    period = make_table([["Statement", "Period"], ["Starting", "2021-01-01"], ["Ending", "2021-02-01"]])
    assert detect_table_type(period) == "other"
    assert normalize_headers(period) == {0: "column_0", 1: "column_1"}


def test_summary_cross_checked_against_the_transactions():
    transactions = statement(
        ["01/01/2021", "Opening balance", "", "", "", "100.00"],
        ["01/02/2021", "Payroll", "", "", "50.00", "150.00"],
        ["01/03/2021", "Rent", "", "30.00", "", "120.00"],
        table_id="tx",
    )
    summary = make_table(
        [
            ["Beginning balance", "100.00"],
            ["Total deposits", "50.00"],
            ["Total withdrawals", "40.00"],
            ["Ending balance", "110.00"],
        ],
        table_id="sum",
    )
    report = operate([summary, transactions])
    flags = {(f["row"], f["col"], f["rule"]) for f in report["tables"][0]["flags"]}
    assert flags == {(2, 1, "summary_totals"), (3, 1, "summary_totals")}
    assert "summary withdrawals 40.00 ≠ 30.00 from the transactions" in report["tables"][0]["flags"][0]["reason"]
    assert operate([summary, transactions], whole_document=False)["tables"][0]["flags"] == []


def test_headerless_continuation_takes_the_previous_pages_headers():
    tables = fixture_tables()
    page_2 = tables[3]
    page_2["rows"] = page_2["rows"][1:]  # as if page 2 had been printed without a header
    page_2["n_rows"] -= 1
    report = operate(tables, confidence_threshold=0)
    result = report["tables"][3]
    assert result["table_type"] == "transactions"
    assert result["headers"] == CANONICAL and result["header_row"] is None
    assert [(f["row"], f["rule"]) for f in result["flags"] if f["rule"] == "balance"] == [
        (0, "balance"),
        (0, "balance"),
    ]


def test_headerless_table_tells_withdrawals_from_deposits_by_the_balance():
    # Credits printed before debits, and no header at all.
    table = make_table(
        [
            ["01/04/2021", "Salary", "1,000.00", "", "1,500.00"],
            ["01/05/2021", "Groceries", "", "25.50", "1,474.50"],
            ["01/06/2021", "Fuel", "", "40.00", "1,434.50"],
            ["01/07/2021", "Refund", "5.00", "", "1,439.50"],
        ]
    )
    assert detect_table_type(table) == "transactions"
    assert normalize_headers(table) == {0: "date", 1: "description", 2: "deposits", 3: "withdrawals", 4: "balance"}
    assert validate(table)["flags"] == []


# --- values --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,234.56", "1234.56"),
        ("$1,234.56", "1234.56"),
        ("(12.00)", "-12.00"),
        ("12.00-", "-12.00"),
        ("-$5.00", "-5.00"),
        ("12.00 CR", "12.00"),
        ("12.00DR", "-12.00"),
        ("1,000.00 Dr", "-1000.00"),
        ("€ 9.99", "9.99"),
        ("+3.00", "3.00"),
    ],
)
def test_amounts_parse(text, value):
    assert parse_amount(text) == (Decimal(value), None)


@pytest.mark.parametrize(
    ("text", "value", "issue"),
    [
        ("80,00", "80.00", "'80,00' has a comma where the decimal point belongs; read as 80.00"),
        ("1.234,56", "1234.56", "'1.234,56' uses a decimal comma; read as 1,234.56"),
        ("12", "12", "'12' has no cents; read as 12.00"),
        ("12.5", "12.5", "'12.5' does not have two decimals; read as 12.50"),
        ("1 234.56", "1234.56", "'1 234.56' has a stray space; read as 1,234.56"),
        ("12,34,567.00", "1234567.00", "'12,34,567.00' has misplaced thousands separators; read as 1,234,567.00"),
        ("1O5.00", None, "'1O5.00' is not an amount"),
    ],
)
def test_amount_slips_are_read_and_flagged(text, value, issue):
    assert parse_amount(text) == (None if value is None else Decimal(value), issue)


@pytest.mark.parametrize("text", ["", "  ", "-", "—", "nil"])
def test_empty_amounts(text):
    assert parse_amount(text) == (None, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-01-05", date(2021, 1, 5)),
        ("01/05/2021", date(2021, 1, 5)),
        ("1/5/21", date(2021, 1, 5)),
        ("25/01/2021", date(2021, 1, 25)),
        ("Jan 5, 2021", date(2021, 1, 5)),
        ("5 January 2021", date(2021, 1, 5)),
        ("05-Jan-21", date(2021, 1, 5)),
        ("Jan 05", date(2021, 1, 5)),
        ("05 Jan", date(2021, 1, 5)),
        ("Dec 28", date(2020, 12, 28)),  # a December line on a Dec-Jan statement
        ("Sept 3", date(2020, 9, 3)),
        ("2021-02-30", None),
        ("Janitor 5", None),
        ("Previous balance", None),
    ],
)
def test_dates_parse(text, expected):
    assert parse_date(text, {"period_start": "2020-12-15", "period_end": "2021-01-14"}) == expected


def test_a_yearless_date_needs_context():
    assert parse_date("Jan 05") is None
    assert parse_date("Jan 05", {"year": 2022}) == date(2022, 1, 5)
    assert parse_date("05/01/2021", {"day_first": True}) == date(2021, 1, 5)
    assert find_dates("Statement period: Jan 1, 2021 to Jan 31, 2021") == [date(2021, 1, 1), date(2021, 1, 31)]


# --- row rules -----------------------------------------------------------------------------------------------------


def test_row_rules_flag_each_failing_cell_with_its_reason():
    table = statement(
        ["Dec 31", "Balance forward", "", "", "", "1,000.00"],
        ["Jan 02", "Coffee", "#1001", "4.50", "", "995.50"],
        ["Jan 03", "Both", "", "10.00", "10.00", "995.50"],
        ["Jan 01", "Neither", "A12", "", "", "995.50"],
        ["Jan 40", "Bad date", "", "1.00", "", "994.50"],
        ["Feb 20", "Late", "", "abc", "", "994.50"],
        ["", "Same day, balance once a day", "", "0.50", "", ""],
        ["Jan 09", "Shop", "", "2.00", "", "992.00"],
        ["", "TOTAL", "", "18.00", "10.00", ""],
        header=HEADER,
    )
    result = validate(table, context={"period_start": "2020-12-10", "period_end": "2021-01-09"})
    got = [(f["row"], f["col"], f["rule"]) for f in result["flags"]]
    assert got == [
        (3, 3, "one_amount"),
        (3, 4, "one_amount"),
        (4, 0, "date_order"),
        (4, 2, "reference"),
        (4, 3, "one_amount"),
        (4, 4, "one_amount"),
        (5, 0, "date"),
        (6, 0, "date_period"),
        (6, 3, "amount"),
    ]
    reasons = {(f["row"], f["col"], f["rule"]): f["reason"] for f in result["flags"]}
    assert reasons[(3, 3, "one_amount")] == "one_amount: both a withdrawal and a deposit on one row"
    assert reasons[(4, 0, "date_order")] == "date_order: 2021-01-01 is before the previous row's 2021-01-03"
    assert reasons[(5, 0, "date")] == "date: 'Jan 40' is not a date"
    assert reasons[(6, 0, "date_period")] == (
        "date_period: 2021-02-20 is outside the statement period 2020-12-10 – 2021-01-09"
    )
    assert reasons[(6, 3, "amount")] == "amount: 'abc' is not an amount"
    # Both "Both" and the blank balance row still add up; the TOTAL row matches the sums (4.50 + 10 + 1 + .5 + 2).
    assert result["checks"]["balance"] == {"passed": 5, "failed": 0}
    assert result["checks"]["totals"] == {"passed": 2, "failed": 0}


def test_balance_row_on_a_continuation_page_must_match():
    first = statement(
        ["2021-01-02", "Opening balance", "", "", "", "100.00"], ["2021-01-03", "X", "", "10.00", "", "90.00"]
    )
    second = statement(
        ["2021-01-03", "Balance brought forward", "", "", "", "95.00"],
        ["2021-01-04", "Y", "", "", "5.00", "100.00"],
        table_id="t2",
        page=2,
    )
    report = operate([first, second])
    flags = report["tables"][1]["flags"]
    assert [(f["row"], f["col"], f["reason"]) for f in flags] == [
        (1, 5, "balance: balance row 95.00 ≠ running balance 90.00")
    ]


def test_balance_row_with_an_amount_is_flagged():
    table = statement(["2021-01-01", "Previous balance", "", "5.00", "", "100.00"])
    assert [(f["row"], f["col"], f["rule"]) for f in validate(table)["flags"]] == [(1, 3, "one_amount")]


def test_overdrawn_balances_and_signed_columns():
    table = statement(
        ["2021-01-01", "Previous balance", "", "", "", "10.00"],
        ["2021-01-02", "Rent", "", "(25.00)", "", "(15.00)"],
        ["2021-01-03", "Pay", "", "", "20.00 CR", "5.00 CR"],
        ["2021-01-04", "Fee", "", "7.50-", "", "2.50 DR"],
    )
    assert validate(table)["flags"] == []


def test_printed_total_line_outside_the_table_is_checked():
    blocks = fixture_blocks()
    total = next(b for b in blocks if b["BlockType"] == "LINE" and b["Text"] == "2527.45")
    total["Text"] = "2572.45"
    report = operate(tables_from_blocks(blocks), lines=lines_from_blocks(blocks))
    assert report["document_flags"] == [
        {
            "page": 2,
            "rule": "totals",
            "reason": "totals: printed withdrawals total 2,572.45 ≠ sum of withdrawals 2,527.45",
            "reviewed": False,
        }
    ]


def test_low_confidence_cells_are_flagged():
    table = statement(["2021-01-01", "Opening balance", "", "", "", "1.00"])
    table["rows"][1][1]["confidence"] = 42.0
    report = operate([table], confidence_threshold=90)
    assert report["tables"][0]["flags"] == [
        {"row": 1, "col": 1, "rule": "confidence", "reason": "confidence: 42.0 < 90", "reviewed": False}
    ]
    assert report["needs_review"] is True
    assert operate([table], confidence_threshold=40)["needs_review"] is False


# --- corrections ---------------------------------------------------------------------------------------------------


def test_corrections_merge_and_operate_reruns_clean():
    tables = fixture_tables()
    before = copy.deepcopy(tables)
    page_1, page_2 = tables[1]["table_id"], tables[3]["table_id"]
    fixed = apply_corrections(
        tables,
        [
            {"table_id": page_1, "row": 4, "col": 3, "text": "80.00"},
            {"table_id": page_1, "row": 7, "col": 5, "text": "1303.92"},
            {"table_id": page_1, "row": 14, "col": 4, "text": "944.13"},
            {"table_id": page_2, "row": 4, "col": 3, "text": "120.00"},
            {"table_id": page_2, "row": 6, "col": 2, "text": "32809"},
            # The reviewer confirms the scan really says 120.00 and 1054.50 (the statement's own slip).
            {"table_id": page_2, "row": 1, "col": 3, "text": "120.00"},
            {"table_id": page_2, "row": 1, "col": 5, "text": "1054.50"},
        ],
    )
    assert tables == before  # the input is left alone
    cell = fixed[1]["rows"][4][3]
    assert (cell["text"], cell["corrected"], cell["original"], cell["reviewed"]) == ("80.00", True, "80,00", True)
    confirmed = fixed[3]["rows"][1][5]
    assert confirmed["reviewed"] is True and "corrected" not in confirmed

    report = operate(fixed, confidence_threshold=0)
    assert non_confidence(report["tables"][1]["flags"]) == []
    assert [(f["row"], f["col"], f["reviewed"]) for f in report["tables"][3]["flags"]] == [(1, 3, True), (1, 5, True)]
    assert report["needs_review"] is False and report["flag_count"] == 2

    again = apply_corrections(fixed, [{"table_id": page_1, "row": 4, "col": 3, "text": "80.01"}])
    assert again[1]["rows"][4][3]["original"] == "80,00"  # the OCR text survives a second correction


def test_reviewed_cells_are_not_flagged_for_confidence():
    tables = fixture_tables()
    fixed = apply_corrections(tables, [{"table_id": tables[1]["table_id"], "row": 0, "col": 5, "text": "Balance"}])
    report = operate(fixed)
    assert (0, 5) not in {(f["row"], f["col"]) for f in report["tables"][1]["flags"]}
    assert report["tables"][1]["original_headers"][5] == "Balance"


def test_header_and_table_type_corrections():
    table = make_table([["When", "What", "Out", "In", "Left"], ["2021-01-02", "x", "1.00", "", "9.00"]], header_rows=1)
    assert detect_table_type(table) == "other"
    corrections = [
        {"table_id": "t1", "table_type": "transactions"},
        {"table_id": "t1", "col": 0, "header": "date"},
        {"table_id": "t1", "col": 1, "header": "description"},
        {"table_id": "t1", "col": 2, "header": "withdrawals"},
        {"table_id": "t1", "col": 3, "header": "deposits"},
        {"table_id": "t1", "col": 4, "header": "balance"},
    ]
    (fixed,) = apply_corrections([table], corrections)
    fixed = json.loads(json.dumps(fixed))  # overrides survive XCom
    assert detect_table_type(fixed) == "transactions"
    assert normalize_headers(fixed) == {0: "date", 1: "description", 2: "withdrawals", 3: "deposits", 4: "balance"}
    (retyped,) = apply_corrections([fixed], [{"table_id": "t1", "table_type": "other"}])
    assert detect_table_type(retyped) == "other"


@pytest.mark.parametrize(
    "correction",
    [
        {"table_id": "nope", "row": 0, "col": 0, "text": "x"},
        {"table_id": "t1", "row": 5, "col": 0, "text": "x"},
        {"table_id": "t1", "table_type": "ledger"},
        {"table_id": "t1", "col": 0, "header": "when"},
    ],
)
def test_bad_corrections_fail_loudly(correction):
    with pytest.raises(ValueError):
        apply_corrections([make_table([["a", "b"]])], [correction])


def test_correcting_a_merged_cell_corrects_every_position():
    table = make_table([["Amount", "Amount"], ["1.00", "2.00"]])
    for cell in table["rows"][0]:
        cell.update(merged=True, col_span=2, block_id="m1")
    (fixed,) = apply_corrections([table], [{"table_id": "t1", "row": 0, "col": 1, "text": "Amounts"}])
    assert [c["text"] for c in fixed["rows"][0]] == ["Amounts", "Amounts"]
    assert all(c["corrected"] for c in fixed["rows"][0])


def test_an_a2i_answer_is_merged_whole():
    tables = fixture_tables()
    page_1 = tables[1]
    answer_tables = []
    for table in tables:
        report_table = operate([table])["tables"][0]
        answer_tables.append(
            {
                "table_id": table["table_id"],
                "table_type": report_table["table_type"],
                "headers": report_table["headers"],
                "rows": [[cell["text"] for cell in row] for row in table["rows"]],
            }
        )
    answer_tables[1]["rows"][4][3] = "80.00"
    answer_tables[1]["headers"][2] = "Cheque No."  # a printed name is mapped to its canonical one
    answer = {
        "tables": answer_tables,
        "corrections": [{"table_id": page_1["table_id"], "row": 4, "col": 3, "old": "80,00", "new": "80.00"}],
        "reviewer": "jill",
    }
    fixed = apply_corrections(tables, answer)
    cell = fixed[1]["rows"][4][3]
    assert (cell["text"], cell["corrected"], cell["original"]) == ("80.00", True, "80,00")
    assert fixed[1]["rows"][7][5]["reviewed"] is True and "corrected" not in fixed[1]["rows"][7][5]
    assert fixed[1]["overrides"]["headers"]["2"] == "reference"

    report = operate(fixed, lines=lines_from_blocks(fixture_blocks()))
    # The reviewer has seen every table: nothing is open, what still fails stays on record as reviewed.
    assert report["needs_review"] is False
    assert {f["rule"] for t in report["tables"] for f in t["flags"]} == {"amount", "balance", "reference"}
    assert all(f["reviewed"] for t in report["tables"] for f in t["flags"])


def test_an_answer_with_only_corrections():
    table = make_table([["Date", "Debits", "Credits", "Balance"], ["2021-01-02", "1.00", "", "9.00"]])
    answer = {
        "corrections": [
            {"table_id": "t1", "row": -1, "col": 1, "old": "withdrawals", "new": "deposits"},
            {"table_id": "t1", "row": 1, "col": 1, "old": "1.00", "new": "1.50"},
        ]
    }
    (fixed,) = apply_corrections([table], answer)
    assert fixed["rows"][1][1]["text"] == "1.50"
    assert normalize_headers(fixed) == {0: "date", 1: "deposits", 2: "column_2", 3: "balance"}
    with pytest.raises(ValueError):
        apply_corrections([table], {"tables": [{"table_id": "t1", "rows": [["x"]]}]})


def _merge(table: dict, row: int, cols: list[int], block_id: str) -> None:
    text = table["rows"][row][cols[0]]["text"]
    for col in cols:
        table["rows"][row][col].update(text=text, merged=True, col_span=len(cols), block_id=block_id)


def test_a_merged_description_is_one_description():
    table = statement(
        ["2021-01-01", "Opening balance", "", "", "", "100.00"],
        ["2021-01-02", "A description long enough to run into the reference column", "", "10.00", "", "90.00"],
    )
    _merge(table, 2, [1, 2], "m-desc")
    assert validate(table)["flags"] == []


def test_two_header_lines_under_a_merged_header():
    for marked in (True, False):
        table = make_table(
            [
                ["Date", "Details", "Amount", "Amount", "Balance"],
                ["", "", "Debit", "Credit", ""],
                ["2021-01-02", "Opening balance", "", "", "100.00"],
                ["2021-01-03", "Shop", "10.00", "", "90.00"],
            ],
            header_rows=2 if marked else 0,
        )
        _merge(table, 0, [2, 3], "m-amount")
        result = validate(table)
        assert result["header_row"] == 1
        assert result["headers"] == ["date", "description", "withdrawals", "deposits", "balance"]
        assert result["original_headers"][2:4] == ["Amount Debit", "Amount Credit"]
        assert result["flags"] == [] and result["checks"]["balance"] == {"passed": 1, "failed": 0}
