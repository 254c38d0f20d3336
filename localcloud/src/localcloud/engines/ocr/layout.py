"""Page layout from pixels and OCR boxes: skew, ruling lines, tables (ruled and borderless) and key-value pairs.

Everything here works in the *deskewed* page frame, in pixels, with axis-aligned boxes; thresholds scale with
``h``, the median height of the OCR word boxes (about twice the letters' height), so the same rules hold at any
resolution. Table structure comes from two cues that statements and invoices use:

- ruled tables: stacks of horizontal rules (thin lines, or strong edges of shaded bands) of one common extent give
  the rows, including empty ruled rows; columns come from vertical rules and from the whitespace corridors
  between words of the body rows;
- borderless tables: blocks of text (found by recursive XY-cut) whose body rows share whitespace corridors.

A header row may run across a corridor of the body (a label over two columns); its words then sit in a
MERGED_CELL, as Textract reports such headers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@dataclass
class Cell:
    row: int  # 0-based
    col: int
    box: Box
    words: list[int] = field(default_factory=list)  # indices into the page's words, reading order


@dataclass
class Merge:
    row: int
    col: int
    row_span: int
    col_span: int
    box: Box


@dataclass
class Table:
    box: Box
    n_rows: int
    n_cols: int
    cells: list[Cell]  # row-major, n_rows * n_cols
    merges: list[Merge]
    header_rows: int
    ruled: bool


@dataclass
class KeyValue:
    key: list[int]  # word indices
    value: list[int]


# -- skew ----------------------------------------------------------------------------------------------------------
def skew_angle(quads: list[np.ndarray]) -> float:
    """The page's text skew in radians (positive: lines fall to the right), from the long OCR line boxes."""
    angles, weights = [], []
    for quad in quads:
        top, bottom = quad[1] - quad[0], quad[2] - quad[3]
        width = float(np.hypot(*top))
        height = float(np.hypot(*(quad[3] - quad[0])))
        if width < 4 * max(height, 1.0):
            continue
        angles.append((math.atan2(top[1], top[0]) + math.atan2(bottom[1], bottom[0])) / 2)
        weights.append(width)
    if not angles:
        return 0.0
    order = np.argsort(angles)
    cumulative = np.cumsum(np.asarray(weights)[order])
    median = float(np.asarray(angles)[order][np.searchsorted(cumulative, cumulative[-1] / 2)])
    # Under ~0.1 degree the rotation would only blur the rules; beyond 10 the page is rotated, not skewed.
    return median if math.radians(0.1) < abs(median) < math.radians(10) else 0.0


def rotation(angle: float, width: int, height: int) -> np.ndarray:
    """The 2x3 affine that turns the page by ``-angle`` about its centre (so that skewed lines become level)."""
    c, s = math.cos(-angle), math.sin(-angle)
    cx, cy = width / 2, height / 2
    return np.array([[c, -s, cx - c * cx + s * cy], [s, c, cy - s * cx - c * cy]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    linear = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear, -(linear @ matrix[:, 2:3])])


# -- ruling lines --------------------------------------------------------------------------------------------------
@dataclass
class Rule:
    start: float  # along the line
    end: float
    at: float  # across it

    @property
    def length(self) -> float:
        return self.end - self.start


