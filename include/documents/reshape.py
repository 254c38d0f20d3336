"""Reshape Amazon Textract ``Blocks`` (GetDocumentAnalysis / AnalyzeDocument) into plain tables, lines and key-values.

Input is the ``Blocks`` of every response page of one job, concatenated in any order; blocks are used exactly as
Textract returns them (absent keys and JSON ``null`` are treated alike, a block repeated across concatenated
responses counts once).

Table schema (JSON-friendly)::

    {"table_id": TABLE block Id, "page": 1-based page, "index": 0-based position among the page's tables,
     "n_rows": int, "n_cols": int, "bbox": {"Left", "Top", "Width", "Height"},
     "rows": [[cell, ...] * n_cols] * n_rows}

    cell = {"row": 0-based, "col": 0-based, "row_span": int, "col_span": int, "text": str,
            "confidence": float 0-100 or None, "bbox": {...} or None, "header": bool, "merged": bool,
            "block_id": str or None}

Decisions:

- ``row``/``col`` are 0-based positions into ``rows`` (Textract's RowIndex is ``row + 1``): flags and reviewer
  corrections downstream address cells as ``rows[row][col]`` directly.
- Tables are ordered page by page, then top to bottom, then left to right (their bounding boxes): Textract does not
  promise any order for TABLE blocks, and a statement's period box above the transactions should come first.
- A cell's text is its CHILD words joined by single spaces in Textract's order; a SELECTION_ELEMENT child reads
  ``[X]`` when SELECTED and ``[ ]`` otherwise. Its confidence is the minimum of the cell's and its children's
  confidences, so one poorly read word makes the whole cell reviewable.
- Merged cells (a MERGED_CELL block, or a CELL whose own span exceeds 1x1): every grid position the merge covers
  gets the merge's text (its child cells' texts in row-major order, blanks skipped), ``merged: True``, the merge's
  ``row_span``/``col_span``, bbox and ``block_id`` (the MERGED_CELL Id), and the minimum confidence of the merge
  and everything under it. Repeating the text keeps each column self-describing (a merged header names every
  column under it); a merge's top-left position is the first one in row-major order with that ``block_id``, and
  :func:`merge_followers` lists the others (which the rules and the catalog read as blank below the header).
- ``header`` is True when the cell (or a merge over it) has EntityTypes COLUMN_HEADER. Older Textract models never
  set it; :mod:`include.documents.rules` then finds the header row from its words.
- The grid is always rectangular: ``n_rows``/``n_cols`` cover every cell and merge, and a position Textract left
  without a cell becomes ``{"text": "", "confidence": None, "block_id": None, ...}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SELECTED = "[X]"
NOT_SELECTED = "[ ]"


def _index(blocks: Iterable[dict]) -> dict[str, dict]:
    index: dict[str, dict] = {}
    for block in blocks:
        # Pages of one GetDocumentAnalysis job never share Ids, so a repeat is the same block fetched twice.
        index.setdefault(block["Id"], block)
    return index


def _related(block: dict, index: dict[str, dict], kind: str = "CHILD") -> list[dict]:
    related = []
    for relationship in block.get("Relationships") or []:
        if relationship.get("Type") == kind:
            related.extend(index[i] for i in relationship.get("Ids") or [] if i in index)
    return related


def _bbox(block: dict) -> dict | None:
    box = (block.get("Geometry") or {}).get("BoundingBox")
    if not box:
        return None
    return {key: float(box[key]) for key in ("Left", "Top", "Width", "Height")}


def _entity_types(block: dict) -> list[str]:
    return list(block.get("EntityTypes") or [])


def _min_confidence(values: Iterable[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return min(present) if present else None


def _word_text(block: dict) -> str:
    if block.get("BlockType") == "SELECTION_ELEMENT":
        return SELECTED if block.get("SelectionStatus") == "SELECTED" else NOT_SELECTED
    return block.get("Text") or ""


def _content(block: dict, index: dict[str, dict]) -> tuple[str, float | None]:
    """Text and min confidence of a CELL/LINE/KEY/VALUE block from its WORD and SELECTION_ELEMENT children."""
    children = [c for c in _related(block, index) if c.get("BlockType") in ("WORD", "SELECTION_ELEMENT")]
    text = " ".join(t for t in (_word_text(c) for c in children) if t)
    confidence = _min_confidence([block.get("Confidence"), *(c.get("Confidence") for c in children)])
    return text, confidence


def _reading_key(block: dict) -> tuple[int, float, float]:
    box = _bbox(block) or {"Top": 0.0, "Left": 0.0}
    return (int(block.get("Page") or 1), round(box["Top"], 4), round(box["Left"], 4))


def _span(block: dict) -> tuple[int, int, int, int]:
    return (
        int(block["RowIndex"]) - 1,
        int(block["ColumnIndex"]) - 1,
        int(block.get("RowSpan") or 1),
        int(block.get("ColumnSpan") or 1),
    )


def _empty_cell(row: int, col: int) -> dict:
    return {
        "row": row,
        "col": col,
        "row_span": 1,
        "col_span": 1,
        "text": "",
        "confidence": None,
        "bbox": None,
        "header": False,
        "merged": False,
        "block_id": None,
    }


def _cover(
    grid: list[list[dict]], block: dict, text: str, confidence: float | None, header: bool, merged: bool
) -> None:
    """Write ``block``'s cell into every grid position it spans."""
    row, col, row_span, col_span = _span(block)
    for r in range(row, row + row_span):
        for c in range(col, col + col_span):
            grid[r][c] = {
                "row": r,
                "col": c,
                "row_span": row_span,
                "col_span": col_span,
                "text": text,
                "confidence": confidence,
                "bbox": _bbox(block),
                "header": header,
                "merged": merged,
                "block_id": block["Id"],
            }


