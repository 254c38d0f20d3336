"""Textract Blocks -> tables, lines and key-values, on the real bank-statement response and on hand-made blocks."""

from __future__ import annotations

import copy
import json

import pytest

from include.documents.reshape import key_values_from_blocks, lines_from_blocks, merge_followers, tables_from_blocks
from tests.documents import fixture_blocks, texts

# Page 1's transactions table exactly as the real Textract response reads it, OCR slips included: "Baiance",
# "80,00" / "1303,92" / "944,13" (comma for the decimal point), "RÉTAILER", "Prè-Authorized M", "Dining is CAFE".
PAGE_1 = [
    ["Date", "Description", "Ref.", "Withdrawals", "Deposits", "Baiance"],
    ["2021-01-01", "Previous balance", "", "", "", "652.19"],
    ["2021-01-02", "Direct Deposit - EMPLOYER", "", "", "944.13", "1596.32"],
    ["2021-01-02", "Dining - PIZZA", "2133", "29.14", "", "1567.18"],
    ["2021-01-02", "ATM Withdrawal - BODEGA", "15903", "80,00", "", "1487.18"],
    ["2021-01-07", "Dry Clean Service", "41938", "36.15", "", "1451.03"],
    ["2021-01-09", "Online Shopping - RÉTAILER", "13394", "32.11", "", "1418.92"],
    ["2021-01-09", "Check No. 1234", "23835", "115.00", "", "1303,92"],
    ["2021-01-09", "Online Shopping - RETAILER", "97806", "11.30", "", "1292.62"],
    ["2021-01-12", "Web Payment - VISA", "95490", "249.98", "", "1042.64"],
    ["2021-01-12", "Web Payment - GAS UTILITIES", "41907", "89.12", "", "953.52"],
    ["2021-01-14", "Dining - BREAKFAST", "28854", "13.15", "", "940.37"],
    ["2021-01-15", "Mortgage Payment", "86013", "692.95", "", "247.42"],
    ["2021-01-16", "Prè-Authorized M INSURANCE", "55746", "129.00", "", "118.42"],
    ["2021-01-16", "Direct Deposit - EMPLOYER", "", "", "944,13", "1062.55"],
    ["2021-01-18", "Check Deposit", "", "", "250.00", "1312.55"],
    ["2021-01-18", "Funds Transfer - SAVINGS", "81849", "150.00", "", "1162.55"],
    ["2021-01-18", "Dining is CAFE", "67238", "12.19", "", "1150.36"],
    ["2021-01-19", "Dining - CAFE", "94255", "10.15", "", "1140.21"],
    ["2021-01-19", "Transportation - TAXI", "9968", "34.10", "", "1106.11"],
    ["2021-01-19", "Online Services - STREAMING", "83777", "4.99", "", "1101.12"],
    ["2021-01-19", "Dining - DELIVERY", "89356", "46.62", "", "1054.50"],
]

# Page 2's table: eleven transactions ("120,00" and the reference "32.809" misread), then ten empty ruled rows.
PAGE_2 = [
    ["Date", "Description", "Ref.", "Withdrawals", "Deposits", "Balance"],
    ["2021-01-19", "ATM Withdrawal - BODEGA", "10000", "120.00", "", "1054.50"],
    ["2021-01-22", "Online Services - REFUND", "", "", "4.99", "1059.49"],
    ["2021-01-23", "Dining - PIZZA", "56079", "19.20", "", "1040.29"],
    ["2021-01-24", "ATM Withdrawal - BODEGA", "97730", "120,00", "", "920.29"],
    ["2021-01-25", "Entertainment - SHOW", "82187", "85.50", "", "834.79"],
    ["2021-01-26", "Online Shopping - RÉTAILER", "32.809", "56.00", "", "778.79"],
    ["2021-01-27", "Online Shopping - RETAILER", "14388", "12.00", "", "766.79"],
    ["2021-01-28", "Online Shopping - RETAILER", "50407", "45.54", "", "721.25"],
    ["2021-01-29", "Web Payment - MASTERCARD", "94884", "239.87", "", "481.38"],
    ["2021-01-30", "Web Payment - ELECTRIC", "82694", "68.98", "", "412.40"],
    ["2021-01-31", "Dining - BREAKFAST", "95223", "24.41", "", "387.99"],
] + [[""] * 6] * 10

PERIOD_BOX = [
    ["Statement", "Period", "Account Number"],
    ["Starting", "2021-01-01", "001-1234-56-78"],
    ["Ending", "2021-02-01", ""],
]


def test_page_1_transactions_table_reads_exactly():
    tables = tables_from_blocks(fixture_blocks())
    table = next(t for t in tables if t["page"] == 1 and t["n_rows"] > 3)
    assert table["table_id"] == "1379544a-abfd-4896-b6c5-a591a998a08c"
    assert (table["page"], table["index"], table["n_rows"], table["n_cols"]) == (1, 1, 22, 6)
    assert table["bbox"] == pytest.approx(
        {"Left": 0.120135, "Top": 0.256126, "Width": 0.800930, "Height": 0.418658}, abs=1e-5
    )
    for expected, row in zip(PAGE_1, texts(table), strict=True):
        assert row == expected