def horizontal_rules(gray: np.ndarray, h: float, text: list[Box] = ()) -> list[Rule]:
    """Horizontal rules: thin lines darker than both sides, and the top and bottom edges of dark bands.

    The inside of each word box is blanked first (the tops and baselines of letters line up along a word), and a
    band must be dark along a rule's whole length, which letters are not.
    """
    import cv2

    k = max(1, round(h / 12))
    length = max(int(3 * h), 24)
    g = cv2.blur(gray, (5, 1)).astype(np.int16)
    above, below = np.roll(g, k, axis=0), np.roll(g, -k, axis=0)
    ridge = (np.minimum(above, below) - g) >= 20
    band = cv2.morphologyEx(
        (gray < 170).astype(np.uint8), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1))
    )
    edge = band != np.roll(band, 1, axis=0)
    for box in text:
        # Letters make thin strokes, never long dark bands: only ridges need the text blanked. OCR boxes reach
        # well past the letters (and often over the rule under them), so only their middle is blanked.
        reach = 0.22 * box.height
        y0, y1 = max(int(box.cy - reach), 0), max(int(math.ceil(box.cy + reach)), 0)
        x0, x1 = max(int(box.x0 + reach), 0), max(int(math.ceil(box.x1 - reach)), 0)
        ridge[y0:y1, x0:x1] = False
    mask = (ridge | edge).astype(np.uint8)
    mask[: k + 1], mask[-k - 1 :] = 0, 0
    # Scanned rules break up into dashes: bridge the gaps, then keep what stays long (text strokes do not).
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, int(h / 6)), 1)))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1)))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    rules = []
    for i in range(1, count):
        x, y, w, hh = stats[i, :4]
        if w >= length and hh <= max(3 * k + 2, 0.4 * h):
            rules.append(Rule(float(x), float(x + w), float(y + hh / 2)))
    return _merge_rules(rules, h, text)


def vertical_rules(gray: np.ndarray, h: float, text: list[Box] = ()) -> list[Rule]:
    flipped = [Box(b.y0, b.x0, b.y1, b.x1) for b in text]
    return horizontal_rules(np.ascontiguousarray(gray.T), h, flipped)


def _merge_rules(rules: list[Rule], h: float, text: list[Box]) -> list[Rule]:
    """One rule per drawn line: pieces at the same height become one when they nearly touch, or when words
    fill the gap between them (text drawn over a rule, or a band's edge broken by tall letters)."""
    merged: list[Rule] = []
    for rule in sorted(rules, key=lambda r: (r.start, r.at)):
        for other in merged:
            if abs(other.at - rule.at) > h / 3:
                continue
            gap = (other.end, rule.start) if other.end < rule.start else (rule.end, other.start)
            if gap[1] - gap[0] <= h or _covered(gap, (other.at + rule.at) / 2, text, h):
                weight = rule.length / (rule.length + other.length)
                other.at = other.at + weight * (rule.at - other.at)
                other.start, other.end = min(other.start, rule.start), max(other.end, rule.end)
                break
        else:
            merged.append(Rule(rule.start, rule.end, rule.at))
    return merged


def _covered(gap: tuple[float, float], at: float, text: list[Box], h: float) -> bool:
    """Whether word boxes near the line ``at`` cover the whole interval ``gap`` (small slivers allowed)."""
    lo, hi = gap
    if hi <= lo:
        return True
    spans = sorted((b.x0, b.x1) for b in text if b.y0 - h / 2 <= at <= b.y1 + h / 2 and b.x1 > lo and b.x0 < hi)
    reach = lo
    for x0, x1 in spans:
        if x0 > reach + h / 2:
            return False
        reach = max(reach, x1)
    return reach >= hi - h / 2


# -- rows and columns ----------------------------------------------------------------------------------------------
def text_rows(ids: list[int], boxes: list[Box]) -> list[list[int]]:
    """Words grouped into rows by vertical overlap, top to bottom, each row left to right."""
    rows: list[tuple[float, float, list[int]]] = []
    for i in sorted(ids, key=lambda i: boxes[i].cy):
        box = boxes[i]
        for n, (y0, y1, members) in enumerate(rows):
            overlap = min(y1, box.y1) - max(y0, box.y0)
            if overlap >= 0.5 * min(y1 - y0, box.height):
                members.append(i)
                rows[n] = (min(y0, box.y0), max(y1, box.y1), members)
                break
        else:
            rows.append((box.y0, box.y1, [i]))
    rows.sort(key=lambda r: r[0])
    return [sorted(members, key=lambda i: boxes[i].x0) for _, _, members in rows]