def _table(table: dict, index: dict[str, dict], position: int) -> dict:
    cells = [c for c in _related(table, index) if c.get("BlockType") == "CELL" and c.get("RowIndex")]
    merges = [m for m in _related(table, index, "MERGED_CELL") if m.get("RowIndex")]
    spans = [_span(b) for b in cells + merges]
    n_rows = max((r + rs for r, _, rs, _ in spans), default=0)
    n_cols = max((c + cs for _, c, _, cs in spans), default=0)
    grid: list[list[dict]] = [[_empty_cell(r, c) for c in range(n_cols)] for r in range(n_rows)]

    contents: dict[str, tuple[str, float | None]] = {}
    for cell in cells:
        text, confidence = _content(cell, index)
        contents[cell["Id"]] = (text, confidence)
        row_span, col_span = _span(cell)[2:]
        _cover(grid, cell, text, confidence, "COLUMN_HEADER" in _entity_types(cell), row_span > 1 or col_span > 1)

    # Merges are applied after plain cells so they win over the (partial) texts of the cells they cover.
    for merge in merges:
        children = sorted(
            (c for c in _related(merge, index) if c["Id"] in contents),
            key=lambda c: (int(c["RowIndex"]), int(c["ColumnIndex"])),
        )
        text = " ".join(t for t in (contents[c["Id"]][0] for c in children) if t)
        confidence = _min_confidence([merge.get("Confidence"), *(contents[c["Id"]][1] for c in children)])
        header = "COLUMN_HEADER" in _entity_types(merge) or any("COLUMN_HEADER" in _entity_types(c) for c in children)
        _cover(grid, merge, text, confidence, header, True)

    return {
        "table_id": table["Id"],
        "page": int(table.get("Page") or 1),
        "index": position,
        "n_rows": n_rows,
        "n_cols": n_cols,
        "bbox": _bbox(table),
        "rows": grid,
    }


def tables_from_blocks(blocks: list[dict]) -> list[dict]:
    """Every TABLE of the document as a rectangular grid of cells, page by page in reading order."""
    index = _index(blocks)
    tables = sorted((b for b in index.values() if b.get("BlockType") == "TABLE"), key=_reading_key)
    result: list[dict] = []
    per_page: dict[int, int] = {}
    for table in tables:
        page = int(table.get("Page") or 1)
        result.append(_table(table, index, per_page.get(page, 0)))
        per_page[page] = per_page.get(page, 0) + 1
    return result


def merge_followers(table: dict) -> set[tuple[int, int]]:
    """Positions ``(row, col)`` a merge covers other than its top-left one, which repeat the merge's text.

    Rules and the catalog read a merge's value once, at its top-left position.
    """
    seen: set[str] = set()
    followers: set[tuple[int, int]] = set()
    for row in table.get("rows", []):
        for cell in row:
            if not cell.get("merged") or not cell.get("block_id"):
                continue
            if cell["block_id"] in seen:
                followers.add((cell["row"], cell["col"]))
            seen.add(cell["block_id"])
    return followers


def lines_from_blocks(blocks: list[dict]) -> list[dict]:
    """The LINE blocks as ``{"page", "text", "confidence", "bbox", "block_id"}``, pages in order.

    Within a page Textract's own LINE order is kept: it already follows reading order, including across columns,
    which a re-sort by position would break.
    """
    lines = [b for b in _index(blocks).values() if b.get("BlockType") == "LINE"]
    lines.sort(key=lambda b: int(b.get("Page") or 1))  # stable: keeps Textract's order within a page
    return [
        {
            "page": int(b.get("Page") or 1),
            "text": b.get("Text") or "",
            "confidence": _min_confidence([b.get("Confidence")]),
            "bbox": _bbox(b),
            "block_id": b["Id"],
        }
        for b in lines
    ]


def key_values_from_blocks(blocks: list[dict]) -> list[dict]:
    """FORMS key-value pairs as ``{"page", "key", "value", "confidence", "key_bbox", "value_bbox"}``.

    Returns ``[]`` when the job ran without FORMS. A key with several VALUE blocks joins their texts; confidence is
    the minimum over the key, its values and all their words.
    """
    index = _index(blocks)
    keys = [b for b in index.values() if b.get("BlockType") == "KEY_VALUE_SET" and "KEY" in _entity_types(b)]
    keys.sort(key=_reading_key)
    pairs: list[dict[str, Any]] = []
    for key in keys:
        key_text, key_confidence = _content(key, index)
        values = _related(key, index, "VALUE")
        value_contents = [_content(v, index) for v in values]
        pairs.append(
            {
                "page": int(key.get("Page") or 1),
                "key": key_text,
                "value": " ".join(t for t, _ in value_contents if t),
                "confidence": _min_confidence([key_confidence, *(c for _, c in value_contents)]),
                "key_bbox": _bbox(key),
                "value_bbox": _bbox(values[0]) if values else None,
            }
        )
    return pairs
