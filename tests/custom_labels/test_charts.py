"""Pillow charts (per-label F1, study ranking) and the ranking CSV: valid PNGs, stable bytes, ranked rows."""

from __future__ import annotations

import csv
import io

import pytest
from PIL import Image

from include.custom_labels import charts

SCORES = {"spur_gear": 0.71, "gear_housing": 0.912, "bearing_cover": 0.455, "flange": None, "worm_gear": 0.0}


def rows() -> list[dict]:
    def row(variant, toggles, f1, label_f1=None, precision=None, recall=None, status="TRAINING_COMPLETED"):
        return {
            "variant": variant,
            "toggles": toggles,
            "f1": f1,
            "label_f1": label_f1 or {},
            "precision": precision,
            "recall": recall,
            "version_name": f"study-{variant}",
            "status": status,
        }

    return [
        row("no-materials", {"zoom": True, "materials": False}, 0.64, {"gear": 0.7, "flange": 0.41}, 0.6, 0.7),
        row("failed-one", {"zoom": False, "materials": False}, None, status="TRAINING_FAILED"),
        row("no-zoom", {"zoom": False, "materials": True}, 0.81, {"gear": 0.95, "flange": 0.1}, 0.8, 0.7),
        row("all-on", {"zoom": True, "materials": True}, 0.81, {"gear": 0.9, "flange": 0.72}, 0.83, 0.79),
    ]


def decode(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


def has_color(image: Image.Image, color: tuple[int, int, int]) -> bool:
    return any(count for count, rgb in image.getcolors(maxcolors=1 << 20) if rgb == color)


def test_label_f1_chart_is_a_sane_deterministic_png_with_gate_colours():
    png = charts.label_f1_chart(SCORES, title="gearbox-v1: F1 0.742", threshold=0.8)
    image = decode(png)
    assert image.width == 900 and 150 < image.height < 400  # one 30 px row per label plus title and axis
    assert png == charts.label_f1_chart(dict(reversed(SCORES.items())), title="gearbox-v1: F1 0.742", threshold=0.8)
    assert has_color(image, charts.PASS) and has_color(image, charts.FAIL) and has_color(image, charts.GATE)
    plain = decode(charts.label_f1_chart(SCORES, title="gearbox-v1"))
    assert has_color(plain, charts.NEUTRAL) and not has_color(plain, charts.PASS)
    assert plain.height < image.height  # no row of headroom for the gate's caption


def test_label_f1_chart_bars_grow_with_the_score():
    def bar_width(score: float) -> float:
        image = decode(charts.label_f1_chart({"gear": score}, title="t"))
        pixels = sum(count for count, rgb in image.getcolors(maxcolors=1 << 20) if rgb == charts.NEUTRAL)
        return pixels / 20  # the bar is 20 px tall

    widths = [bar_width(score) for score in (0.25, 0.5, 1.0)]
    assert 0 < widths[0] < widths[1] < widths[2]
    assert abs(widths[1] - 2 * widths[0]) <= 2


def test_label_f1_chart_refuses_values_that_are_not_scores():
    with pytest.raises(ValueError, match="F1 of 'gear'"):
        charts.label_f1_chart({"gear": 1.2}, title="t")
    with pytest.raises(ValueError, match="threshold"):
        charts.label_f1_chart({"gear": 0.5}, title="t", threshold=float("nan"))
    assert decode(charts.label_f1_chart({}, title="no labels evaluated")).width == 900


def test_ranking_chart_is_a_sane_deterministic_png():
    png = charts.ranking_chart(rows(), threshold=0.75)
    image = decode(png)
    assert 480 <= image.width < 2000 and 150 < image.height < 400
    assert png == charts.ranking_chart(list(reversed(rows())), threshold=0.75)
    assert has_color(image, charts.PASS) and has_color(image, charts.FAIL)  # F1 bars above and below the gate
    assert has_color(image, charts._heat(0.95)) and has_color(image, charts._heat(0.1))  # heat-map cells
    taller = decode(charts.ranking_chart(rows() * 3))
    assert taller.height == image.height + 8 * 26  # one row per variant


def test_ranking_orders_by_f1_then_name_with_failures_last():
    assert [r["variant"] for r in charts.ranked(rows())] == ["all-on", "no-zoom", "no-materials", "failed-one"]


def test_ranking_csv_has_the_documented_columns_in_ranked_order():
    text = charts.ranking_csv(rows())
    assert text == charts.ranking_csv(list(reversed(rows())))
    table = list(csv.DictReader(io.StringIO(text)))
    assert list(table[0]) == [
        "rank",
        "variant",
        "toggle_materials",
        "toggle_zoom",
        "f1",
        "f1_flange",
        "f1_gear",
        "precision",
        "recall",
        "version_name",
        "status",
    ]
    assert [(r["rank"], r["variant"], r["f1"]) for r in table] == [
        ("1", "all-on", "0.8100"),
        ("2", "no-zoom", "0.8100"),
        ("3", "no-materials", "0.6400"),
        ("", "failed-one", ""),
    ]
    assert table[1] == {
        "rank": "2",
        "variant": "no-zoom",
        "toggle_materials": "on",
        "toggle_zoom": "off",
        "f1": "0.8100",
        "f1_flange": "0.1000",
        "f1_gear": "0.9500",
        "precision": "0.8000",
        "recall": "0.7000",
        "version_name": "study-no-zoom",
        "status": "TRAINING_COMPLETED",
    }
    assert table[3]["status"] == "TRAINING_FAILED" and table[3]["f1_gear"] == ""
    assert text.endswith("\n") and "\r" not in text