def _coverage(rows: list[list[int]], boxes: list[Box], lo: int, hi: int) -> np.ndarray:
    covered = np.zeros(max(hi - lo, 0), dtype=bool)
    for row in rows:
        for i in row:
            a, b = int(boxes[i].x0) - lo, int(math.ceil(boxes[i].x1)) - lo
            covered[max(a, 0) : max(b, 0)] = True
    return covered


def _gaps(covered: np.ndarray, min_gap: float) -> list[tuple[int, int]]:
    """Uncovered runs at least ``min_gap`` wide, between the first and last covered positions."""
    if not covered.any():
        return []
    first, last = int(np.argmax(covered)), len(covered) - int(np.argmax(covered[::-1]))
    gaps, start = [], None
    for x in range(first, last):
        if not covered[x] and start is None:
            start = x
        elif covered[x] and start is not None:
            if x - start >= min_gap:
                gaps.append((start, x))
            start = None
    return gaps


def corridors(
    body: list[list[int]], boxes: list[Box], x0: float, x1: float, min_gap: float, rows: list[list[int]] = ()
) -> list[float]:
    """x positions between columns: the gaps no word of a ``body`` row covers, inside [x0, x1].

    Each cut sits in the middle of the widest part of its gap that the other ``rows`` (a header offset from
    the figures under it) leave free too, so that header cells hold their own words.
    """
    lo, hi = int(math.floor(x0)), int(math.ceil(x1))
    if hi - lo < 2:
        return []
    everything = _coverage(rows, boxes, lo, hi) if rows else np.zeros(hi - lo, dtype=bool)
    cuts = []
    for a, b in _gaps(_coverage(body, boxes, lo, hi), min_gap):
        free = _gaps(np.concatenate([[True], everything[a:b], [True]]), 1)
        if free:
            fa, fb = max(free, key=lambda g: g[1] - g[0])
            cuts.append(lo + a + (fa + fb) / 2 - 1)
        else:
            cuts.append(lo + (a + b) / 2)
    return cuts


def _min_gap(rows: int, h: float) -> float:
    """The narrowest corridor that separates columns in a table of ``rows`` text rows: a gap that every one of
    many rows keeps is no accident, while two rows share chance gaps between words."""
    if rows >= 5:
        return 0.1 * h
    return 0.25 * h if rows >= 3 else 0.75 * h


def _column_of(x: float, cuts: list[float]) -> int:
    return int(np.searchsorted(np.asarray(cuts), x))


# -- tables --------------------------------------------------------------------------------------------------------
_DIGIT = re.compile(r"\d")


def _grid(
    box: Box,
    row_edges: list[float],
    cuts: list[float],
    ids: list[int],
    boxes: list[Box],
    texts: list[str],
    h: float,
    ruled: bool,
) -> Table:
    """Cells from row edges and column cuts; words go to the cell holding their centre."""
    col_edges = [box.x0, *cuts, box.x1]
    n_rows, n_cols = len(row_edges) - 1, len(col_edges) - 1
    cells = [
        Cell(r, c, Box(col_edges[c], row_edges[r], col_edges[c + 1], row_edges[r + 1]))
        for r in range(n_rows)
        for c in range(n_cols)
    ]
    edges = np.asarray(row_edges[1:-1])
    for i in sorted(ids, key=lambda i: (boxes[i].cy, boxes[i].x0)):
        r = min(int(np.searchsorted(edges, boxes[i].cy)), n_rows - 1)
        c = min(_column_of(boxes[i].cx, cuts), n_cols - 1)
        cells[r * n_cols + c].words.append(i)
    for cell in cells:  # reading order inside a cell: its text lines, then left to right
        rows = text_rows(cell.words, boxes)
        cell.words = [i for row in rows for i in row]
    header_rows = 1 if _is_header(cells, n_rows, n_cols, texts) else 0
    merges = _header_merges(cells, n_cols, cuts, boxes, h) if header_rows else []
    return Table(box, n_rows, n_cols, cells, merges, header_rows, ruled)


