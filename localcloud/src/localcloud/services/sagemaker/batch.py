"""Batch transform's data processing, as SageMaker applies it around the model's container.

For each input object: split it into records (``SplitType`` Line: one record a line; None: the whole object
is one request), pick each record's model input with ``InputFilter``, ask the model, join the original
record with its prediction when ``JoinSource`` is Input, keep what ``OutputFilter`` selects, and assemble
the responses (``AssembleWith`` Line: one a line; None: concatenated as the container answered them).

CSV records are JSON arrays of their fields, as SageMaker treats them: ``$[1:]`` drops the first column and
``$[0,-1]`` keeps the first and the last. JSONPath here is the subset SageMaker documents: ``$``, ``.name``,
``['a','b']``, ``[i]``, ``[i,j]`` and slices ``[start:end]`` (end excluded, negative indexes from the end).
An index outside the record is an error, as on SageMaker. When the prediction is JSON and the input CSV, a
joined record is ``{"SageMakerInput": [...], "SageMakerOutput": {...}}``, the form SageMaker gives joins of
records that are not both JSON objects.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CSV = "text/csv"
JSON_TYPES = ("application/json", "application/jsonlines")
ACCEPTED = (CSV, *JSON_TYPES)
BATCH = 500  # records per predict call: the model's fixed costs are paid per call, not per record
_NAME_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)")
_BRACKET_STEP = re.compile(r"\[([^\]]*)\]")
_RECORD = re.compile(r"^Record \d+ has")


class TransformError(Exception):
    """A record or object the model cannot transform; the message becomes the job's FailureReason."""


class PathError(ValueError):
    """A JSONPath outside the subset SageMaker documents, or one that does not fit a record."""


@dataclass(frozen=True)
class Step:
    names: tuple[str, ...] = ()  # object members
    items: tuple[int | slice, ...] = ()  # array indexes and slices
    single: bool = False  # a lone .name or [i]: selects the value itself, not a list of it


def parse_path(expression: str | None) -> list[Step]:
    """The steps of a JSONPath, or PathError naming what is not supported."""
    text = (expression or "$").strip()
    if not text.startswith("$"):
        raise PathError(f"The JSONPath {expression!r} must start with '$'.")
    steps, rest = [], text[1:]
    while rest:
        name = _NAME_STEP.match(rest)
        bracket = _BRACKET_STEP.match(rest)
        if name:
            steps.append(Step(names=(name.group(1),), single=True))
            rest = rest[name.end() :]
        elif bracket:
            steps.append(_bracket(bracket.group(1), expression or "$"))
            rest = rest[bracket.end() :]
        else:
            raise PathError(f"The JSONPath {expression!r} is not supported at {rest!r}.")
    return steps


def _bracket(body: str, expression: str) -> Step:
    parts = [p.strip() for p in body.split(",")]
    if all(len(p) >= 2 and p[0] == p[-1] and p[0] in "'\"" for p in parts):
        return Step(names=tuple(p[1:-1] for p in parts), single=len(parts) == 1)
    items: list[int | slice] = []
    try:
        for part in parts:
            if ":" in part:
                bounds = part.split(":")
                if len(bounds) != 2:
                    raise ValueError(part)
                start, end = (int(b) if b.strip() else None for b in bounds)
                items.append(slice(start, end))
            else:
                items.append(int(part))
    except ValueError as exc:
        raise PathError(f"The JSONPath {expression!r} has an unsupported subscript [{body}].") from exc
    return Step(items=tuple(items), single=len(items) == 1 and isinstance(items[0], int))


def select(steps: list[Step], value: Any) -> Any:
    """``value`` filtered by ``steps``; PathError when an index or member is not in it."""
    for step in steps:
        if step.names:
            if not isinstance(value, dict):
                raise PathError(f"Member {list(step.names)} selected from a record that is not a JSON object.")
            missing = [n for n in step.names if n not in value]
            if missing:
                raise PathError(f"The record has no member {missing[0]!r}.")
            value = value[step.names[0]] if step.single else {n: value[n] for n in step.names}
            continue
        if not isinstance(value, list):
            raise PathError("An index was selected from a record that is not an array.")
        picked: list[Any] = []
        for item in step.items:
            if isinstance(item, int):
                if not -len(value) <= item < len(value):
                    raise PathError(f"Index {item} is outside a record of {len(value)} fields.")
                picked.append(value[item])
            else:
                if item.start is not None and not -len(value) <= item.start < len(value):
                    raise PathError(f"Index {item.start} is outside a record of {len(value)} fields.")
                picked.extend(value[item])
        value = picked[0] if step.single else picked
    return value


