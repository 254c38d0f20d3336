"""PNG charts and a CSV table for Custom Labels results, drawn with Pillow alone.

- :func:`label_f1_chart`: one version's per-label F1 as horizontal bars, with the evaluation gate's threshold.
- :func:`ranking_chart`: an augmentation study's variants ranked by F1, as a table with a toggle matrix, an F1
  bar and a heat-map cell per label.
- :func:`ranking_csv`: the same ranking as CSV.

A study row is a mapping with ``variant``, ``toggles`` (name -> on/off), ``f1``, ``label_f1`` (label -> F1),
``precision``, ``recall``, ``version_name`` and ``status``; a variant whose training failed has ``f1`` None.
Output depends only on the input (fixed layout, Pillow's bundled font, no timestamps in the PNG), so the same
scores give the same bytes.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
TEXT = (33, 33, 33)
MUTED = (117, 117, 117)
GRID = (224, 224, 224)
PASS = (46, 125, 50)
FAIL = (198, 40, 40)
NEUTRAL = (21, 101, 192)
GATE = (230, 81, 0)
# Heat-map stops: 0 red, 0.5 yellow, 1 green (a diverging scale that reads as bad -> good).
HEAT = ((0.0, (215, 48, 39)), (0.5, (254, 224, 139)), (1.0, (26, 152, 80)))
MARGIN = 20
MAX_LABEL_CHARS = 40


def label_f1_chart(
    scores: Mapping[str, float | None], title: str, threshold: float | None = None, *, width: int = 900
) -> bytes:
    """Per-label F1 as horizontal bars, best first, each with its value; a dashed line marks ``threshold``.

    With a threshold, bars at or above it are green and the others red. A label with no score (None) is
    shown as ``n/a``.
    """
    _check_unit("threshold", threshold)
    rows = sorted(scores.items(), key=lambda kv: (kv[1] is None, -(kv[1] or 0.0), kv[0]))
    for label, value in rows:
        _check_unit(f"F1 of {label!r}", value)
    title_font, font, small = _font(20), _font(15), _font(12)
    names = [_clip(str(label), MAX_LABEL_CHARS) for label, _ in rows]
    name_width = max((_text_width(font, n) for n in names), default=0)
    left = MARGIN + name_width + 12
    right = width - MARGIN - _text_width(font, "0.000") - 10
    if right - left < 100:
        raise ValueError(f"width {width} leaves no room for bars next to labels {name_width} px wide")
    row_height, bar_height = 30, 20
    top = MARGIN + 34 + (18 if threshold is not None else 0)
    height = top + max(len(rows), 1) * row_height + 36 + MARGIN
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, MARGIN), _clip(title, 90), font=title_font, fill=TEXT)
    bottom = top + max(len(rows), 1) * row_height

    def x_of(value: float) -> int:
        return round(left + value * (right - left))

    for tick in range(6):
        x = x_of(tick / 5)
        draw.line([(x, top), (x, bottom)], fill=GRID, width=1)
        _centered(draw, (x, bottom + 6), f"{tick / 5:.1f}", small, MUTED)
    _centered(draw, ((left + right) // 2, bottom + 20), "F1", small, MUTED)
    if not rows:
        draw.text((left + 8, top + 6), "no per-label scores", font=font, fill=MUTED)
    for index, ((_, value), name) in enumerate(zip(rows, names, strict=True)):
        y = top + index * row_height
        middle = y + row_height // 2
        draw.text((left - 12, middle), name, font=font, fill=TEXT, anchor="rm")
        if value is None:
            draw.text((left + 6, middle), "n/a", font=font, fill=MUTED, anchor="lm")
            continue
        color = NEUTRAL if threshold is None else PASS if value >= threshold else FAIL
        y0 = middle - bar_height // 2
        if value > 0:
            draw.rectangle([left, y0, max(left + 1, x_of(value)), y0 + bar_height - 1], fill=color)
        draw.text((x_of(value) + 6, middle), f"{value:.3f}", font=font, fill=TEXT, anchor="lm")
    draw.line([(left, top), (left, bottom)], fill=MUTED, width=1)
    if threshold is not None:
        x = x_of(threshold)
        _dashed_vline(draw, x, top - 4, bottom, GATE)
        _centered(draw, (x, top - 18), f"gate {threshold:.2f}", small, GATE)
    return _png(image)


def ranked(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows by F1, best first, ties by variant name; rows without an F1 (training failed) last."""
    for row in rows:
        _check_unit(f"F1 of {row.get('variant')!r}", row.get("f1"))
    return sorted(rows, key=lambda r: (r.get("f1") is None, -(r.get("f1") or 0.0), str(r["variant"])))


