"""The manifest validator: a good manifest passes; each kind of bad line is named by line number and field."""

from __future__ import annotations

import copy
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from include.groundtruth import dumps_line, manifest_line, validate
from include.groundtruth.validate import ManifestError, ManifestIssue, check_manifest, main, validate_manifest
from include.rendering.types import Box, RenderedImage
from tests import REPO

W, H = 128, 96
CLASS_MAP = {0: "Gear_Housing", 1: "Spur_Gear"}
BUCKET = "data"


def good_line(n: int, bucket: str = BUCKET) -> dict[str, Any]:
    boxes = [Box(0, 10, 10, 20, 20, 400, 1.0), Box(1, 50, 30, 40, 30, 1200, 0.9)]
    image = RenderedImage(f"images/{n}.png", W, H, boxes)
    return manifest_line(
        image, f"s3://{bucket}/ds/images/{n}.png", CLASS_MAP, job_name="labeling-job/t", creation_date="2026-01-01"
    )


def manifest(*lines: dict | str) -> str:
    return "".join((line if isinstance(line, str) else dumps_line(line)) + "\n" for line in lines)


def good_manifest(count: int = 3) -> str:
    return manifest(*(good_line(n) for n in range(1, count + 1)))


def write_pngs(root: Path, count: int = 3, size: tuple[int, int] = (W, H)) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    for n in range(1, count + 1):
        Image.new("RGB", size, (90, 90, 90)).save(root / "images" / f"{n}.png")


# -- mutations of line 2 ------------------------------------------------------------------------------------
def edit(fn: Callable[[dict], Any]) -> Callable[[dict], dict]:
    def apply(line: dict) -> dict:
        fn(line)
        return line

    return apply


def ann(i: int, **values: Any) -> Callable[[dict], dict]:
    return edit(lambda line: line["bounding-box"]["annotations"][i].update(values))


def meta(**values: Any) -> Callable[[dict], dict]:
    return edit(lambda line: line["bounding-box-metadata"].update(values))


def size(**values: Any) -> Callable[[dict], dict]:
    return edit(lambda line: line["bounding-box"]["image_size"][0].update(values))


def one_box(width: int, height: int, box: tuple[int, int, int, int]) -> Callable[[dict], dict]:
    left, top, bw, bh = box

    def apply(line: dict) -> dict:
        line["bounding-box"] = {
            "image_size": [{"width": width, "height": height, "depth": 3}],
            "annotations": [{"class_id": 0, "left": left, "top": top, "width": bw, "height": bh}],
        }
        line["bounding-box-metadata"].update(objects=[{"confidence": 1.0}], **{"class-map": {"0": "Gear_Housing"}})
        return line

    return apply


def many_boxes(line: dict) -> dict:
    line["bounding-box"]["annotations"] = [
        {"class_id": 0, "left": i, "top": 0, "width": 5, "height": 5} for i in range(51)
    ]
    line["bounding-box-metadata"].update(objects=[{"confidence": 1.0}] * 51, **{"class-map": {"0": "Gear_Housing"}})
    return line


def long_label(line: dict) -> dict:
    line["bounding-box"]["annotations"][1]["class_id"] = 7
    line["bounding-box-metadata"]["class-map"] = {"0": "Gear_Housing", "7": "x" * 257}
    return line


