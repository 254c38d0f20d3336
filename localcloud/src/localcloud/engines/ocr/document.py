"""Documents as Textract accepts them (PDF, PNG, JPEG, TIFF), opened and rasterised page by page.

Format checks go by content, never by file name, as Textract's do. Errors are the engine's own
(:class:`DocumentError` with a ``kind``), which the service maps onto Textract's exception names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

UNSUPPORTED, BAD = "unsupported", "bad"
# Scans are rendered at their own resolution: upsampling the 100 ppi fixture scans to 150 dpi made the
# recogniser no better and the page 1.8x slower (benchmarks/textract_agreement.py). Only scans below 100 ppi are
# upsampled; pages without images (vector PDFs) render at VECTOR_DPI.
MIN_DPI, MAX_DPI, VECTOR_DPI = 100.0, 300.0, 150.0
# Textract rejects images larger than 10000 px on a side; a rendered page is kept within the same bound.
MAX_SIDE_PX = 10000


class DocumentError(Exception):
    """A document the engine cannot read; ``kind`` is UNSUPPORTED (format) or BAD (content)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def sniff(head: bytes) -> str | None:
    """The format of a file from its first bytes: ``pdf``, ``png``, ``jpeg``, ``tiff`` or None."""
    if head.lstrip(b"\r\n\t \x00")[:5] == b"%PDF-" or b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


@dataclass
class Document:
    """An opened document: its format and page count; ``render`` gives one page as RGB pixels."""

    path: Path
    kind: str
    pages: int

    def render(self, index: int, dpi: float | None = None) -> np.ndarray:
        """Page ``index`` (0-based) as an H x W x 3 uint8 RGB array."""
        if self.kind == "pdf":
            return _render_pdf_page(self.path, index, dpi)
        return _image_frame(self.path, index)


def open_document(path: Path) -> Document:
    """Check the format and count the pages; raises DocumentError for what Textract would refuse."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(1024)
    kind = sniff(head)
    if kind is None:
        raise DocumentError(UNSUPPORTED, "Request has unsupported document format")
    pages = _pdf_page_count(path) if kind == "pdf" else _image_frame_count(path)
    if pages < 1:
        raise DocumentError(BAD, "The document has no pages.")
    return Document(path, kind, pages)


def _pdf_page_count(path: Path) -> int:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        # pdfium reports a password-protected file as FPDF_ERR_PASSWORD; Textract refuses encrypted PDFs outright.
        if "password" in str(exc).lower():
            raise DocumentError(UNSUPPORTED, "Request has unsupported document format: the PDF is encrypted.") from exc
        raise DocumentError(UNSUPPORTED, "Request has unsupported document format: the PDF cannot be read.") from exc
    try:
        return len(pdf)
    finally:
        pdf.close()


def _image_frame_count(path: Path) -> int:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            _check_size(image.width, image.height)
            return int(getattr(image, "n_frames", 1))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DocumentError(UNSUPPORTED, "Request has unsupported document format: the image cannot be read.") from exc


def _check_size(width: int, height: int) -> None:
    if max(width, height) > MAX_SIDE_PX:
        raise DocumentError(BAD, f"The image is {width}x{height} pixels; at most {MAX_SIDE_PX} on a side is readable.")
    if min(width, height) < 16:
        raise DocumentError(BAD, f"The image is {width}x{height} pixels, too small to hold text.")


def _image_frame(path: Path, index: int) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            image.seek(index)
            frame = ImageOps.exif_transpose(image) if index == 0 else image
            return np.asarray(_flatten(frame))
    except (OSError, ValueError, EOFError) as exc:
        raise DocumentError(BAD, f"Page {index + 1} of the image cannot be decoded: {exc}") from exc


def _flatten(image: object) -> object:
    """RGB, with any transparency composited onto white (a transparent scan background is paper, not black)."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def native_dpi(page: object) -> float | None:
    """The resolution of the largest image drawn on a PDF page (its scan), or None for a page without images."""
    import pypdfium2.raw as pdfium_c

    best: tuple[float, float] | None = None  # (drawn area in pt^2, ppi)
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        try:
            px_w, px_h = obj.get_px_size()
            left, bottom, right, top = obj.get_bounds()
        except Exception:  # an image pdfium cannot measure says nothing about the scan resolution
            continue
        width_pt, height_pt = right - left, top - bottom
        if width_pt <= 1 or height_pt <= 1:
            continue
        ppi = max(px_w / width_pt, px_h / height_pt) * 72.0
        if best is None or width_pt * height_pt > best[0]:
            best = (width_pt * height_pt, ppi)
    return best[1] if best else None


def render_dpi(page: object) -> float:
    """The resolution a PDF page is rendered at: its scan's own, within [MIN_DPI, MAX_DPI], and within MAX_SIDE_PX."""
    scan = native_dpi(page)
    dpi = VECTOR_DPI if scan is None else min(max(scan, MIN_DPI), MAX_DPI)
    width_pt, height_pt = page.get_size()
    return min(dpi, MAX_SIDE_PX * 72.0 / max(width_pt, height_pt, 1.0))


def _render_pdf_page(path: Path, index: int, dpi: float | None) -> np.ndarray:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        page = pdf[index]
        scale = (dpi or render_dpi(page)) / 72.0
        bitmap = page.render(scale=scale, fill_color=(255, 255, 255, 255), may_draw_forms=True)
        return np.asarray(bitmap.to_pil().convert("RGB"))
    except pdfium.PdfiumError as exc:
        raise DocumentError(BAD, f"Page {index + 1} of the PDF cannot be rendered: {exc}") from exc
    finally:
        pdf.close()
