"""Synthetic bank statements: determinism, ground-truth arithmetic, the altered copy, page geometry, the writers
and the CLI. Pages are generated at 150 dpi and shared per module to keep the whole file within a few seconds."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw

from include.datagen import statements as sg
from include.datagen.statements import (
    LAYOUTS,
    MAX_SKEW_DEG,
    Statement,
    altered_copy,
    balance_errors,
    generate_statement,
    page_size_px,
    rotate_point,
    write_statement,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def by_layout() -> dict[str, Statement]:
    """One 3-page statement per layout: the transactions table continues over two page breaks."""
    return {name: generate_statement(100 + i, layout=name, dpi=150, pages=3) for i, name in enumerate(LAYOUTS)}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Statement, dict[str, list[Path]]]:
    st = generate_statement(21, layout="national", dpi=150, pages=2)
    return st, write_statement(st, tmp_path_factory.mktemp("written"))


def _money(text: str, truth: dict) -> str:
    fmt = truth["amount_format"]
    body = text.removeprefix(fmt["currency_symbol"])
    if fmt["thousands_separator"]:
        body = body.replace(fmt["thousands_separator"], "")
    return body


def _parse_date(text: str, truth: dict) -> date:
    year = date.fromisoformat(truth["account"]["period_start"]).year
    pattern = truth["date_format"]
    if "%Y" not in pattern:
        # "Jan 05": the year comes from the statement period, as a parser of such statements must do.
        text, pattern = f"{text} {year}", f"{pattern} %Y"
    return datetime.strptime(text, pattern).date()


# ------------------------------------------------------------------------------------------------ determinism


def test_same_seed_same_bytes(written: tuple[Statement, dict[str, list[Path]]], tmp_path: Path) -> None:
    st, files = written
    again = generate_statement(21, layout="national", dpi=150, pages=2)
    for a, b in zip(st.pages, again.pages, strict=True):
        assert a.tobytes() == b.tobytes()
    assert again.truth == st.truth
    files_again = write_statement(again, tmp_path)
    for kind, paths in files.items():
        for p, q in zip(paths, files_again[kind], strict=True):
            assert p.name == q.name
            assert p.read_bytes() == q.read_bytes(), f"{kind} {p.name} differs between two runs"


def test_other_seed_other_statement() -> None:
    a = generate_statement(1, layout="modern", dpi=150, pages=1, scan_effects=False)
    b = generate_statement(2, layout="modern", dpi=150, pages=1, scan_effects=False)
    assert a.truth["account"] != b.truth["account"]
    assert a.pages[0].tobytes() != b.pages[0].tobytes()


def test_seed_draws_layout_dpi_and_pages_within_range() -> None:
    drawn = [_drawn(seed) for seed in range(30)]
    assert {d[0] for d in drawn} == set(LAYOUTS)
    assert all(150 <= d[1] <= 200 for d in drawn)
    assert {d[2] for d in drawn} == {1, 2, 3}
    seed = next(s for s, d in enumerate(drawn) if d[2] == 1)  # the cheapest one to render
    st = generate_statement(seed, scan_effects=False)
    assert (st.layout, st.dpi, len(st.pages)) == drawn[seed]


def _drawn(seed: int) -> tuple[str, int, int]:
    # The draws generate_statement makes first, replayed without rendering anything.
    rng = random.Random(sg._subseed(seed, "data"))
    return rng.choice(sorted(LAYOUTS)), rng.randint(*sg.DPI_RANGE), rng.randint(1, 3)


# ------------------------------------------------------------------------------------------------ ground truth


def test_balances_are_consistent_on_every_row_and_page(by_layout: dict[str, Statement]) -> None:
    for name, st in by_layout.items():
        acct = st.truth["account"]
        tables = st.tables("transactions")
        assert len(tables) == 3, name
        prev_last = None
        withdrawals = deposits = 0
        for k, t in enumerate(tables):
            assert balance_errors(t["values"]) == [], (name, k)
            first = t["values"][0]
            assert first["kind"] == ("opening" if k == 0 else "forward")
            assert first["withdrawals"] is None and first["deposits"] is None
            if k == 0:
                assert first["balance"] == acct["opening_balance"]
            else:
                # The carried balance is the previous page's last balance, so each page checks on its own.
                assert first["balance"] == prev_last
                assert t["rows"][0][t["columns"].index("description")] == LAYOUTS[name].forward_label
            assert t["continued_from_previous_page"] == (k > 0)
            assert t["continues_on_next_page"] == (k < 2)
            prev_last = t["values"][-1]["balance"]
            for v in t["values"][1:]:
                withdrawals += sg._cents(v["withdrawals"]) or 0
                deposits += sg._cents(v["deposits"]) or 0
        assert prev_last == acct["closing_balance"]
        opening, closing = sg._cents(acct["opening_balance"]), sg._cents(acct["closing_balance"])
        assert opening - withdrawals + deposits == closing
        assert sg.amount_value(withdrawals) == acct["total_withdrawals"]
        assert sg.amount_value(deposits) == acct["total_deposits"]
        assert acct["transaction_count"] == sum(len(t["values"]) - 1 for t in tables)
        (summary,) = st.tables("summary")
        assert summary["values"] == {k: acct[k] for k in sg.SUMMARY_KEYS}


def test_printed_cells_parse_back_to_values(by_layout: dict[str, Statement]) -> None:
    for name, st in by_layout.items():
        truth = st.truth
        for t in st.tables("transactions"):
            assert t["header"] == [c.header for c in LAYOUTS[name].columns]
            for printed, values in zip(t["rows"], t["values"], strict=True):
                cell = dict(zip(t["columns"], printed, strict=True))
                assert _parse_date(cell["date"], truth).isoformat() == values["date"]
                for key in ("withdrawals", "deposits", "balance"):
                    assert (_money(cell[key], truth) or None) == values[key], (name, key, cell[key])
                assert cell["ref"] == (values["ref"] or "")
                assert cell["ref"] == "" or cell["ref"].isdigit()
                assert cell["description"] == values["description"]
        for t in st.tables("summary"):
            printed = [c for row in t["rows"] for c in row]
            for key, value in t["values"].items():
                assert any(_money(p, truth) == value for p in printed), (name, key)


def test_layouts_differ_where_real_statements_do(by_layout: dict[str, Statement]) -> None:
    firsts = [st.tables("transactions")[0] for st in by_layout.values()]
    assert {t["header"][t["columns"].index("withdrawals")] for t in firsts} == {"Withdrawals", "Debits", "Money out"}
    assert {t["header"][t["columns"].index("ref")] for t in firsts} == {"Ref.", "Cheque No."}
    assert len({tuple(st.tables("transactions")[0]["columns"]) for st in by_layout.values()}) == 3
    assert len({st.truth["date_format"] for st in by_layout.values()}) == 3
    assert {st.tables("transactions")[0]["ruled"] for st in by_layout.values()} == {True, False}
    assert {LAYOUTS[n].paper for n in LAYOUTS} == {"a4", "letter"}
    first_dates = {st.tables("transactions")[0]["rows"][0][0] for st in by_layout.values()}
    assert any("/" in d for d in first_dates) and any("-" in d for d in first_dates)
    assert any(d[:3] in sg.MONTHS for d in first_dates)
    assert any(st.truth["amount_format"]["currency_symbol"] for st in by_layout.values())
    assert any(st.truth["amount_format"]["thousands_separator"] for st in by_layout.values())


def test_truth_schema_keys(written: tuple[Statement, dict[str, list[Path]]]) -> None:
    st, files = written
    truth = json.loads(files["truth"][0].read_text())
    assert truth == st.truth
    assert set(truth) == {
        "schema", "name", "seed", "layout", "paper", "dpi", "page_count", "page_size_px", "date_format",
        "amount_format", "altered", "alteration", "account", "pages",
    }  # fmt: skip
    assert set(truth["account"]) == {
        "bank", "holder", "address", "account_number", "currency", "period_start", "period_end",
        "opening_balance", "total_withdrawals", "total_deposits", "closing_balance", "transaction_count",
    }  # fmt: skip
    page = truth["pages"][0]
    assert set(page) == {"page", "image", "width", "height", "skew_deg", "scan", "lines", "tables"}
    assert {t["type"] for p in truth["pages"] for t in p["tables"]} == {"transactions", "summary", "other"}
    for t in page["tables"]:
        assert set(t) >= {"index", "type", "ruled", "columns", "header", "header_rows", "rows", "values", "bbox",
                          "polygon", "cells"}  # fmt: skip
        assert set(t["cells"][0]) == {"row", "col", "header", "text", "bbox", "polygon"}
    assert any(line["text"] == "Page 1 of 2" for line in page["lines"])
    assert page["image"] == f"{st.name}-p1.png"


def test_boxes_lie_on_the_page_and_follow_the_skew(by_layout: dict[str, Statement]) -> None:
    for st in by_layout.values():
        for page in st.truth["pages"]:
            w, h = page["width"], page["height"]
            for t in page["tables"]:
                for cell in t["cells"]:
                    x0, y0, x1, y1 = cell["bbox"]
                    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
                    (ax, ay), (bx, by) = cell["polygon"][0], cell["polygon"][1]
                    # The top edge leans by the page's skew (counter-clockwise is up to the right).
                    assert math.degrees(math.atan2(ay - by, bx - ax)) == pytest.approx(page["skew_deg"], abs=0.2)
                assert len(t["cells"]) == len(t["columns"]) * (t["header_rows"] + len(t["rows"]))


# ------------------------------------------------------------------------------------------------ alteration


def test_altered_copy_changes_one_amount_and_breaks_only_its_row(by_layout: dict[str, Statement]) -> None:
    clean = by_layout["ledger"]
    forged = altered_copy(clean)
    alt = forged.truth["alteration"]
    assert clean.truth["alteration"] is None and forged.truth["altered"] is True
    assert alt["original_text"] != alt["altered_text"] and len(alt["original_text"]) == len(alt["altered_text"])
    assert forged.truth["account"] == clean.truth["account"]  # the account's true figures

    changed = []
    for p_clean, p_forged in zip(clean.truth["pages"], forged.truth["pages"], strict=True):
        for t_clean, t_forged in zip(p_clean["tables"], p_forged["tables"], strict=True):
            for r, (row_c, row_f) in enumerate(zip(t_clean["rows"], t_forged["rows"], strict=True)):
                for c, (a, b) in enumerate(zip(row_c, row_f, strict=True)):
                    if a != b:
                        changed.append((p_forged["page"], t_forged["index"], r, c, a, b))
            if t_forged["type"] == "transactions":
                expected = [alt["row"]] if (p_forged["page"], t_forged["index"]) == (alt["page"], alt["table"]) else []
                assert balance_errors(t_forged["values"]) == expected
    assert changed == [(alt["page"], alt["table"], alt["row"], alt["col"], alt["original_text"], alt["altered_text"])]

    # On the image, only pixels around that cell differ (JPEG blocks and blur spill a little).
    for k, (a, b) in enumerate(zip(clean.pages, forged.pages, strict=True), start=1):
        diff = np.any(np.asarray(a) != np.asarray(b), axis=2)
        if k != alt["page"]:
            assert not diff.any()
            continue
        ys, xs = np.nonzero(diff)
        assert len(xs) > 0
        x0, y0, x1, y1 = alt["bbox"]
        margin = 24
        assert xs.min() >= x0 - margin and xs.max() <= x1 + margin
        assert ys.min() >= y0 - margin and ys.max() <= y1 + margin


def test_alter_option_is_deterministic() -> None:
    a = generate_statement(9, layout="modern", dpi=150, pages=1, alter=True, scan_effects=False)
    b = generate_statement(9, layout="modern", dpi=150, pages=1, alter=True, scan_effects=False)
    assert a.truth["alteration"] == b.truth["alteration"]
    assert a.pages[0].tobytes() == b.pages[0].tobytes()


# ------------------------------------------------------------------------------------------------ geometry


@pytest.mark.parametrize(("paper", "dpi", "size"), [("letter", 150, (1275, 1650)), ("a4", 200, (1654, 2339))])
def test_page_size_px(paper: str, dpi: int, size: tuple[int, int]) -> None:
    assert page_size_px(paper, dpi) == size


def test_pages_have_the_asked_dpi(by_layout: dict[str, Statement]) -> None:
    for st in by_layout.values():
        for img in st.pages:
            assert img.mode == "RGB"
            assert img.size == page_size_px(st.paper, 150) == tuple(st.truth["page_size_px"])
    st = generate_statement(3, layout="ledger", dpi=200, pages=1, scan_effects=False)
    assert st.pages[0].size == (1654, 2339)
    assert st.truth["dpi"] == 200


def test_skew_within_bounds() -> None:
    skews = [sg._draw_scan_params(np.random.default_rng(sg._subseed(s, "scan", 1)), 150).skew_deg for s in range(300)]
    assert max(abs(s) for s in skews) <= MAX_SKEW_DEG
    assert min(skews) < -1.0 and max(skews) > 1.0  # the range is used, not only its middle


def test_image_skew_matches_truth(by_layout: dict[str, Statement]) -> None:
    st = by_layout["national"]
    for img, page in zip(st.pages, st.truth["pages"], strict=True):
        assert abs(page["skew_deg"]) <= MAX_SKEW_DEG
        assert _estimate_skew(img) == pytest.approx(page["skew_deg"], abs=0.15)


def _estimate_skew(img: Image.Image) -> float:
    # Projection profile: text rows and table rules give the sharpest row sums when the page is level.
    ink = Image.eval(img.convert("L").reduce(2), lambda v: 255 - v)

    def sharpness(angle: float) -> float:
        rows = np.asarray(ink.rotate(-angle, resample=Image.Resampling.BILINEAR), dtype=np.float32).sum(axis=1)
        return float(np.square(np.diff(rows)).sum())

    coarse = max(np.arange(-2.0, 2.001, 0.25), key=sharpness)
    return float(max(np.arange(coarse - 0.25, coarse + 0.251, 0.05), key=sharpness))


def test_rotate_point_matches_pil() -> None:
    img = Image.new("L", (200, 120), 0)
    ImageDraw.Draw(img).rectangle((150, 20, 152, 22), fill=255)
    rotated = np.asarray(img.rotate(7.0, resample=Image.Resampling.BILINEAR, center=(100, 60)), dtype=np.float32)
    ys, xs = np.nonzero(rotated)
    w = rotated[ys, xs]
    got = (float((xs * w).sum() / w.sum()), float((ys * w).sum() / w.sum()))
    assert got == pytest.approx(rotate_point(151.0, 21.0, 7.0, (100, 60)), abs=0.5)


# ------------------------------------------------------------------------------------------------ writers


def test_pdf_is_image_only_with_one_page_per_scan(written: tuple[Statement, dict[str, list[Path]]]) -> None:
    st, files = written
    pdf = pdfium.PdfDocument(str(files["pdf"][0]))
    try:
        assert len(pdf) == len(st.pages) == 2
        for i in range(len(pdf)):
            page = pdf[i]
            w_pt, h_pt = page.get_size()
            assert (w_pt, h_pt) == pytest.approx((612, 792), abs=1)  # Letter at the scan's resolution
            textpage = page.get_textpage()
            assert textpage.count_chars() == 0
            objects = list(page.get_objects())
            assert [o.type for o in objects] == [pdfium.raw.FPDF_PAGEOBJ_IMAGE]
    finally:
        pdf.close()


def test_tiff_and_pngs(written: tuple[Statement, dict[str, list[Path]]]) -> None:
    st, files = written
    with Image.open(files["tiff"][0]) as tiff:
        assert tiff.n_frames == 2
        for k in range(tiff.n_frames):
            tiff.seek(k)
            assert tiff.size == st.pages[k].size
            # Lossless: the TIFF holds the very pixels of the statement.
            assert tiff.convert("RGB").tobytes() == st.pages[k].tobytes()
        assert tuple(round(v) for v in tiff.info["dpi"]) == (150, 150)
    assert [p.name for p in files["png"]] == ["statement-0021-p1.png", "statement-0021-p2.png"]
    with Image.open(files["png"][1]) as png:
        assert png.size == st.pages[1].size
        assert tuple(round(v) for v in png.info["dpi"]) == (150, 150)


def test_write_rejects_unknown_format(tmp_path: Path) -> None:
    st = generate_statement(4, layout="modern", dpi=150, pages=1, scan_effects=False)
    with pytest.raises(ValueError, match="unknown formats"):
        write_statement(st, tmp_path, formats=("pdf", "docx"))


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"layout": "nope"}, "unknown layout"), ({"dpi": 30}, "dpi"), ({"pages": 0}, "pages")]
)
def test_invalid_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        generate_statement(0, **kwargs)


def test_runs_without_installed_fonts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sg, "FONT_DIRS", ("/nonexistent-fonts",))
    st = generate_statement(5, layout="ledger", dpi=150, pages=1, scan_effects=False)
    assert st.pages[0].size == page_size_px("a4", 150)
    assert balance_errors(st.tables("transactions")[0]["values"]) == []
    # Something was drawn where the transactions table is.
    x0, y0, x1, y1 = (round(v) for v in st.tables("transactions")[0]["bbox"])
    assert np.asarray(st.pages[0].convert("L").crop((x0, y0, x1, y1))).min() < 100


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "include.datagen.statements", "--count", "2", "--out", str(out), "--seed", "3"]
    cmd += ["--pages", "1", "--dpi", "150", "--formats", "pdf", "--altered", "1"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "statement-0000.pdf", "statement-0000.truth.json", "statement-0001.pdf", "statement-0001.truth.json",
        "truth.json",
    ]  # fmt: skip
    manifest = json.loads((out / "truth.json").read_text())
    assert [s["name"] for s in manifest["statements"]] == ["statement-0000", "statement-0001"]
    for entry in manifest["statements"]:
        truth = json.loads((out / f"{entry['name']}.truth.json").read_text())
        assert truth["altered"] and truth["alteration"] is not None
        assert truth["dpi"] == entry["dpi"] == 150 and truth["seed"] == entry["seed"]
        assert entry["files"]["pdf"] == [f"{entry['name']}.pdf"]
