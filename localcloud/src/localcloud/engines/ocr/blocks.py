"""Textract ``Block`` dicts for one analysed page, structured as Amazon Textract structures them.

Order and relationships follow real GetDocumentAnalysis output: PAGE (CHILD: its LINEs, TABLEs and, with FORMS,
KEY_VALUE_SETs), then every LINE (CHILD: WORDs), every WORD, then each TABLE (CHILD: its CELLs; MERGED_CELL: its
merged cells) followed by its CELLs (CHILD: the WORDs inside) and MERGED_CELLs (CHILD: the CELLs they cover), then
KEY_VALUE_SET pairs (KEY: VALUE + CHILD words; VALUE: CHILD words). A WORD is the child of one LINE and of at most
one CELL, as in Textract. Geometry is normalised to the page (0-1): the BoundingBox is axis-aligned and the Polygon
keeps the four corners in the page's own (possibly skewed) frame.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from localcloud.engines.ocr.layout import Box, KeyValue, Table
from localcloud.engines.ocr.recognize import Line

# Table structure has no calibrated score; these are the shares of a table's mean word confidence it keeps
# (ruled grids are seldom wrong about their rows, whitespace corridors more often are).
RULED_STRUCTURE, BORDERLESS_STRUCTURE = 0.99, 0.9


def _new_id() -> str:
    return str(uuid.uuid4())


def geometry(quad: np.ndarray, width: int, height: int) -> dict[str, Any]:
    """Textract Geometry from four pixel corners (TL, TR, BR, BL)."""
    points = np.clip(np.asarray(quad, dtype=np.float64) / [width, height], 0.0, 1.0)
    left, top = points.min(axis=0)
    right, bottom = points.max(axis=0)
    return {
        "BoundingBox": {
            "Width": float(right - left),
            "Height": float(bottom - top),
            "Left": float(left),
            "Top": float(top),
        },
        "Polygon": [{"X": float(x), "Y": float(y)} for x, y in points],
    }


def corners(box: Box) -> np.ndarray:
    return np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])


def page_blocks(
    page: int,
    width: int,
    height: int,
    lines: list[Line],
    tables: list[Table],
    pairs: list[KeyValue],
    to_page: Any,
) -> list[dict[str, Any]]:
    """All blocks of one page. Word indices in ``tables``/``pairs`` count the words of ``lines`` in order;
    ``to_page`` maps deskewed pixel corners (layout's frame) back to the page's pixels."""

    def block(kind: str, quad: np.ndarray, confidence: float, **extra: Any) -> dict[str, Any]:
        return {
            "BlockType": kind,
            "Confidence": float(min(max(confidence, 0.0), 100.0)),
            "Geometry": geometry(quad, width, height),
            "Id": _new_id(),
            "Page": page,
            **extra,
        }

    page_block: dict[str, Any] = {
        "BlockType": "PAGE",
        "Geometry": geometry(np.array([[0, 0], [width, 0], [width, height], [0, height]]), width, height),
        "Id": _new_id(),
        "Page": page,
    }
    line_blocks, word_blocks = [], []
    for line in lines:
        words = [
            block("WORD", w.quad, 100 * w.confidence, Text=w.text, TextType="PRINTED") for w in line.words if w.text
        ]
        confidence = float(np.mean([b["Confidence"] for b in words])) if words else 100 * line.confidence
        line_blocks.append(
            block(
                "LINE",
                line.quad,
                confidence,
                Text=" ".join(b["Text"] for b in words),
                Relationships=[{"Type": "CHILD", "Ids": [b["Id"] for b in words]}] if words else None,
            )
        )
        word_blocks.extend(words)

    table_blocks = []
    for table in tables:
        table_blocks.extend(_table_blocks(table, word_blocks, block, to_page))
    pair_blocks = []
    for pair in pairs:
        pair_blocks.extend(_pair_blocks(pair, word_blocks, block, np.array([width, height])))

    children = [b["Id"] for b in line_blocks]
    children += [b["Id"] for b in table_blocks if b["BlockType"] == "TABLE"]
    children += [b["Id"] for b in pair_blocks]
    if children:
        page_block["Relationships"] = [{"Type": "CHILD", "Ids": children}]
    return [page_block, *line_blocks, *word_blocks, *table_blocks, *pair_blocks]


def _table_blocks(table: Table, words: list[dict], block: Any, to_page: Any) -> list[dict[str, Any]]:
    confidences = [words[i]["Confidence"] for cell in table.cells for i in cell.words]
    structure = RULED_STRUCTURE if table.ruled else BORDERLESS_STRUCTURE
    table_confidence = structure * (float(np.mean(confidences)) if confidences else 100.0)
    cells = []
    for cell in table.cells:
        children = [words[i]["Id"] for i in cell.words]
        # A cell is as trustworthy as the structure around it and its least certain word.
        confidence = min([table_confidence, *(words[i]["Confidence"] for i in cell.words)])
        header = cell.row < table.header_rows
        cells.append(
            block(
                "CELL",
                to_page(corners(cell.box)),
                confidence,
                RowIndex=cell.row + 1,
                ColumnIndex=cell.col + 1,
                RowSpan=1,
                ColumnSpan=1,
                EntityTypes=["COLUMN_HEADER"] if header else None,
                Relationships=[{"Type": "CHILD", "Ids": children}] if children else None,
            )
        )
    merged = []
    for merge in table.merges:
        covered = [
            cells[r * table.n_cols + c]
            for r in range(merge.row, merge.row + merge.row_span)
            for c in range(merge.col, merge.col + merge.col_span)
        ]
        merged.append(
            block(
                "MERGED_CELL",
                to_page(corners(merge.box)),
                min(c["Confidence"] for c in covered),
                RowIndex=merge.row + 1,
                ColumnIndex=merge.col + 1,
                RowSpan=merge.row_span,
                ColumnSpan=merge.col_span,
                EntityTypes=["COLUMN_HEADER"] if merge.row < table.header_rows else None,
                Relationships=[{"Type": "CHILD", "Ids": [c["Id"] for c in covered]}],
            )
        )
    relationships = [{"Type": "CHILD", "Ids": [c["Id"] for c in cells]}]
    if merged:
        relationships.append({"Type": "MERGED_CELL", "Ids": [m["Id"] for m in merged]})
    table_block = block(
        "TABLE",
        to_page(corners(table.box)),
        table_confidence,
        EntityTypes=["STRUCTURED_TABLE" if table.ruled else "SEMI_STRUCTURED_TABLE"],
        Relationships=relationships,
    )
    return [table_block, *cells, *merged]


def _pair_blocks(pair: KeyValue, words: list[dict], block: Any, size: np.ndarray) -> list[dict[str, Any]]:
    def extent(ids: list[int]) -> np.ndarray:
        """The pixel box around some words (from their normalised polygons)."""
        points = np.array([[p["X"], p["Y"]] for i in ids for p in words[i]["Geometry"]["Polygon"]]) * size
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])

    key_words = [words[i] for i in pair.key]
    value_words = [words[i] for i in pair.value]
    key_quad = extent(pair.key)
    if value_words:
        value_quad = extent(pair.value)
    else:  # an empty value: Textract still reports one, just past the key
        (x0, y0), (x1, y1) = key_quad[0], key_quad[2]
        value_quad = np.array([[x1, y0], [x1 + (x1 - x0), y0], [x1 + (x1 - x0), y1], [x1, y1]])
    # A pair is as certain as its least certain word, on either side.
    confidence = min(w["Confidence"] for w in key_words + value_words)
    value = block("KEY_VALUE_SET", value_quad, confidence, EntityTypes=["VALUE"])
    if value_words:
        value["Relationships"] = [{"Type": "CHILD", "Ids": [w["Id"] for w in value_words]}]
    key = block(
        "KEY_VALUE_SET",
        key_quad,
        confidence,
        EntityTypes=["KEY"],
        Relationships=[
            {"Type": "VALUE", "Ids": [value["Id"]]},
            {"Type": "CHILD", "Ids": [w["Id"] for w in key_words]},
        ],
    )
    return [key, value]
