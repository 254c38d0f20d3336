"""Ground Truth manifests: the documented line shape, byte-stable output, round trips, and shard merges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.groundtruth import (
    LabelledBox,
    MalformedLabels,
    ManifestMergeError,
    dumps_line,
    image_labels,
    manifest_line,
    merge_manifests,
    read_class_map,
    read_labelled_line,
    read_manifest,
    write_manifest,
)
from include.rendering.types import Box, RenderedImage

CLASS_MAP = {0: "Gear_Housing", 1: "Spur_Gear", 2: "Bearing_Cover"}
DATE = "2026-01-01T00:00:00"
JOB = "labeling-job/gearbox"
BASE = "s3://datasets/gearbox/v1/"


def box(class_id: int, left: int, top: int, width: int, height: int, confidence: float = 1.0) -> Box:
    return Box(class_id, left, top, width, height, width * height, 1.0, confidence)


def image(name: str, *boxes: Box, width: int = 640, height: int = 480) -> RenderedImage:
    return RenderedImage(f"images/{name}.png", width, height, list(boxes))


def line_for(img: RenderedImage, **kwargs) -> dict:
    return manifest_line(img, BASE + img.file_name, CLASS_MAP, job_name=JOB, creation_date=DATE, **kwargs)


def boxes_of(images: list[RenderedImage]) -> list[tuple]:
    return [
        (
            im.file_name,
            im.width,
            im.height,
            [(b.class_id, b.left, b.top, b.width, b.height, b.confidence) for b in im.boxes],
        )
        for im in images
    ]


def test_manifest_line_matches_the_documented_shape():
    img = image("c01_000007", box(1, 399, 251, 155, 101), box(0, 86, 65, 220, 334, 0.5))
    assert line_for(img) == {
        "source-ref": "s3://datasets/gearbox/v1/images/c01_000007.png",
        "bounding-box": {
            "image_size": [{"width": 640, "height": 480, "depth": 3}],
            "annotations": [
                {"class_id": 1, "top": 251, "left": 399, "width": 155, "height": 101},
                {"class_id": 0, "top": 65, "left": 86, "width": 220, "height": 334},
            ],
        },
        "bounding-box-metadata": {
            "objects": [{"confidence": 1.0}, {"confidence": 0.5}],
            # Only the classes in this image: class 2 has no box here.
            "class-map": {"0": "Gear_Housing", "1": "Spur_Gear"},
            "type": "groundtruth/object-detection",
            "human-annotated": "no",
            "creation-date": "2026-01-01T00:00:00",
            "job-name": "labeling-job/gearbox",
        },
    }


def test_attribute_name_and_human_annotated_are_parameters():
    line = line_for(image("a", box(2, 1, 2, 30, 40)), attribute="parts", human_annotated=True)
    assert set(line) == {"source-ref", "parts", "parts-metadata"}
    assert line["parts-metadata"]["human-annotated"] == "yes"


def test_an_image_without_boxes_has_empty_lists():
    line = line_for(image("empty"))
    assert line["bounding-box"]["annotations"] == []
    assert line["bounding-box-metadata"]["objects"] == []
    assert line["bounding-box-metadata"]["class-map"] == {}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"source_ref": "https://bucket/a.png"}, "s3://"),
        ({"creation_date": "yesterday"}, "ISO 8601"),
        ({"image": image("x", box(9, 0, 0, 10, 10))}, r"class ids \[9\]"),
    ],
)
def test_manifest_line_refuses_bad_input(kwargs, error):
    args = {"image": image("x"), "source_ref": BASE + "x.png", "creation_date": DATE} | kwargs
    with pytest.raises(ValueError, match=error):
        manifest_line(args["image"], args["source_ref"], CLASS_MAP, job_name=JOB, creation_date=args["creation_date"])


def test_dumps_line_is_compact_and_key_order_independent():
    line = line_for(image("a", box(0, 1, 2, 30, 40)))
    reordered = json.loads(json.dumps(dict(reversed(list(line.items())))))
    text = dumps_line(line)
    assert text == dumps_line(reordered)
    assert " " not in text and "\n" not in text
    assert text.startswith('{"bounding-box":{"annotations":[{"class_id":0,"height":40,"left":1,')


def test_write_then_read_round_trips(tmp_path: Path):
    images = [
        image("c00_000000", box(0, 10, 20, 30, 40), box(2, 100, 50, 60, 70, 0.75)),
        image("c01_000000", box(1, 0, 0, 640, 480)),
        image("c02_000000"),
    ]
    path = write_manifest(tmp_path / "shard.jsonl", [line_for(im) for im in images])
    text = path.read_text()
    assert text.endswith("\n") and text.count("\n") == 3
    assert all(raw == raw.strip() for raw in text.splitlines())

    back = read_manifest(path, base_uri=BASE)
    assert boxes_of(back) == boxes_of(images)
    assert [im.meta["source_ref"] for im in back] == [BASE + im.file_name for im in images]
    assert read_class_map(path) == CLASS_MAP
    assert read_manifest(text, base_uri=BASE.rstrip("/")) == back  # text in, trailing slash optional
    assert read_manifest(path)[0].file_name == "gearbox/v1/images/c00_000000.png"  # no base: the object key


def test_read_manifest_refuses_source_refs_outside_base_uri(tmp_path: Path):
    path = write_manifest(tmp_path / "m.jsonl", [line_for(image("a"))])
    with pytest.raises(ValueError, match="line 1.*not under"):
        read_manifest(path, base_uri="s3://elsewhere/")


def test_read_class_map_refuses_conflicting_names():
    first = line_for(image("a", box(0, 1, 1, 9, 9)))
    second = line_for(image("b", box(0, 1, 1, 9, 9)))
    second["bounding-box-metadata"]["class-map"]["0"] = "Renamed"
    with pytest.raises(ValueError, match="line 2: class 0 is 'Renamed'"):
        read_class_map(dumps_line(first) + "\n" + dumps_line(second) + "\n")


def test_write_manifest_is_deterministic_and_leaves_no_temp_files(tmp_path: Path):
    lines = [line_for(image(f"c00_{i:06d}", box(0, i, i, 10, 10))) for i in range(5)]
    first = write_manifest(tmp_path / "a.jsonl", lines).read_bytes()
    second = write_manifest(tmp_path / "a.jsonl", lines).read_bytes()
    assert first == second
    assert [p.name for p in tmp_path.iterdir()] == ["a.jsonl"]


def test_a_failed_write_keeps_the_old_manifest(tmp_path: Path):
    path = write_manifest(tmp_path / "a.jsonl", [line_for(image("old"))])
    before = path.read_bytes()

    def broken():
        yield line_for(image("new"))
        raise RuntimeError("renderer died")

    with pytest.raises(RuntimeError):
        write_manifest(path, broken())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.jsonl"]


def _shards(tmp_path: Path) -> list[Path]:
    names = [["c02_000001", "c00_000001"], ["c01_000000", "c00_000000"]]
    return [
        write_manifest(tmp_path / f"shard-{i}.jsonl", [line_for(image(n, box(0, 1, 1, 9, 9))) for n in shard])
        for i, shard in enumerate(names)
    ]


def test_merge_sorts_by_source_ref_and_is_stable_across_reruns(tmp_path: Path):
    shards = _shards(tmp_path)
    assert merge_manifests(shards, tmp_path / "merged.jsonl") == 4
    refs = [im.meta["source_ref"] for im in read_manifest(tmp_path / "merged.jsonl")]
    assert refs == sorted(refs) and len(refs) == 4
    first = (tmp_path / "merged.jsonl").read_bytes()
    merge_manifests(list(reversed(shards)), tmp_path / "merged.jsonl")
    assert (tmp_path / "merged.jsonl").read_bytes() == first


def test_merge_refuses_an_image_listed_twice(tmp_path: Path):
    shards = _shards(tmp_path)
    again = write_manifest(tmp_path / "rerun.jsonl", [line_for(image("c01_000000", box(1, 2, 2, 9, 9)))])
    with pytest.raises(
        ManifestMergeError, match=r"c01_000000\.png appears twice: .*shard-1\.jsonl line 1 and .*rerun\.jsonl line 1"
    ):
        merge_manifests([*shards, again], tmp_path / "merged.jsonl")
    assert not (tmp_path / "merged.jsonl").exists()


def test_image_labels_names_the_boxed_classes_per_image() -> None:
    images = [image("a", box(1, 0, 0, 9, 9), box(0, 5, 5, 9, 9)), image("b")]
    text = "".join(dumps_line(line_for(i)) + "\n" for i in images)
    assert image_labels(text) == {BASE + "images/a.png": ["Gear_Housing", "Spur_Gear"], BASE + "images/b.png": []}
    broken = text.replace('"class_id":1', '"class_id":7', 1)
    with pytest.raises(ValueError, match=r"line 1: class ids \['7'\]"):
        image_labels(broken)


def test_read_labelled_line_finds_any_detection_attribute_and_keeps_float_boxes() -> None:
    raw = json.dumps(
        {
            "source-ref": "s3://photos/a.jpg",
            "my-job": {
                "image_size": [{"width": 640, "height": 480, "depth": 3}],
                "annotations": [{"class_id": 3, "left": 1.5, "top": 2, "width": 10, "height": 20.25}],
            },
            "my-job-metadata": {
                "type": "groundtruth/object-detection",
                "class-map": {"3": "gear"},
                "objects": [{"confidence": 0.5}],
                "human-annotated": "no",
            },
        }
    )
    line = read_labelled_line(raw)
    assert (line.source_ref, line.stated_size, line.human_annotated) == ("s3://photos/a.jpg", (640, 480), False)
    assert line.boxes == [LabelledBox("gear", 1.5, 2.0, 10.0, 20.25, 0.5)]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"source-ref": "s3://p/a.jpg"}', "no label attribute"),
        (
            '{"x": {}, "x-metadata": {"type": "groundtruth/image-classification"}, "source-ref": "s3://p/a"}',
            "no object-detection label",
        ),
        (
            '{"source-ref": "s3://p/a", "x": {"annotations": [{"class_id": 1, "left": 0, "top": 0, "width": 1, '
            '"height": 1}]}, "x-metadata": {"type": "groundtruth/object-detection", "class-map": {}}}',
            "has no name in the class-map",
        ),
        (
            '{"source-ref": "s3://p/a", "x": {"annotations": [{"class_id": 1, "left": NaN, "top": 0, "width": 1, '
            '"height": 1}]}, "x-metadata": {"type": "groundtruth/object-detection", "class-map": {"1": "g"}}}',
            "must be a number",
        ),
    ],
)
def test_read_labelled_line_names_the_problem(raw: str, message: str) -> None:
    with pytest.raises(MalformedLabels, match=message):
        read_labelled_line(raw)
