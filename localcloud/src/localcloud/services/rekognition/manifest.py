"""SageMaker Ground Truth object-detection manifests as Rekognition Custom Labels reads them: every line parsed,
checked against the limits Rekognition documents, and turned into boxes with label names.

This is the emulator's own reading of the format, written from AWS's documentation, so that a client's manifest
is judged as AWS would judge it (the Airflow project checks its manifests with its own validator; the two meet
only over HTTP). No HTTP and no S3 here: image files are looked at through a ``probe`` the caller passes.

The format (Rekognition Custom Labels developer guide, md-create-manifest-file-object-detection.html), one JSON
object per line:

- ``source-ref``: ``s3://bucket/key`` of the image;
- ``bounding-box``: ``{"image_size": [{"width", "height", "depth"}], "annotations": [{"class_id", "left",
  "top", "width", "height"}]}`` in integer pixels;
- ``bounding-box-metadata``: ``{"objects": [{"confidence"}]`` (one per annotation, same order), ``"class-map":
  {"<class_id>": "<label>"}``, ``"type": "groundtruth/object-detection"``, ``"human-annotated": "yes"|"no"``,
  ``"creation-date"`` (ISO 8601), optionally ``"job-name"``}.

Limits, from the same guide:

- limits.html: images are PNG or JPEG, 64 to 4096 pixels a side, at most 15 MB, at most 20:1 aspect ratio;
  at most 50 bounding boxes per image; at most 250 labels per manifest, and an object-detection dataset needs
  at least 1; a manifest file is at most 1 GB.
- md-create-manifest-file-validation-rules.html: at most 250,000 JSON lines; all images in one bucket.
- debugging-datasets-terminal-errors.html / tm-debugging-json-line-errors.html: a JSON line is at most 100,000
  characters; an image is referenced once; boxes lie inside the image, have non-negative offsets, and measure
  more than 1 pixel a side once the image is scaled down to at most 1280 pixels for training; every ``class_id``
  is in the ``class-map``; label names are at most 256 characters.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ATTRIBUTE = "bounding-box"
META = f"{ATTRIBUTE}-metadata"
DETECTION_TYPE = "groundtruth/object-detection"

MAX_MANIFEST_BYTES = 1_000_000_000  # "1 GB"
MAX_LINES = 250_000
MAX_LINE_CHARS = 100_000
MAX_LABELS = 250
MAX_LABEL_CHARS = 256
MAX_BOXES = 50
MIN_SIDE, MAX_SIDE = 64, 4096
MAX_ASPECT = 20.0
# "15 MB" read as decimal megabytes: the stricter reading, so localcloud never accepts what AWS refuses.
MAX_IMAGE_BYTES = 15_000_000
IMAGE_FORMATS = ("PNG", "JPEG")
TRAINING_SIDE = 1280  # Rekognition scales larger images down to this before it measures boxes
MIN_TRAINING_BOX = 1.0  # a box side must exceed this many pixels after that scaling
HEADER_BYTES = 64 * 1024  # a PNG IHDR, or a JPEG SOF behind ordinary EXIF
PROBE_THREADS = 16

_S3_URI = re.compile(r"^s3://([^/\s]+)/(\S.*)$")
_CLASS_ID = re.compile(r"-?\d+")
_BOX_FIELDS = ("class_id", "left", "top", "width", "height")


@dataclass(frozen=True)
class ImageFacts:
    """What the limits need to know of an image file, read from its header."""

    size_bytes: int
    format: str
    width: int
    height: int


# (bucket, key) -> the image's facts, or a sentence saying why they could not be read.
Probe = Callable[[str, str], "ImageFacts | str"]


@dataclass(frozen=True)
class Box:
    """One annotation: a label and its pixel rectangle."""

    label: str
    left: int
    top: int
    width: int
    height: int

    @property
    def corners(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in pixels."""
        return self.left, self.top, self.left + self.width, self.top + self.height


@dataclass
class Entry:
    """One non-blank manifest line: what it says, and every reason Rekognition would reject it."""

    number: int  # 1-based line number in the file
    raw: str
    source_ref: str = ""
    bucket: str = ""
    key: str = ""
    size: tuple[int, int] | None = None  # declared (width, height)
    boxes: list[Box] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        """One label name per box; none for a line with problems (Rekognition ignores its labels)."""
        return [] if self.problems else [box.label for box in self.boxes]

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")


