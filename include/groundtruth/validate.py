"""Check a Ground Truth object-detection manifest against what Rekognition Custom Labels accepts, before upload.

Rekognition reports most manifest problems only after a training job has started (or silently drops the
line), so every rule it documents is checked here, line by line, with the line number and field named.

Limits, from the Rekognition Custom Labels developer guide
(https://docs.aws.amazon.com/rekognition/latest/customlabels-dg/):
  - limits.html: PNG or JPEG; 64..4096 px per side; at most 15 MB per image; aspect ratio at most 20:1;
    at most 50 bounding boxes (and 50 labels) per image; at most 250 unique labels per manifest and at least
    1 for object detection; manifest at most 1 GB.
  - md-create-manifest-file-validation-rules.html: at most 250,000 lines; images all in one bucket.
  - debugging-datasets-terminal-errors.html: a line at most 100,000 characters; a source-ref at most once.
  - tm-debugging-json-line-errors.html: source-ref is an s3:// URI; annotations within the image frame and
    non-negative; box sides above 1 px after the training resize to at most 1280 px; one confidence per
    annotation; every class_id in the class-map; type groundtruth/object-detection; label names at most 256
    characters.
  - md-create-manifest-file-object-detection.html: the required fields and their shapes.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from include import s3uri
from include.groundtruth import DEFAULT_ATTRIBUTE, DETECTION_TYPE

MIN_IMAGE_SIDE = 64
MAX_IMAGE_SIDE = 4096
# "15 MB": decimal megabytes, the stricter reading, so a file we pass is never one Rekognition refuses.
MAX_IMAGE_BYTES = 15_000_000
MAX_ASPECT_RATIO = 20.0
MAX_BOXES_PER_IMAGE = 50
MAX_LABELS_PER_MANIFEST = 250
MAX_LABEL_NAME_CHARS = 256
MAX_LINE_CHARS = 100_000
MAX_MANIFEST_LINES = 250_000
MAX_MANIFEST_BYTES = 1_000_000_000
TRAINING_MAX_SIDE = 1280  # Rekognition shrinks larger images to this before it measures boxes
IMAGE_FORMATS = ("PNG", "JPEG")
HEADER_BYTES = 64 * 1024  # enough for a PNG IHDR or a JPEG SOF behind ordinary EXIF
PROBE_THREADS = 16

_S3_URI = re.compile(r"^s3://([^/\s]+)/(\S.*)$")
_BOX_KEYS = ("class_id", "top", "left", "width", "height")
_HUMAN_ANNOTATED = ("yes", "no")


@dataclass(frozen=True)
class ManifestIssue:
    line: int  # 1-based; 0 for the manifest as a whole
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "manifest"
        return f"{where}, {self.field}: {self.message}"


class ManifestError(ValueError):
    """A manifest Rekognition would refuse or partly drop; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[ManifestIssue], name: str = "manifest") -> None:
        self.issues = list(issues)
        shown = "\n".join(f"  {issue}" for issue in self.issues[:50])
        more = f"\n  ... and {len(self.issues) - 50} more" if len(self.issues) > 50 else ""
        super().__init__(f"{name}: {len(self.issues)} problem(s)\n{shown}{more}")


@dataclass(frozen=True)
class ImageFacts:
    """What the validator needs to know about an image file: read from its header only."""

    size_bytes: int
    format: str
    width: int
    height: int


# A probe maps (bucket, key) to the image's facts, or to a message saying why they could not be read.
Probe = Callable[[str, str], ImageFacts | str]


def validate_manifest(
    source: Path | str,
    *,
    image_root: Path | None = None,
    strip_prefix: str = "",
    s3_client: Any = None,
    attribute: str = DEFAULT_ATTRIBUTE,
    probe: Probe | None = None,
) -> list[ManifestIssue]:
    """Every problem in a manifest (a ``Path``, or the manifest text as a ``str``); empty when it is good.

    Image files are checked too when a place to find them is given:
      - ``image_root``: ``s3://bucket/<strip_prefix><rest>`` is read from ``image_root/<rest>``;
      - ``s3_client``: each object is HEAD-ed, and its first 64 KB fetched to read format and size;
      - ``probe``: any ``(bucket, key) -> ImageFacts | reason`` callable (see :func:`file_facts`).
    """
    if probe is not None and (image_root is not None or s3_client is not None):
        raise ValueError("give one of image_root, s3_client or probe")
    probe = probe or _probe_for(image_root, strip_prefix, s3_client)
    checker = _Checker(attribute)
    checker.check_text(_text(source))
    if probe is not None:
        checker.check_images(probe)
    # Stable: line 0 (the whole manifest) first, then by line, each line's issues in the order checked.
    return sorted(checker.issues, key=lambda issue: issue.line)


