"""Scanned-looking bank statements with their ground truth, for the document-digitization demo and tests.

A statement is a checking account's month: a transactions table (opening row, then one row per transaction, with
the running balance) that continues across 1-3 pages, each page after the first opening on a "Balance forward"
row, plus an account summary (opening balance, total withdrawals, total deposits, closing balance). The layouts
are modelled on the real National Bank scan in ``shared/fixtures/textract-bank-statement`` and differ where real
statements differ: column order and names, date and amount formats, ruled or borderless tables, where the
summary sits. Pages are rendered at 150-200 dpi and then "scanned": skewed within +-1.5 degrees, toned like
paper, blurred, noised and JPEG-compressed, so that OCR meets realistic but readable input.

Everything is derived from ``seed``: the same seed gives the same pixels and files. ``alter=True`` gives the same
statement with one withdrawal or deposit amount changed on the page (one digit, as a forger would), so that the
balance rule (previous balance - withdrawals + deposits = balance) fails on that row and on no other; the ground
truth records which cell.

Ground truth (``Statement.truth``, written as ``<name>.truth.json``), pixel coordinates on the final, skewed page::

    {"schema", "name", "seed", "layout", "paper", "dpi", "page_count", "page_size_px": [w, h],
     "date_format" (strptime pattern), "amount_format": {"thousands_separator", "decimal_separator",
     "currency_symbol"}, "altered", "alteration": null | {"page", "table", "row", "col", "column",
     "original_text", "altered_text", "original_value", "altered_value", "bbox"},
     "account": {"bank", "holder", "address", "account_number", "currency", "period_start", "period_end",
                 "opening_balance", "total_withdrawals", "total_deposits", "closing_balance", "transaction_count"},
     "pages": [{"page", "image", "width", "height", "skew_deg", "scan": {...},
                "lines": [{"text", "bbox", "polygon"}],
                "tables": [{"index", "type", "ruled", "columns", "header", "header_rows", "rows", "values",
                            "continued_from_previous_page", "continues_on_next_page", "bbox", "polygon",
                            "cells": [{"row", "col", "header", "text", "bbox", "polygon"}]}]}]}

``rows`` are the data rows' cell strings as printed; ``values`` are their parsed values (ISO dates, amounts as
Decimal-compatible strings such as "1234.56", null for a blank cell). Table types: "transactions", "summary" and
"other" (the statement-period box of the National layout). Amounts in ``account`` are the true ones, before any
alteration.

CLI: ``python -m include.datagen.statements --count N --out DIR --seed S``.
"""

from __future__ import annotations

import argparse
import calendar
import dataclasses
import functools
import hashlib
import io
import json
import math
import random
import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SCHEMA = "bank-statement-truth/1"
DPI_RANGE = (150, 200)
MAX_SKEW_DEG = 1.5
PAPER_MM: dict[str, tuple[float, float]] = {"a4": (210.0, 297.0), "letter": (215.9, 279.4)}
FORMATS = ("pdf", "png", "tiff")

# Searched in order; Pillow's bundled font is the last resort so the generator runs on a bare machine too
# (packages.txt installs fonts-dejavu-core for the real thing).
FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/local/share/fonts",
    "/Library/Fonts",
    "C:/Windows/Fonts",
)
FONT_FILES: dict[tuple[str, bool], str] = {
    ("sans", False): "DejaVuSans.ttf",
    ("sans", True): "DejaVuSans-Bold.ttf",
    ("serif", False): "DejaVuSerif.ttf",
    ("serif", True): "DejaVuSerif-Bold.ttf",
    ("condensed", False): "DejaVuSansCondensed.ttf",
    ("condensed", True): "DejaVuSansCondensed-Bold.ttf",
}

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TRANSACTION_KEYS = ("date", "description", "ref", "withdrawals", "deposits", "balance")
SUMMARY_KEYS = ("opening_balance", "total_withdrawals", "total_deposits", "closing_balance")


# --------------------------------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Column:
    """A transactions-table column: ``key`` is one of TRANSACTION_KEYS, ``header`` what the bank prints."""

    key: str
    header: str
    width_pt: float
    align: str = "left"


@dataclass(frozen=True)
class TableStyle:
    ruled: bool
    rule: RGB = (120, 120, 120)
    header_fill: RGB | None = None
    header_ink: RGB | None = None
    header_bold: bool = False
    band_fill: RGB | None = None
    # Borderless tables still usually have a rule under the header and one closing the table.
    header_rule: bool = False
    bottom_rule: bool = False


@dataclass(frozen=True)
class Layout:
    name: str
    paper: str
    banks: tuple[str, ...]
    font: str
    font_pt: float
    row_pt: float
    ink: RGB
    accent: RGB
    columns: tuple[Column, ...]
    date_format: str
    thousands: str
    currency_symbol: str
    currency: str
    ref_mode: str  # "withdrawals": a reference on every withdrawal; "cheques": cheque rows only; "all"
    cheque_word: str
    opening_label: str
    forward_label: str
    summary_style: str  # "row": labels as a header over one row of amounts; "keyvalue": label | amount rows
    # Printed in SUMMARY_KEYS order, or with money in before money out when the transactions table does so.
    summary_labels: tuple[str, str, str, str]
    table: TableStyle
    summary_table: TableStyle
    left_pt: float
    first_table_top_pt: float
    table_top_pt: float
    table_bottom_pt: float
    last_page_reserve_pt: float

    @property
    def table_width_pt(self) -> float:
        return sum(c.width_pt for c in self.columns)


