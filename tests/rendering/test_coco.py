"""COCO export (deterministic ids, standard fields) and import (real-photo float boxes) round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.rendering.coco import from_coco, to_coco, write_coco
from include.rendering.types import Box, RenderedImage

CLASS_MAP = {0: "Gear_Housing", 1: "Spur_Gear"}
DATE = "2026-01-01T00:00:00"


def box(class_id: int, left: int, top: int, width: int, height: int) -> Box:
    return Box(class_id, left, top, width, height, width * height, 1.0)


def images() -> list[RenderedImage]:
    return [
        RenderedImage("images/c01_000000.png", 320, 240, [box(1, 5, 6, 70, 80)]),
        RenderedImage("images/c00_000000.png", 320, 240, [box(0, 10, 20, 30, 40), box(1, 100, 50, 60, 70)]),
        RenderedImage("images/empty.png", 320, 240, []),
    ]


def geometry(items: list[RenderedImage]) -> list[tuple]:
    return sorted(
        (im.file_name, im.width, im.height, [(b.class_id, b.left, b.top, b.width, b.height) for b in im.boxes])
        for im in items
    )


def test_export_has_the_standard_fields_and_deterministic_ids():
    coco = to_coco(images(), CLASS_MAP, description="gearbox v1", date_created=DATE)
    assert coco == {
        "info": {
            "description": "gearbox v1",
            "version": "1.0",
            "year": 2026,
            "date_created": DATE,
            "contributor": "",
            "url": "",
        },
        "licenses": [],
        "images": [
            {"id": 1, "file_name": "images/c00_000000.png", "width": 320, "height": 240},
            {"id": 2, "file_name": "images/c01_000000.png", "width": 320, "height": 240},
            {"id": 3, "file_name": "images/empty.png", "width": 320, "height": 240},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 0, "bbox": [10, 20, 30, 40], "area": 1200, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [100, 50, 60, 70], "area": 4200, "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [5, 6, 70, 80], "area": 5600, "iscrowd": 0},
        ],
        "categories": [
            {"id": 0, "name": "Gear_Housing", "supercategory": "part"},
            {"id": 1, "name": "Spur_Gear", "supercategory": "part"},
        ],
    }
    assert to_coco(list(reversed(images())), CLASS_MAP, description="gearbox v1", date_created=DATE) == coco


def test_export_without_a_date_has_no_clock_in_it():
    assert to_coco(images(), CLASS_MAP)["info"] == {"description": "", "version": "1.0", "contributor": "", "url": ""}


def test_export_refuses_unknown_classes_and_duplicate_files():
    with pytest.raises(ValueError, match="class id 7"):
        to_coco([RenderedImage("a.png", 64, 64, [box(7, 0, 0, 5, 5)])], CLASS_MAP)
    with pytest.raises(ValueError, match="share a file_name"):
        to_coco([RenderedImage("a.png", 64, 64, []), RenderedImage("a.png", 64, 64, [])], CLASS_MAP)


def test_write_then_import_round_trips_with_stable_bytes(tmp_path: Path):
    coco = to_coco(images(), CLASS_MAP, description="gearbox v1", date_created=DATE)
    path = write_coco(tmp_path / "coco.json", coco)
    assert write_coco(tmp_path / "again.json", coco).read_bytes() == path.read_bytes()
    back, class_map = from_coco(path)
    assert class_map == CLASS_MAP
    assert geometry(back) == geometry(images())


def real_photo_coco() -> dict:
    return {
        "images": [
            {"id": 42, "file_name": "photos/b.jpg", "width": 100, "height": 80},
            {"id": 7, "file_name": "photos/a.jpg", "width": 100, "height": 80},
        ],
        "categories": [{"id": 3, "name": "flange"}, {"id": 9, "name": "worm_gear"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "bbox": [10.4, 5.6, 20.2, 10.1], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 9, "bbox": [90.5, 70.2, 30.0, 30.0]},  # runs off the image
            {"id": 3, "image_id": 42, "category_id": 9, "bbox": [0, 0, 50, 50], "iscrowd": 1},  # a crowd region
        ],
    }


def test_import_covers_float_boxes_with_whole_pixels_and_skips_crowds():
    imported, class_map = from_coco(real_photo_coco())
    assert class_map == {3: "flange", 9: "worm_gear"}
    assert [im.file_name for im in imported] == ["photos/a.jpg", "photos/b.jpg"]  # by COCO image id
    a, b = imported
    # [10.4, 30.6) x [5.6, 15.7) -> pixels 10..30 x 5..15; the second box is clipped at the image edge.
    assert [(x.class_id, x.left, x.top, x.width, x.height) for x in a.boxes] == [
        (3, 10, 5, 21, 11),
        (9, 90, 70, 10, 10),
    ]
    assert all(x.visible_fraction == 1.0 and x.visible_pixels == x.width * x.height for x in a.boxes)
    assert b.boxes == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"image_id": 99}, "image_id 99 is not in 'images'"),
        ({"category_id": 4}, "category_id 4 is not in 'categories'"),
        ({"bbox": [150, 10, 5, 5]}, "covers no pixel"),
    ],
)
def test_import_refuses_dangling_references_and_empty_boxes(change, error):
    coco = real_photo_coco()
    coco["annotations"][0] |= change
    with pytest.raises(ValueError, match=error):
        from_coco(json.loads(json.dumps(coco)))
