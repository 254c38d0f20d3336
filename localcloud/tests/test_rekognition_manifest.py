"""localcloud's own reader of Ground Truth object-detection manifests: every limit Rekognition Custom Labels
documents is enforced, line by line, and good lines come out as labelled boxes."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from localcloud.services.rekognition import manifest
from localcloud.services.rekognition.manifest import ImageFacts, image_facts, parse_entry, read_manifest

W, H = 640, 480


def good(n: int = 0, bucket: str = "b", boxes: int = 1) -> dict[str, Any]:
    return {
        "source-ref": f"s3://{bucket}/images/{n}.png",
        "bounding-box": {
            "image_size": [{"width": W, "height": H, "depth": 3}],
            "annotations": [
                {"class_id": i % 2, "left": 10 + i, "top": 20, "width": 30, "height": 40} for i in range(boxes)
            ],
        },
        "bounding-box-metadata": {
            "objects": [{"confidence": 1} for _ in range(boxes)],
            "class-map": {"0": "Gear", "1": "Flange"} if boxes > 1 else {"0": "Gear"},
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": "2026-01-01T00:00:00",
            "job-name": "labeling-job/test",
        },
    }


def text(*lines: dict[str, Any] | str) -> str:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"


def edited(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    line = copy.deepcopy(good(1))
    change(line)
    return line


def test_good_lines_become_labelled_boxes() -> None:
    read = read_manifest(text(good(0, boxes=2), good(1)))
    assert read.problems == []
    assert [e.problems for e in read.entries] == [[], []]
    first = read.entries[0]
    assert (first.bucket, first.key, first.size) == ("b", "images/0.png", (W, H))
    assert first.labels == ["Gear", "Flange"]
    assert first.boxes[1].corners == (11, 20, 41, 60)
    assert parse_entry(json.dumps(good(0, boxes=2))).labels == ["Gear", "Flange"]


def test_blank_lines_are_not_entries_but_line_numbers_count_them() -> None:
    read = read_manifest(text(good(0), "", good(1)))
    assert [e.number for e in read.entries] == [1, 3]


def box(**values: int) -> Callable[[dict[str, Any]], None]:
    return lambda line: line["bounding-box"]["annotations"][0].update(values)


def size(width: int, height: int) -> Callable[[dict[str, Any]], None]:
    def change(line: dict[str, Any]) -> None:
        line["bounding-box"]["image_size"][0].update(width=width, height=height)
        line["bounding-box"]["annotations"][0].update(left=0, top=0, width=min(width, 30), height=min(height, 30))

    return change


def meta(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda line: line["bounding-box-metadata"].update(values)


def many_boxes(count: int) -> Callable[[dict[str, Any]], None]:
    def change(line: dict[str, Any]) -> None:
        line["bounding-box"]["annotations"] = [
            {"class_id": 0, "left": i, "top": 0, "width": 5, "height": 5} for i in range(count)
        ]
        line["bounding-box-metadata"]["objects"] = [{"confidence": 1}] * count

    return change


# (why, the second line of a two-line manifest, the field the problem names)
BAD: list[tuple[str, dict[str, Any] | str, str]] = [
    ("not JSON", "{nope", "line"),
    ("NaN", json.dumps(good(1)).replace('"confidence": 1', '"confidence": NaN'), "line"),
    ("not an object", "[1, 2]", "line"),
    ("too long", edited(meta(**{"job-name": "x" * 100_001})), "line"),
    ("no source-ref", edited(lambda line: line.pop("source-ref")), "source-ref"),
    ("https source-ref", edited(lambda line: line.update({"source-ref": "https://b/x.png"})), "source-ref"),
    ("duplicate image", good(0), "source-ref"),
    ("second bucket", good(1, bucket="other"), "source-ref"),
    ("no label attribute", edited(lambda line: line.pop("bounding-box")), "bounding-box"),
    ("no metadata", edited(lambda line: line.pop("bounding-box-metadata")), "bounding-box-metadata"),
    ("wrong type", edited(meta(type="groundtruth/image-classification")), "bounding-box-metadata.type"),
    ("human-annotated", edited(meta(**{"human-annotated": "maybe"})), "bounding-box-metadata.human-annotated"),
    ("creation-date", edited(meta(**{"creation-date": "yesterday"})), "bounding-box-metadata.creation-date"),
    ("class-map key", edited(meta(**{"class-map": {"zero": "Gear"}})), 'bounding-box-metadata.class-map["zero"]'),
    ("label name too long", edited(meta(**{"class-map": {"0": "x" * 257}})), 'bounding-box-metadata.class-map["0"]'),
    ("class renamed", edited(meta(**{"class-map": {"0": "Bolt"}})), 'bounding-box-metadata.class-map["0"]'),
    ("two sizes", edited(lambda line: line["bounding-box"]["image_size"].append({})), "bounding-box.image_size"),
    ("63 px wide", edited(size(63, 480)), "bounding-box.image_size[0].width"),
    ("4097 px high", edited(size(640, 4097)), "bounding-box.image_size[0].height"),
    ("21:1", edited(size(2100, 100)), "bounding-box.image_size[0]"),
    ("51 boxes", edited(many_boxes(51)), "bounding-box.annotations"),
    ("unknown class", edited(box(class_id=3)), "bounding-box.annotations[0].class_id"),
    ("float box", edited(box(left=1.5)), "bounding-box.annotations[0].left"),
    ("negative offset", edited(box(top=-1)), "bounding-box.annotations[0].top"),
    ("zero width", edited(box(width=0)), "bounding-box.annotations[0].width"),
    ("leaves right edge", edited(box(left=620, width=30)), "bounding-box.annotations[0].width"),
    ("leaves bottom edge", edited(box(top=460, height=30)), "bounding-box.annotations[0].height"),
    ("objects count", edited(meta(objects=[])), "bounding-box-metadata.objects"),
    ("confidence", edited(meta(objects=[{"confidence": 2}])), "bounding-box-metadata.objects[0].confidence"),
]


@pytest.mark.parametrize(("line", "where"), [(line, where) for _, line, where in BAD], ids=[b[0] for b in BAD])
def test_each_documented_rule_rejects_the_line_that_breaks_it(line: dict[str, Any] | str, where: str) -> None:
    read = read_manifest(text(good(0), line))
    first, second = read.entries
    assert first.problems == []
    assert any(p.startswith(f"{where}: ") for p in second.problems), second.problems
    assert second.labels == []  # Rekognition ignores the labels of a line it rejects


def test_limits_at_the_edge_are_accepted() -> None:
    edges = [
        edited(size(64, 1280)),  # 20:1 exactly
        edited(size(4096, 4096)),
        edited(many_boxes(50)),
        edited(meta(**{"class-map": {"0": "Gear"}, "job-name": "x" * 10})),
        edited(box(left=610, width=30)),  # right edge exactly on the border
    ]
    for index, line in enumerate(edges):
        line["source-ref"] = f"s3://b/edge/{index}.png"
        read = read_manifest(text(line))
        assert read.entries[0].problems == [], (index, read.entries[0].problems)


def test_boxes_are_measured_after_the_training_resize() -> None:
    # A 4096 px wide image is scaled by 1280/4096: a 4 px box becomes 1.25 px (kept), a 3 px one 0.94 px (refused).
    def wide(box_width: int, n: int) -> dict[str, Any]:
        line = good(n)
        line["bounding-box"]["image_size"][0].update(width=4096, height=1024)
        line["bounding-box"]["annotations"][0].update(width=box_width, height=box_width)
        return line

    read = read_manifest(text(wide(4, 0), wide(3, 1)))
    assert read.entries[0].problems == []
    assert any("too small" in p for p in read.entries[1].problems)


def test_whole_manifest_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert read_manifest("").problems == ["the manifest has no JSON lines"]
    no_boxes = edited(many_boxes(0))
    assert any("at least 1 label" in p for p in read_manifest(text(no_boxes)).problems)
    # 251 labels, five per line.
    lines = []
    for n in range(51):
        line = edited(many_boxes(5))
        line["source-ref"] = f"s3://b/labels/{n}.png"
        for i, annotation in enumerate(line["bounding-box"]["annotations"]):
            annotation["class_id"] = n * 5 + i
        line["bounding-box-metadata"]["class-map"] = {str(n * 5 + i): f"label-{n * 5 + i}" for i in range(5)}
        lines.append(line)
    assert any("255 labels; the limit is 250" in p for p in read_manifest(text(*lines)).problems)
    assert read_manifest(text(*lines[:50])).problems == []
    # The line and byte limits are too large to build here: shrink them to show they are enforced.
    monkeypatch.setattr(manifest, "MAX_LINES", 2)
    assert any("3 lines; the limit is 2" in p for p in read_manifest(text(good(0), good(1), good(2))).problems)
    monkeypatch.setattr(manifest, "MAX_MANIFEST_BYTES", 100)
    assert any("the limit is 100" in p for p in read_manifest(text(good(0))).problems)


def _probe(facts: dict[str, ImageFacts | str]) -> Callable[[str, str], ImageFacts | str]:
    return lambda bucket, key: facts[key]


def test_image_files_are_checked_through_the_probe() -> None:
    lines = [good(n) for n in range(5)]
    facts: dict[str, ImageFacts | str] = {
        "images/0.png": ImageFacts(1000, "PNG", W, H),
        "images/1.png": ImageFacts(15_000_001, "PNG", W, H),
        "images/2.png": ImageFacts(1000, "GIF", W, H),
        "images/3.png": ImageFacts(1000, "JPEG", W + 1, H),
        "images/4.png": "s3://b/images/4.png: NoSuchKey",
    }
    read = read_manifest(text(*lines), probe=_probe(facts))
    problems = [e.problems for e in read.entries]
    assert problems[0] == []
    assert any("15 MB" in p for p in problems[1])
    assert any("PNG or JPEG" in p for p in problems[2])
    assert any(p.startswith("bounding-box.image_size[0]: ") for p in problems[3])
    assert problems[4] == ["source-ref: s3://b/images/4.png: NoSuchKey"]


def test_image_facts_reads_png_and_jpeg_headers(tmp_path: Path) -> None:
    for fmt, suffix in (("PNG", "png"), ("JPEG", "jpg")):
        buffer = io.BytesIO()
        Image.new("RGB", (70, 90)).save(buffer, format=fmt)
        path = tmp_path / f"x.{suffix}"
        path.write_bytes(buffer.getvalue())
        assert image_facts(path) == ImageFacts(len(buffer.getvalue()), fmt, 70, 90)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert "not a readable image" in image_facts(tmp_path / "bad.png")
    assert "no image file" in image_facts(tmp_path / "missing.png")
