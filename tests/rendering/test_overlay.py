"""Debug contact sheets: grid size, boxes in their class colour at the scaled position, stable bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from include.rendering.overlay import BACKGROUND, class_colour, draw_overlay
from include.rendering.types import Box, RenderedImage

CLASS_MAP = {0: "Gear_Housing", 1: "Spur_Gear", 2: "Flange"}
GREY = (128, 128, 128)


@pytest.fixture
def shard(tmp_path: Path) -> tuple[list[RenderedImage], Path]:
    (tmp_path / "images").mkdir()
    images = []
    for n in range(5):
        name = f"images/c{n % 3:02d}_{n:06d}.png"
        Image.new("RGB", (128, 96), GREY).save(tmp_path / name)
        boxes = [Box(n % 3, 20, 20, 40, 30, 1000, 0.8), Box((n + 1) % 3, 70, 40, 50, 50, 2000, 0.25)]
        images.append(RenderedImage(name, 128, 96, boxes))
    return images, tmp_path


def test_sheet_has_one_cell_per_image_up_to_max(shard, tmp_path: Path):
    images, root = shard
    out = draw_overlay(images, root, CLASS_MAP, tmp_path / "out" / "sheet.png", max_images=4, columns=3, thumb=64)
    with Image.open(out) as sheet:
        assert (sheet.format, sheet.size) == ("PNG", (3 * 64, 2 * 64))
        # Cells 0-3 are drawn; the sixth slot (row 2, column 3) stays background.
        assert sheet.getpixel((2 * 64 + 32, 64 + 32)) == BACKGROUND
    with Image.open(draw_overlay(images[:2], root, CLASS_MAP, tmp_path / "two.png", thumb=64)) as sheet:
        assert sheet.size == (2 * 64, 64)


def test_boxes_are_drawn_in_their_class_colour_at_the_scaled_position(shard, tmp_path: Path):
    images, root = shard
    out = draw_overlay(images[:1], root, CLASS_MAP, tmp_path / "sheet.png", thumb=64)
    with Image.open(out) as sheet:
        pixels = sheet.convert("RGB")
    # 128 x 96 -> scale 0.5, letterboxed 8 px down. Box 0 (class 0) spans x 10..29, y 18..32 on the sheet.
    assert pixels.getpixel((10, 25)) == class_colour(0)  # its left edge
    assert pixels.getpixel((29, 25)) == class_colour(0)  # its right edge
    assert pixels.getpixel((20, 25)) == GREY  # inside: the image shows through
    assert pixels.getpixel((20, 12)) != GREY  # its label, above it
    # Box 1 (class 1) spans x 35..59, y 28..52.
    assert pixels.getpixel((35, 45)) == class_colour(1)
    assert pixels.getpixel((47, 52)) == class_colour(1)  # its bottom edge


def test_class_colours_are_distinct():
    colours = [class_colour(i) for i in range(12)]
    assert len(set(colours)) == len(colours)


def test_output_is_byte_for_byte_stable(shard, tmp_path: Path):
    images, root = shard
    first = draw_overlay(images, root, CLASS_MAP, tmp_path / "a.png").read_bytes()
    assert draw_overlay(images, root, CLASS_MAP, tmp_path / "b.png").read_bytes() == first


def test_an_empty_shard_is_an_error(tmp_path: Path):
    with pytest.raises(ValueError, match="no images"):
        draw_overlay([], tmp_path, CLASS_MAP, tmp_path / "sheet.png")