def check_manifest(
    source: Path | str,
    *,
    image_root: Path | None = None,
    strip_prefix: str = "",
    s3_client: Any = None,
    attribute: str = DEFAULT_ATTRIBUTE,
) -> int:
    """Raise ``ManifestError`` listing every issue, or return the number of lines when there is none."""
    text = _text(source)
    issues = validate_manifest(
        text, image_root=image_root, strip_prefix=strip_prefix, s3_client=s3_client, attribute=attribute
    )
    if issues:
        raise ManifestError(issues, str(source) if isinstance(source, Path) else "manifest")
    return len(_split_lines(text))


def _text(source: Path | str) -> str:
    return source.read_text(encoding="utf-8") if isinstance(source, Path) else source


def _split_lines(text: str) -> list[str]:
    # Only "\n" ends a JSON line; a final newline does not start an extra (blank) line.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _reject_constant(name: str) -> None:
    # Python's json reads NaN and Infinity; JSON (and so Rekognition) does not.
    raise ValueError(f"{name} is not JSON")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class _PendingImage:
    line: int
    bucket: str
    key: str
    declared: tuple[int, int]


@dataclass
class _Checker:
    attribute: str
    issues: list[ManifestIssue] = field(default_factory=list)
    source_refs: dict[str, int] = field(default_factory=dict)  # source-ref -> first line
    bucket: tuple[str, int] | None = None  # (bucket, line it was first seen on)
    class_names: dict[int, tuple[str, int]] = field(default_factory=dict)  # class id -> (name, first line)
    used_labels: set[str] = field(default_factory=set)
    pending: list[_PendingImage] = field(default_factory=list)

    @property
    def meta_attribute(self) -> str:
        return f"{self.attribute}-metadata"

    def add(self, line: int, field_name: str, message: str) -> None:
        self.issues.append(ManifestIssue(line, field_name, message))

    # -- the whole manifest ---------------------------------------------------------------------------
    def check_text(self, text: str) -> None:
        size = len(text.encode("utf-8"))
        if size > MAX_MANIFEST_BYTES:
            self.add(0, "manifest", f"{size} bytes; Rekognition's limit is {MAX_MANIFEST_BYTES} (1 GB)")
        lines = _split_lines(text)
        if not lines:
            self.add(0, "manifest", "empty manifest: no JSON lines")
        if len(lines) > MAX_MANIFEST_LINES:
            self.add(0, "manifest", f"{len(lines)} lines; Rekognition's limit is {MAX_MANIFEST_LINES}")
        for number, raw in enumerate(lines, start=1):
            self.check_line(number, raw)
        self.check_labels(bool(lines))

    def check_labels(self, any_lines: bool) -> None:
        if len(self.used_labels) > MAX_LABELS_PER_MANIFEST:
            self.add(
                0,
                "class-map",
                f"{len(self.used_labels)} unique labels; Rekognition's limit is {MAX_LABELS_PER_MANIFEST}",
            )
        if any_lines and not self.used_labels:
            self.add(0, "annotations", "no bounding box on any line; a detection dataset needs at least 1 label")

    # -- one line -------------------------------------------------------------------------------------
    def check_line(self, number: int, raw: str) -> None:
        line = self.parse(number, raw)
        if line is None:
            return
        source = self.check_source_ref(number, line)
        label, meta = line.get(self.attribute), line.get(self.meta_attribute)
        for name, value in ((self.attribute, label), (self.meta_attribute, meta)):
            if not isinstance(value, dict):
                problem = "missing" if value is None else "not a JSON object"
                self.add(number, name, f"{problem} ({self.attribute} and {self.meta_attribute} are both required)")
        if not (isinstance(label, dict) and isinstance(meta, dict)):
            return
        class_map = self.check_metadata(number, meta)
        size = self.check_image_size(number, label)
        annotations = self.check_annotations(number, label, size, class_map)
        self.check_objects(number, meta, annotations)
        if source is not None and size is not None:
            self.pending.append(_PendingImage(number, *source, size))

    def parse(self, number: int, raw: str) -> dict[str, Any] | None:
        if len(raw) > MAX_LINE_CHARS:
            self.add(number, "line", f"{len(raw)} characters; Rekognition's limit is {MAX_LINE_CHARS}")
            return None
        if not raw.strip():
            self.add(number, "line", "blank line (Rekognition counts it as an invalid image)")
            return None
        try:
            line = json.loads(raw, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            self.add(number, "line", f"not valid JSON: {exc.msg} at column {exc.colno}")
            return None
        except ValueError as exc:
            self.add(number, "line", f"not valid JSON: {exc}")
            return None
        if not isinstance(line, dict):
            self.add(number, "line", f"must be a JSON object, not {type(line).__name__}")
            return None
        return line

    def check_source_ref(self, number: int, line: dict[str, Any]) -> tuple[str, str] | None:
        ref = line.get("source-ref")
        if ref is None:
            self.add(number, "source-ref", "missing")
            return None
        match = _S3_URI.match(ref) if isinstance(ref, str) else None
        if match is None:
            self.add(number, "source-ref", f"{ref!r} is not of the form s3://bucket/key")
            return None
        first = self.source_refs.setdefault(ref, number)
        if first != number:
            self.add(number, "source-ref", f"{ref} is already on line {first}; an image may appear only once")
        bucket, key = match.group(1), match.group(2)
        if self.bucket is None:
            self.bucket = (bucket, number)
        elif bucket != self.bucket[0]:
            self.add(
                number,
                "source-ref",
                f"bucket {bucket!r} differs from {self.bucket[0]!r} (line {self.bucket[1]}); "
                "a dataset's images must be in one bucket",
            )
        return bucket, key

    def check_image_size(self, number: int, label: dict[str, Any]) -> tuple[int, int] | None:
        prefix = f"{self.attribute}.image_size"
        sizes = label.get("image_size")
        if not isinstance(sizes, list) or len(sizes) != 1 or not isinstance(sizes[0], dict):
            self.add(number, prefix, "must be a list of exactly one {width, height, depth} object")
            return None
        entry = sizes[0]
        for key in ("width", "height", "depth"):
            if not _is_int(entry.get(key)) or entry[key] <= 0:
                self.add(number, f"{prefix}[0].{key}", f"must be a positive integer, got {entry.get(key)!r}")
        if not (_is_int(entry.get("width")) and _is_int(entry.get("height"))):
            return None
        width, height = entry["width"], entry["height"]
        if width <= 0 or height <= 0:
            return None
        self.check_dimensions(number, f"{prefix}[0]", width, height)
        return width, height

    def check_dimensions(self, number: int, field_name: str, width: int, height: int) -> None:
        for side, value in (("width", width), ("height", height)):
            if not MIN_IMAGE_SIDE <= value <= MAX_IMAGE_SIDE:
                self.add(
                    number,
                    f"{field_name}.{side}",
                    f"{value} px; Rekognition takes {MIN_IMAGE_SIDE}..{MAX_IMAGE_SIDE} px per side",
                )
        if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
            self.add(number, field_name, f"aspect ratio of {width} x {height} exceeds {MAX_ASPECT_RATIO:g}:1")

    def check_metadata(self, number: int, meta: dict[str, Any]) -> dict[int, str] | None:
        prefix = self.meta_attribute
        if meta.get("type") != DETECTION_TYPE:
            self.add(number, f"{prefix}.type", f"must be {DETECTION_TYPE!r}, got {meta.get('type')!r}")
        if meta.get("human-annotated") not in _HUMAN_ANNOTATED:
            self.add(number, f"{prefix}.human-annotated", f"must be 'yes' or 'no', got {meta.get('human-annotated')!r}")
        self.check_creation_date(number, meta.get("creation-date"))
        if "job-name" in meta and not isinstance(meta["job-name"], str):
            self.add(number, f"{prefix}.job-name", "must be a string")
        return self.check_class_map(number, meta.get("class-map"))

    def check_creation_date(self, number: int, value: Any) -> None:
        field_name = f"{self.meta_attribute}.creation-date"
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            self.add(number, field_name, f"must be an ISO 8601 date-time string, got {value!r}")

    def check_class_map(self, number: int, class_map: Any) -> dict[int, str] | None:
        field_name = f"{self.meta_attribute}.class-map"
        if not isinstance(class_map, dict):
            self.add(number, field_name, "missing, or not a JSON object of class_id -> label name")
            return None
        parsed: dict[int, str] = {}
        for key, name in class_map.items():
            entry = f'{field_name}["{key}"]'
            if not re.fullmatch(r"-?\d+", key):
                self.add(number, entry, "keys must be integer class ids written as strings")
                continue
            if not isinstance(name, str) or not name:
                self.add(number, entry, f"label name must be a non-empty string, got {name!r}")
                continue
            if len(name) > MAX_LABEL_NAME_CHARS:
                self.add(number, entry, f"label name is {len(name)} characters; the limit is {MAX_LABEL_NAME_CHARS}")
            class_id = int(key)
            first_name, first_line = self.class_names.setdefault(class_id, (name, number))
            if first_name != name:
                self.add(number, entry, f"class {class_id} is {name!r} here but {first_name!r} on line {first_line}")
            parsed[class_id] = name
        return parsed

    def check_annotations(
        self, number: int, label: dict[str, Any], size: tuple[int, int] | None, class_map: dict[int, str] | None
    ) -> list[Any] | None:
        prefix = f"{self.attribute}.annotations"
        annotations = label.get("annotations")
        if not isinstance(annotations, list):
            self.add(number, prefix, "missing, or not a list")
            return None
        if len(annotations) > MAX_BOXES_PER_IMAGE:
            self.add(number, prefix, f"{len(annotations)} boxes; Rekognition allows at most {MAX_BOXES_PER_IMAGE}")
        for index, box in enumerate(annotations):
            self.check_box(number, f"{prefix}[{index}]", box, size, class_map)
        return annotations

    def check_box(
        self, number: int, prefix: str, box: Any, size: tuple[int, int] | None, class_map: dict[int, str] | None
    ) -> None:
        if not isinstance(box, dict):
            self.add(number, prefix, "must be a JSON object")
            return
        bad = [key for key in _BOX_KEYS if not _is_int(box.get(key))]
        for key in bad:
            self.add(number, f"{prefix}.{key}", f"must be an integer (pixels), got {box.get(key)!r}")
        if bad:
            return
        self.check_class_id(number, prefix, box["class_id"], class_map)
        for key in ("left", "top"):
            if box[key] < 0:
                self.add(number, f"{prefix}.{key}", f"negative offset {box[key]}")
        for key in ("width", "height"):
            if box[key] <= 0:
                self.add(number, f"{prefix}.{key}", f"must be > 0, got {box[key]}")
        if size is not None:
            self.check_box_in_frame(number, prefix, box, size)

    def check_class_id(self, number: int, prefix: str, class_id: int, class_map: dict[int, str] | None) -> None:
        if class_map is None:
            return  # the class-map itself is already reported
        if class_id not in class_map:
            known = ", ".join(str(k) for k in sorted(class_map)) or "none"
            self.add(
                number, f"{prefix}.class_id", f"{class_id} is not in {self.meta_attribute}.class-map (known: {known})"
            )
        else:
            self.used_labels.add(class_map[class_id])

    def check_box_in_frame(self, number: int, prefix: str, box: dict[str, int], size: tuple[int, int]) -> None:
        width, height = size
        if box["left"] + box["width"] > width:
            self.add(
                number,
                f"{prefix}.width",
                f"box extends past the image (left {box['left']} + width {box['width']} > {width})",
            )
        if box["top"] + box["height"] > height:
            self.add(
                number,
                f"{prefix}.height",
                f"box extends past the image (top {box['top']} + height {box['height']} > {height})",
            )
        if box["width"] > 0 and box["height"] > 0:
            scale = min(1.0, TRAINING_MAX_SIDE / max(width, height))
            if box["width"] * scale <= 1 or box["height"] * scale <= 1:
                self.add(
                    number,
                    prefix,
                    f"box is too small: {box['width']} x {box['height']} px is "
                    f"{box['width'] * scale:.2f} x {box['height'] * scale:.2f} px after Rekognition resizes the "
                    f"image to at most {TRAINING_MAX_SIDE} px; both sides must exceed 1 px",
                )

    def check_objects(self, number: int, meta: dict[str, Any], annotations: list[Any] | None) -> None:
        prefix = f"{self.meta_attribute}.objects"
        objects = meta.get("objects")
        if not isinstance(objects, list):
            self.add(number, prefix, "missing, or not a list (one {confidence} per annotation)")
            return
        if annotations is not None and len(objects) != len(annotations):
            self.add(
                number,
                prefix,
                f"{len(objects)} objects for {len(annotations)} annotations; objects[i] belongs to annotations[i]",
            )
        for index, obj in enumerate(objects):
            confidence = obj.get("confidence") if isinstance(obj, dict) else None
            if not _is_number(confidence) or not 0.0 <= confidence <= 1.0:
                self.add(number, f"{prefix}[{index}].confidence", f"must be a number in 0..1, got {confidence!r}")

    # -- image files ----------------------------------------------------------------------------------
    def check_images(self, probe: Probe) -> None:
        with ThreadPoolExecutor(PROBE_THREADS) as pool:
            facts = list(pool.map(lambda image: probe(image.bucket, image.key), self.pending))
        for image, found in zip(self.pending, facts, strict=True):
            if isinstance(found, str):
                self.add(image.line, "source-ref", found)
            else:
                self.check_image_facts(image, found)

    def check_image_facts(self, image: _PendingImage, facts: ImageFacts) -> None:
        if facts.size_bytes > MAX_IMAGE_BYTES:
            self.add(image.line, "source-ref", f"image file is {facts.size_bytes} bytes; the limit is 15 MB")
        if facts.format not in IMAGE_FORMATS:
            self.add(image.line, "source-ref", f"image is {facts.format}; Rekognition takes PNG or JPEG")
        if (facts.width, facts.height) != image.declared:
            self.add(
                image.line,
                f"{self.attribute}.image_size[0]",
                f"declares {image.declared[0]} x {image.declared[1]} but the image is {facts.width} x {facts.height}",
            )


# -- finding image files ------------------------------------------------------------------------------------
def _probe_for(image_root: Path | None, strip_prefix: str, s3_client: Any) -> Probe | None:
    if image_root is not None and s3_client is not None:
        raise ValueError("give image_root or s3_client, not both")
    if image_root is not None:
        return lambda bucket, key: _probe_local(Path(image_root), strip_prefix, key)
    if s3_client is not None:
        return lambda bucket, key: _probe_s3(s3_client, bucket, key)
    return None


def _probe_local(root: Path, strip_prefix: str, key: str) -> ImageFacts | str:
    if not key.startswith(strip_prefix):
        return f"key {key!r} does not start with {strip_prefix!r}, so it has no place under {root}"
    return file_facts(root / key[len(strip_prefix) :])


def file_facts(path: Path) -> ImageFacts | str:
    """An image file's facts from its header, or why they could not be read: the building block of probes."""
    if not path.is_file():
        return f"no image file at {path}"
    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES)
    return _read_header(head, path.stat().st_size, path.read_bytes)


