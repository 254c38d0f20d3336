"""One page image -> Textract blocks: OCR, deskew, layout, blocks."""

from __future__ import annotations

from typing import Any

import numpy as np

from localcloud.engines.ocr import layout
from localcloud.engines.ocr.blocks import page_blocks
from localcloud.engines.ocr.recognize import recognize

TABLES, FORMS = "TABLES", "FORMS"


def analyze_page(rgb: np.ndarray, page: int, features: list[str]) -> list[dict[str, Any]]:
    """The blocks Textract's document analysis gives for one page (``page`` is 1-based)."""
    import cv2

    height, width = rgb.shape[:2]
    lines = recognize(rgb)
    words = [w for line in lines for w in line.words]
    angle = layout.skew_angle([line.quad for line in lines])
    forward = layout.rotation(angle, width, height)
    backward = layout.invert(forward)
    boxes = []
    for word in words:
        points = layout.apply(forward, word.quad)
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        boxes.append(layout.Box(float(x0), float(y0), float(x1), float(y1)))
    texts = [w.text for w in words]
    h = float(np.median([b.height for b in boxes])) if boxes else 10.0

    tables: list[layout.Table] = []
    if TABLES in features and boxes:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if angle:
            gray = cv2.warpAffine(
                gray, forward, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=255
            )
        tables = layout.find_tables(gray, boxes, texts, h)
    pairs: list[layout.KeyValue] = []
    if FORMS in features:
        line_words, start = [], 0
        for line in lines:
            line_words.append(list(range(start, start + len(line.words))))
            start += len(line.words)
        pairs = layout.key_values(line_words, boxes, texts, h)
    return page_blocks(page, width, height, lines, tables, pairs, lambda quad: layout.apply(backward, quad))