LAYOUTS: dict[str, Layout] = {
    # The real sample: Letter, blue header band, light-blue bands, ISO dates, bare amounts, summary at the end.
    "national": Layout(
        name="national",
        paper="letter",
        banks=("National Bank", "First National Bank", "Prairie National Bank"),
        font="sans",
        font_pt=9.0,
        row_pt=14.5,
        ink=(25, 25, 25),
        accent=(68, 114, 196),
        columns=(
            Column("date", "Date", 66),
            Column("description", "Description", 176),
            Column("ref", "Ref.", 50, "right"),
            Column("withdrawals", "Withdrawals", 68, "right"),
            Column("deposits", "Deposits", 60, "right"),
            Column("balance", "Balance", 70, "right"),
        ),
        date_format="%Y-%m-%d",
        thousands="",
        currency_symbol="",
        currency="USD",
        ref_mode="withdrawals",
        cheque_word="Check",
        opening_label="Previous balance",
        forward_label="Balance forward",
        summary_style="row",
        summary_labels=("Opening Balance", "Total Withdrawals", "Total Deposits", "Closing Balance"),
        table=TableStyle(
            ruled=True,
            rule=(142, 170, 219),
            header_fill=(68, 114, 196),
            header_ink=WHITE,
            band_fill=(217, 226, 243),
        ),
        summary_table=TableStyle(ruled=True, rule=(142, 170, 219), header_fill=(68, 114, 196), header_ink=WHITE),
        left_pt=73,
        first_table_top_pt=200,
        table_top_pt=200,
        table_bottom_pt=745,
        last_page_reserve_pt=95,
    ),
    # A British-style ledger: A4, serif, borderless, dd/mm/yyyy, "1,234.56", cheque numbers, summary on page 1.
    "ledger": Layout(
        name="ledger",
        paper="a4",
        banks=("Northbridge Savings Bank", "Harbour & Co. Bank", "Old Mill Bank"),
        font="serif",
        font_pt=8.5,
        row_pt=15.0,
        ink=(15, 15, 15),
        accent=(15, 15, 15),
        columns=(
            Column("date", "Date", 64),
            Column("ref", "Cheque No.", 64, "center"),
            Column("description", "Details", 158),
            Column("withdrawals", "Debits", 64, "right"),
            Column("deposits", "Credits", 64, "right"),
            Column("balance", "Balance", 68, "right"),
        ),
        date_format="%d/%m/%Y",
        thousands=",",
        currency_symbol="",
        currency="GBP",
        ref_mode="cheques",
        cheque_word="Cheque",
        opening_label="Opening balance",
        forward_label="Balance brought forward",
        summary_style="keyvalue",
        summary_labels=("Opening balance", "Total debits", "Total credits", "Closing balance"),
        table=TableStyle(ruled=False, rule=(15, 15, 15), header_bold=True, header_rule=True, bottom_rule=True),
        summary_table=TableStyle(ruled=False, rule=(15, 15, 15), bottom_rule=True),
        left_pt=57,
        first_table_top_pt=300,
        table_top_pt=200,
        table_bottom_pt=790,
        last_page_reserve_pt=0,
    ),
    # An online bank: A4, condensed sans, zebra bands without rules, "Jan 05", "$1,234.56", money in before out.
    "modern": Layout(
        name="modern",
        paper="a4",
        banks=("Brightwave Bank", "Cobalt Direct Bank", "Meridian Online Bank"),
        font="condensed",
        font_pt=9.0,
        row_pt=15.5,
        ink=(30, 30, 34),
        accent=(0, 105, 120),
        columns=(
            Column("date", "Date", 50),
            Column("description", "Description", 168),
            Column("ref", "Ref.", 62),
            Column("deposits", "Money in", 70, "right"),
            Column("withdrawals", "Money out", 70, "right"),
            Column("balance", "Balance", 75, "right"),
        ),
        date_format="%b %d",
        thousands=",",
        currency_symbol="$",
        currency="USD",
        ref_mode="all",
        cheque_word="Check",
        opening_label="Opening balance",
        forward_label="Balance forward",
        summary_style="row",
        summary_labels=("Opening balance", "Money out", "Money in", "Closing balance"),
        table=TableStyle(
            ruled=False, rule=(0, 105, 120), header_bold=True, header_rule=True, band_fill=(236, 238, 240)
        ),
        summary_table=TableStyle(ruled=False, header_fill=(222, 226, 230), header_bold=True),
        left_pt=50,
        first_table_top_pt=215,
        table_top_pt=160,
        table_bottom_pt=785,
        last_page_reserve_pt=0,
    ),
}

# (description, deposit?, low cents, high cents, weight); "{cheque}" becomes the layout's word for a cheque.
_PAYEES: tuple[tuple[str, bool, int, int, int], ...] = (
    ("Direct Deposit - EMPLOYER", True, 90_000, 260_000, 3),
    ("{cheque} Deposit", True, 5_000, 60_000, 1),
    ("Online Services - REFUND", True, 300, 6_000, 1),
    ("Funds Transfer - SAVINGS", True, 10_000, 80_000, 1),
    ("Interest Paid", True, 5, 900, 1),
    ("Dining - PIZZA", False, 1_200, 4_500, 3),
    ("Dining - CAFE", False, 500, 1_800, 3),
    ("Dining - BREAKFAST", False, 900, 3_000, 2),
    ("ATM Withdrawal - BODEGA", False, 2_000, 20_000, 3),
    ("Online Shopping - RETAILER", False, 800, 15_000, 4),
    ("Web Payment - VISA", False, 5_000, 40_000, 1),
    ("Web Payment - ELECTRIC", False, 4_000, 16_000, 1),
    ("Web Payment - GAS UTILITIES", False, 3_000, 12_000, 1),
    ("Mortgage Payment", False, 60_000, 140_000, 1),
    ("Pre-Authorized - INSURANCE", False, 8_000, 20_000, 1),
    ("Transportation - TAXI", False, 900, 6_000, 2),
    ("Online Services - STREAMING", False, 499, 1_999, 2),
    ("Grocery - MARKET", False, 1_500, 18_000, 4),
    ("Pharmacy - DRUGSTORE", False, 600, 7_000, 1),
    ("Fuel - GAS STATION", False, 2_500, 9_000, 2),
    ("Phone Bill - TELECOM", False, 3_000, 9_000, 1),
    ("Dry Clean Service", False, 1_500, 5_000, 1),
    ("Entertainment - SHOW", False, 2_000, 12_000, 1),
    ("{cheque} No. {number}", False, 5_000, 50_000, 2),
)
_HOLDERS = ("Jill Smith", "Omar Haddad", "Maria Gonzalez", "Wei Chen", "Aisha Okafor", "Liam O'Brien", "Priya Nair")
# Per currency, so that a British ledger is not mailed to Texas: (streets, cities, branch streets, branch cities).
_PLACES: dict[str, tuple[tuple[str, ...], ...]] = {
    "USD": (
        ("543 Spring Ln, Suite #21", "2200 Oak Avenue, Apt 4B", "71 Elm Court", "18 Lakeview Dr"),
        ("St Louis, MO 63101", "Portland, OR 97205", "Austin, TX 78701", "Madison, WI 53703"),
        ("123 Main St, PO Box 1000", "400 Commerce Blvd", "1 Capitol Plaza"),
        ("Manhattan, KS 66502", "Columbus, OH 43215", "Denver, CO 80202"),
    ),
    "GBP": (
        ("17 Harbour Road", "9 Mill Street", "Flat 3, 42 Victoria Terrace", "5 Church Lane"),
        ("Leeds LS1 4AP", "Bristol BS1 5TR", "York YO1 7HH", "Norwich NR2 1QE"),
        ("1 Market Square", "12 High Street", "80 Kings Parade"),
        ("London EC2V 7HH", "Manchester M2 4WU", "Cambridge CB2 1RH"),
    ),
}