def test_tables_come_page_by_page_in_reading_order():
    tables = tables_from_blocks(fixture_blocks())
    # The statement-period box sits above the transactions on each page, so it is read first.
    assert [(t["page"], t["index"], t["n_rows"], t["n_cols"]) for t in tables] == [
        (1, 0, 3, 3),
        (1, 1, 22, 6),
        (2, 0, 3, 3),
        (2, 1, 22, 6),
    ]
    assert texts(tables[0]) == PERIOD_BOX
    assert texts(tables[2]) == PERIOD_BOX
    assert texts(tables[3]) == PAGE_2


def test_cells_carry_position_confidence_and_block_ids():
    blocks = fixture_blocks()
    by_id = {b["Id"]: b for b in blocks}
    table = tables_from_blocks(blocks)[1]
    for r, row in enumerate(table["rows"]):
        assert len(row) == table["n_cols"]
        for c, cell in enumerate(row):
            assert set(cell) == {
                "row",
                "col",
                "row_span",
                "col_span",
                "text",
                "confidence",
                "bbox",
                "header",
                "merged",
                "block_id",
            }
            assert (cell["row"], cell["col"], cell["row_span"], cell["col_span"]) == (r, c, 1, 1)
            block = by_id[cell["block_id"]]
            assert (block["BlockType"], block["RowIndex"], block["ColumnIndex"]) == ("CELL", r + 1, c + 1)
            assert cell["header"] is False and cell["merged"] is False  # this (older) model marks no headers
            assert 0 <= cell["confidence"] <= block["Confidence"]
    # The cell is 100% sure of its box but the word "Baiance" only 57.7%: the cell takes the minimum.
    assert table["rows"][0][5]["confidence"] == pytest.approx(57.72, abs=0.01)
    assert table["rows"][13][1]["confidence"] == pytest.approx(41.2, abs=0.1)  # the "M" of "Prè-Authorized M"


def test_blocks_from_several_response_pages_in_any_order():
    blocks = fixture_blocks()
    original = copy.deepcopy(blocks)
    expected = tables_from_blocks(blocks)
    assert blocks == original  # consumed unchanged
    # GetDocumentAnalysis pages concatenated out of order, one page fetched twice.
    shuffled = blocks[400:] + blocks[:400] + blocks[100:200]
    assert tables_from_blocks(shuffled) == expected
    assert json.loads(json.dumps(expected)) == expected  # plain JSON all the way down


def test_lines_for_context():
    lines = lines_from_blocks(fixture_blocks())
    assert len(lines) == 195
    assert lines[0]["page"] == 1 and lines[0]["text"] == "National Bank"
    assert set(lines[0]) == {"page", "text", "confidence", "bbox", "block_id"}
    assert [ln["text"] for ln in lines[6:8]] == ["Statement Period", "Account Number"]
    assert [ln["page"] for ln in lines] == sorted(ln["page"] for ln in lines)
    total = next(ln for ln in lines if ln["text"] == "TOTAL")
    assert total["page"] == 2 and total["bbox"]["Top"] == pytest.approx(0.697, abs=0.001)


def test_no_forms_no_key_values():
    assert key_values_from_blocks(fixture_blocks()) == []


# --- hand-made blocks: what the fixture's model does not produce ---------------------------------------------------


def _box(left: float, top: float, width: float = 0.1, height: float = 0.02) -> dict:
    return {"BoundingBox": {"Left": left, "Top": top, "Width": width, "Height": height}, "Polygon": []}


def _word(id_: str, text: str, confidence: float = 99.0) -> dict:
    return {"BlockType": "WORD", "Id": id_, "Text": text, "Confidence": confidence, "Page": 1, "Geometry": _box(0, 0)}


def _cell(id_: str, row: int, col: int, children: list[str], *, header: bool = False) -> dict:
    block = {
        "BlockType": "CELL",
        "Id": id_,
        "RowIndex": row,
        "ColumnIndex": col,
        "RowSpan": 1,
        "ColumnSpan": 1,
        "Confidence": 95.0,
        "Page": 1,
        "Geometry": _box(0.1 * col, 0.1 * row),
        "Relationships": [{"Type": "CHILD", "Ids": children}] if children else [],
    }
    if header:
        block["EntityTypes"] = ["COLUMN_HEADER"]
    return block