def _is_header(cells: list[Cell], n_rows: int, n_cols: int, texts: list[str]) -> bool:
    """Row 1 names the columns: it is text, not figures, over columns whose body holds figures or text."""
    if n_rows < 2:
        return False
    first = [" ".join(texts[i] for i in cells[c].words) for c in range(n_cols)]
    named = [t for t in first if t]
    if len(named) < max(2, (n_cols + 1) // 2) or any(_DIGIT.search(t) for t in named):
        return False
    body = [" ".join(texts[i] for i in cell.words) for cell in cells[n_cols:]]
    return any(_DIGIT.search(t) for t in body)


def _header_merges(cells: list[Cell], n_cols: int, cuts: list[float], boxes: list[Box], h: float) -> list[Merge]:
    """Header labels that run across a column cut: the columns they cover become one merged cell."""
    spans: list[tuple[int, int]] = []
    for cell in cells[:n_cols]:
        for i in cell.words:
            # A label merely offset from its column reaches a little past a cut; a merged one straddles it.
            margin = 0.4 * (boxes[i].x1 - boxes[i].x0)
            lo = _column_of(boxes[i].x0 + margin, cuts)
            hi = _column_of(boxes[i].x1 - margin, cuts)
            if hi > lo:
                spans.append((lo, min(hi, n_cols - 1)))
    merged: list[list[int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    result = []
    for lo, hi in merged:
        first, last = cells[lo].box, cells[hi].box
        result.append(Merge(0, lo, 1, hi - lo + 1, Box(first.x0, first.y0, last.x1, last.y1)))
    return result


def ruled_tables(
    hrules: list[Rule], vrules: list[Rule], boxes: list[Box], texts: list[str], h: float
) -> tuple[list[Table], set[int]]:
    """Tables drawn with rules, and the words they hold."""
    groups = _rule_stacks([r for r in hrules if r.length >= 3 * h], h)
    tables, used = [], set()
    for whole in sorted(groups, key=len, reverse=True):
        edges: list[float] = []
        for rule in whole:  # a band edge next to a drawn line is one boundary
            if edges and rule.at - edges[-1] < 0.3 * h:
                edges[-1] = (edges[-1] + rule.at) / 2
            else:
                edges.append(rule.at)
        start, end = min(r.start for r in whole), max(r.end for r in whole)
        for part in _split_titles(edges, [b if start <= b.cx <= end else None for b in boxes], h):
            table = _ruled_table(part, whole, vrules, boxes, texts, h, used)
            if table:
                tables.append(table)
                used.update(i for cell in table.cells for i in cell.words)
    return tables, used


def _rule_stacks(rules: list[Rule], h: float) -> list[list[Rule]]:
    """Stacks of rules that frame one table: rules of a common extent, none more than a few lines from the next.

    Seeds are runs of rules sharing their extent; a rule broken short (a band edge under tall header letters)
    joins a stack when it covers most of the stack's width.
    """
    stacks: list[list[Rule]] = []
    for rule in sorted(rules, key=lambda r: r.at):
        for stack in stacks:
            if (
                rule.at - stack[-1].at <= 4 * h
                and abs(rule.start - stack[0].start) <= h
                and abs(rule.end - stack[0].end) <= h
            ):
                stack.append(rule)
                break
        else:
            stacks.append([rule])
    stacks = [s for s in stacks if len(s) >= 2]
    for stack in sorted(stacks, key=len, reverse=True):
        start, end = stack[0].start, stack[0].end
        for rule in sorted(rules, key=lambda r: r.at):
            if any(rule in other for other in stacks):
                continue
            inside = rule.start >= start - h and rule.end <= end + h and rule.length >= 0.7 * (end - start)
            near = stack[0].at - 4 * h <= rule.at <= stack[-1].at + 4 * h
            if inside and near:
                stack.append(rule)
                stack.sort(key=lambda r: r.at)
    return stacks


def _split_titles(edges: list[float], boxes: list[Box | None], h: float) -> list[list[float]]:
    """Rules of one extent can frame a title band and a table below it: cut the stack at a row much taller than
    the others that holds a single phrase (a caption such as "Page 1 of 2"), never at a wrapped table row.
    ``boxes`` holds None for words outside the stack's width."""
    if len(edges) < 4:
        return [edges]
    spacing = np.diff(edges)
    typical = float(np.median(spacing))
    parts, current = [], [edges[0]]
    for top, bottom in zip(edges, edges[1:], strict=False):
        inside = [i for i, b in enumerate(boxes) if b is not None and top <= b.cy <= bottom]
        rows = text_rows(inside, boxes)
        phrase = len(rows) <= 1 and all(
            boxes[b].x0 - boxes[a].x1 < h for row in rows for a, b in zip(row, row[1:], strict=False)
        )
        if bottom - top > 1.8 * typical and phrase:
            parts.append(current)
            current = [bottom]
        else:
            current.append(bottom)
    parts.append(current)
    return [p for p in parts if len(p) >= 2]


def _ruled_table(
    edges: list[float],
    group: list[Rule],
    vrules: list[Rule],
    boxes: list[Box],
    texts: list[str],
    h: float,
    used: set[int],
) -> Table | None:
    box = Box(min(r.start for r in group), edges[0], max(r.end for r in group), edges[-1])
    ids = [i for i, b in enumerate(boxes) if i not in used and box.x0 <= b.cx <= box.x1 and box.y0 <= b.cy <= box.y1]
    rows = text_rows(ids, boxes)
    if len(edges) == 2:
        # Only a frame: its rows are its text lines (a boxed table without row rules).
        if len(rows) < 2:
            return None
        edges = _row_edges(rows, boxes, box.y0, box.y1)
    body = rows[1:] if len(rows) >= 3 else rows
    cuts = corridors(body, boxes, box.x0, box.x1, _min_gap(len(rows), h), rows)
    spanning = [v.at for v in vrules if box.x0 + h / 2 < v.at < box.x1 - h / 2 and v.length >= 0.6 * (box.y1 - box.y0)]
    cuts = _with_rules(cuts, spanning, h)
    if not cuts or not _tabular(rows, boxes, cuts):
        return None
    return _grid(box, edges, cuts, ids, boxes, texts, h, ruled=True)


def _with_rules(cuts: list[float], rules: list[float], h: float) -> list[float]:
    """Column cuts with drawn vertical rules: a rule replaces the whitespace cut near it."""
    result = list(cuts)
    for at in rules:
        near = [c for c in result if abs(c - at) < h]
        for c in near:
            result.remove(c)
        result.append(at)
    return sorted(result)


def _tabular(rows: list[list[int]], boxes: list[Box], cuts: list[float]) -> bool:
    """At least two rows fill two or more columns: one row of text beside a rule is no table."""
    filled = [len({_column_of(boxes[i].cx, cuts) for i in row}) for row in rows]
    return sum(1 for f in filled if f >= 2) >= 2


def _row_edges(rows: list[list[int]], boxes: list[Box], top: float, bottom: float) -> list[float]:
    edges = [top]
    for upper, lower in zip(rows, rows[1:], strict=False):
        edges.append((max(boxes[i].y1 for i in upper) + min(boxes[i].y0 for i in lower)) / 2)
    edges.append(bottom)
    return edges


def borderless_tables(ids: list[int], boxes: list[Box], texts: list[str], h: float) -> list[Table]:
    """Tables without rules: text blocks whose body rows keep whitespace corridors between columns."""
    tables = []
    for block in _xy_cut(ids, boxes, h):
        rows = text_rows(block, boxes)
        if len(rows) < 2:
            continue
        body = rows[1:] if len(rows) >= 3 else rows
        pad = h / 8
        x0 = min(boxes[i].x0 for i in block) - pad
        x1 = max(boxes[i].x1 for i in block) + pad
        cuts = corridors(body, boxes, x0, x1, _min_gap(len(rows), h), rows)
        if not cuts:
            continue
        if not _tabular(rows, boxes, cuts):
            continue
        y0 = min(boxes[i].y0 for i in rows[0]) - pad
        y1 = max(boxes[i].y1 for i in rows[-1]) + pad
        box = Box(x0, y0, x1, y1)
        tables.append(_grid(box, _row_edges(rows, boxes, y0, y1), cuts, block, boxes, texts, h, ruled=False))
    return tables


def _xy_cut(ids: list[int], boxes: list[Box], h: float) -> list[list[int]]:
    """Recursive XY-cut: split at wide empty columns first (page columns), then at empty bands between
    paragraphs; the leaves are the candidate blocks."""
    if len(ids) < 2:
        return [ids] if ids else []
    for axis, min_gap in (("x", 4 * h), ("y", 0.5 * h)):
        parts = _split(ids, boxes, axis, min_gap)
        if len(parts) > 1:
            return [leaf for part in parts for leaf in _xy_cut(part, boxes, h)]
    return [ids]


def _split(ids: list[int], boxes: list[Box], axis: str, min_gap: float) -> list[list[int]]:
    def span(i: int) -> tuple[float, float]:
        b = boxes[i]
        return (b.x0, b.x1) if axis == "x" else (b.y0, b.y1)

    parts: list[list[int]] = []
    reach = -math.inf
    for i in sorted(ids, key=lambda i: span(i)[0]):
        start, end = span(i)
        if parts and start - reach < min_gap:
            parts[-1].append(i)
            reach = max(reach, end)
        else:
            parts.append([i])
            reach = end
    return parts


def find_tables(gray: np.ndarray, boxes: list[Box], texts: list[str], h: float) -> list[Table]:
    """Every table on a (deskewed) page, top to bottom."""
    ruled, used = ruled_tables(horizontal_rules(gray, h, boxes), vertical_rules(gray, h, boxes), boxes, texts, h)
    rest = [i for i in range(len(boxes)) if i not in used]
    tables = ruled + borderless_tables(rest, boxes, texts, h)
    return sorted(tables, key=lambda t: (t.box.y0, t.box.x0))


# -- key-value pairs -----------------------------------------------------------------------------------------------
def key_values(lines: list[list[int]], boxes: list[Box], texts: list[str], h: float) -> list[KeyValue]:
    """'Label: value' pairs: a line whose first words end in a colon; a bare 'Label:' takes the nearest line to
    its right on the same row as its value (or none: Textract reports empty values too)."""
    pairs = []
    for n, line in enumerate(lines):
        split = next((k for k, i in enumerate(line[:6]) if texts[i].endswith(":") and len(texts[i]) > 1), None)
        if split is None:
            continue
        key, value = line[: split + 1], line[split + 1 :]
        if not value:
            right = [
                other
                for m, other in enumerate(lines)
                if m != n and other and _same_row(boxes, line, other) and boxes[other[0]].x0 > boxes[line[-1]].x1
            ]
            right = [o for o in right if boxes[o[0]].x0 - boxes[line[-1]].x1 <= 5 * h]
            if right:
                value = min(right, key=lambda o: boxes[o[0]].x0)
                if any(texts[i].endswith(":") for i in value[:6]):
                    value = []  # the next label, not a value
        pairs.append(KeyValue(key, value))
    return pairs


def _same_row(boxes: list[Box], a: list[int], b: list[int]) -> bool:
    a0, a1 = min(boxes[i].y0 for i in a), max(boxes[i].y1 for i in a)
    b0, b1 = min(boxes[i].y0 for i in b), max(boxes[i].y1 for i in b)
    return min(a1, b1) - max(a0, b0) >= 0.5 * min(a1 - a0, b1 - b0)
