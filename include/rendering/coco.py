"""COCO object-detection JSON: export of a rendered dataset, and import of COCO-labelled real photos.

Format: https://cocodataset.org/#format-data ("Object Detection"). Ids are deterministic: images are numbered
1..N in ``file_name`` order, annotations 1..M in image order then box order, and a category's id is our
``class_id``, so an exported file imports back to the same class map without a lookup table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from include.files import atomic_write_text
from include.rendering.types import Box, RenderedImage


def to_coco(
    images: Sequence[RenderedImage],
    class_map: Mapping[int, str],
    *,
    description: str = "",
    date_created: str | None = None,
    version: str = "1.0",
    supercategory: str = "part",
) -> dict[str, Any]:
    """The COCO detection document for ``images``.

    ``date_created`` (ISO 8601) is passed in rather than read from the clock, so output is reproducible;
    without it ``info`` carries no date.
    """
    ordered = sorted(images, key=lambda image: image.file_name)
    if len({image.file_name for image in ordered}) != len(ordered):
        raise ValueError("two images share a file_name; COCO needs one entry per file")
    coco_images, annotations = [], []
    for image_id, image in enumerate(ordered, start=1):
        coco_images.append({"id": image_id, "file_name": image.file_name, "width": image.width, "height": image.height})
        for box in image.boxes:
            if box.class_id not in class_map:
                raise ValueError(f"{image.file_name}: class id {box.class_id} is not in the class map")
            annotations.append(_annotation(len(annotations) + 1, image_id, box))
    return {
        "info": _info(description, version, date_created),
        "licenses": [],
        "images": coco_images,
        "annotations": annotations,
        "categories": [
            {"id": class_id, "name": name, "supercategory": supercategory}
            for class_id, name in sorted(class_map.items())
        ],
    }


def _info(description: str, version: str, date_created: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {"description": description, "version": version, "contributor": "", "url": ""}
    if date_created is not None:
        info |= {"year": datetime.fromisoformat(date_created).year, "date_created": date_created}
    return info


def _annotation(annotation_id: int, image_id: int, box: Box) -> dict[str, Any]:
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": box.class_id,
        "bbox": [box.left, box.top, box.width, box.height],
        "area": box.width * box.height,  # no masks here, so the box area (the usual choice for box-only sets)
        "iscrowd": 0,
    }


def write_coco(path: Path, coco: Mapping[str, Any]) -> Path:
    """Write ``coco`` atomically with sorted keys, so the same dataset gives the same bytes."""
    return atomic_write_text(Path(path), json.dumps(coco, sort_keys=True, separators=(",", ":")) + "\n")


def from_coco(source: Mapping[str, Any] | Path) -> tuple[list[RenderedImage], dict[int, str]]:
    """Images (sorted by COCO image id) and class map from a COCO detection document or file.

    Real-photo labels are usually float pixels: each box becomes the smallest integer pixel box that covers
    it, clipped to the image; a box that covers no pixel of its image is an error. ``iscrowd`` regions are
    skipped (they mark groups of objects, which a detector must not learn as one). Visibility is unknown for imported labels, so boxes get the neutral
    ``visible_pixels = width * height`` and ``visible_fraction = 1.0``.
    """
    coco = json.loads(Path(source).read_text(encoding="utf-8")) if isinstance(source, Path) else source
    class_map = {int(cat["id"]): str(cat["name"]) for cat in coco.get("categories", [])}
    by_id: dict[int, RenderedImage] = {}
    for entry in coco.get("images", []):
        by_id[int(entry["id"])] = RenderedImage(str(entry["file_name"]), int(entry["width"]), int(entry["height"]), [])
    for ann in coco.get("annotations", []):
        if ann.get("iscrowd", 0):
            continue
        image = by_id.get(int(ann["image_id"]))
        if image is None:
            raise ValueError(f"annotation {ann.get('id')}: image_id {ann['image_id']} is not in 'images'")
        if int(ann["category_id"]) not in class_map:
            raise ValueError(f"annotation {ann.get('id')}: category_id {ann['category_id']} is not in 'categories'")
        image.boxes.append(_pixel_box(ann, image))
    return [by_id[image_id] for image_id in sorted(by_id)], dict(sorted(class_map.items()))


def _pixel_box(ann: Mapping[str, Any], image: RenderedImage) -> Box:
    x, y, w, h = (float(v) for v in ann["bbox"])
    left, top = max(0, math.floor(x)), max(0, math.floor(y))
    right, bottom = min(image.width, math.ceil(x + w)), min(image.height, math.ceil(y + h))
    if right <= left or bottom <= top:
        raise ValueError(f"annotation {ann.get('id')}: bbox {ann['bbox']} covers no pixel of {image.file_name}")
    width, height = right - left, bottom - top
    return Box(int(ann["category_id"]), left, top, width, height, visible_pixels=width * height, visible_fraction=1.0)