BAD_LINES = [
    ("not JSON", lambda line: dumps_line(line)[:-1], "line", "not valid JSON"),
    ("blank", lambda line: "", "line", "blank line"),
    (
        "NaN",
        lambda line: dumps_line(line).replace('"confidence":1.0', '"confidence":NaN', 1),
        "line",
        "NaN is not JSON",
    ),
    ("not an object", lambda line: "[1, 2]", "line", "must be a JSON object, not list"),
    ("too long", meta(**{"job-name": "x" * 100_001}), "line", "characters; Rekognition's limit is 100000"),
    ("no source-ref", edit(lambda line: line.pop("source-ref")), "source-ref", "missing"),
    (
        "https source-ref",
        edit(lambda line: line.update({"source-ref": "https://x/y.png"})),
        "source-ref",
        "s3://bucket/key",
    ),
    (
        "duplicate",
        edit(lambda line: line.update({"source-ref": good_line(1)["source-ref"]})),
        "source-ref",
        "already on line 1",
    ),
    ("other bucket", lambda line: good_line(2, bucket="other"), "source-ref", "must be in one bucket"),
    ("no label", edit(lambda line: line.pop("bounding-box")), "bounding-box", "missing"),
    ("no metadata", edit(lambda line: line.pop("bounding-box-metadata")), "bounding-box-metadata", "missing"),
    (
        "image_size shape",
        edit(lambda line: line["bounding-box"].update(image_size={"width": W})),
        "bounding-box.image_size",
        "exactly one",
    ),
    (
        "no depth",
        edit(lambda line: line["bounding-box"]["image_size"][0].pop("depth")),
        "bounding-box.image_size[0].depth",
        "positive integer",
    ),
    (
        "narrow image",
        one_box(63, H, (1, 1, 10, 10)),
        "bounding-box.image_size[0].width",
        "63 px; Rekognition takes 64..4096",
    ),
    ("huge image", one_box(4097, 300, (1, 1, 10, 10)), "bounding-box.image_size[0].width", "4097 px"),
    (
        "aspect ratio",
        one_box(2000, 96, (1, 1, 10, 10)),
        "bounding-box.image_size[0]",
        "aspect ratio of 2000 x 96 exceeds 20:1",
    ),
    (
        "no annotations",
        edit(lambda line: line["bounding-box"].pop("annotations")),
        "bounding-box.annotations",
        "missing",
    ),
    ("51 boxes", many_boxes, "bounding-box.annotations", "51 boxes; Rekognition allows at most 50"),
    (
        "past right edge",
        ann(1, left=100),
        "bounding-box.annotations[1].width",
        "box extends past the image (left 100 + width 40 > 128)",
    ),
    (
        "past bottom edge",
        ann(0, top=90),
        "bounding-box.annotations[0].height",
        "box extends past the image (top 90 + height 20 > 96)",
    ),
    ("negative left", ann(0, left=-1), "bounding-box.annotations[0].left", "negative offset -1"),
    ("zero width", ann(0, width=0), "bounding-box.annotations[0].width", "must be > 0, got 0"),
    ("float top", ann(0, top=10.5), "bounding-box.annotations[0].top", "must be an integer (pixels), got 10.5"),
    (
        "unknown class",
        ann(0, class_id=5),
        "bounding-box.annotations[0].class_id",
        "5 is not in bounding-box-metadata.class-map (known: 0, 1)",
    ),
    ("1 px box", ann(0, width=1, height=1), "bounding-box.annotations[0]", "box is too small: 1 x 1 px"),
    (
        "small after resize",
        one_box(2560, 2000, (0, 0, 2, 100)),
        "bounding-box.annotations[0]",
        "1.00 x 50.00 px after Rekognition resizes",
    ),
    (
        "objects count",
        edit(lambda line: line["bounding-box-metadata"]["objects"].pop()),
        "bounding-box-metadata.objects",
        "1 objects for 2 annotations",
    ),
    (
        "confidence > 1",
        edit(lambda line: line["bounding-box-metadata"]["objects"][0].update(confidence=1.5)),
        "bounding-box-metadata.objects[0].confidence",
        "0..1, got 1.5",
    ),
    (
        "no confidence",
        edit(lambda line: line["bounding-box-metadata"]["objects"][1].clear()),
        "bounding-box-metadata.objects[1].confidence",
        "got None",
    ),
    (
        "type",
        meta(type="groundtruth/image-classification"),
        "bounding-box-metadata.type",
        "must be 'groundtruth/object-detection'",
    ),
    ("human-annotated", meta(**{"human-annotated": "maybe"}), "bounding-box-metadata.human-annotated", "'yes' or 'no'"),
    ("creation-date", meta(**{"creation-date": "yesterday"}), "bounding-box-metadata.creation-date", "ISO 8601"),
    ("job-name", meta(**{"job-name": 5}), "bounding-box-metadata.job-name", "must be a string"),
    (
        "no class-map",
        edit(lambda line: line["bounding-box-metadata"].pop("class-map")),
        "bounding-box-metadata.class-map",
        "missing",
    ),
    (
        "class-map key",
        edit(lambda line: line["bounding-box-metadata"]["class-map"].update(zero="x")),
        'bounding-box-metadata.class-map["zero"]',
        "integer class ids",
    ),
    (
        "renamed class",
        edit(lambda line: line["bounding-box-metadata"]["class-map"].update({"0": "Other"})),
        'bounding-box-metadata.class-map["0"]',
        "class 0 is 'Other' here but 'Gear_Housing' on line 1",
    ),
    (
        "long label",
        long_label,
        'bounding-box-metadata.class-map["7"]',
        "label name is 257 characters; the limit is 256",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "field", "message"), [case[1:] for case in BAD_LINES], ids=[c[0] for c in BAD_LINES]
)
def test_each_kind_of_bad_line_is_flagged_on_its_line_and_field(mutate, field, message):
    text = manifest(good_line(1), mutate(copy.deepcopy(good_line(2))), good_line(3))
    issues = validate_manifest(text)
    assert len(issues) == 1, "\n".join(map(str, issues))
    assert (issues[0].line, issues[0].field) == (2, field)
    assert message in issues[0].message


