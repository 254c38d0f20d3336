"""Shared helpers for the document-digitization tests: the real Textract fixture and small hand-made tables."""

from __future__ import annotations

import json
from functools import cache

import pytest

from tests import REPO

FIXTURE_DIR = REPO / "tests" / "fixtures" / "textract-bank-statement"
FIXTURE_JSON = FIXTURE_DIR / "0001_NationalBank_2Pages_TextractOutput_1.json"


@cache
def _load() -> str:
    return FIXTURE_JSON.read_text(encoding="utf-8")


def fixture_blocks() -> list[dict]:
    """A fresh copy of the real Textract response's Blocks; skips the test when the fixture is absent."""
    if not FIXTURE_JSON.is_file():
        pytest.skip(f"real Textract fixture not found at {FIXTURE_JSON}")
    return json.loads(_load())["Blocks"]


def make_table(rows: list[list[str]], *, header_rows: int = 0, table_id: str = "t1", page: int = 1) -> dict:
    """A table in reshape's schema from cell texts (confidence 99, no bboxes)."""
    return {
        "table_id": table_id,
        "page": page,
        "index": 0,
        "n_rows": len(rows),
        "n_cols": len(rows[0]) if rows else 0,
        "bbox": None,
        "rows": [
            [
                {
                    "row": r,
                    "col": c,
                    "row_span": 1,
                    "col_span": 1,
                    "text": text,
                    "confidence": 99.0,
                    "bbox": None,
                    "header": r < header_rows,
                    "merged": False,
                    "block_id": f"{table_id}-{r}-{c}",
                }
                for c, text in enumerate(row)
            ]
            for r, row in enumerate(rows)
        ],
    }


def texts(table: dict) -> list[list[str]]:
    return [[cell["text"] for cell in row] for row in table["rows"]]