@dataclass
class Manifest:
    entries: list[Entry]  # non-blank lines, in file order
    problems: list[str]  # about the file as a whole: any of them fails the dataset


def split_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) for each line; only ``\\n`` ends a JSON line, and a final newline adds none."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [(number, line.removesuffix("\r")) for number, line in enumerate(lines, start=1)]


def read_manifest(text: str, probe: Probe | None = None) -> Manifest:
    """Parse and check a whole manifest; with ``probe``, the image files are checked too."""
    reader = _Reader()
    problems: list[str] = []
    size = len(text.encode("utf-8"))
    if size > MAX_MANIFEST_BYTES:
        problems.append(f"the manifest is {size} bytes; the limit is {MAX_MANIFEST_BYTES} (1 GB)")
    lines = split_lines(text)
    if not lines:
        problems.append("the manifest has no JSON lines")
    if len(lines) > MAX_LINES:
        problems.append(f"the manifest has {len(lines)} lines; the limit is {MAX_LINES}")
    entries = []
    for number, raw in lines:
        entry = reader.read(number, raw)
        if raw.strip():
            entries.append(entry)
    if len(reader.labels) > MAX_LABELS:
        problems.append(f"the manifest has {len(reader.labels)} labels; the limit is {MAX_LABELS}")
    if lines and not reader.labels:
        problems.append("no line has a bounding box; an object-detection dataset needs at least 1 label")
    if probe is not None:
        _check_images(entries, probe)
    return Manifest(entries, problems)


def parse_entry(raw: str, number: int = 1) -> Entry:
    """One line on its own (a line kept from an imported dataset): its boxes, and its own problems."""
    return _Reader().read(number, raw)


# -- one line ----------------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN and Infinity; JSON does not