# --------------------------------------------------------------------------------------------------- formats


def format_amount(cents: int, layout: Layout) -> str:
    """An amount as the layout prints it ("1,234.56", "1234.56", "$1,234.56")."""
    whole, frac = divmod(cents, 100)
    body = f"{whole:,}".replace(",", layout.thousands) if layout.thousands else str(whole)
    return f"{layout.currency_symbol}{body}.{frac:02d}"


def amount_value(cents: int) -> str:
    """A Decimal-compatible string, the form ground truth uses for every amount."""
    whole, frac = divmod(cents, 100)
    return f"{whole}.{frac:02d}"


def format_date(day: date, layout: Layout) -> str:
    # Written out rather than strftime so that the printed month names never depend on the process locale.
    return (
        layout.date_format.replace("%Y", f"{day.year:04d}")
        .replace("%m", f"{day.month:02d}")
        .replace("%d", f"{day.day:02d}")
        .replace("%b", MONTHS[day.month - 1])
    )


def balance_errors(values: Sequence[dict[str, Any]]) -> list[int]:
    """Indexes of the transactions-table rows where previous balance - withdrawals + deposits != balance.

    ``values`` is a transactions table's ``values``; its first row (opening or balance forward) has nothing to
    check against, so it is never reported.
    """
    bad: list[int] = []
    for i in range(1, len(values)):
        prev, row = values[i - 1], values[i]
        out = _cents(row.get("withdrawals")) or 0
        into = _cents(row.get("deposits")) or 0
        if _cents(prev["balance"]) - out + into != _cents(row["balance"]):
            bad.append(i)
    return bad


def _cents(value: str | None) -> int | None:
    if value is None:
        return None
    whole, _, frac = value.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


# --------------------------------------------------------------------------------------------------- data


@dataclass
class _Txn:
    day: date
    description: str
    ref: str
    withdrawal: int | None
    deposit: int | None
    balance: int = 0
    kind: str = "transaction"  # or "opening", "forward"


@dataclass
class _Account:
    layout: Layout
    bank: str
    branch: tuple[str, str, str]
    holder: str
    address: tuple[str, str]
    account_number: str
    sort_code: str
    start: date
    end: date
    opening: int
    txns: list[_Txn]
    page_rows: list[int]  # transactions per page

    @property
    def closing(self) -> int:
        return self.txns[-1].balance if self.txns else self.opening

    @property
    def total_out(self) -> int:
        return sum(t.withdrawal or 0 for t in self.txns)

    @property
    def total_in(self) -> int:
        return sum(t.deposit or 0 for t in self.txns)


