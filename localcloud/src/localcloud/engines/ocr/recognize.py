"""Words and lines from a page image with rapidocr (PP-OCR det + rec models shipped in its wheel; no downloads)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache

import numpy as np


@dataclass
class Word:
    text: str
    confidence: float  # 0-1
    quad: np.ndarray  # 4 x 2 float pixels: top-left, top-right, bottom-right, bottom-left


@dataclass
class Line:
    text: str
    confidence: float
    quad: np.ndarray
    words: list[Word]


def threads() -> int:
    """onnxruntime threads per engine (env LOCALCLOUD_TEXTRACT_THREADS; 0 lets onnxruntime use every core)."""
    return int(os.environ.get("LOCALCLOUD_TEXTRACT_THREADS", "0"))


@cache
def _engine() -> object:
    from rapidocr import RapidOCR

    params = {
        "Global.return_word_box": True,
        "Global.log_level": "warning",
        # The wheel's own models; a missing model must fail here, not trigger a download.
        "EngineConfig.onnxruntime.intra_op_num_threads": threads() or -1,
    }
    engine = RapidOCR(params=params)
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    return engine


def recognize(rgb: np.ndarray) -> list[Line]:
    """Every text line rapidocr reads on the page, with its words; quads in the image's pixels."""
    result = _engine()(np.ascontiguousarray(rgb[:, :, ::-1]))  # rapidocr takes arrays as BGR
    if not getattr(result, "txts", None):
        return []
    lines = []
    # word_results only holds lines that kept at least one word box; pair them by text, in order.
    word_results = list(result.word_results or [])
    cursor = 0
    for text, score, box in zip(result.txts, result.scores, result.boxes, strict=True):
        quad = np.asarray(box, dtype=np.float64).reshape(4, 2)
        words: list[Word] = []
        if cursor < len(word_results) and _same_text(word_results[cursor], text):
            words = [
                Word(str(w_text), float(w_score), np.asarray(w_box, dtype=np.float64).reshape(4, 2))
                for w_text, w_score, w_box in word_results[cursor]
                if str(w_text).strip()
            ]
            cursor += 1
        if not words:
            words = _split_line(text, float(score), quad)
        lines.append(Line(" ".join(w.text for w in words), float(score), quad, words))
    return lines


def _same_text(words: tuple, text: str) -> bool:
    return "".join(str(w[0]) for w in words).replace(" ", "") == text.replace(" ", "")


def _split_line(text: str, score: float, quad: np.ndarray) -> list[Word]:
    """Word boxes by character share along the line, for a line rapidocr gave no word boxes for."""
    tokens = text.split()
    total = sum(len(t) for t in tokens) + max(len(tokens) - 1, 0)
    if not tokens or total == 0:
        return []
    top, bottom = quad[1] - quad[0], quad[2] - quad[3]
    words, start = [], 0
    for token in tokens:
        a, b = start / total, (start + len(token)) / total
        words.append(
            Word(
                token,
                score,
                np.array([quad[0] + a * top, quad[0] + b * top, quad[3] + b * bottom, quad[3] + a * bottom]),
            )
        )
        start += len(token) + 1
    return words
