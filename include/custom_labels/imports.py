"""Import a user's labelled real photos from S3 as a Ground Truth manifest that Rekognition Custom Labels accepts.

The labels may be a Ground Truth object-detection manifest (``*.manifest`` / ``*.jsonl``), COCO detection JSON
(``*.json``) or Pascal VOC XML (``*.xml``, one per image), stored under one S3 prefix together with the photos.

Decisions:

- Images are not copied. Every ``source-ref`` points at the user's photo where it already is: the photos come
  from one prefix of one bucket, which already meets Rekognition's one-bucket-per-manifest rule, so a copy would
  only double storage and time. The photos must stay in place until Rekognition has created the dataset.
- A label file's image reference resolves to an image under the prefix: by its path (an ``s3://`` URI in the
  bucket, or a path relative to the label file or to the prefix), else by its file name when exactly one image
  has it (labels exported from a labelling job's bucket, VOC's ``Annotations/`` beside ``JPEGImages/``).
- An entry is one image's labels: a manifest line, a COCO image (plus an entry for each annotation whose image
  is missing), or a VOC file. Any problem rejects the whole entry, never one box: a test image missing one of its
  objects' boxes scores the model's correct detection of that object as a false positive. For the same reason
  COCO ``iscrowd`` regions (objects with no individual boxes) reject their image.
- A box may overhang the image by up to ``EDGE_TOLERANCE_PX`` (float rounding, VOC's 1-based corners) and is
  clipped; a box further outside means the labels were drawn on another version of the image.
- Each entry's stated image size is checked against the image header. A width/height swap on a JPEG with an
  EXIF rotation is rejected too: which orientation the boxes were drawn on cannot be told from the file.
- Finally the manifest is run through :func:`include.groundtruth.validate.validate_manifest`, so an import never
  produces a line Rekognition would refuse (image format and size limits, tiny boxes, ...).

The output is sorted by ``source-ref`` and carries the ``job_name``/``creation_date`` passed in, so the same input
gives byte-identical output.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import posixpath
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from PIL import Image, UnidentifiedImageError

from include import s3uri
from include.groundtruth import (
    DEFAULT_ATTRIBUTE,
    MalformedLabels,
    dumps_line,
    is_number,
    manifest_line,
    need_int,
    read_labelled_line,
)
from include.groundtruth.validate import HEADER_BYTES, MAX_IMAGE_BYTES, ImageFacts, validate_manifest
from include.rendering.types import Box, RenderedImage

FORMATS = ("groundtruth", "coco", "voc")
LABEL_SUFFIXES = {"groundtruth": (".manifest", ".jsonl"), "coco": (".json",), "voc": (".xml",)}
# Formats Rekognition refuses are indexed too, so a reference to one is rejected for its format, not as unknown.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".heic", ".heif")
EDGE_TOLERANCE_PX = 1.0
DEFAULT_MAX_REJECTED_FRACTION = 0.1
PROBE_THREADS = 8
_EXIF_ORIENTATION = 0x0112
_ROTATED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that display the stored image turned by 90 degrees


class LabelImportError(ValueError):
    """The import cannot produce a usable manifest; ``summary`` still lists every entry's fate."""

    def __init__(self, message: str, summary: Mapping[str, Any] | None = None) -> None:
        self.summary = dict(summary or {})
        rejected = self.summary.get("rejected", [])
        shown = "".join(f"\n  {item['entry']}: {item['reason']}" for item in rejected[:20])
        more = f"\n  ... and {len(rejected) - 20} more" if len(rejected) > 20 else ""
        super().__init__(message + shown + more)


@dataclass(frozen=True)
class _RawBox:
    """A box as the labels state it: float pixel edges (0-based, right/bottom exclusive)."""

    label: str
    left: float
    top: float
    right: float
    bottom: float
    confidence: float = 1.0