class _Reader:
    """Reads lines in order, remembering what spans lines: images seen, the bucket, the class names."""

    def __init__(self) -> None:
        self.refs: dict[str, int] = {}  # source-ref -> the line it was first on
        self.bucket: tuple[str, int] | None = None
        self.names: dict[int, tuple[str, int]] = {}  # class id -> (label, the line it was first on)
        self.labels: set[str] = set()  # labels with at least one box

    def read(self, number: int, raw: str) -> Entry:
        entry = Entry(number, raw)
        line = self._json(entry)
        if line is None:
            return entry
        self._source(entry, line.get("source-ref"))
        label, meta = line.get(ATTRIBUTE), line.get(META)
        for name, value in ((ATTRIBUTE, label), (META, meta)):
            if not isinstance(value, dict):
                entry.problem(name, "missing" if value is None else "not a JSON object")
        if not (isinstance(label, dict) and isinstance(meta, dict)):
            return entry
        class_map = self._metadata(entry, meta)
        entry.size = self._image_size(entry, label.get("image_size"))
        annotations = label.get("annotations")
        if not isinstance(annotations, list):
            entry.problem(f"{ATTRIBUTE}.annotations", "missing, or not a list")
            annotations = None
        else:
            if len(annotations) > MAX_BOXES:
                entry.problem(f"{ATTRIBUTE}.annotations", f"{len(annotations)} boxes; the limit is {MAX_BOXES}")
            for index, annotation in enumerate(annotations):
                self._box(entry, f"{ATTRIBUTE}.annotations[{index}]", annotation, class_map)
        self._objects(entry, meta.get("objects"), annotations)
        return entry

    def _json(self, entry: Entry) -> dict[str, Any] | None:
        if len(entry.raw) > MAX_LINE_CHARS:
            entry.problem("line", f"{len(entry.raw)} characters; the limit is {MAX_LINE_CHARS}")
            return None
        if not entry.raw.strip():
            entry.problem("line", "blank")
            return None
        try:
            line = json.loads(entry.raw, parse_constant=_refuse_constant)
        except ValueError as exc:
            entry.problem("line", f"not valid JSON: {exc}")
            return None
        if not isinstance(line, dict):
            entry.problem("line", f"a JSON object is expected, not {type(line).__name__}")
            return None
        entry.source_ref = str(line.get("source-ref", ""))
        return line

    def _source(self, entry: Entry, ref: Any) -> None:
        if ref is None:
            entry.problem("source-ref", "missing")
            return
        match = _S3_URI.match(ref) if isinstance(ref, str) else None
        if match is None:
            entry.problem("source-ref", f"{ref!r} is not an s3://bucket/key URI")
            return
        first = self.refs.setdefault(ref, entry.number)
        if first != entry.number:
            entry.problem("source-ref", f"{ref} is also on line {first}; an image may be referenced once")
        entry.bucket, entry.key = match.group(1), match.group(2)
        if self.bucket is None:
            self.bucket = (entry.bucket, entry.number)
        elif entry.bucket != self.bucket[0]:
            entry.problem(
                "source-ref",
                f"bucket {entry.bucket!r} is not {self.bucket[0]!r} (line {self.bucket[1]}); "
                "a dataset's images are all in one bucket",
            )

    def _metadata(self, entry: Entry, meta: dict[str, Any]) -> dict[int, str] | None:
        if meta.get("type") != DETECTION_TYPE:
            entry.problem(f"{META}.type", f"{meta.get('type')!r} is not {DETECTION_TYPE!r}")
        if meta.get("human-annotated") not in ("yes", "no"):
            entry.problem(f"{META}.human-annotated", f"{meta.get('human-annotated')!r} is not 'yes' or 'no'")
        try:
            datetime.fromisoformat(meta.get("creation-date"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            entry.problem(f"{META}.creation-date", f"{meta.get('creation-date')!r} is not an ISO 8601 date-time")
        if "job-name" in meta and not isinstance(meta["job-name"], str):
            entry.problem(f"{META}.job-name", "not a string")
        class_map = meta.get("class-map")
        if not isinstance(class_map, dict):
            entry.problem(f"{META}.class-map", "missing, or not an object of class id -> label")
            return None
        parsed: dict[int, str] = {}
        for key, name in class_map.items():
            where = f'{META}.class-map["{key}"]'
            if not _CLASS_ID.fullmatch(key):
                entry.problem(where, "class ids are integers written as strings")
                continue
            if not isinstance(name, str) or not name:
                entry.problem(where, f"{name!r} is not a non-empty label name")
                continue
            if len(name) > MAX_LABEL_CHARS:
                entry.problem(where, f"the label is {len(name)} characters; the limit is {MAX_LABEL_CHARS}")
            class_id = int(key)
            first_name, first_line = self.names.setdefault(class_id, (name, entry.number))
            if first_name != name:
                entry.problem(where, f"class {class_id} is {name!r} here but {first_name!r} on line {first_line}")
            parsed[class_id] = name
        return parsed

    @staticmethod
    def _image_size(entry: Entry, sizes: Any) -> tuple[int, int] | None:
        where = f"{ATTRIBUTE}.image_size"
        if not isinstance(sizes, list) or len(sizes) != 1 or not isinstance(sizes[0], dict):
            entry.problem(where, "a list of exactly one {width, height, depth} object is expected")
            return None
        size = sizes[0]
        bad = [k for k in ("width", "height", "depth") if not _is_int(size.get(k)) or size[k] <= 0]
        for k in bad:
            entry.problem(f"{where}[0].{k}", f"{size.get(k)!r} is not a positive integer")
        if "width" in bad or "height" in bad:
            return None
        width, height = size["width"], size["height"]
        for side, value in (("width", width), ("height", height)):
            if not MIN_SIDE <= value <= MAX_SIDE:
                entry.problem(f"{where}[0].{side}", f"{value} px; a side is {MIN_SIDE} to {MAX_SIDE} px")
        if max(width, height) / min(width, height) > MAX_ASPECT:
            entry.problem(f"{where}[0]", f"{width} x {height} exceeds the {MAX_ASPECT:g}:1 aspect ratio")
        return width, height

    def _box(self, entry: Entry, where: str, box: Any, class_map: dict[int, str] | None) -> None:
        if not isinstance(box, dict):
            entry.problem(where, "not a JSON object")
            return
        bad = [k for k in _BOX_FIELDS if not _is_int(box.get(k))]
        for k in bad:
            entry.problem(f"{where}.{k}", f"{box.get(k)!r} is not an integer (pixels)")
        if bad:
            return
        label = None
        if class_map is not None:  # a broken class-map is reported already
            label = class_map.get(box["class_id"])
            if label is None:
                known = ", ".join(str(k) for k in sorted(class_map)) or "none"
                entry.problem(f"{where}.class_id", f"{box['class_id']} is not in the class-map (known: {known})")
            else:
                self.labels.add(label)
        left, top, width, height = box["left"], box["top"], box["width"], box["height"]
        for k, value in (("left", left), ("top", top)):
            if value < 0:
                entry.problem(f"{where}.{k}", f"negative offset {value}")
        for k, value in (("width", width), ("height", height)):
            if value <= 0:
                entry.problem(f"{where}.{k}", f"{value} is not > 0")
        if entry.size is not None:
            image_w, image_h = entry.size
            if left + width > image_w:
                entry.problem(f"{where}.width", f"the box leaves the image ({left} + {width} > {image_w})")
            if top + height > image_h:
                entry.problem(f"{where}.height", f"the box leaves the image ({top} + {height} > {image_h})")
            if width > 0 and height > 0:
                scale = min(1.0, TRAINING_SIDE / max(image_w, image_h))
                if width * scale <= MIN_TRAINING_BOX or height * scale <= MIN_TRAINING_BOX:
                    entry.problem(
                        where,
                        f"the box is too small: {width} x {height} px is {width * scale:.2f} x {height * scale:.2f}"
                        f" px once the image is scaled to at most {TRAINING_SIDE} px; both sides must exceed 1 px",
                    )
        if label is not None:
            entry.boxes.append(Box(label, left, top, width, height))

    @staticmethod
    def _objects(entry: Entry, objects: Any, annotations: list[Any] | None) -> None:
        where = f"{META}.objects"
        if not isinstance(objects, list):
            entry.problem(where, "missing, or not a list (one {confidence} per annotation)")
            return
        if annotations is not None and len(objects) != len(annotations):
            entry.problem(where, f"{len(objects)} objects for {len(annotations)} annotations; one each is expected")
        for index, obj in enumerate(objects):
            confidence = obj.get("confidence") if isinstance(obj, dict) else None
            if not _is_number(confidence) or not 0.0 <= confidence <= 1.0:
                entry.problem(f"{where}[{index}].confidence", f"{confidence!r} is not a number in 0..1")


# -- image files -------------------------------------------------------------------------------------------


def _check_images(entries: list[Entry], probe: Probe) -> None:
    # Only lines whose image is named and sized can be compared with the file.
    pending = [e for e in entries if e.key and e.size is not None]
    with ThreadPoolExecutor(PROBE_THREADS) as pool:
        found = list(pool.map(lambda e: probe(e.bucket, e.key), pending))
    for entry, facts in zip(pending, found, strict=True):
        if isinstance(facts, str):
            entry.problem("source-ref", facts)
            continue
        if facts.size_bytes > MAX_IMAGE_BYTES:
            entry.problem("source-ref", f"the image is {facts.size_bytes} bytes; the limit is 15 MB")
        if facts.format not in IMAGE_FORMATS:
            entry.problem("source-ref", f"the image is {facts.format}; Rekognition takes PNG or JPEG")
        if (facts.width, facts.height) != entry.size:
            declared = f"{entry.size[0]} x {entry.size[1]}"  # type: ignore[index]
            entry.problem(
                f"{ATTRIBUTE}.image_size[0]", f"says {declared} but the image is {facts.width} x {facts.height}"
            )


def image_facts(path: Path) -> ImageFacts | str:
    """An image file's facts from its header (the whole file only when the header does not tell)."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        return f"no image file at {path}"
    size = path.stat().st_size

    def facts(data: bytes) -> ImageFacts | None:
        try:
            with Image.open(io.BytesIO(data)) as image:  # reads the header; pixels are never decoded
                return ImageFacts(size, image.format or "unknown", image.width, image.height)
        except (UnidentifiedImageError, OSError, SyntaxError):
            return None

    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES)
    found = facts(head)
    if found is None and size > len(head) and size <= MAX_IMAGE_BYTES:
        found = facts(path.read_bytes())  # e.g. a JPEG whose size marker sits behind a large EXIF block
    return found if found is not None else "not a readable image (Rekognition takes PNG or JPEG)"