def _merged_table() -> list[dict]:
    """A 3x3 table: "Amount" merged over columns 2-3 of the header, a checkbox, a position Textract left out."""
    blocks = [
        _word("w-date", "Date"),
        _word("w-amount", "Amount", 80.0),
        _word("w-d1", "2021-01-05"),
        _word("w-out", "12.00"),
        _word("w-in", "3.50"),
        _word("w-d2", "2021-01-06"),
        {"BlockType": "SELECTION_ELEMENT", "Id": "sel", "SelectionStatus": "SELECTED", "Confidence": 70.0, "Page": 1},
        _cell("c11", 1, 1, ["w-date"], header=True),
        _cell("c12", 1, 2, ["w-amount"], header=True),
        _cell("c13", 1, 3, [], header=True),
        _cell("c21", 2, 1, ["w-d1"]),
        _cell("c22", 2, 2, ["w-out"]),
        _cell("c23", 2, 3, ["w-in"]),
        _cell("c31", 3, 1, ["w-d2"]),
        _cell("c32", 3, 2, ["sel"]),
        # (3, 3) missing on purpose
        {
            "BlockType": "MERGED_CELL",
            "Id": "m1",
            "RowIndex": 1,
            "ColumnIndex": 2,
            "RowSpan": 1,
            "ColumnSpan": 2,
            "Confidence": 90.0,
            "Page": 1,
            "EntityTypes": ["COLUMN_HEADER"],
            "Geometry": _box(0.2, 0.1, 0.2),
            "Relationships": [{"Type": "CHILD", "Ids": ["c12", "c13"]}],
        },
    ]
    table = {
        "BlockType": "TABLE",
        "Id": "tbl",
        "Confidence": 99.0,
        "Page": 1,
        "Geometry": _box(0.1, 0.1, 0.3, 0.3),
        "Relationships": [
            {"Type": "CHILD", "Ids": ["c11", "c12", "c13", "c21", "c22", "c23", "c31", "c32"]},
            {"Type": "MERGED_CELL", "Ids": ["m1"]},
        ],
    }
    return [table, *blocks]


def test_merged_cells_repeat_their_text_over_every_position():
    (table,) = tables_from_blocks(_merged_table())
    assert (table["n_rows"], table["n_cols"]) == (3, 3)
    assert texts(table) == [
        ["Date", "Amount", "Amount"],
        ["2021-01-05", "12.00", "3.50"],
        ["2021-01-06", "[X]", ""],
    ]
    first, second = table["rows"][0][1], table["rows"][0][2]
    for position, cell in ((1, first), (2, second)):
        assert cell["col"] == position
        assert (cell["merged"], cell["row_span"], cell["col_span"], cell["block_id"]) == (True, 1, 2, "m1")
        assert cell["header"] is True
        assert cell["confidence"] == 80.0  # min of the merge (90), its cells (95) and the word "Amount" (80)
    assert table["rows"][0][0]["header"] is True and table["rows"][0][0]["merged"] is False
    assert table["rows"][1][1]["header"] is False
    assert table["rows"][2][1]["confidence"] == 70.0  # the checkbox's own confidence
    assert table["rows"][2][2] == {
        "row": 2,
        "col": 2,
        "row_span": 1,
        "col_span": 1,
        "text": "",
        "confidence": None,
        "bbox": None,
        "header": False,
        "merged": False,
        "block_id": None,
    }


def test_unselected_checkbox_and_null_keys():
    blocks = _merged_table()
    next(b for b in blocks if b["Id"] == "sel")["SelectionStatus"] = "NOT_SELECTED"
    next(b for b in blocks if b["Id"] == "c21")["EntityTypes"] = None  # real responses carry JSON nulls
    (table,) = tables_from_blocks(blocks)
    assert table["rows"][2][1]["text"] == "[ ]"


def test_key_values_from_forms_blocks():
    blocks = [
        _word("k1", "Account"),
        _word("k2", "Number:"),
        _word("v1", "001-1234-56-78", 88.0),
        {
            "BlockType": "KEY_VALUE_SET",
            "Id": "key",
            "EntityTypes": ["KEY"],
            "Confidence": 93.0,
            "Page": 1,
            "Geometry": _box(0.5, 0.2),
            "Relationships": [{"Type": "VALUE", "Ids": ["value"]}, {"Type": "CHILD", "Ids": ["k1", "k2"]}],
        },
        {
            "BlockType": "KEY_VALUE_SET",
            "Id": "value",
            "EntityTypes": ["VALUE"],
            "Confidence": 91.0,
            "Page": 1,
            "Geometry": _box(0.7, 0.2),
            "Relationships": [{"Type": "CHILD", "Ids": ["v1"]}],
        },
    ]
    assert key_values_from_blocks(blocks) == [
        {
            "page": 1,
            "key": "Account Number:",
            "value": "001-1234-56-78",
            "confidence": 88.0,
            "key_bbox": {"Left": 0.5, "Top": 0.2, "Width": 0.1, "Height": 0.02},
            "value_bbox": {"Left": 0.7, "Top": 0.2, "Width": 0.1, "Height": 0.02},
        }
    ]


def test_merge_followers_are_the_non_top_left_positions():
    (table,) = tables_from_blocks(_merged_table())
    assert merge_followers(table) == {(0, 2)}
    assert merge_followers(tables_from_blocks(fixture_blocks())[1]) == set()