def test_a_good_manifest_passes():
    assert validate_manifest(good_manifest()) == []
    assert check_manifest(good_manifest()) == 3


def test_issue_text_names_the_line_and_field():
    text = manifest(good_line(1), ann(1, left=100)(good_line(2)))
    [issue] = validate_manifest(text)
    assert (
        str(issue)
        == "line 2, bounding-box.annotations[1].width: box extends past the image (left 100 + width 40 > 128)"
    )
    with pytest.raises(ManifestError) as caught:
        check_manifest(text)
    assert caught.value.issues == [issue]
    assert "line 2, bounding-box.annotations[1].width" in str(caught.value)


def test_several_problems_are_all_reported_in_line_order():
    text = manifest(ann(0, left=-1)(good_line(1)), good_line(2), meta(type="x")(good_line(3)), "")
    assert [(i.line, i.field) for i in validate_manifest(text)] == [
        (1, "bounding-box.annotations[0].left"),
        (3, "bounding-box-metadata.type"),
        (4, "line"),
    ]


def test_a_custom_attribute_name_is_checked_under_its_own_name():
    line = manifest_line(
        RenderedImage("a.png", W, H, [Box(0, 0, 0, 500, 5, 0, 1.0)]),
        "s3://b/a.png",
        CLASS_MAP,
        job_name="j",
        creation_date="2026-01-01",
        attribute="parts",
    )
    [issue] = validate_manifest(manifest(line), attribute="parts")
    assert issue.field == "parts.annotations[0].width"


def test_manifest_wide_problems_are_on_line_zero():
    assert validate_manifest("") == [ManifestIssue(0, "manifest", "empty manifest: no JSON lines")]
    background = good_line(2)
    background["bounding-box"]["annotations"] = []
    background["bounding-box-metadata"].update(objects=[], **{"class-map": {}})
    assert validate_manifest(manifest(good_line(1), background)) == []  # images without boxes are allowed
    [issue] = validate_manifest(manifest(background))
    assert (issue.line, issue.field) == (0, "annotations") and "at least 1 label" in issue.message


def test_more_than_250_labels_is_flagged():
    lines = []
    for n in range(251):
        line = good_line(n)
        line["bounding-box"]["annotations"] = [{"class_id": n, "left": 0, "top": 0, "width": 5, "height": 5}]
        line["bounding-box-metadata"].update(objects=[{"confidence": 1.0}], **{"class-map": {str(n): f"part_{n}"}})
        lines.append(line)
    [issue] = validate_manifest(manifest(*lines))
    assert (issue.line, issue.field) == (0, "class-map") and "251 unique labels" in issue.message


# -- image files on local disk ------------------------------------------------------------------------------
def test_local_images_pass_when_they_match(tmp_path: Path):
    write_pngs(tmp_path)
    assert validate_manifest(good_manifest(), image_root=tmp_path, strip_prefix="ds/") == []


@pytest.mark.parametrize(
    ("spoil", "field", "message"),
    [
        (lambda p: p.unlink(), "source-ref", "no image file at"),
        (
            lambda p: Image.new("RGB", (100, H)).save(p, format="PNG"),
            "bounding-box.image_size[0]",
            "declares 128 x 96 but the image is 100 x 96",
        ),
        (
            lambda p: Image.new("RGB", (W, H)).save(p, format="GIF"),
            "source-ref",
            "image is GIF; Rekognition takes PNG or JPEG",
        ),
        (lambda p: p.write_bytes(b"not an image"), "source-ref", "not a readable image"),
    ],
    ids=["missing", "wrong size", "gif", "garbage"],
)
def test_local_image_problems_are_flagged(tmp_path: Path, spoil, field, message):
    write_pngs(tmp_path)
    spoil(tmp_path / "images" / "2.png")
    [issue] = validate_manifest(good_manifest(), image_root=tmp_path, strip_prefix="ds/")
    assert (issue.line, issue.field) == (2, field)
    assert message in issue.message


def test_oversized_image_files_are_flagged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_pngs(tmp_path)
    monkeypatch.setattr(validate, "MAX_IMAGE_BYTES", 100)
    issues = validate_manifest(good_manifest(), image_root=tmp_path, strip_prefix="ds/")
    assert [(i.line, i.field) for i in issues] == [(1, "source-ref"), (2, "source-ref"), (3, "source-ref")]
    assert "the limit is 15 MB" in issues[0].message


def test_keys_outside_the_strip_prefix_are_flagged(tmp_path: Path):
    write_pngs(tmp_path)
    issues = validate_manifest(good_manifest(1), image_root=tmp_path, strip_prefix="other/")
    assert [str(i) for i in issues] == [
        f"line 1, source-ref: key 'ds/images/1.png' does not start with 'other/', so it has no place under {tmp_path}"
    ]


def test_image_root_and_s3_client_are_exclusive(tmp_path: Path):
    with pytest.raises(ValueError, match="not both"):
        validate_manifest(good_manifest(), image_root=tmp_path, s3_client=object())


# -- image files in S3 (a live localcloud) -------------------------------------------------------------------
def test_s3_images_are_checked_through_head_and_range_reads(s3, tmp_path: Path):
    bucket = f"gt-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    write_pngs(tmp_path, count=2)
    s3.upload_file(str(tmp_path / "images" / "1.png"), bucket, "ds/images/1.png")
    # A JPEG whose size marker sits behind 100 KB of ICC profile: the 64 KB header read must fall back.
    Image.new("RGB", (W, H), (200, 10, 10)).save(tmp_path / "3.jpg", format="JPEG", icc_profile=b"\0" * 100_000)
    s3.upload_file(str(tmp_path / "3.jpg"), bucket, "ds/images/3.png")
    text = manifest(*(good_line(n, bucket) for n in range(1, 4)))

    issues = validate_manifest(text, s3_client=s3)
    assert [str(i) for i in issues] == [f"line 2, source-ref: s3://{bucket}/ds/images/2.png does not exist"]

    Image.new("RGB", (W, 64)).save(tmp_path / "small.png")
    s3.upload_file(str(tmp_path / "small.png"), bucket, "ds/images/2.png")
    [issue] = validate_manifest(text, s3_client=s3)
    assert (issue.line, issue.field) == (2, "bounding-box.image_size[0]")
    assert "declares 128 x 96 but the image is 128 x 64" in issue.message


# -- command line --------------------------------------------------------------------------------------------
def test_cli_prints_issues_and_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "m.jsonl"
    path.write_text(manifest(good_line(1), ann(0, width=0)(good_line(2))))
    assert main([str(path)]) == 1
    assert "line 2, bounding-box.annotations[0].width: must be > 0, got 0" in capsys.readouterr().out

    write_pngs(tmp_path)
    path.write_text(good_manifest())
    assert main([str(path), "--image-root", str(tmp_path), "--strip-prefix", "ds/"]) == 0


def test_cli_runs_as_a_module(tmp_path: Path):
    path = tmp_path / "m.jsonl"
    path.write_text(manifest(meta(type="x")(good_line(1))))
    run = subprocess.run(
        [sys.executable, "-m", "include.groundtruth.validate", str(path)], cwd=REPO, capture_output=True, text=True
    )
    assert run.returncode == 1
    assert "line 1, bounding-box-metadata.type" in run.stdout
