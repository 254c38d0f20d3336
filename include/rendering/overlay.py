"""Debug contact sheets: a grid of a shard's images with their labelled boxes drawn on, for eyeballing labels."""

from __future__ import annotations

import colorsys
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from include.files import atomic_write_bytes
from include.rendering.types import Box, RenderedImage

BACKGROUND = (32, 32, 32)
CAPTION = (220, 220, 220)
TEXT_ON_LABEL = (0, 0, 0)
LINE_WIDTH = 2
_GOLDEN = 0.618033988749895


def class_colour(index: int) -> tuple[int, int, int]:
    """A bright colour per class index; golden-ratio hue steps keep neighbours far apart for any class count."""
    r, g, b = colorsys.hsv_to_rgb((index * _GOLDEN) % 1.0, 0.85, 1.0)
    return round(r * 255), round(g * 255), round(b * 255)


def draw_overlay(
    images: Sequence[RenderedImage],
    image_dir: Path,
    class_map: Mapping[int, str],
    out_path: Path,
    *,
    max_images: int = 16,
    columns: int = 4,
    thumb: int = 256,
) -> Path:
    """Write a PNG grid of the first ``max_images`` images (``thumb`` px cells) with boxes and labels drawn.

    Each box is labelled ``<class name> <visible %>``, in one colour per class (by rank in ``class_map``).
    The sheet is ``min(columns, n) * thumb`` wide and ``ceil(n / columns) * thumb`` high.
    """
    shown = list(images[:max_images])
    if not shown:
        raise ValueError("no images to draw")
    cols = min(columns, len(shown))
    sheet = Image.new("RGB", (cols * thumb, math.ceil(len(shown) / cols) * thumb), BACKGROUND)
    colours = {class_id: class_colour(rank) for rank, class_id in enumerate(sorted(class_map))}
    font = ImageFont.load_default()
    for index, image in enumerate(shown):
        cell = _cell(image, Path(image_dir), class_map, colours, thumb, font)
        sheet.paste(cell, ((index % cols) * thumb, (index // cols) * thumb))
    return atomic_write_bytes(Path(out_path), _png_bytes(sheet))


def _cell(
    image: RenderedImage,
    image_dir: Path,
    class_map: Mapping[int, str],
    colours: Mapping[int, tuple[int, int, int]],
    thumb: int,
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
) -> Image.Image:
    cell = Image.new("RGB", (thumb, thumb), BACKGROUND)
    with Image.open(image_dir / image.file_name) as source:
        scale = min(thumb / source.width, thumb / source.height)
        size = (max(1, round(source.width * scale)), max(1, round(source.height * scale)))
        offset = ((thumb - size[0]) // 2, (thumb - size[1]) // 2)
        cell.paste(source.convert("RGB").resize(size, Image.Resampling.BILINEAR), offset)
    draw = ImageDraw.Draw(cell)
    for box in image.boxes:
        colour = colours.get(box.class_id, CAPTION)
        _draw_box(draw, box, scale, offset, colour, _label(box, class_map), font)
    draw.text((2, thumb - 12), Path(image.file_name).name, fill=CAPTION, font=font)
    return cell


def _label(box: Box, class_map: Mapping[int, str]) -> str:
    return f"{class_map.get(box.class_id, box.class_id)} {box.visible_fraction:.0%}"


def _draw_box(
    draw: ImageDraw.ImageDraw,
    box: Box,
    scale: float,
    offset: tuple[int, int],
    colour: tuple[int, int, int],
    label: str,
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
) -> None:
    # Box pixels span [left, left + width), so the outline's far edge is the last covered pixel.
    x0, y0 = offset[0] + box.left * scale, offset[1] + box.top * scale
    x1 = max(x0, offset[0] + (box.left + box.width) * scale - 1)
    y1 = max(y0, offset[1] + (box.top + box.height) * scale - 1)
    draw.rectangle((x0, y0, x1, y1), outline=colour, width=LINE_WIDTH)
    left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
    text_y = y0 - (bottom - top) - 2 if y0 >= (bottom - top) + 2 else y0  # above the box unless at the top edge
    draw.rectangle((x0, text_y, x0 + (right - left) + 2, text_y + (bottom - top) + 2), fill=colour)
    draw.text((x0 + 1 - left, text_y + 1 - top), label, fill=TEXT_ON_LABEL, font=font)


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # Pillow writes no timestamp chunk: same pixels, same bytes
    return buffer.getvalue()
