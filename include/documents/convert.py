"""Convert: any accepted scan (PDF, PNG, JPEG, TIFF with several pages) -> one PDF, plus a PNG per page.

PDFs pass through unchanged (Textract reads them as they are); images become an image-only PDF at their own
resolution. The page PNGs are what a human reviewer sees. A corrupt, encrypted or unsupported file raises
``DocumentError`` with the reason, which fails that document only.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

PDF_MAGIC = b"%PDF-"
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpeg", "TIFF": "tiff"}
DEFAULT_DPI = 200
PREVIEW_DPI = 110  # page images for the review page: readable, and small enough to load quickly
MAX_PAGES = 3000  # Textract's async limit
FIXED_DATE = time.gmtime(946684800)  # 2000-01-01T00:00:00Z; Pillow wants a struct_time


class DocumentError(ValueError):
    """A document that cannot be processed, with the reason (goes into its tracking item)."""


@dataclass
class Converted:
    pdf: bytes
    source_format: str
    pages: list[bytes] = field(default_factory=list)  # PNG per page
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height) of each PNG


def convert(data: bytes, name: str = "document") -> Converted:
    """The PDF and page previews of ``data``; raises DocumentError for anything Textract could not read."""
    if not data:
        raise DocumentError(f"{name}: empty file")
    if data.lstrip()[:5] == PDF_MAGIC:
        return _from_pdf(data, name)
    return _from_image(data, name)


def _from_pdf(data: bytes, name: str) -> Converted:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as err:
        reason = str(err)
        if "password" in reason.lower():
            raise DocumentError(f"{name}: encrypted PDF (password protected); Textract cannot read it") from err
        raise DocumentError(f"{name}: corrupt PDF ({reason})") from err
    try:
        if len(pdf) == 0:
            raise DocumentError(f"{name}: PDF has no pages")
        if len(pdf) > MAX_PAGES:
            raise DocumentError(f"{name}: {len(pdf)} pages, more than Textract's {MAX_PAGES}")
        pages, sizes = [], []
        for index in range(len(pdf)):
            try:
                image = pdf[index].render(scale=PREVIEW_DPI / 72).to_pil().convert("RGB")
            except pdfium.PdfiumError as err:
                raise DocumentError(f"{name}: page {index + 1} cannot be rendered ({err})") from err
            pages.append(_png(image))
            sizes.append(image.size)
    finally:
        pdf.close()
    return Converted(pdf=data, source_format="pdf", pages=pages, sizes=sizes)


def _from_image(data: bytes, name: str) -> Converted:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()  # catches truncated and corrupt files before any decoding work
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DocumentError(f"{name}: not a PDF, PNG, JPEG or TIFF, or corrupt ({err})") from err
    kind = IMAGE_FORMATS.get(image.format or "")
    if kind is None:
        raise DocumentError(f"{name}: {image.format} images are not supported (PDF, PNG, JPEG or TIFF)")
    try:
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(image)]
    except OSError as err:
        raise DocumentError(f"{name}: corrupt {image.format} ({err})") from err
    dpi = float((image.info.get("dpi") or (DEFAULT_DPI,))[0] or DEFAULT_DPI)
    if not 50 <= dpi <= 1200:  # files without a resolution say 1 (or 72 by habit): a page miles wide otherwise
        dpi = DEFAULT_DPI
    out = io.BytesIO()
    # Fixed dates: the same scan must give the same PDF bytes (its ETag makes the Textract request token).
    frames[0].save(
        out,
        format="PDF",
        save_all=True,
        append_images=frames[1:],
        resolution=float(dpi),
        creationDate=FIXED_DATE,
        modDate=FIXED_DATE,
    )
    previews = [_scaled(frame, PREVIEW_DPI / float(dpi)) for frame in frames]
    return Converted(
        pdf=out.getvalue(),
        source_format=kind,
        pages=[_png(p) for p in previews],
        sizes=[p.size for p in previews],
    )


def _scaled(image, factor: float):
    if factor >= 1:
        return image
    return image.resize((max(1, round(image.width * factor)), max(1, round(image.height * factor))))


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()