def _subseed(seed: int, *tags: object) -> int:
    # Independent streams per purpose (data, alteration, each page's scan): a stream never shifts because
    # another one drew more or fewer numbers, which is what keeps an altered copy identical but for one cell.
    digest = hashlib.sha256(":".join(str(t) for t in (seed, *tags)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _capacities(layout: Layout, pages: int) -> list[int]:
    """Data rows (opening/forward row included) each page's transactions table holds."""
    caps = []
    for k in range(1, pages + 1):
        top = layout.first_table_top_pt if k == 1 else layout.table_top_pt
        bottom = layout.table_bottom_pt - (layout.last_page_reserve_pt if k == pages else 0)
        caps.append(int((bottom - top) // layout.row_pt) - 1)  # one row for the header
    return caps


def _make_account(rng: random.Random, layout: Layout, pages: int) -> _Account:
    year = rng.choice((2024, 2025, 2026))
    month = rng.randint(1, 12)
    start = date(year, month, 1)
    end = date(year, month, calendar.monthrange(year, month)[1])
    caps = _capacities(layout, pages)
    page_rows = [cap - 1 for cap in caps[:-1]]
    last_cap = caps[-1] - 1
    page_rows.append(rng.randint(min(4, last_cap), last_cap))
    n = sum(page_rows)

    days = sorted(date(year, month, rng.randint(1, end.day)) for _ in range(n))
    weights = [p[4] for p in _PAYEES]
    cheque_no = rng.randint(100, 899) * 1000 + rng.randint(0, 999)
    balance = opening = rng.randint(30_000, 500_000)
    txns: list[_Txn] = []
    for day in days:
        desc, is_deposit, low, high, _ = rng.choices(_PAYEES, weights)[0]
        amount = rng.randint(low, high)
        if not is_deposit and amount > balance - 2_000:
            # Keep the account in credit: a statement that goes negative needs a sign convention per layout.
            desc, is_deposit, amount = "Funds Transfer - SAVINGS", True, rng.randint(20_000, 100_000)
        is_cheque = "{number}" in desc
        if is_cheque:
            cheque_no += rng.randint(1, 3)
        desc = desc.format(cheque=layout.cheque_word, number=str(cheque_no)[-4:])
        if layout.ref_mode == "all":
            ref = str(rng.randint(10_000_000, 99_999_999))
        elif layout.ref_mode == "withdrawals":
            ref = "" if is_deposit else str(rng.randint(1_000, 99_999))
        else:
            ref = str(cheque_no) if is_cheque else ""
        balance += amount if is_deposit else -amount
        txns.append(
            _Txn(day, desc, ref, None if is_deposit else amount, amount if is_deposit else None, balance=balance)
        )

    streets, cities, branch_streets, branch_cities = _PLACES[layout.currency]
    return _Account(
        layout=layout,
        bank=rng.choice(layout.banks),
        branch=(rng.choice(branch_streets), rng.choice(branch_cities), f"1-800-555-{rng.randint(1000, 9999)}"),
        holder=rng.choice(_HOLDERS),
        address=(rng.choice(streets), rng.choice(cities)),
        account_number=f"{rng.randint(0, 999):03d}-{rng.randint(0, 9999):04d}-{rng.randint(0, 99):02d}-"
        f"{rng.randint(0, 99):02d}",
        sort_code=f"{rng.randint(10, 99)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}",
        start=start,
        end=end,
        opening=opening,
        txns=txns,
        page_rows=page_rows,
    )


def _page_txn_rows(acct: _Account) -> list[list[_Txn]]:
    """Each page's table rows: the opening (page 1) or balance-forward row, then that page's transactions."""
    out: list[list[_Txn]] = []
    i = 0
    balance, day = acct.opening, acct.start
    for k, count in enumerate(acct.page_rows):
        label = acct.layout.opening_label if k == 0 else acct.layout.forward_label
        first = _Txn(day, label, "", None, None, balance=balance, kind="opening" if k == 0 else "forward")
        chunk = acct.txns[i : i + count]
        out.append([first, *chunk])
        i += count
        if chunk:
            balance, day = chunk[-1].balance, chunk[-1].day
    return out


# --------------------------------------------------------------------------------------------------- drawing


@functools.lru_cache(maxsize=64)
def _load_font(dirs: tuple[str, ...], filename: str, px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for d in dirs:
        path = Path(d) / filename
        if path.is_file():
            return ImageFont.truetype(str(path), px)
    return ImageFont.load_default(size=px)


def _font_for(family: str, bold: bool, px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The TrueType font of ``family`` at ``px`` pixels, or Pillow's bundled font when none is installed."""
    return _load_font(FONT_DIRS, FONT_FILES[(family, bold)], max(px, 6))


class _Canvas:
    """One page before scanning; records every printed line and table in unskewed pixels."""

    def __init__(self, layout: Layout, dpi: int, size: tuple[int, int]) -> None:
        self.layout = layout
        self.s = dpi / 72.0
        self.img = Image.new("RGB", size, WHITE)
        self.draw = ImageDraw.Draw(self.img)
        self.lines: list[dict[str, Any]] = []
        self.tables: list[dict[str, Any]] = []

    def px(self, pt: float) -> int:
        return round(pt * self.s)

    def font(self, pt: float, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        return _font_for(self.layout.font, bold, self.px(pt))

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: RGB) -> None:
        self.draw.rectangle((self.px(x0), self.px(y0), self.px(x1) - 1, self.px(y1) - 1), fill=fill)

    def hline(self, x0: float, x1: float, y: float, ink: RGB, width_pt: float = 0.6) -> None:
        w = max(1, self.px(width_pt))
        self.draw.line((self.px(x0), self.px(y), self.px(x1), self.px(y)), fill=ink, width=w)

    def vline(self, x: float, y0: float, y1: float, ink: RGB, width_pt: float = 0.6) -> None:
        w = max(1, self.px(width_pt))
        self.draw.line((self.px(x), self.px(y0), self.px(x), self.px(y1)), fill=ink, width=w)

    def put(
        self,
        text: str,
        x0: float,
        x1: float,
        y_mid: float,
        pt: float,
        *,
        bold: bool = False,
        align: str = "left",
        ink: RGB | None = None,
        pad: float = 0.0,
    ) -> tuple[int, int, int, int]:
        """Draws ``text`` between x0 and x1 (pt), vertically centred on y_mid; returns its pixel box.

        The font shrinks until the text fits, so no glyph ever crosses into a neighbouring cell (the fallback
        font's metrics differ from DejaVu's).
        """
        avail = self.px(x1 - x0 - 2 * pad)
        size = self.px(pt)
        font = _font_for(self.layout.font, bold, size)
        while size > 6 and self.draw.textlength(text, font=font) > avail:
            size -= 1
            font = _font_for(self.layout.font, bold, size)
        width = self.draw.textlength(text, font=font)
        if align == "right":
            x = self.px(x1 - pad) - width
        elif align == "center":
            x = (self.px(x0) + self.px(x1) - width) / 2
        else:
            x = self.px(x0 + pad)
        if isinstance(font, ImageFont.FreeTypeFont):
            ascent, descent = font.getmetrics()
        else:  # Pillow's bitmap font (a Pillow built without FreeType) has no metrics
            ascent, descent = font.getbbox("Ag")[3], 0
        y = self.px(y_mid) - (ascent + descent) / 2 + descent / 3
        xy = (round(x), round(y))
        self.draw.text(xy, text, font=font, fill=ink or self.layout.ink)
        return self.draw.textbbox(xy, text, font=font)

    def line(self, text: str, x: float, y_mid: float, pt: float, **kw: Any) -> None:
        """A free text line (not in a table), recorded for the ground truth."""
        align = kw.get("align", "left")
        span = 400.0
        x0, x1 = {"left": (x, x + span), "right": (x - span, x), "center": (x - span / 2, x + span / 2)}[align]
        box = self.put(text, x0, x1, y_mid, pt, **kw)
        self.lines.append({"text": text, "box": box})

    def table(
        self,
        *,
        kind: str,
        x: float,
        y: float,
        widths: Sequence[float],
        aligns: Sequence[str],
        columns: Sequence[str],
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        values: Any,
        style: TableStyle,
        row_pt: float,
        extra: dict[str, Any] | None = None,
    ) -> float:
        """Draws a table with its top-left at (x, y) pt; records it; returns its bottom in pt."""
        lay = self.layout
        xs = [x]
        for w in widths:
            xs.append(xs[-1] + w)
        printed = ([list(header)] if header else []) + [list(r) for r in rows]
        ys = [y + i * row_pt for i in range(len(printed) + 1)]
        hrows = 1 if header else 0

        # Fills first, rules next, text last: a rule or band never paints over a glyph.
        if header and style.header_fill:
            self.rect(xs[0], ys[0], xs[-1], ys[1], style.header_fill)
        if style.band_fill:
            for i in range(hrows, len(printed)):
                if (i - hrows) % 2 == 1:
                    self.rect(xs[0], ys[i], xs[-1], ys[i + 1], style.band_fill)
        if style.ruled:
            for yy in ys:
                self.hline(xs[0], xs[-1], yy, style.rule)
            for xx in xs:
                self.vline(xx, ys[0], ys[-1], style.rule)
        else:
            if header and style.header_rule:
                self.hline(xs[0], xs[-1], ys[1], style.rule, 0.9)
            if style.bottom_rule:
                self.hline(xs[0], xs[-1], ys[-1], style.rule, 0.9)

        cells: list[dict[str, Any]] = []
        for r, row in enumerate(printed):
            is_header = r < hrows
            for c, text in enumerate(row):
                if text:
                    self.put(
                        text,
                        xs[c],
                        xs[c + 1],
                        (ys[r] + ys[r + 1]) / 2,
                        lay.font_pt,
                        bold=is_header and style.header_bold,
                        align=aligns[c],
                        ink=(style.header_ink or lay.ink) if is_header else lay.ink,
                        pad=3.0,
                    )
                box = (self.px(xs[c]), self.px(ys[r]), self.px(xs[c + 1]), self.px(ys[r + 1]))
                cells.append({"row": r, "col": c, "header": is_header, "text": text, "box": box})
        self.tables.append(
            {
                "type": kind,
                "ruled": style.ruled,
                "columns": list(columns),
                "header": list(header),
                "header_rows": hrows,
                "rows": [list(r) for r in rows],
                "values": values,
                **(extra or {}),
                "box": (self.px(xs[0]), self.px(ys[0]), self.px(xs[-1]), self.px(ys[-1])),
                "cells": cells,
            }
        )
        return ys[-1]


def _summary_values(acct: _Account) -> dict[str, str]:
    return {
        "opening_balance": amount_value(acct.opening),
        "total_withdrawals": amount_value(acct.total_out),
        "total_deposits": amount_value(acct.total_in),
        "closing_balance": amount_value(acct.closing),
    }


def _draw_summary(c: _Canvas, acct: _Account, x: float, y: float, width: float) -> float:
    lay = acct.layout
    amounts = [acct.opening, acct.total_out, acct.total_in, acct.closing]
    # The summary follows the transactions table's order of money out/in; its values stay keyed by meaning.
    keys = list(SUMMARY_KEYS)
    labels = list(lay.summary_labels)
    order = [col.key for col in lay.columns]
    if order.index("deposits") < order.index("withdrawals"):
        keys[1], keys[2] = keys[2], keys[1]
        labels[1], labels[2] = labels[2], labels[1]
        amounts[1], amounts[2] = amounts[2], amounts[1]
    printed = [format_amount(a, lay) for a in amounts]
    if lay.summary_style == "row":
        return c.table(
            kind="summary",
            x=x,
            y=y,
            widths=[width / 4] * 4,
            aligns=["center"] * 4,
            columns=keys,
            header=labels,
            rows=[printed],
            values=_summary_values(acct),
            style=lay.summary_table,
            row_pt=lay.row_pt + 3,
        )
    return c.table(
        kind="summary",
        x=x,
        y=y,
        widths=[width * 0.62, width * 0.38],
        aligns=["left", "right"],
        columns=["label", "amount"],
        header=[],
        rows=[[label, amt] for label, amt in zip(labels, printed, strict=True)],
        values=_summary_values(acct),
        style=lay.summary_table,
        row_pt=lay.row_pt,
    )


def _draw_transactions(c: _Canvas, acct: _Account, rows: list[_Txn], y: float, page: int, pages: int) -> float:
    lay = acct.layout
    printed, values = [], []
    for t in rows:
        cell = {
            "date": format_date(t.day, lay),
            "description": t.description,
            "ref": t.ref,
            "withdrawals": format_amount(t.withdrawal, lay) if t.withdrawal is not None else "",
            "deposits": format_amount(t.deposit, lay) if t.deposit is not None else "",
            "balance": format_amount(t.balance, lay),
        }
        printed.append([cell[col.key] for col in lay.columns])
        values.append(
            {
                "kind": t.kind,
                "date": t.day.isoformat(),
                "description": t.description,
                "ref": t.ref or None,
                "withdrawals": amount_value(t.withdrawal) if t.withdrawal is not None else None,
                "deposits": amount_value(t.deposit) if t.deposit is not None else None,
                "balance": amount_value(t.balance),
            }
        )
    return c.table(
        kind="transactions",
        x=lay.left_pt,
        y=y,
        widths=[col.width_pt for col in lay.columns],
        aligns=[col.align for col in lay.columns],
        columns=[col.key for col in lay.columns],
        header=[col.header for col in lay.columns],
        rows=printed,
        values=values,
        style=lay.table,
        row_pt=lay.row_pt,
        extra={"continued_from_previous_page": page > 1, "continues_on_next_page": page < pages},
    )


def _paint_national(c: _Canvas, acct: _Account, page: int, pages: int) -> None:
    lay, left = acct.layout, acct.layout.left_pt
    right = left + lay.table_width_pt
    c.line(acct.bank, left, 52, 20)
    for i, text in enumerate(acct.branch):
        c.line(text, left, 86 + 14 * i, 9)
    c.rect(right - 222, 64, right, 77, lay.accent)
    c.line("Checking Account Statement", right - 111, 70.5, 9, align="center", ink=WHITE)
    c.line(f"Page {page} of {pages}", right - 111, 86, 9, align="center")
    c.table(
        kind="other",
        x=right - 222,
        y=100,
        widths=[70, 70, 82],
        aligns=["left", "left", "right"],
        columns=["period_start", "period_end", "account_number"],
        header=["Starting", "Ending", "Account Number"],
        rows=[[format_date(acct.start, lay), format_date(acct.end, lay), acct.account_number]],
        values={
            "period_start": acct.start.isoformat(),
            "period_end": acct.end.isoformat(),
            "account_number": acct.account_number,
        },
        style=TableStyle(ruled=False, header_fill=lay.accent, header_ink=WHITE),
        row_pt=13,
    )
    c.line(acct.holder, left, 144, 9)
    for i, text in enumerate(acct.address):
        c.line(text, left, 158 + 14 * i, 9)


def _tail_national(c: _Canvas, acct: _Account, y: float) -> None:
    lay = acct.layout
    xs = [lay.left_pt]
    for col in lay.columns:
        xs.append(xs[-1] + col.width_pt)
    at = {col.key: i for i, col in enumerate(lay.columns)}
    y_total = y + 16
    c.line("TOTAL", xs[at["description"]] + 3, y_total, lay.font_pt, bold=True)
    c.line(format_amount(acct.total_out, lay), xs[at["withdrawals"] + 1] - 3, y_total, lay.font_pt, align="right")
    c.line(format_amount(acct.total_in, lay), xs[at["deposits"] + 1] - 3, y_total, lay.font_pt, align="right")
    c.line("Account Summary", lay.left_pt, y_total + 24, 11, bold=True)
    _draw_summary(c, acct, lay.left_pt, y_total + 34, lay.table_width_pt)


def _paint_ledger(c: _Canvas, acct: _Account, page: int, pages: int) -> None:
    lay, left = acct.layout, acct.layout.left_pt
    right = left + lay.table_width_pt
    c.line(acct.bank, left, 58, 16, bold=True)
    c.line(acct.branch[0], left, 78, 8)
    c.line(acct.branch[1], left, 90, 8)
    c.line("STATEMENT OF ACCOUNT", right, 58, 12, bold=True, align="right")
    c.line(f"Page {page} of {pages}", right, 76, 8.5, align="right")
    c.line(acct.holder.upper(), left, 128, 9)
    for i, text in enumerate(acct.address):
        c.line(text, left, 141 + 13 * i, 9)
    period = f"{format_date(acct.start, lay)} to {format_date(acct.end, lay)}"
    for i, (label, value) in enumerate(
        (("Account number", acct.account_number), ("Sort code", acct.sort_code), ("Statement period", period))
    ):
        c.line(label, 320, 128 + 13 * i, 8.5, bold=True)
        c.line(value, 410, 128 + 13 * i, 8.5)
    if page == 1:
        c.line("Account summary", left, 212, 10.5, bold=True)
        _draw_summary(c, acct, left, 222, 240)
    c.line("Please examine this statement and report any discrepancy within 30 days.", left, 812, 7)


def _paint_modern(c: _Canvas, acct: _Account, page: int, pages: int) -> None:
    lay, left = acct.layout, acct.layout.left_pt
    right = left + lay.table_width_pt
    c.line(acct.bank, left, 52, 20, bold=True, ink=lay.accent)
    c.line("Your account statement", right, 48, 11, bold=True, align="right")
    c.line(f"Page {page} of {pages}", right, 64, 9, align="right")
    c.line(acct.holder, left, 92, 9.5)
    for i, text in enumerate(acct.address):
        c.line(text, left, 106 + 14 * i, 9.5)
    start = f"{format_date(acct.start, lay)}, {acct.start.year}"
    end = f"{format_date(acct.end, lay)}, {acct.end.year}"
    c.line(f"Account {acct.account_number}", right, 92, 9.5, align="right")
    c.line(f"{start} - {end}", right, 106, 9.5, align="right")
    if page == 1:
        _draw_summary(c, acct, left, 150, lay.table_width_pt)
    c.line(f"{acct.bank} - {acct.branch[0]}, {acct.branch[1]} - {acct.branch[2]}", left, 812, 7)


_PAINTERS: dict[str, tuple[Callable[..., None], Callable[..., None] | None]] = {
    "national": (_paint_national, _tail_national),
    "ledger": (_paint_ledger, None),
    "modern": (_paint_modern, None),
}


# --------------------------------------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class ScanParams:
    skew_deg: float
    paper_tone: RGB
    shading: float
    blur_px: float
    noise_sigma: float
    speckle: float
    jpeg_quality: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "skew_deg": round(self.skew_deg, 4),
            "paper_tone": list(self.paper_tone),
            "shading": round(self.shading, 4),
            "blur_px": round(self.blur_px, 3),
            "noise_sigma": round(self.noise_sigma, 3),
            "speckle": round(self.speckle, 6),
            "jpeg_quality": self.jpeg_quality,
        }


def _draw_scan_params(rng: np.random.Generator, dpi: int) -> ScanParams:
    tone = float(rng.uniform(226, 246))
    return ScanParams(
        skew_deg=float(rng.uniform(-MAX_SKEW_DEG, MAX_SKEW_DEG)),
        paper_tone=(round(tone), round(tone - rng.uniform(0, 4)), round(tone - rng.uniform(2, 10))),
        shading=float(rng.uniform(0.0, 0.05)),
        # Optical blur is physical: the same on paper, so more pixels of it at a higher dpi.
        blur_px=float(rng.uniform(0.3, 0.6)) * dpi / 150,
        noise_sigma=float(rng.uniform(2.0, 6.0)),
        speckle=float(rng.uniform(0.0002, 0.001)),
        jpeg_quality=int(rng.integers(65, 90)),
    )


def rotate_point(x: float, y: float, deg: float, center: tuple[float, float]) -> tuple[float, float]:
    """Where PIL's ``Image.rotate(deg, center=center)`` moves pixel (x, y) (counter-clockwise for deg > 0)."""
    a = math.radians(deg)
    dx, dy = x - center[0], y - center[1]
    return (center[0] + dx * math.cos(a) + dy * math.sin(a), center[1] - dx * math.sin(a) + dy * math.cos(a))


def _scan(img: Image.Image, p: ScanParams, rng: np.random.Generator, effects: bool) -> Image.Image:
    w, h = img.size
    img = img.rotate(p.skew_deg, resample=Image.Resampling.BICUBIC, center=(w / 2, h / 2), fillcolor=WHITE)
    if not effects:
        return img
    if p.blur_px > 0:
        img = img.filter(ImageFilter.GaussianBlur(p.blur_px))
    arr = np.asarray(img, dtype=np.float32)
    # Paper tone multiplies (white paper takes the tone, ink stays dark); the lamp lights one edge a bit less.
    arr = arr * (np.asarray(p.paper_tone, dtype=np.float32) / 255.0)
    ramp = np.linspace(1.0, 1.0 - p.shading, h, dtype=np.float32)[:, None, None]
    arr *= ramp
    arr += rng.standard_normal((h, w, 1), dtype=np.float32) * p.noise_sigma
    count = int(p.speckle * w * h)
    ys = rng.integers(0, h, count)
    xs = rng.integers(0, w, count)
    arr[ys[: count // 2], xs[: count // 2]] = rng.uniform(30, 110, (count // 2, 1)).astype(np.float32)
    arr[ys[count // 2 :], xs[count // 2 :]] = 255.0
    img = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=p.jpeg_quality)
    buf.seek(0)
    with Image.open(buf) as jpeg:
        return jpeg.convert("RGB")


# --------------------------------------------------------------------------------------------------- API


@dataclass
class Statement:
    """Page images (RGB, at ``dpi``) and their JSON-ready ground truth."""

    name: str
    seed: int
    layout: str
    dpi: int
    paper: str
    pages: list[Image.Image]
    truth: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)

    def tables(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every page's tables in reading order, optionally only those of one type."""
        return [t for p in self.truth["pages"] for t in p["tables"] if kind is None or t["type"] == kind]


def page_size_px(paper: str, dpi: int) -> tuple[int, int]:
    """Pixel size of a ``paper`` ("a4" or "letter") page scanned at ``dpi``."""
    w_mm, h_mm = PAPER_MM[paper]
    return round(w_mm / 25.4 * dpi), round(h_mm / 25.4 * dpi)


def generate_statement(
    seed: int,
    layout: str | None = None,
    dpi: int | None = None,
    pages: int | None = None,
    *,
    alter: bool = False,
    skew_deg: float | None = None,
    scan_effects: bool = True,
    name: str | None = None,
) -> Statement:
    """A seeded, scanned-looking bank statement and its ground truth.

    ``layout`` (one of LAYOUTS), ``dpi`` (150-200 by default) and ``pages`` (1-3) are drawn from the seed when
    not given. ``alter`` changes one digit of one withdrawal/deposit on the page (see the module docstring).
    ``skew_deg`` forces every page's skew; ``scan_effects=False`` keeps the skew but drops tone, blur, noise and
    JPEG (a clean reference image).
    """
    rng = random.Random(_subseed(seed, "data"))
    # Drawn whether or not they are given, so that passing one never changes the others.
    drawn_layout = rng.choice(sorted(LAYOUTS))
    drawn_dpi = rng.randint(*DPI_RANGE)
    drawn_pages = rng.randint(1, 3)
    layout = drawn_layout if layout is None else layout
    dpi = drawn_dpi if dpi is None else dpi
    pages = drawn_pages if pages is None else pages
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose from {sorted(LAYOUTS)}")
    if not 72 <= dpi <= 600:
        raise ValueError(f"dpi must be within 72-600, got {dpi}")
    if pages < 1:
        raise ValueError(f"pages must be >= 1, got {pages}")
    if skew_deg is not None and abs(skew_deg) > 10:
        raise ValueError(f"skew_deg must be within +-10, got {skew_deg}")
    lay = LAYOUTS[layout]
    name = name or f"statement-{seed:04d}"
    acct = _make_account(rng, lay, pages)
    page_rows = _page_txn_rows(acct)

    alteration = _pick_alteration(random.Random(_subseed(seed, "alter")), page_rows)
    if alter:
        page_i, row_i, field_name, new_cents = alteration
        txn = page_rows[page_i][row_i]
        page_rows[page_i][row_i] = _Txn(
            txn.day,
            txn.description,
            txn.ref,
            new_cents if field_name == "withdrawals" else txn.withdrawal,
            new_cents if field_name == "deposits" else txn.deposit,
            txn.balance,
            txn.kind,
        )

    size = page_size_px(lay.paper, dpi)
    painter, tail = _PAINTERS[layout]
    images: list[Image.Image] = []
    page_truths: list[dict[str, Any]] = []
    for k in range(1, pages + 1):
        c = _Canvas(lay, dpi, size)
        painter(c, acct, k, pages)
        top = lay.first_table_top_pt if k == 1 else lay.table_top_pt
        bottom = _draw_transactions(c, acct, page_rows[k - 1], top, k, pages)
        if k == pages and tail is not None:
            tail(c, acct, bottom)
        scan_rng = np.random.default_rng(_subseed(seed, "scan", k))
        params = _draw_scan_params(scan_rng, dpi)
        if skew_deg is not None:
            params = dataclasses.replace(params, skew_deg=float(skew_deg))
        images.append(_scan(c.img, params, scan_rng, scan_effects))
        page_truths.append(_page_truth(name, k, c, size, params, scan_effects))

    truth = {
        "schema": SCHEMA,
        "name": name,
        "seed": seed,
        "layout": layout,
        "paper": lay.paper,
        "dpi": dpi,
        "page_count": pages,
        "page_size_px": list(size),
        "date_format": lay.date_format,
        "amount_format": {
            "thousands_separator": lay.thousands,
            "decimal_separator": ".",
            "currency_symbol": lay.currency_symbol,
        },
        "altered": alter,
        "alteration": _alteration_truth(alteration, page_truths, acct, lay) if alter else None,
        "account": {
            "bank": acct.bank,
            "holder": acct.holder,
            "address": list(acct.address),
            "account_number": acct.account_number,
            "currency": lay.currency,
            "period_start": acct.start.isoformat(),
            "period_end": acct.end.isoformat(),
            **_summary_values(acct),
            "transaction_count": len(acct.txns),
        },
        "pages": page_truths,
    }
    params_used = {"seed": seed, "layout": layout, "dpi": dpi, "pages": pages, "alter": alter}
    params_used |= {"skew_deg": skew_deg, "scan_effects": scan_effects, "name": name}
    return Statement(name, seed, layout, dpi, lay.paper, images, truth, params_used)


def altered_copy(statement: Statement) -> Statement:
    """The same statement with one amount altered on the page (identical elsewhere, pixel for pixel), named
    ``<name>-altered`` so that both can be written side by side."""
    return generate_statement(**(statement.params | {"alter": True, "name": f"{statement.name}-altered"}))


def _pick_alteration(rng: random.Random, page_rows: list[list[_Txn]]) -> tuple[int, int, str, int]:
    candidates = [(p, r) for p, rows in enumerate(page_rows) for r, t in enumerate(rows) if t.kind == "transaction"]
    page_i, row_i = rng.choice(candidates)
    txn = page_rows[page_i][row_i]
    field_name = "withdrawals" if txn.withdrawal is not None else "deposits"
    cents = txn.withdrawal if txn.withdrawal is not None else txn.deposit
    assert cents is not None
    whole, frac = divmod(cents, 100)
    digits = list(str(whole))
    pos = rng.randrange(len(digits))
    # Same number of digits, so the forged amount fits the column exactly like the original.
    choices = [d for d in "0123456789" if d != digits[pos] and not (pos == 0 and d == "0" and len(digits) > 1)]
    digits[pos] = rng.choice(choices)
    return page_i, row_i, field_name, int("".join(digits)) * 100 + frac


def _alteration_truth(
    alteration: tuple[int, int, str, int], pages: list[dict[str, Any]], acct: _Account, lay: Layout
) -> dict[str, Any]:
    page_i, row_i, field_name, new_cents = alteration
    table = next(t for t in pages[page_i]["tables"] if t["type"] == "transactions")
    col = table["columns"].index(field_name)
    original = _cents(_original_amount(acct, page_i, row_i, field_name))
    assert original is not None
    cell = next(c for c in table["cells"] if c["row"] == row_i + table["header_rows"] and c["col"] == col)
    return {
        "page": page_i + 1,
        "table": table["index"],
        "row": row_i,
        "col": col,
        "column": field_name,
        "original_text": format_amount(original, lay),
        "altered_text": format_amount(new_cents, lay),
        "original_value": amount_value(original),
        "altered_value": amount_value(new_cents),
        "bbox": cell["bbox"],
    }


def _original_amount(acct: _Account, page_i: int, row_i: int, field_name: str) -> str:
    txn = _page_txn_rows(acct)[page_i][row_i]
    cents = txn.withdrawal if field_name == "withdrawals" else txn.deposit
    assert cents is not None
    return amount_value(cents)


def _page_truth(
    name: str, page: int, c: _Canvas, size: tuple[int, int], p: ScanParams, effects: bool
) -> dict[str, Any]:
    center = (size[0] / 2, size[1] / 2)

    def geometry(box: tuple[float, float, float, float]) -> dict[str, Any]:
        x0, y0, x1, y1 = box
        poly = [rotate_point(x, y, p.skew_deg, center) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
        xs, ys = [q[0] for q in poly], [q[1] for q in poly]
        return {
            "bbox": [round(min(xs), 1), round(min(ys), 1), round(max(xs), 1), round(max(ys), 1)],
            "polygon": [[round(x, 1), round(y, 1)] for x, y in poly],
        }

    tables = []
    for i, t in enumerate(c.tables):
        cells = [{k: v for k, v in cell.items() if k != "box"} | geometry(cell["box"]) for cell in t.pop("cells")]
        box = t.pop("box")
        tables.append({"index": i, **t, **geometry(box), "cells": cells})
    scan = p.as_dict() | {"effects": effects}
    return {
        "page": page,
        "image": f"{name}-p{page}.png",
        "width": size[0],
        "height": size[1],
        "skew_deg": round(p.skew_deg, 4),
        "scan": scan,
        "lines": [{"text": ln["text"], **geometry(ln["box"])} for ln in c.lines],
        "tables": tables,
    }


# --------------------------------------------------------------------------------------------------- writers


def write_statement(
    statement: Statement, out_dir: str | Path, formats: Iterable[str] = FORMATS
) -> dict[str, list[Path]]:
    """Writes ``<name>.pdf`` (image-only, one page per scan), ``<name>-p<k>.png``, ``<name>.tiff`` (multi-page)
    and ``<name>.truth.json`` into ``out_dir``; returns the paths written, by format ("truth" included)."""
    formats = tuple(formats)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown formats {sorted(unknown)}; choose from {FORMATS}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dpi = statement.dpi
    written: dict[str, list[Path]] = {}

    def frames() -> tuple[Image.Image, list[Image.Image]]:
        # Copies: Pillow keeps each save's options on the image and merges them into the next save (a PDF's
        # JPEG quality would reach the TIFF writer), and the statement's own images should stay untouched.
        first, *rest = (img.copy() for img in statement.pages)
        return first, rest

    if "pdf" in formats:
        path = out / f"{statement.name}.pdf"
        # Fixed dates (the statement's end) instead of "now": the same seed must give the same bytes.
        stamp = date.fromisoformat(statement.truth["account"]["period_end"]).timetuple()
        first, rest = frames()
        first.save(
            path,
            "PDF",
            save_all=True,
            append_images=rest,
            resolution=float(dpi),
            quality=90,
            title=statement.name,
            creationDate=stamp,
            modDate=stamp,
        )
        written["pdf"] = [path]
    if "png" in formats:
        written["png"] = []
        for k, img in enumerate(statement.pages, start=1):
            path = out / f"{statement.name}-p{k}.png"
            img.copy().save(path, "PNG", dpi=(dpi, dpi))
            written["png"].append(path)
    if "tiff" in formats:
        path = out / f"{statement.name}.tiff"
        first, rest = frames()
        buf = io.BytesIO()
        first.save(buf, "TIFF", save_all=True, append_images=rest, compression="tiff_lzw", dpi=(dpi, dpi))
        path.write_bytes(_zero_tiff_padding(buf.getbuffer()))
        written["tiff"] = [path]
    path = out / f"{statement.name}.truth.json"
    path.write_text(json.dumps(statement.truth, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    written["truth"] = [path]
    return written


def _zero_tiff_padding(data: memoryview | bytes) -> bytes:
    """The TIFF with the word-alignment byte before each directory set to 0.

    libtiff skips that byte instead of writing it, and Pillow's in-memory writer leaves whatever the buffer held
    there: without this the same pages would give different files from one run to the next.
    """
    out = bytearray(data)
    order = "<" if out[:2] == b"II" else ">"
    offset = struct.unpack_from(order + "I", out, 4)[0]
    seen = set()
    while offset and offset not in seen and offset + 2 <= len(out):
        seen.add(offset)
        count = struct.unpack_from(order + "H", out, offset)[0]
        arrays: dict[int, tuple[int, ...]] = {}
        for i in range(count):
            entry = offset + 2 + 12 * i
            tag, kind, n, pointer = struct.unpack_from(order + "HHII", out, entry)
            if tag in (273, 279) and kind in (3, 4):  # StripOffsets, StripByteCounts: SHORT or LONG arrays
                code = order + ("H" if kind == 3 else "I") * n
                # Arrays that fit in 4 bytes sit in the entry itself, longer ones where the entry points.
                arrays[tag] = struct.unpack_from(code, out, entry + 8 if struct.calcsize(code) <= 4 else pointer)
        if len(arrays) == 2:
            end = max(o + c for o, c in zip(arrays[273], arrays[279], strict=True))
            if end == offset - 1:
                out[end] = 0
        offset = struct.unpack_from(order + "I", out, offset + 2 + 12 * count)[0]
    return bytes(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m include.datagen.statements", description="Write scanned-looking bank statements."
    )
    parser.add_argument("--count", type=int, default=1, help="statements to write")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="base seed; statement i uses a seed derived from it")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), help="one layout for all (default: drawn per seed)")
    parser.add_argument("--dpi", type=int, help="default: drawn within 150-200 per statement")
    parser.add_argument("--pages", type=int, choices=(1, 2, 3), help="default: drawn 1-3 per statement")
    parser.add_argument("--altered", type=float, default=0.0, help="fraction of statements with one altered amount")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of pdf,png,tiff")
    args = parser.parse_args(argv)
    formats = tuple(f for f in args.formats.split(",") if f)

    pick = random.Random(_subseed(args.seed, "cli"))
    index = []
    for i in range(args.count):
        seed = _subseed(args.seed, "statement", i) % 2**31
        altered = pick.random() < args.altered
        st = generate_statement(seed, args.layout, args.dpi, args.pages, alter=altered, name=f"statement-{i:04d}")
        files = write_statement(st, args.out, formats)
        index.append(
            {
                "name": st.name,
                "seed": seed,
                "layout": st.layout,
                "dpi": st.dpi,
                "pages": len(st.pages),
                "altered": altered,
                "files": {k: [p.name for p in v] for k, v in files.items()},
            }
        )
        print(f"{st.name}: {st.layout}, {len(st.pages)} page(s) at {st.dpi} dpi{', altered' if altered else ''}")
    manifest = {"schema": SCHEMA, "seed": args.seed, "count": args.count, "statements": index}
    (args.out / "truth.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