def ranking_chart(
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str = "Augmentation study: variants ranked by F1",
    threshold: float | None = None,
) -> bytes:
    """The study's variants as a ranked table: toggles (filled dot = on), an F1 bar, then one heat-map cell
    per label (red 0 .. yellow 0.5 .. green 1) and precision/recall. Failed variants come last with their status.
    """
    _check_unit("threshold", threshold)
    ordered = ranked(rows)
    toggles = sorted({t for row in ordered for t in (row.get("toggles") or {})})
    labels = _labels(ordered)
    title_font, font, small = _font(20), _font(14), _font(12)
    row_height, header_height = 26, 46
    variants = [_clip(str(r["variant"]), MAX_LABEL_CHARS) for r in ordered]
    columns: list[tuple[str, int]] = [("#", 34)]
    columns.append(("variant", max([_text_width(font, v) for v in variants] + [60]) + 16))
    columns += [(t, max(_text_width(small, _clip(t, 14)) + 10, 28)) for t in toggles]
    columns.append(("F1", 170))
    columns += [(label, max(_text_width(small, _clip(label, 16)) + 16, 56)) for label in labels]
    columns += [("precision", 70), ("recall", 70)]
    width = MARGIN * 2 + sum(w for _, w in columns)
    top = MARGIN + 34
    height = top + header_height + max(len(ordered), 1) * row_height + MARGIN + 20
    width = max(width, 480, _text_width(title_font, _clip(title, 90)) + 2 * MARGIN)
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, MARGIN), _clip(title, 90), font=title_font, fill=TEXT)
    xs = [MARGIN + sum(w for _, w in columns[:i]) for i in range(len(columns) + 1)]
    for (name, column_width), x in zip(columns, xs, strict=False):
        shown = _clip(name, 16 if name in labels else 14)
        _centered(draw, (x + column_width // 2, top + 22), shown, small, TEXT)
    f1_x = xs[2 + len(toggles)]
    for group, first, count in (("toggles", 2, len(toggles)), ("F1 per label", 3 + len(toggles), len(labels))):
        if count:
            x0, x1 = xs[first], xs[first + count]
            _centered(draw, ((x0 + x1) // 2, top + 2), group, small, MUTED)
            draw.line([(x0 + 4, top + 17), (x1 - 4, top + 17)], fill=GRID)
    draw.line([(MARGIN, top + header_height - 1), (xs[-1], top + header_height - 1)], fill=MUTED)
    for index, (row, variant) in enumerate(zip(ordered, variants, strict=True)):
        y = top + header_height + index * row_height
        middle = y + row_height // 2
        if index % 2:
            draw.rectangle([MARGIN, y, xs[-1] - 1, y + row_height - 1], fill=(248, 248, 248))
        rank = "-" if row.get("f1") is None else str(index + 1)
        _centered(draw, (xs[0] + columns[0][1] // 2, middle), rank, font, TEXT, anchor="mm")
        draw.text((xs[1] + 8, middle), variant, font=font, fill=TEXT, anchor="lm")
        for offset, toggle in enumerate(toggles):
            cx = xs[2 + offset] + columns[2 + offset][1] // 2
            _toggle_dot(draw, cx, middle, (row.get("toggles") or {}).get(toggle))
        _f1_cell(draw, (f1_x + 6, y + 4, f1_x + 170 - 8, y + row_height - 4), row, threshold, font)
        label_f1 = row.get("label_f1") or {}
        for offset, label in enumerate(labels):
            x0 = xs[3 + len(toggles) + offset]
            _heat_cell(
                draw,
                (x0 + 2, y + 2, x0 + columns[3 + len(toggles) + offset][1] - 2, y + row_height - 2),
                label_f1.get(label),
                small,
            )
        for offset, key in enumerate(("precision", "recall")):
            x0 = xs[-3 + offset]
            value = row.get(key)
            text = "n/a" if value is None else f"{float(value):.3f}"
            _centered(draw, (x0 + 35, middle), text, small, TEXT if value is not None else MUTED, anchor="mm")
    if not ordered:
        draw.text((MARGIN + 8, top + header_height + 6), "no variants", font=font, fill=MUTED)
    legend_y = height - MARGIN - 8
    legend = "toggles: filled = on, hollow = off" if toggles else ""
    if threshold is not None:
        legend = f"{legend}{'; ' if legend else ''}F1 bar green at or above the gate {threshold:.2f}, red below"
    draw.text((MARGIN, legend_y), legend, font=small, fill=MUTED, anchor="lm")
    return _png(image)


def ranking_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The ranking as CSV: ``rank, variant, toggle_<name>..., f1, f1_<label>..., precision, recall,
    version_name, status``; sorted by F1 (best first) then variant; failed variants last with an empty rank."""
    ordered = ranked(rows)
    toggles = sorted({t for row in ordered for t in (row.get("toggles") or {})})
    labels = _labels(ordered)
    header = ["rank", "variant", *(f"toggle_{t}" for t in toggles), "f1", *(f"f1_{label}" for label in labels)]
    header += ["precision", "recall", "version_name", "status"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for index, row in enumerate(ordered, start=1):
        row_toggles = row.get("toggles") or {}
        label_f1 = row.get("label_f1") or {}
        writer.writerow(
            [
                "" if row.get("f1") is None else index,
                row["variant"],
                *(_cell(row_toggles.get(t)) for t in toggles),
                _cell(row.get("f1")),
                *(_cell(label_f1.get(label)) for label in labels),
                _cell(row.get("precision")),
                _cell(row.get("recall")),
                row.get("version_name") or "",
                row.get("status") or "",
            ]
        )
    return out.getvalue()


# -- helpers ----------------------------------------------------------------------------------------------------
def _labels(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({label for row in rows for label in (row.get("label_f1") or {})})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _check_unit(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in 0..1 or None, got {value!r}")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text_width(font: Any, text: str) -> int:
    return math.ceil(font.getlength(text))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _centered(
    draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font: Any, fill: Any, anchor: str = "mt"
) -> None:
    draw.text(xy, text, font=font, fill=fill, anchor=anchor)


def _dashed_vline(draw: ImageDraw.ImageDraw, x: int, y0: int, y1: int, fill: Any) -> None:
    for y in range(y0, y1, 8):
        draw.line([(x, y), (x, min(y + 4, y1))], fill=fill, width=2)


def _toggle_dot(draw: ImageDraw.ImageDraw, cx: int, cy: int, value: Any) -> None:
    box = [cx - 5, cy - 5, cx + 5, cy + 5]
    if value is None:
        draw.line([(cx - 4, cy), (cx + 4, cy)], fill=MUTED, width=1)  # toggle not part of this variant
    elif value:
        draw.ellipse(box, fill=TEXT)
    else:
        draw.ellipse(box, outline=TEXT, width=1)


def _f1_cell(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    row: Mapping[str, Any],
    threshold: float | None,
    font: Any,
) -> None:
    x0, y0, x1, y1 = box
    value = row.get("f1")
    if value is None:
        draw.text(
            (x0, (y0 + y1) // 2), _clip(str(row.get("status") or "no score"), 20), font=font, fill=MUTED, anchor="lm"
        )
        return
    bar_right = x1 - 48
    color = NEUTRAL if threshold is None else PASS if value >= threshold else FAIL
    draw.rectangle([x0, y0, bar_right, y1], outline=GRID)
    if value > 0:
        draw.rectangle([x0, y0, max(x0 + 1, round(x0 + value * (bar_right - x0))), y1], fill=color)
    if threshold is not None:
        tx = round(x0 + threshold * (bar_right - x0))
        draw.line([(tx, y0 - 2), (tx, y1 + 2)], fill=GATE, width=2)
    draw.text((x1, (y0 + y1) // 2), f"{value:.3f}", font=font, fill=TEXT, anchor="rm")


def _heat_cell(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], value: Any, font: Any) -> None:
    x0, y0, x1, y1 = box
    middle = ((x0 + x1) // 2, (y0 + y1) // 2)
    if value is None:
        draw.rectangle(box, fill=(238, 238, 238))
        draw.text(middle, "n/a", font=font, fill=MUTED, anchor="mm")
        return
    _check_unit("per-label F1", value)
    draw.rectangle(box, fill=_heat(float(value)))
    draw.text(middle, f"{value:.2f}", font=font, fill=TEXT, anchor="mm")


def _heat(value: float) -> tuple[int, int, int]:
    for (v0, c0), (v1, c1) in zip(HEAT, HEAT[1:], strict=False):
        if value <= v1:
            t = (value - v0) / (v1 - v0)
            return tuple(round(a + (b - a) * t) for a, b in zip(c0, c1, strict=True))  # type: ignore[return-value]
    return HEAT[-1][1]


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")  # no text chunks or timestamps: the bytes depend on the pixels only
    return out.getvalue()