def csv_fields(line: str) -> list[str]:
    return next(csv.reader([line]), [])


def csv_line(fields: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields if isinstance(fields, list) else [fields])
    return out.getvalue()


def media_type(value: str | None) -> str | None:
    return value.split(";", 1)[0].strip().lower() if value else None


@dataclass
class Settings:
    keys: list[str]
    accept: str
    split: str = "Line"
    assemble: str = "None"
    input_filter: str | None = None
    output_filter: str | None = None
    join: bool = False

    @property
    def reshapes_output(self) -> bool:
        """Whether outputs are joined or filtered (else the container's answers are written as they are)."""
        return bool(self.join or (self.output_filter or "$").strip() != "$")


Predict = Callable[[list[list[str]]], list[dict[str, Any]]]
Format = Callable[[list[dict[str, Any]], str], str]


def transform_text(text: str, settings: Settings, predict: Predict, format_output: Format, where: str) -> str:
    """The output object for one input object's ``text``; TransformError names the line that failed."""
    input_steps, output_steps = parse_path(settings.input_filter), parse_path(settings.output_filter)
    # Records end at "\n" (or "\r\n") only: str.splitlines would also split at characters CSV fields may hold.
    numbered = enumerate((line.rstrip("\r") for line in text.split("\n")), start=1)
    lines = [(n, line) for n, line in numbered if line.strip()]
    records = [csv_fields(line) for _, line in lines]
    model_rows = []
    for (number, _), fields in zip(lines, records, strict=True):
        try:
            chosen = select(input_steps, fields)
        except PathError as exc:
            raise TransformError(f"{where}, line {number}: InputFilter {settings.input_filter!r}: {exc}") from exc
        model_rows.append([str(v) for v in chosen] if isinstance(chosen, list) else [str(chosen)])
    results = _predict_all(model_rows, [n for n, _ in lines], predict, where)

    if not settings.reshapes_output:
        if settings.split == "None":
            return _assemble([format_output(results, settings.accept)], settings.assemble)
        return _assemble([format_output([r], settings.accept) for r in results], settings.assemble)

    responses = []
    for (number, _), fields, result in zip(lines, records, results, strict=True):
        prediction = _record_output(result, settings, format_output)
        joined: Any = prediction
        if settings.join:
            if isinstance(prediction, list):
                joined = fields + prediction
            else:
                joined = {"SageMakerInput": fields, "SageMakerOutput": prediction}
        try:
            kept = select(output_steps, joined)
        except PathError as exc:
            raise TransformError(f"{where}, line {number}: OutputFilter {settings.output_filter!r}: {exc}") from exc
        # Each response ends as the container's own bodies do, with a newline.
        responses.append((csv_line(kept) if settings.accept == CSV else json.dumps(kept)) + "\n")
    if settings.split == "None":
        return _assemble(["".join(responses)], settings.assemble)
    return _assemble(responses, settings.assemble)


def _record_output(result: dict[str, Any], settings: Settings, format_output: Format) -> Any:
    """One prediction as SageMaker's data processing sees it: CSV fields, or the JSON object."""
    text = format_output([result], settings.accept).strip()
    if settings.accept == CSV:
        return csv_fields(text)
    value = json.loads(text)
    # A JSON response of one record may come wrapped as {"predictions": [record]}.
    if isinstance(value, dict) and isinstance(value.get("predictions"), list) and len(value["predictions"]) == 1:
        return value["predictions"][0]
    return value


def _assemble(responses: list[str], assemble: str) -> str:
    if assemble == "Line":
        return "".join(r.rstrip("\r\n") + "\n" for r in responses)
    return "".join(responses)


def _predict_all(rows: list[list[str]], numbers: list[int], predict: Predict, where: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        try:
            results.extend(predict(chunk))
        except Exception as exc:  # noqa: BLE001 - find and name the record the model refused
            for offset, row in enumerate(chunk):
                try:
                    predict([row])
                except Exception as single:  # noqa: BLE001
                    # The model numbers records within its request; here there is one, named by its line.
                    reason = _RECORD.sub("The record has", str(single), count=1)
                    raise TransformError(f"{where}, line {numbers[start + offset]}: {reason}") from single
            raise TransformError(f"{where}, lines {numbers[start]}-{numbers[start + len(chunk) - 1]}: {exc}") from exc
    return results