def _probe_s3(client: Any, bucket: str, key: str) -> ImageFacts | str:
    from botocore.exceptions import ClientError

    from include.s3objects import is_missing

    uri = s3uri.join(bucket, key)
    try:
        size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        if size == 0:
            return f"{uri} is empty"
        head = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEADER_BYTES - 1}")["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if is_missing(exc):
            return f"{uri} does not exist"
        return f"cannot read {uri}: {code or exc}"
    return _read_header(head, size, lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read())


def _read_header(head: bytes, size: int, read_all: Callable[[], bytes]) -> ImageFacts | str:
    facts = _facts(head, size)
    if facts is None and size > len(head) and size <= MAX_IMAGE_BYTES:
        facts = _facts(read_all(), size)  # e.g. a JPEG whose size marker sits behind a large EXIF block
    return facts if facts is not None else "not a readable image (Rekognition takes PNG or JPEG)"


def _facts(data: bytes, size: int) -> ImageFacts | None:
    try:
        with Image.open(io.BytesIO(data)) as image:  # parses the header only; pixels are never decoded
            return ImageFacts(size, image.format or "unknown", image.width, image.height)
    except (UnidentifiedImageError, OSError, SyntaxError):
        return None


# -- command line -------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m include.groundtruth.validate", description="Check a manifest against Rekognition's rules."
    )
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--image-root", type=Path, help="local directory holding the images (see --strip-prefix)")
    parser.add_argument("--strip-prefix", default="", help="key prefix to drop before resolving under --image-root")
    parser.add_argument("--s3", action="store_true", help="check the images in S3 (boto3's default credentials)")
    parser.add_argument("--endpoint-url", help="S3 endpoint, e.g. localcloud's")
    parser.add_argument("--attribute", default=DEFAULT_ATTRIBUTE, help="label attribute name")
    args = parser.parse_args(argv)
    s3_client = None
    if args.s3:
        import boto3

        s3_client = boto3.client("s3", endpoint_url=args.endpoint_url)
    issues = validate_manifest(
        args.manifest,
        image_root=args.image_root,
        strip_prefix=args.strip_prefix,
        s3_client=s3_client,
        attribute=args.attribute,
    )
    for issue in issues:
        print(issue)
    if issues:
        print(f"{args.manifest}: {len(issues)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.manifest}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
