"""OCR engine: documents (PDF, PNG, JPEG, TIFF) -> words, lines, tables and key-values as Textract Blocks.

rapidocr (PP-OCR models shipped in its wheel) reads the words; table structure comes from ruling lines and
whitespace corridors (``layout``); ``blocks`` shapes the result the way Amazon Textract does. Knows nothing of
AWS requests or HTTP; the heavy imports (onnxruntime, OpenCV) load only when a page is analysed.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from localcloud.engines.ocr.document import BAD, UNSUPPORTED, Document, DocumentError, open_document, sniff

_LAZY = {"analyze_page": "analyze"}

__all__ = ["BAD", "UNSUPPORTED", "Document", "DocumentError", "open_document", "sniff", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