@dataclass
class _Entry:
    where: str  # e.g. "labels/coco.json image 12 (a.jpg)", for messages
    reference: str | None = None  # the image as the labels name it
    label_dir: str = ""  # key prefix of the label file, for relative references
    stated_size: tuple[int, int] | None = None
    boxes: list[_RawBox] = field(default_factory=list)
    human_annotated: bool = True
    key: str | None = None  # the image's resolved S3 key
    by_file_name: bool = False  # resolved by matching the file name, not the stated path
    reason: str | None = None  # set when rejected; the first problem found wins
    image: RenderedImage | None = None

    def reject(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason


@dataclass(frozen=True)
class _Probed:
    facts: ImageFacts
    orientation: int


def import_labels(
    s3: Any,
    source: str,
    destination: str,
    *,
    job_name: str,
    creation_date: str,
    format: str = "auto",
    class_names: Sequence[str] | None = None,
    label_map: Mapping[str, str] | None = None,
    max_rejected_fraction: float = DEFAULT_MAX_REJECTED_FRACTION,
) -> dict[str, Any]:
    """Import the labelled photos under ``source`` (``s3://bucket/prefix/``) into a manifest at ``destination``.

    ``class_names`` is the model's label set: any other label rejects its image. ``label_map`` renames the
    user's labels first (``{"Gear Housing": "gear_housing"}``). Returns a summary (counts, boxes and images
    per label, every rejected entry with its reason); raises :class:`LabelImportError`, writing nothing, when
    no entry survives or more than ``max_rejected_fraction`` of them are rejected.
    """
    if format not in ("auto", *FORMATS):
        raise ValueError(f"format must be 'auto' or one of {FORMATS}, got {format!r}")
    if not job_name or not isinstance(job_name, str):
        raise ValueError(f"job_name must be a non-empty string, got {job_name!r}")
    datetime.fromisoformat(creation_date)  # fail before any S3 work, not at the first manifest line
    if not 0.0 <= max_rejected_fraction <= 1.0:
        raise ValueError(f"max_rejected_fraction must be in 0..1, got {max_rejected_fraction}")
    label_map = dict(label_map or {})
    if class_names is not None:
        class_names = list(class_names)
        if len(set(class_names)) != len(class_names) or not all(isinstance(n, str) and n for n in class_names):
            raise ValueError(f"class_names must be distinct non-empty strings, got {class_names}")
        stray = sorted({v for v in label_map.values() if v not in class_names})
        if stray:
            raise ValueError(f"label_map renames to {stray}, which are not in class_names {class_names}")
    bucket, prefix = _split_prefix(source)
    dest_bucket, dest_key = _split_object(destination)
    listing = _list(s3, bucket, prefix)
    if dest_bucket == bucket:
        listing.pop(dest_key, None)  # a rerun must not read its own output as input
    chosen, label_keys = _choose_format(listing, format, source)
    index = _ImageIndex(bucket, prefix, listing)

    entries: list[_Entry] = []
    for key in label_keys:
        entries.extend(_PARSERS[chosen](key, s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    for entry in entries:
        index.resolve(entry)  # rejected entries too, so that their photos do not show up as unreferenced
    _reject_duplicates(entries)
    class_map = _check_labels(entries, class_names, label_map)
    keys = sorted({e.key for e in entries if e.reason is None and e.key is not None})
    probed = _probe_all(s3, bucket, {key: listing[key] for key in keys})
    for entry in entries:
        if entry.reason is None and entry.key is not None:
            _to_image(entry, probed[entry.key], class_map)
    lines, problems = _validated_lines(entries, bucket, class_map, probed, job_name, creation_date)

    summary = _summary(chosen, source, destination, bucket, label_keys, entries, index, class_map, lines)
    imported, total = summary["imported"], summary["entries"]
    if problems:
        raise LabelImportError(f"{source}: the imported manifest is unusable: {'; '.join(problems)}", summary)
    if not imported:
        raise LabelImportError(f"{source}: no valid entry among {total}; nothing was written", summary)
    if len(summary["rejected"]) > max_rejected_fraction * total:
        raise LabelImportError(
            f"{source}: {len(summary['rejected'])} of {total} entries rejected, more than the allowed "
            f"{max_rejected_fraction:.0%}; nothing was written",
            summary,
        )
    s3.put_object(Bucket=dest_bucket, Key=dest_key, Body=lines.encode("utf-8"), ContentType="application/jsonl")
    return summary


# -- locations ----------------------------------------------------------------------------------------------
def _split_prefix(uri: str) -> tuple[str, str]:
    bucket, prefix = s3uri.parse(uri, allow_empty_key=True)
    return bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _split_object(uri: str) -> tuple[str, str]:
    bucket, key = s3uri.parse(uri)
    if key.endswith("/"):
        raise ValueError(f"destination must name an object, not a prefix: {uri!r}")
    return bucket, key


def _list(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):  # console "folder" markers
                sizes[item["Key"]] = int(item["Size"])
    return dict(sorted(sizes.items()))


def _choose_format(listing: Mapping[str, int], wanted: str, source: str) -> tuple[str, list[str]]:
    found = {
        name: [key for key in listing if key.lower().endswith(suffixes)] for name, suffixes in LABEL_SUFFIXES.items()
    }
    if wanted != "auto":
        chosen = wanted
    else:
        present = [name for name in FORMATS if found[name]]
        if len(present) > 1:
            kinds = "; ".join(f"{name}: {', '.join(found[name][:3])}" for name in present)
            raise LabelImportError(f"{source}: labels in more than one format ({kinds}); pass format= to choose")
        chosen = present[0] if present else ""
    if not chosen or not found[chosen]:
        expected = ", ".join(f"*{s} ({n})" for n, suffixes in LABEL_SUFFIXES.items() for s in suffixes)
        what = "no label files" if wanted == "auto" else f"no {wanted} label files"
        raise LabelImportError(f"{source}: {what}; expected {expected}")
    return chosen, found[chosen]


class _ImageIndex:
    """The image files under the source prefix, and how the labels' references resolve to them."""

    def __init__(self, bucket: str, prefix: str, listing: Mapping[str, int]) -> None:
        self.bucket, self.prefix = bucket, prefix
        self.keys = {key for key in listing if key.lower().endswith(IMAGE_SUFFIXES)}
        self.by_name: dict[str, list[str]] = {}
        self.by_folded_name: dict[str, list[str]] = {}
        for key in sorted(self.keys):
            self.by_name.setdefault(posixpath.basename(key), []).append(key)
            self.by_folded_name.setdefault(posixpath.basename(key).casefold(), []).append(key)
        self.referenced: set[str] = set()

    def resolve(self, entry: _Entry) -> None:
        ref = (entry.reference or "").strip()
        if not ref:
            entry.reject("names no image")
            return
        key = self._exact(ref, entry.label_dir)
        if key is None:
            key = self._by_name(ref, entry)
            entry.by_file_name = key is not None
        if key is not None:
            entry.key = key
            self.referenced.add(key)
        elif entry.reason is None:
            entry.reject(f"unknown image {ref!r}: no such image under s3://{self.bucket}/{self.prefix}")

    def _exact(self, ref: str, label_dir: str) -> str | None:
        if s3uri.is_s3(ref):
            try:
                bucket, key = s3uri.parse(ref, allow_empty_key=True)
            except ValueError:  # s3:///a.jpg names no bucket: no image of ours, for this entry alone
                return None
            return key if bucket == self.bucket and key in self.keys else None
        for base in (label_dir, self.prefix):
            key = posixpath.normpath(posixpath.join(base, ref.lstrip("/")))
            if key in self.keys:
                return key
        return None

    def _by_name(self, ref: str, entry: _Entry) -> str | None:
        # Labels exported elsewhere (a labelling job's bucket, a VOC Annotations/ vs JPEGImages/ layout) name
        # the photo by a path that differs from ours; the file name still identifies it when it is unique.
        name = posixpath.basename(ref.replace("\\", "/"))
        for candidate, lookup in ((name, self.by_name), (name.casefold(), self.by_folded_name)):
            keys = lookup.get(candidate, [])
            if len(keys) == 1:
                return keys[0]
            if len(keys) > 1:
                entry.reject(f"image {ref!r} is ambiguous: {len(keys)} images are named {candidate!r} ({keys[:3]})")
                return None
        return None


# -- parsers: each turns one label file into entries, rejecting what it cannot read -----------------------------
def _parse_groundtruth(key: str, data: bytes) -> list[_Entry]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [_Entry(key, reason=f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            entry = _Entry(f"{key} line {number}", label_dir=_folder(key))
            try:
                _read_groundtruth_line(entry, raw)
            except _Malformed as exc:
                entry.reject(str(exc))
            entries.append(entry)
    return entries


_Malformed = MalformedLabels  # what every parser here raises for an entry it cannot read


def _folder(key: str) -> str:
    """The key prefix of the folder holding ``key``: ``a/b.json`` -> ``a/``, ``b.json`` -> ``""``."""
    folder = posixpath.dirname(key)
    return folder + "/" if folder else ""


def _read_groundtruth_line(entry: _Entry, raw: str) -> None:
    try:
        line = read_labelled_line(raw)
    except MalformedLabels as exc:
        entry.reference = exc.source_ref  # a rejected entry still claims its photo
        raise
    entry.reference, entry.stated_size, entry.human_annotated = line.source_ref, line.stated_size, line.human_annotated
    entry.boxes += [
        _RawBox(box.label, box.left, box.top, box.left + box.width, box.top + box.height, box.confidence)
        for box in line.boxes
    ]


def _parse_coco(key: str, data: bytes) -> list[_Entry]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [_Entry(key, reason=f"not valid JSON ({exc})")]
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        return [_Entry(key, reason="not a COCO detection document (no 'images' list)")]
    try:
        categories = {int(cat["id"]): str(cat["name"]) for cat in doc.get("categories") or []}
    except (KeyError, TypeError, ValueError):
        return [_Entry(key, reason="'categories' must be a list of {id, name} objects")]
    if not isinstance(doc.get("annotations", []), list):
        return [_Entry(key, reason="'annotations' must be a list")]
    label_dir = _folder(key)
    entries: list[_Entry] = []
    by_id: dict[Any, _Entry] = {}
    for position, image in enumerate(doc["images"]):
        entry = _Entry(f"{key} images[{position}]", label_dir=label_dir)
        entries.append(entry)
        if not isinstance(image, dict):
            entry.reject("not a JSON object")
            continue
        entry.where = f"{key} image {image.get('id')!r} ({image.get('file_name')})"
        entry.reference = image.get("file_name") if isinstance(image.get("file_name"), str) else None
        try:
            if image.get("width") is not None or image.get("height") is not None:
                entry.stated_size = (need_int(image.get("width"), "width"), need_int(image.get("height"), "height"))
        except _Malformed as exc:
            entry.reject(str(exc))
        if not isinstance(image.get("id"), int | str):
            entry.reject(f"image id must be an integer, got {image.get('id')!r}")
        elif image.get("id") in by_id:
            entry.reject(f"image id {image.get('id')!r} is used twice in 'images'")
            by_id[image.get("id")].reject(f"image id {image.get('id')!r} is used twice in 'images'")
        else:
            by_id[image.get("id")] = entry
    for position, ann in enumerate(doc.get("annotations") or []):
        ann_id = ann.get("id", position) if isinstance(ann, dict) else position
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        target = by_id.get(image_id) if isinstance(image_id, int | str) else None
        if target is None:
            entries.append(_Entry(f"{key} annotation {ann_id!r}", reason=f"image_id {image_id!r} is not in 'images'"))
            continue
        try:
            target.boxes.append(_coco_box(ann, categories))
        except _Malformed as exc:
            target.reject(f"annotation {ann_id!r}: {exc}")
    return entries


def _coco_box(ann: Mapping[str, Any], categories: Mapping[int, str]) -> _RawBox:
    if ann.get("iscrowd"):
        raise _Malformed(
            "iscrowd region (a group of objects with no individual boxes): detections of those objects "
            "would count as false positives"
        )
    category = ann.get("category_id")
    if not is_number(category) or int(category) not in categories:
        raise _Malformed(f"category_id {category!r} is not in 'categories'")
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(is_number(v) for v in bbox):
        raise _Malformed(f"bbox must be [x, y, width, height] numbers, got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    return _RawBox(categories[int(category)], x, y, x + w, y + h)


def _parse_voc(key: str, data: bytes) -> list[_Entry]:
    entry = _Entry(key, label_dir=_folder(key))
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        entry.reject(f"malformed XML ({exc})")
        return [entry]
    if root.tag != "annotation":
        entry.reject(f"not a Pascal VOC annotation (root element <{root.tag}>)")
        return [entry]
    entry.reference = (root.findtext("filename") or "").strip() or None
    try:
        size = root.find("size")
        # Some exporters write 0 x 0 when they never opened the image: no size stated, the header decides.
        if size is not None and (size.findtext("width") or "0").strip() not in ("0", "0.0"):
            entry.stated_size = (_xml_int(size, "width"), _xml_int(size, "height"))
        for index, obj in enumerate(root.iter("object")):
            entry.boxes.append(_voc_box(index, obj))
    except _Malformed as exc:
        entry.reject(str(exc))
    return [entry]


def _voc_box(index: int, obj: ET.Element) -> _RawBox:
    name = (obj.findtext("name") or "").strip()
    box = obj.find("bndbox")
    if box is None:
        raise _Malformed(f"object {index} ({name!r}) has no <bndbox>")
    xmin, ymin, xmax, ymax = (_xml_number(box, tag, f"object {index}") for tag in ("xmin", "ymin", "xmax", "ymax"))
    # VOC corners are 1-based pixel indices, both inclusive: pixels xmin-1 .. xmax-1 counted from 0.
    return _RawBox(name, xmin - 1, ymin - 1, xmax, ymax)


def _xml_int(parent: ET.Element, tag: str) -> int:
    return need_int(_xml_number(parent, tag, f"<{parent.tag}>"), f"<{parent.tag}><{tag}>")


def _xml_number(parent: ET.Element, tag: str, where: str) -> float:
    text = (parent.findtext(tag) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise _Malformed(f"{where}: <{tag}> must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise _Malformed(f"{where}: <{tag}> must be finite, got {text!r}")
    return value


_PARSERS: dict[str, Callable[[str, bytes], list[_Entry]]] = {
    "groundtruth": _parse_groundtruth,
    "coco": _parse_coco,
    "voc": _parse_voc,
}


# -- checks across entries ------------------------------------------------------------------------------------
def _reject_duplicates(entries: Sequence[_Entry]) -> None:
    # Two label sets for one photo cannot both be right, and picking one would hide the conflict.
    claims: dict[str, list[_Entry]] = {}
    for entry in entries:
        if entry.reason is None and entry.key is not None:
            claims.setdefault(entry.key, []).append(entry)
    for key, claimants in claims.items():
        if len(claimants) > 1:
            where = ", ".join(c.where for c in claimants)
            for claimant in claimants:
                claimant.reject(f"image {key} is labelled by {len(claimants)} entries ({where})")


def _check_labels(
    entries: Sequence[_Entry], class_names: Sequence[str] | None, label_map: Mapping[str, str]
) -> dict[int, str]:
    for entry in entries:
        if entry.reason is not None:
            continue
        renamed = []
        for index, box in enumerate(entry.boxes):
            name = label_map.get(box.label, box.label)
            if not name:
                entry.reject(f"box {index} has an empty label")
                break
            if class_names is not None and name not in class_names:
                entry.reject(
                    f"label {name!r} is not one the model was trained on ({', '.join(class_names)}); "
                    "rename it with label_map or remove its boxes"
                )
                break
            renamed.append(_RawBox(name, box.left, box.top, box.right, box.bottom, box.confidence))
        else:
            entry.boxes = renamed
    used = {box.label for entry in entries if entry.reason is None for box in entry.boxes}
    names = class_names if class_names is not None else sorted(used)
    return dict(enumerate(names))


def _probe_all(s3: Any, bucket: str, sizes: Mapping[str, int]) -> dict[str, _Probed | str]:
    with ThreadPoolExecutor(PROBE_THREADS) as pool:
        found = list(pool.map(lambda key: _probe(s3, bucket, key, sizes[key]), sizes))
    return dict(zip(sizes, found, strict=True))


def _probe(s3: Any, bucket: str, key: str, size: int) -> _Probed | str:
    """The image's header facts, read with one ranged GET (the listing already gave its size)."""
    from botocore.exceptions import ClientError

    uri = s3uri.join(bucket, key)
    if size == 0:
        return f"{uri} is an empty file"
    try:
        head = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEADER_BYTES - 1}")["Body"].read()
        probed = _read_header(head, size)
        if probed is None and len(head) < size <= MAX_IMAGE_BYTES:
            # e.g. a JPEG whose size marker sits behind a large EXIF block
            probed = _read_header(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), size)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        return f"cannot read {uri}: {code or exc}"
    return probed if probed is not None else f"{uri} is not a readable image"


def _read_header(data: bytes, size: int) -> _Probed | None:
    try:
        with Image.open(io.BytesIO(data)) as image:  # parses the header only; pixels are never decoded
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1) if image.format == "JPEG" else 1
            return _Probed(ImageFacts(size, image.format or "unknown", image.width, image.height), int(orientation))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def _to_image(entry: _Entry, probed: _Probed | str, class_map: Mapping[int, str]) -> None:
    if isinstance(probed, str):
        entry.reject(probed)
        return
    width, height = probed.facts.width, probed.facts.height
    if entry.stated_size is not None and entry.stated_size != (width, height):
        stated = f"{entry.stated_size[0]} x {entry.stated_size[1]}"
        if entry.stated_size == (height, width) and probed.orientation in _ROTATED_ORIENTATIONS:
            entry.reject(
                f"labels are for a {stated} image but the file is stored {width} x {height} with an EXIF "
                f"rotation ({probed.orientation}); save the photo upright (rotation applied) and label it again"
            )
        else:
            entry.reject(f"labels are for a {stated} image but the file is {width} x {height}")
        return
    ids = {name: class_id for class_id, name in class_map.items()}
    boxes = []
    for index, raw in enumerate(entry.boxes):
        pixels = _pixel_box(raw, width, height)
        if isinstance(pixels, str):
            entry.reject(f"box {index} ({raw.label}): {pixels}")
            return
        left, top, right, bottom = pixels
        w, h = right - left, bottom - top
        boxes.append(Box(ids[raw.label], left, top, w, h, w * h, 1.0, raw.confidence))
    entry.image = RenderedImage(entry.key or "", width, height, boxes)


def _pixel_box(raw: _RawBox, width: int, height: int) -> tuple[int, int, int, int] | str:
    """The smallest integer pixel box covering ``raw``, clipped to the image, or why there is none."""
    shown = f"[{raw.left:g}, {raw.top:g}, {raw.right:g}, {raw.bottom:g}]"
    if raw.right <= raw.left or raw.bottom <= raw.top:
        return f"corners {shown} (left, top, right, bottom) enclose no area"
    tol = EDGE_TOLERANCE_PX
    if raw.left < -tol or raw.top < -tol or raw.right > width + tol or raw.bottom > height + tol:
        return f"corners {shown} (left, top, right, bottom) lie outside the {width} x {height} image"
    left, top = max(0, math.floor(raw.left)), max(0, math.floor(raw.top))
    right, bottom = min(width, math.ceil(raw.right)), min(height, math.ceil(raw.bottom))
    if right <= left or bottom <= top:
        return f"corners {shown} cover no pixel of the {width} x {height} image"
    return left, top, right, bottom


def _validated_lines(
    entries: Sequence[_Entry],
    bucket: str,
    class_map: Mapping[int, str],
    probed: Mapping[str, _Probed | str],
    job_name: str,
    creation_date: str,
) -> tuple[str, list[str]]:
    """The manifest text, after rejecting every entry whose line Rekognition would refuse; and the problems
    of the manifest as a whole (e.g. no box on any line), which no rejection can fix."""
    facts = {key: p.facts for key, p in probed.items() if isinstance(p, _Probed)}

    def probe(_bucket: str, key: str) -> ImageFacts:
        return facts[key]

    # A second pass re-checks the survivors: dropping lines can only break rules of the manifest as a whole.
    for _ in range(2):
        kept = sorted((e for e in entries if e.reason is None and e.image is not None), key=lambda e: e.key or "")
        text = "".join(dumps_line(_line(e, bucket, class_map, job_name, creation_date)) + "\n" for e in kept)
        if not kept:
            return text, []
        issues = validate_manifest(text, probe=probe)
        per_line = [issue for issue in issues if issue.line > 0]
        if not per_line:
            return text, [f"{issue.field}: {issue.message}" for issue in issues]
        for issue in per_line:
            kept[issue.line - 1].reject(f"{issue.field}: {issue.message}")
    raise AssertionError("lines that each passed validation failed it again")


def _line(entry: _Entry, bucket: str, class_map: Mapping[int, str], job_name: str, creation_date: str) -> dict:
    assert entry.image is not None
    return manifest_line(
        entry.image,
        s3uri.join(bucket, entry.key),
        class_map,
        job_name=job_name,
        creation_date=creation_date,
        attribute=DEFAULT_ATTRIBUTE,
        human_annotated=entry.human_annotated,
    )


def _summary(
    chosen: str,
    source: str,
    destination: str,
    bucket: str,
    label_keys: Sequence[str],
    entries: Sequence[_Entry],
    index: _ImageIndex,
    class_map: Mapping[int, str],
    text: str,
) -> dict[str, Any]:
    imported = [e for e in entries if e.reason is None]
    boxes: Counter[str] = Counter()
    images: Counter[str] = Counter()
    for entry in imported:
        assert entry.image is not None
        names = [class_map[box.class_id] for box in entry.image.boxes]
        boxes.update(names)
        images.update(set(names))
    return {
        "source": source,
        "manifest": destination,
        "format": chosen,
        "label_files": [s3uri.join(bucket, key) for key in label_keys],
        "entries": len(entries),
        "imported": len(imported),
        "rejected": [{"entry": e.where, "reason": e.reason} for e in entries if e.reason is not None],
        "images": len(imported),
        "empty_images": sum(1 for e in imported if e.image is not None and not e.image.boxes),
        "boxes": sum(boxes.values()),
        "boxes_per_label": dict(sorted(boxes.items())),
        "images_per_label": dict(sorted(images.items())),
        "matched_by_file_name": sum(1 for e in imported if e.by_file_name),
        "unreferenced_images": [s3uri.join(bucket, key) for key in sorted(index.keys - index.referenced)],
        "manifest_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }
