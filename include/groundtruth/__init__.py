"""SageMaker Ground Truth object-detection manifests, in the form Rekognition Custom Labels imports: the project's
one reader and writer of the format (``include.groundtruth.validate`` checks it against Rekognition's rules).

One JSON line per image (Rekognition Custom Labels developer guide, "Object localization in manifest files",
https://docs.aws.amazon.com/rekognition/latest/customlabels-dg/md-create-manifest-file-object-detection.html):

- ``source-ref``: the image's ``s3://bucket/key``;
- ``<attribute>`` (``bounding-box``): ``{"image_size": [{"width", "height", "depth": 3}],
  "annotations": [{"class_id", "top", "left", "width", "height"}]}`` in integer pixels;
- ``<attribute>-metadata``: ``{"objects": [{"confidence"}]`` (one per annotation, same order),
  ``"class-map": {"<class_id>": "<name>"}``, ``"type": "groundtruth/object-detection"``,
  ``"human-annotated": "yes" | "no"``, ``"creation-date"`` (ISO 8601), ``"job-name"}``.

Each line's ``class-map`` names only the classes annotated in that image, as in Ground Truth's own output
(SageMaker developer guide, sms-data-output.html: boxes of classes 0 and 5, ``"class-map": {"0": "dog",
"5": "bone"}``): a label listed with no box anywhere in a dataset would be a label with zero images, and
Rekognition's training minimum is one image per label.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from include import s3uri
from include.files import atomic_write_text
from include.rendering.types import Box, RenderedImage

DEFAULT_ATTRIBUTE = "bounding-box"
DETECTION_TYPE = "groundtruth/object-detection"
RGB_DEPTH = 3


class ManifestMergeError(ValueError):
    """Shard manifests that cannot be merged, e.g. two lines for the same image."""


def manifest_line(
    image: RenderedImage,
    source_ref: str,
    class_map: Mapping[int, str],
    *,
    job_name: str,
    creation_date: str,
    attribute: str = DEFAULT_ATTRIBUTE,
    human_annotated: bool = False,
) -> dict[str, Any]:
    """The Ground Truth JSON line (as a dict) for one image whose object is at ``source_ref``."""
    if not s3uri.is_s3(source_ref):
        raise ValueError(f"source_ref must be an s3:// URI, got {source_ref!r}")
    _check_iso8601(creation_date)
    missing = sorted({box.class_id for box in image.boxes} - set(class_map))
    if missing:
        raise ValueError(f"{image.file_name}: class ids {missing} are not in the class map {dict(class_map)}")
    present = sorted({box.class_id for box in image.boxes})
    return {
        "source-ref": source_ref,
        attribute: {
            "image_size": [{"width": int(image.width), "height": int(image.height), "depth": RGB_DEPTH}],
            "annotations": [_annotation(box) for box in image.boxes],
        },
        f"{attribute}-metadata": {
            "objects": [{"confidence": float(box.confidence)} for box in image.boxes],
            "class-map": {str(class_id): class_map[class_id] for class_id in present},
            "type": DETECTION_TYPE,
            "human-annotated": "yes" if human_annotated else "no",
            "creation-date": creation_date,
            "job-name": job_name,
        },
    }


def _annotation(box: Box) -> dict[str, int]:
    return {
        "class_id": int(box.class_id),
        "top": int(box.top),
        "left": int(box.left),
        "width": int(box.width),
        "height": int(box.height),
    }


def _check_iso8601(value: str) -> None:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"creation_date must be an ISO 8601 string, got {value!r}") from None


def dumps_line(line: Mapping[str, Any]) -> str:
    """One manifest line, byte-for-byte reproducible: sorted keys, no whitespace, no newline."""
    return json.dumps(line, sort_keys=True, separators=(",", ":"))


def write_manifest(path: Path, lines: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``lines`` as JSON Lines, atomically: readers see the old file or the whole new one."""
    return atomic_write_text(Path(path), "".join(dumps_line(line) + "\n" for line in lines))


def load_lines(source: Path | str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, JSON object) for each non-blank line. A ``Path`` is read; a ``str`` is the text itself."""
    text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else source
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(line, dict):
            raise ValueError(f"line {number}: a manifest line must be a JSON object")
        lines.append((number, line))
    return lines


def read_manifest(
    source: Path | str, *, attribute: str = DEFAULT_ATTRIBUTE, base_uri: str | None = None
) -> list[RenderedImage]:
    """Parse a manifest back into images and boxes, in file order; ``meta["source_ref"]`` keeps each URI.

    ``file_name`` is the source-ref relative to ``base_uri`` (e.g. ``s3://bucket/datasets/v1/``) when given,
    otherwise the object key. The manifest format has no visibility figures, so boxes come back with the
    neutral ``visible_pixels = width * height`` and ``visible_fraction = 1.0``. Run ``validate_manifest``
    first on manifests of unknown origin: this parser assumes a well-formed file.
    """
    images = []
    for number, line in load_lines(source):
        try:
            images.append(_parse_image(line, attribute, base_uri))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ValueError(f"manifest line {number}: cannot parse ({exc!r})") from None
    return images


def read_class_map(source: Path | str, *, attribute: str = DEFAULT_ATTRIBUTE) -> dict[int, str]:
    """The union of every line's class-map; a class id named differently on two lines is an error."""
    class_map: dict[int, str] = {}
    for number, line in load_lines(source):
        for key, name in line[f"{attribute}-metadata"]["class-map"].items():
            if class_map.setdefault(int(key), name) != name:
                raise ValueError(
                    f"manifest line {number}: class {key} is {name!r} here but {class_map[int(key)]!r} earlier"
                )
    return dict(sorted(class_map.items()))


def _parse_image(line: dict[str, Any], attribute: str, base_uri: str | None) -> RenderedImage:
    source_ref = line["source-ref"]
    label = line[attribute]
    objects = line[f"{attribute}-metadata"]["objects"]
    size = label["image_size"][0]
    boxes = [
        Box(
            class_id=int(ann["class_id"]),
            left=int(ann["left"]),
            top=int(ann["top"]),
            width=int(ann["width"]),
            height=int(ann["height"]),
            visible_pixels=int(ann["width"]) * int(ann["height"]),
            visible_fraction=1.0,
            confidence=float(objects[i]["confidence"]),
        )
        for i, ann in enumerate(label["annotations"])
    ]
    file_name = _file_name(source_ref, base_uri)
    return RenderedImage(file_name, int(size["width"]), int(size["height"]), boxes, {"source_ref": source_ref})


def _file_name(source_ref: str, base_uri: str | None) -> str:
    if base_uri is None:
        return s3uri.parse(source_ref)[1]
    prefix = base_uri if base_uri.endswith("/") else base_uri + "/"
    if not source_ref.startswith(prefix):
        raise ValueError(f"source-ref {source_ref!r} is not under {prefix!r}")
    return source_ref[len(prefix) :]


def merge_manifests(paths: Sequence[Path], out_path: Path) -> int:
    """Concatenate shard manifests into ``out_path``, sorted by source-ref; return the number of lines.

    Refuses (``ManifestMergeError``) an image listed twice, in one shard or across shards: Rekognition
    drops duplicate source-refs, and a duplicate here means a shard was written twice under different names.
    """
    seen: dict[str, str] = {}
    keyed: list[tuple[str, str]] = []
    for path in paths:
        for number, line in load_lines(Path(path)):
            source_ref = line.get("source-ref")
            if not isinstance(source_ref, str):
                raise ManifestMergeError(f"{path} line {number}: no source-ref")
            where = f"{path} line {number}"
            if source_ref in seen:
                raise ManifestMergeError(f"{source_ref} appears twice: {seen[source_ref]} and {where}")
            seen[source_ref] = where
            keyed.append((source_ref, dumps_line(line)))
    keyed.sort()
    atomic_write_text(Path(out_path), "".join(text + "\n" for _, text in keyed))
    return len(keyed)


def image_labels(text: str, attribute: str = DEFAULT_ATTRIBUTE) -> dict[str, list[str]]:
    """``source-ref`` -> the label names boxed in that image, from each line's own class-map."""
    labels: dict[str, list[str]] = {}
    for number, line in load_lines(text):
        class_map = line.get(f"{attribute}-metadata", {}).get("class-map", {})
        ids = [str(a["class_id"]) for a in line.get(attribute, {}).get("annotations", [])]
        unknown = sorted(set(ids) - set(class_map))
        if unknown:
            raise ValueError(f"manifest line {number}: class ids {unknown} are not in its class-map")
        labels[line["source-ref"]] = sorted({class_map[i] for i in ids})
    return labels


# -- lines of unknown origin ------------------------------------------------------------------------------------
class MalformedLabels(ValueError):
    """Labels that cannot be read; the message says what is wrong, for the person who wrote them.

    ``source_ref`` is the line's image when it could be read before the problem, so that a caller can still tie the
    rejected labels to their image (a photo with rejected labels is not an unlabelled photo)."""

    source_ref: str | None = None


@dataclass(frozen=True)
class LabelledBox:
    """A box as a foreign manifest states it: pixels, possibly fractional; ``label`` from the line's class-map."""

    label: str
    left: float
    top: float
    width: float
    height: float
    confidence: float = 1.0


@dataclass
class LabelledLine:
    """One line of a user's manifest, read leniently: any detection attribute name, float boxes, optional sizes."""

    source_ref: str
    stated_size: tuple[int, int] | None = None
    boxes: list[LabelledBox] = field(default_factory=list)
    human_annotated: bool = True


def read_labelled_line(raw: str) -> LabelledLine:
    """Parse one line of a Ground Truth manifest from anywhere (a user's labelling job, not our writer).

    The label attribute is found by its metadata's type, so it may have any name. Raises ``MalformedLabels``
    naming the first problem.
    """
    try:
        line = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MalformedLabels(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(line, dict):
        raise MalformedLabels("a manifest line must be a JSON object")
    result = LabelledLine(_need(line.get("source-ref"), str, "source-ref"))
    try:
        return _read_labels(line, result)
    except MalformedLabels as exc:
        exc.source_ref = result.source_ref
        raise


def _read_labels(line: dict[str, Any], result: LabelledLine) -> LabelledLine:
    attribute = _detection_attribute(line)
    label, meta = line[attribute], line[f"{attribute}-metadata"]
    if not isinstance(label, dict):
        raise MalformedLabels(f"{attribute} is not a JSON object")
    sizes = label.get("image_size")
    if sizes is not None:
        size = sizes[0] if isinstance(sizes, list) and sizes and isinstance(sizes[0], dict) else {}
        result.stated_size = (need_int(size.get("width"), "image_size width"), need_int(size.get("height"), "height"))
    class_map = meta.get("class-map")
    if not isinstance(class_map, dict):
        raise MalformedLabels(f"{attribute}-metadata.class-map is missing or not an object")
    annotations = _need(label.get("annotations"), list, f"{attribute}.annotations")
    objects = meta.get("objects")
    if objects is not None and (not isinstance(objects, list) or len(objects) != len(annotations)):
        raise MalformedLabels(f"{attribute}-metadata.objects must list one confidence per annotation")
    for index, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise MalformedLabels(f"annotation {index} is not a JSON object")
        left, top, width, height = (_need_number(ann.get(k), f"annotation {index} {k}") for k in _LTWH)
        name = class_map.get(str(ann.get("class_id")))
        if not isinstance(name, str):
            raise MalformedLabels(f"annotation {index}: class_id {ann.get('class_id')!r} has no name in the class-map")
        confidence = 1.0
        if objects is not None:
            obj = objects[index]
            confidence = obj.get("confidence", 1.0) if isinstance(obj, dict) else None
            if not is_number(confidence) or not 0.0 <= confidence <= 1.0:
                raise MalformedLabels(f"objects[{index}].confidence must be a number in 0..1, got {confidence!r}")
        result.boxes.append(LabelledBox(name, left, top, width, height, float(confidence)))
    result.human_annotated = meta.get("human-annotated") != "no"
    return result


_LTWH = ("left", "top", "width", "height")


def _detection_attribute(line: Mapping[str, Any]) -> str:
    # The label attribute is named after the labelling job, so find it by its metadata's type.
    typed = {
        key[: -len("-metadata")]: value.get("type")
        for key, value in line.items()
        if key.endswith("-metadata") and isinstance(value, dict) and key[: -len("-metadata")] in line
    }
    detection = sorted(name for name, kind in typed.items() if kind == DETECTION_TYPE)
    if len(detection) == 1:
        return detection[0]
    if detection:
        raise MalformedLabels(f"several object-detection attributes ({', '.join(detection)}); keep one per manifest")
    if typed:
        kinds = ", ".join(f"{name}: {kind}" for name, kind in sorted(typed.items(), key=lambda kv: kv[0]))
        raise MalformedLabels(f"no object-detection label ({kinds}); only {DETECTION_TYPE} labels have boxes")
    raise MalformedLabels(f"no label attribute with a matching '-metadata' of type {DETECTION_TYPE}")


# Checks for labels of unknown origin (also used by the COCO and Pascal VOC readers of include.custom_labels).
def is_number(value: Any) -> bool:
    """A finite number that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _need(value: Any, kind: type, name: str) -> Any:
    if not isinstance(value, kind):
        raise MalformedLabels(f"{name} is missing or not a {kind.__name__}")
    return value


def _need_number(value: Any, name: str) -> float:
    if not is_number(value):
        raise MalformedLabels(f"{name} must be a number, got {value!r}")
    return float(value)


def need_int(value: Any, name: str) -> int:
    if not is_number(value) or value != int(value) or value <= 0:
        raise MalformedLabels(f"{name} must be a positive whole number, got {value!r}")
    return int(value)
