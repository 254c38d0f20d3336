"""Importing labelled real photos (Ground Truth, COCO, Pascal VOC) from S3 into a Rekognition-ready manifest."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from include.custom_labels.imports import LabelImportError, import_labels
from include.groundtruth import load_lines, read_manifest
from include.groundtruth.validate import validate_manifest

JOB = "import/gearbox-photos"
DATE = "2026-01-01T00:00:00"
CLASSES = ["bearing_cover", "gear_housing", "spur_gear"]


def png(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(out, format="PNG")
    return out.getvalue()


def jpeg(width: int = 640, height: int = 480, orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (width, height), (150, 120, 90))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


@pytest.fixture
def bucket(s3) -> str:
    name = f"photos-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def put(s3, bucket: str, files: dict[str, bytes | str | dict]) -> None:
    for key, body in files.items():
        data = json.dumps(body).encode() if isinstance(body, dict) else body.encode() if isinstance(body, str) else body
        s3.put_object(Bucket=bucket, Key=key, Body=data)


def run(s3, bucket: str, **kwargs) -> dict:
    kwargs.setdefault("job_name", JOB)
    kwargs.setdefault("creation_date", DATE)
    return import_labels(s3, f"s3://{bucket}/photos/", f"s3://{bucket}/out/test.manifest", **kwargs)


def output(s3, bucket: str) -> str:
    return s3.get_object(Bucket=bucket, Key="out/test.manifest")["Body"].read().decode()


def geometry(text: str) -> list[tuple]:
    class_maps = {line["source-ref"]: line["bounding-box-metadata"]["class-map"] for _, line in load_lines(text)}
    return [
        (
            image.meta["source_ref"],
            image.width,
            image.height,
            [
                (class_maps[image.meta["source_ref"]][str(b.class_id)], b.left, b.top, b.width, b.height)
                for b in image.boxes
            ],
        )
        for image in read_manifest(text)
    ]


def reasons(summary: dict) -> dict[str, str]:
    return {item["entry"]: item["reason"] for item in summary["rejected"]}


def gt_line(ref: str, boxes: list[tuple[int, str, int, int, int, int]], size=(640, 480), attribute="my-job") -> str:
    names = {class_id: name for class_id, name, *_ in boxes}
    return json.dumps(
        {
            "source-ref": ref,
            attribute: {
                "image_size": [{"width": size[0], "height": size[1], "depth": 3}],
                "annotations": [
                    {"class_id": c, "left": left, "top": top, "width": w, "height": h}
                    for c, _, left, top, w, h in boxes
                ],
            },
            f"{attribute}-metadata": {
                "objects": [{"confidence": 0.9} for _ in boxes],
                "class-map": {str(c): n for c, n in names.items()},
                "type": "groundtruth/object-detection",
                "human-annotated": "yes",
                "creation-date": "2024-05-01T10:00:00",
                "job-name": "labeling-job/my-job",
            },
        }
    )


def test_ground_truth_manifest_is_normalised_and_repointed_at_the_photos(s3, bucket):
    put(
        s3,
        bucket,
        {
            "photos/img/a.png": png(),
            "photos/img/b.jpg": jpeg(800, 600),
            # Exported from a labelling job in another bucket: the photos are found here by file name.
            "photos/labels.manifest": "\n".join(
                [
                    gt_line("s3://labeling-bucket/raw/b.jpg", [(4, "spur_gear", 10, 20, 100, 50)], size=(800, 600)),
                    gt_line(f"s3://{bucket}/photos/img/a.png", [(0, "gear_housing", 5, 6, 70, 80)]),
                    "",
                    '{"source-ref": "s3://x/y.png", "broken":',
                    gt_line(f"s3://{bucket}/photos/img/missing.png", [(0, "gear_housing", 5, 6, 70, 80)]),
                ]
            ),
        },
    )
    summary = run(s3, bucket, max_rejected_fraction=0.5)
    text = output(s3, bucket)
    assert geometry(text) == [
        (f"s3://{bucket}/photos/img/a.png", 640, 480, [("gear_housing", 5, 6, 70, 80)]),
        (f"s3://{bucket}/photos/img/b.jpg", 800, 600, [("spur_gear", 10, 20, 100, 50)]),
    ]
    first = load_lines(text)[0][1]
    assert first["bounding-box-metadata"]["job-name"] == JOB
    assert first["bounding-box-metadata"]["creation-date"] == DATE
    assert first["bounding-box-metadata"]["objects"] == [{"confidence": 0.9}]
    assert validate_manifest(text, s3_client=s3) == []
    assert summary["format"] == "groundtruth"
    assert (summary["entries"], summary["imported"], len(summary["rejected"])) == (4, 2, 2)
    assert summary["boxes_per_label"] == {"gear_housing": 1, "spur_gear": 1}
    assert summary["matched_by_file_name"] == 1
    why = reasons(summary)
    assert "not valid JSON" in why["photos/labels.manifest line 4"]
    assert "unknown image" in why["photos/labels.manifest line 5"]


def coco_doc() -> dict:
    return {
        "images": [
            {"id": 1, "file_name": "images/a.png", "width": 640, "height": 480},
            {"id": 2, "file_name": "b.jpg", "width": 640, "height": 480},
            {"id": 3, "file_name": "images/nowhere.png", "width": 640, "height": 480},
            {"id": 4, "file_name": "images/c.png", "width": 640, "height": 480},
            {"id": 5, "file_name": "images/d.png", "width": 640, "height": 480},
            {"id": 6, "file_name": "images/e.png", "width": 640, "height": 480},
            {"id": 7, "file_name": "images/empty.png", "width": 640, "height": 480},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 10, "bbox": [10.4, 20.6, 30.2, 40.0], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 11, "bbox": [600.0, 400.0, 40.5, 80.0], "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 11, "bbox": [0, 0, 64, 64]},
            {"id": 4, "image_id": 4, "category_id": 10, "bbox": [500, 400, 200, 50]},
            {"id": 5, "image_id": 5, "category_id": 10, "bbox": [5, 5, 50, 50], "iscrowd": 1},
            {"id": 6, "image_id": 6, "category_id": 12, "bbox": [5, 5, 50, 50]},
            {"id": 7, "image_id": 99, "category_id": 10, "bbox": [5, 5, 50, 50]},
        ],
        "categories": [
            {"id": 10, "name": "Gear Housing"},
            {"id": 11, "name": "spur_gear"},
            {"id": 12, "name": "wrench"},
        ],
    }


def test_coco_boxes_cover_their_float_pixels_and_every_bad_entry_has_a_reason(s3, bucket):
    images = {f"photos/images/{n}.png": png() for n in ("a", "c", "d", "e", "empty", "unlabelled")}
    put(s3, bucket, {**images, "photos/b.jpg": jpeg(), "photos/coco.json": coco_doc()})
    summary = run(
        s3, bucket, class_names=CLASSES, label_map={"Gear Housing": "gear_housing"}, max_rejected_fraction=0.7
    )
    assert geometry(output(s3, bucket)) == [
        (f"s3://{bucket}/photos/b.jpg", 640, 480, [("spur_gear", 0, 0, 64, 64)]),
        # 10.4..40.6 x 20.6..60.6 -> pixels 10..40 x 20..60; the 0.5 px overhang past 640 is clipped.
        (
            f"s3://{bucket}/photos/images/a.png",
            640,
            480,
            [("gear_housing", 10, 20, 31, 41), ("spur_gear", 600, 400, 40, 80)],
        ),
        (f"s3://{bucket}/photos/images/empty.png", 640, 480, []),
    ]
    why = reasons(summary)
    assert set(why) == {
        "photos/coco.json image 3 (images/nowhere.png)",
        "photos/coco.json image 4 (images/c.png)",
        "photos/coco.json image 5 (images/d.png)",
        "photos/coco.json image 6 (images/e.png)",
        "photos/coco.json annotation 7",
    }
    assert "unknown image 'images/nowhere.png'" in why["photos/coco.json image 3 (images/nowhere.png)"]
    assert "outside the 640 x 480 image" in why["photos/coco.json image 4 (images/c.png)"]
    assert "iscrowd" in why["photos/coco.json image 5 (images/d.png)"]
    assert "'wrench' is not one the model was trained on" in why["photos/coco.json image 6 (images/e.png)"]
    assert "image_id 99 is not in 'images'" in why["photos/coco.json annotation 7"]
    assert summary["entries"] == summary["imported"] + len(summary["rejected"]) == 8
    assert summary["boxes_per_label"] == {"gear_housing": 1, "spur_gear": 2}
    assert summary["images_per_label"] == {"gear_housing": 1, "spur_gear": 2}
    assert summary["empty_images"] == 1
    assert summary["unreferenced_images"] == [f"s3://{bucket}/photos/images/unlabelled.png"]


def voc(filename: str, objects: list[tuple[str, float, float, float, float]], size=(640, 480)) -> str:
    boxes = "".join(
        f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
        f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for name, x0, y0, x1, y1 in objects
    )
    return (
        f"<annotation><folder>JPEGImages</folder><filename>{filename}</filename>"
        f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>{boxes}</annotation>"
    )


def test_pascal_voc_corners_are_one_based_and_inclusive(s3, bucket):
    put(
        s3,
        bucket,
        {
            "photos/JPEGImages/a.jpg": jpeg(),
            "photos/JPEGImages/b.jpg": jpeg(),
            "photos/JPEGImages/c.jpg": jpeg(),
            "photos/Annotations/a.xml": voc(
                "a.jpg", [("gear_housing", 1, 1, 100, 50), ("spur_gear", 200, 100, 640, 480)]
            ),
            "photos/Annotations/b.xml": "<annotation><filename>b.jpg</filename><object>",
            "photos/Annotations/c.xml": voc("c.jpg", [("Spur Gear", 11, 21, 60, 70)]),
            "photos/Annotations/dup-of-c.xml": voc("c.jpg", [("spur_gear", 11, 21, 60, 70)]),
        },
    )
    summary = run(s3, bucket, format="voc", class_names=CLASSES, max_rejected_fraction=1.0)
    assert geometry(output(s3, bucket)) == [
        (
            f"s3://{bucket}/photos/JPEGImages/a.jpg",
            640,
            480,
            [("gear_housing", 0, 0, 100, 50), ("spur_gear", 199, 99, 441, 381)],
        )
    ]
    why = reasons(summary)
    assert "malformed XML" in why["photos/Annotations/b.xml"]
    assert "labelled by 2 entries" in why["photos/Annotations/c.xml"]
    assert "labelled by 2 entries" in why["photos/Annotations/dup-of-c.xml"]
    assert summary["entries"] == 4 and summary["imported"] == 1


def test_label_map_renames_and_unknown_labels_name_the_training_set(s3, bucket):
    put(
        s3,
        bucket,
        {
            "photos/a.jpg": jpeg(),
            "photos/b.jpg": jpeg(),
            "photos/a.xml": voc("a.jpg", [("Spur Gear", 11, 21, 60, 70)]),
            "photos/b.xml": voc("b.jpg", [("Gear", 11, 21, 60, 70)]),
        },
    )
    summary = run(s3, bucket, class_names=CLASSES, label_map={"Spur Gear": "spur_gear"}, max_rejected_fraction=0.5)
    assert geometry(output(s3, bucket)) == [(f"s3://{bucket}/photos/a.jpg", 640, 480, [("spur_gear", 10, 20, 50, 50)])]
    assert reasons(summary) == {
        "photos/b.xml": "label 'Gear' is not one the model was trained on (bearing_cover, gear_housing, spur_gear); "
        "rename it with label_map or remove its boxes"
    }
    with pytest.raises(ValueError, match="label_map renames to"):
        run(s3, bucket, class_names=CLASSES, label_map={"Gear": "gear"})


def test_stated_sizes_are_checked_against_the_image_headers(s3, bucket):
    put(
        s3,
        bucket,
        {
            "photos/ok.jpg": jpeg(640, 480),
            "photos/resized.jpg": jpeg(320, 240),
            # Stored 480 x 640 with "rotate 90" in EXIF: the labels were drawn on the upright 640 x 480 view.
            "photos/rotated.jpg": jpeg(480, 640, orientation=6),
            "photos/nosize.jpg": jpeg(640, 480),
            "photos/ok.xml": voc("ok.jpg", [("spur_gear", 11, 21, 60, 70)]),
            "photos/resized.xml": voc("resized.jpg", [("spur_gear", 11, 21, 60, 70)]),
            "photos/rotated.xml": voc("rotated.jpg", [("spur_gear", 11, 21, 60, 70)]),
            "photos/nosize.xml": voc("nosize.jpg", [("spur_gear", 11, 21, 60, 70)], size=(0, 0)),
        },
    )
    summary = run(s3, bucket, max_rejected_fraction=0.5)
    assert summary["imported"] == 2
    why = reasons(summary)
    assert why["photos/resized.xml"] == "labels are for a 640 x 480 image but the file is 320 x 240"
    assert "EXIF rotation (6)" in why["photos/rotated.xml"]
    assert [ref for ref, *_ in geometry(output(s3, bucket))] == [
        f"s3://{bucket}/photos/nosize.jpg",
        f"s3://{bucket}/photos/ok.jpg",
    ]


def test_images_rekognition_refuses_are_rejected_with_its_rule(s3, bucket):
    webp = io.BytesIO()
    Image.new("RGB", (640, 480)).save(webp, format="WEBP")
    put(
        s3,
        bucket,
        {
            "photos/ok.png": png(),
            "photos/tiny.png": png(32, 32),
            "photos/photo.webp": webp.getvalue(),
            "photos/notimage.png": b"this is not a PNG",
            "photos/empty.png": b"",
            "photos/coco.json": {
                "images": [
                    {"id": i, "file_name": name}
                    for i, name in enumerate(["ok.png", "tiny.png", "photo.webp", "notimage.png", "empty.png"])
                ],
                "annotations": [{"id": 1, "image_id": 0, "category_id": 1, "bbox": [1, 1, 20, 20]}],
                "categories": [{"id": 1, "name": "spur_gear"}],
            },
        },
    )
    summary = run(s3, bucket, max_rejected_fraction=1.0)
    assert summary["imported"] == 1
    why = reasons(summary)
    assert "32 px; Rekognition takes 64..4096 px" in why["photos/coco.json image 1 (tiny.png)"]
    assert "Rekognition takes PNG or JPEG" in why["photos/coco.json image 2 (photo.webp)"]
    assert "not a readable image" in why["photos/coco.json image 3 (notimage.png)"]
    assert "empty file" in why["photos/coco.json image 4 (empty.png)"]


def test_same_input_gives_byte_identical_output_and_reruns_ignore_their_own_manifest(s3, bucket):
    put(s3, bucket, {f"photos/{n}.png": png() for n in ("b", "a", "c")})
    put(
        s3,
        bucket,
        {
            "photos/coco.json": {
                "images": [{"id": i, "file_name": f"{n}.png"} for i, n in enumerate("cab")],
                "annotations": [
                    {"id": i, "image_id": i, "category_id": 1, "bbox": [i + 1, 2, 30, 30]} for i in range(3)
                ],
                "categories": [{"id": 1, "name": "spur_gear"}],
            }
        },
    )
    # The manifest lands beside the photos, where a rerun's format detection would find it.
    dest = f"s3://{bucket}/photos/imported.manifest"
    first = import_labels(s3, f"s3://{bucket}/photos", dest, job_name=JOB, creation_date=DATE)
    body = s3.get_object(Bucket=bucket, Key="photos/imported.manifest")["Body"].read()
    again = import_labels(s3, f"s3://{bucket}/photos", dest, job_name=JOB, creation_date=DATE)
    assert again == first
    assert s3.get_object(Bucket=bucket, Key="photos/imported.manifest")["Body"].read() == body
    refs = [line["source-ref"] for _, line in load_lines(body.decode())]
    assert refs == sorted(refs) and len(refs) == 3
    assert first["label_files"] == [f"s3://{bucket}/photos/coco.json"]


def test_nothing_is_written_when_nothing_valid_remains_or_too_much_is_rejected(s3, bucket):
    put(s3, bucket, {"photos/a.jpg": jpeg(), "photos/b.jpg": jpeg()})
    put(s3, bucket, {"photos/a.xml": voc("a.jpg", [("spur_gear", 11, 21, 60, 70)]), "photos/b.xml": "<oops"})
    with pytest.raises(LabelImportError, match="1 of 2 entries rejected") as raised:
        run(s3, bucket, max_rejected_fraction=0.25)
    assert raised.value.summary["imported"] == 1
    assert "malformed XML" in str(raised.value)
    put(s3, bucket, {"photos/a.xml": "<oops"})
    with pytest.raises(LabelImportError, match="no valid entry among 2"):
        run(s3, bucket, max_rejected_fraction=1.0)
    with pytest.raises(ClientError, match="NoSuchKey"):
        s3.get_object(Bucket=bucket, Key="out/test.manifest")


def test_format_detection_refuses_mixed_or_missing_labels(s3, bucket):
    put(s3, bucket, {"photos/a.jpg": jpeg()})
    with pytest.raises(LabelImportError, match="no label files"):
        run(s3, bucket)
    put(s3, bucket, {"photos/a.xml": voc("a.jpg", [("spur_gear", 11, 21, 60, 70)]), "photos/coco.json": {}})
    with pytest.raises(LabelImportError, match="more than one format"):
        run(s3, bucket)
    assert run(s3, bucket, format="voc")["imported"] == 1
    with pytest.raises(LabelImportError, match="no groundtruth label files"):
        run(s3, bucket, format="groundtruth")


def test_ground_truth_lines_without_a_detection_label_are_rejected(s3, bucket):
    classification = {
        "source-ref": f"s3://{bucket}/photos/a.png",
        "class": 1,
        "class-metadata": {"type": "groundtruth/image-classification", "class-name": "gear"},
    }
    put(
        s3,
        bucket,
        {
            "photos/a.png": png(),
            "photos/b.png": png(),
            "photos/labels.jsonl": json.dumps(classification)
            + "\n"
            + gt_line(f"s3://{bucket}/photos/b.png", [(3, "spur_gear", 600, 10, 50, 50)])
            + "\n",
        },
    )
    with pytest.raises(LabelImportError) as raised:
        run(s3, bucket, max_rejected_fraction=1.0)
    why = reasons(raised.value.summary)
    assert "only groundtruth/object-detection labels have boxes" in why["photos/labels.jsonl line 1"]
    assert "outside the 640 x 480 image" in why["photos/labels.jsonl line 2"]


def test_bad_arguments_fail_before_any_s3_work():
    with pytest.raises(ValueError, match="format must be"):
        import_labels(None, "s3://b/p/", "s3://b/o.manifest", job_name=JOB, creation_date=DATE, format="yolo")
    with pytest.raises(ValueError, match="Invalid isoformat"):
        import_labels(None, "s3://b/p/", "s3://b/o.manifest", job_name=JOB, creation_date="yesterday")
    with pytest.raises(ValueError, match="distinct"):
        import_labels(None, "s3://b/p/", "s3://b/o", job_name=JOB, creation_date=DATE, class_names=["a", "a"])


def test_a_rejected_line_still_claims_its_photo_and_a_bucketless_ref_rejects_only_its_line(s3, bucket):
    unnamed = json.loads(gt_line(f"s3://{bucket}/photos/c.png", [(0, "gear", 5, 6, 70, 80)]))
    unnamed["my-job-metadata"]["class-map"] = {"9": "gear"}  # class_id 0 has no name
    put(
        s3,
        bucket,
        {
            "photos/a.png": png(),
            "photos/b.png": png(),
            "photos/c.png": png(),
            "photos/labels.jsonl": "\n".join(
                [
                    gt_line(f"s3://{bucket}/photos/a.png", [(0, "gear", 5, 6, 70, 80)]),
                    json.dumps(unnamed),
                    gt_line("s3:///b.png", [(0, "gear", 5, 6, 70, 80)]),
                ]
            ),
        },
    )
    summary = run(s3, bucket, max_rejected_fraction=1.0)
    why = reasons(summary)
    assert "has no name in the class-map" in why["photos/labels.jsonl line 2"]
    # The bucketless ref names no image of ours exactly, so b.png is found by its file name, as any foreign ref is.
    assert (summary["imported"], len(summary["rejected"]), summary["matched_by_file_name"]) == (2, 1, 1)
    # c.png has labels (rejected ones), so it is not an unlabelled photo.
    assert summary["unreferenced_images"] == []
