"""Business rules for digitized bank statements: table types, canonical headers, cell checks, reviewer corrections.

Works on the tables of :func:`include.documents.reshape.tables_from_blocks` (cells addressed by 0-based ``row`` and
``col``). Every failing check becomes a flag ``{"row", "col", "rule", "reason", "reviewed"}`` on a cell, whose
``reason`` starts with the rule's name, e.g. ``"balance: 1,234.56 - 10.00 + 0.00 = 1,224.56 ≠ 1,225.56"``.

Decisions:

- Header words are matched token by token against synonym lists (:data:`HEADER_SYNONYMS`). Tokens of 4+ letters
  may differ by OCR slips: they match when ``difflib.SequenceMatcher.ratio() >= FUZZY_CUTOFF`` (0.8). "Baiance"
  scores 0.857 against "balance"; the nearest wrong pairs in this vocabulary score below it ("date"/"rate" 0.75,
  "deposits"/"debits" 0.71, "debit"/"credit" 0.55). Shorter tokens ("ref", "no", "dr") must match exactly. A
  longer matching phrase wins ("checks and debits" is withdrawals, not a cheque number).
- The header row is the block of rows Textract marks COLUMN_HEADER; failing that, the first of the top three rows
  that names at least two transaction columns. A table without one is still typed "transactions" from its content
  (a date column, money columns and a rightmost balance column), taking the previous transactions table's headers
  when it has as many columns (a continuation page), else telling withdrawals from deposits by which one the
  balance moves down with.
- Money: ``1,234.56``, ``$1,234.56``, ``-12.00``, ``(12.00)``, ``12.00-``, ``12.00 DR`` are parsed; DR, a minus
  or parentheses make it negative, CR positive. Withdrawal and deposit columns are read as magnitudes (a bank that
  prints debits as ``(12.00)`` in its debit column means the same outflow); only the balance keeps its sign. OCR
  slips that still have one sensible reading (``80,00``: a comma read for the decimal point; no or odd cents; a
  stray space; misplaced thousands separators) are flagged under ``amount`` but that reading is used, so one
  misread character does not also break the balance arithmetic. ``-``, ``—`` and ``nil`` are empty.
- Dates: ISO, ``m/d/y`` (``d/m/y`` when the first number exceeds 12 or the context sets ``day_first``), two-digit
  years (20xx), month names either way round (``Jan 05``, ``5 January 2021``, ``05-Jan-21``). A date without a year
  takes the year (of the statement period's) that puts it nearest the period (Dec 28 on a Dec-Jan statement is
  the earlier year), else the context's ``year``; it is flagged when neither exists. A blank date on a transaction
  row continues the previous row's date (statements print a date once per day). A date outside the period is
  flagged under ``date_period`` and, being most likely misread, takes no part in ``date_order``.
- Rows: all-blank rows are skipped; a row whose description reads like "Previous balance", "Balance forward",
  "Opening balance" (or "Closing balance", "Balance carried forward") is a balance row: it must carry no
  withdrawal or deposit, and its balance must equal the running balance when one is known (on the first page it
  just starts the chain). A row starting "Total" is checked against the sums instead of entering the arithmetic.
- A merge's value counts once, at its top-left position (a description merged over the reference column is not
  also a bad reference); header rows, though, name every column a merge covers ("Amount" over "Debit"/"Credit").
- Balance arithmetic chains the stated balances (not the computed ones), so one misread figure fails its own row
  only; a blank balance (some banks print one per day) carries the computed balance to the next printed one. On a
  failing row the flagged cells are that row's withdrawal/deposit and balance: the cells a reviewer can check.
- A cell a reviewer has seen (``reviewed``, from :func:`apply_corrections`; an A2I answer covers whole tables) is
  not flagged for low confidence, and its other flags carry ``reviewed: True``; ``needs_review`` counts only flags
  nobody has looked at yet, so a statement that itself does not add up (this fixture's page 2 repeats a balance
  after a withdrawal) still leaves review once a person has confirmed the figures.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any

from include.documents.reshape import merge_followers

FUZZY_CUTOFF = 0.8
MIN_FUZZY_TOKEN = 4

TABLE_TYPES = ("transactions", "summary", "other")
TRANSACTION_COLUMNS = ("date", "description", "reference", "withdrawals", "deposits", "balance")
SUMMARY_COLUMNS = ("label", "amount")
MONEY_COLUMNS = ("withdrawals", "deposits", "balance")

# Order matters on ties: a header cell Textract fused ("Ref. Withdrawals") is the money column.
HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "date": ("date", "posting date", "post date", "posted", "transaction date", "trans date", "value date"),
    "balance": ("balance", "running balance", "ledger balance", "balance after", "balance after transaction"),
    "withdrawals": (
        "withdrawals",
        "withdrawal",
        "debits",
        "debit",
        "dr",
        "money out",
        "paid out",
        "payments",
        "withdrawals and debits",
        "checks and debits",
        "cheques and debits",
        "withdrawals and other debits",
        "charges",
    ),
    "deposits": (
        "deposits",
        "deposit",
        "credits",
        "credit",
        "cr",
        "money in",
        "paid in",
        "receipts",
        "deposits and credits",
        "deposits and other credits",
    ),
    "reference": (
        "ref",
        "reference",
        "ref no",
        "reference number",
        "no",
        "cheque",
        "cheque no",
        "cheque number",
        "check",
        "check no",
        "check number",
        "chq",
        "chq no",
        "serial",
    ),
    "description": (
        "description",
        "details",
        "transaction details",
        "particulars",
        "narrative",
        "memo",
        "payee",
        "transaction",
        "transactions",
        "activity",
        "explanation",
    ),
}

OPENING_LABELS = (
    "previous balance",
    "opening balance",
    "beginning balance",
    "starting balance",
    "balance forward",
    "balance brought forward",
    "brought forward",
    "balance b f",
    "balance from last statement",
    "last statement balance",
)
CLOSING_LABELS = (
    "closing balance",
    "ending balance",
    "new balance",
    "final balance",
    "balance carried forward",
    "carried forward",
    "balance c f",
)
SUMMARY_LABELS: dict[str, tuple[str, ...]] = {
    "opening": OPENING_LABELS,
    "closing": CLOSING_LABELS,
    "deposits": HEADER_SYNONYMS["deposits"] + ("total deposits", "total credits"),
    "withdrawals": HEADER_SYNONYMS["withdrawals"] + ("total withdrawals", "total debits", "checks paid"),
}
TOTAL_WORDS = ("total", "totals", "subtotal")

RULES: tuple[tuple[str, str], ...] = (
    ("confidence", "Textract confidence of the cell and its words is at least the threshold"),
    ("date", "Dates parse (ISO, numeric, month names; a missing year comes from the statement period)"),
    ("date_period", "Transaction dates fall within the statement period"),
    ("date_order", "Transaction dates never go backwards"),
    ("amount", "Amounts read as money with cents"),
    ("reference", "Reference / cheque numbers are numeric"),
    ("one_amount", "A transaction has exactly one of withdrawal/deposit; a balance row has neither"),
    ("balance", "Previous balance - withdrawals + deposits = balance on every row, across pages"),
    ("totals", "Printed totals equal the sums of the transactions"),
    ("summary_balance", "Summary: opening + deposits - withdrawals = closing"),
    ("summary_totals", "Summary figures match the transactions of the whole document"),
)
RULE_NAMES = tuple(name for name, _ in RULES)

EMPTY_AMOUNTS = {"-", "--", "—", "–", "nil", "n/a"}


# --- text matching -------------------------------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    # Accents are OCR noise here ("RÉTAILER"); "#" is how statements write "No.".
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", " ", text.replace("#", " no ")).split()


@lru_cache(maxsize=65536)
def _token_ratio(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if len(a) < MIN_FUZZY_TOKEN or len(b) < MIN_FUZZY_TOKEN:
        return 0.0
    matcher = SequenceMatcher(None, a, b)
    # The quick upper bounds reject most pairs before the full comparison.
    if matcher.real_quick_ratio() < FUZZY_CUTOFF or matcher.quick_ratio() < FUZZY_CUTOFF:
        return 0.0
    ratio = matcher.ratio()
    return ratio if ratio >= FUZZY_CUTOFF else 0.0


def _phrase_score(tokens: list[str], phrase: str) -> tuple[int, float] | None:
    wanted = phrase.split()
    scores = [max((_token_ratio(w, t) for t in tokens), default=0.0) for w in wanted]
    if not scores or min(scores) == 0.0:
        return None
    return (len(wanted), sum(scores) / len(scores))


def _best_match(text: str, vocabulary: dict[str, tuple[str, ...]]) -> tuple[str | None, tuple[int, float]]:
    tokens = _tokens(text)
    best: tuple[str | None, tuple[int, float]] = (None, (0, 0.0))
    for name, phrases in vocabulary.items():
        for phrase in phrases:
            score = _phrase_score(tokens, phrase)
            if score is not None and score > best[1]:
                best = (name, score)
    return best


def match_header(text: str) -> str | None:
    """The canonical transaction column a header text names (fuzzy, see module notes), or None."""
    return _best_match(text, HEADER_SYNONYMS)[0]


def _summary_label(text: str) -> str | None:
    return _best_match(text, SUMMARY_LABELS)[0]


def _is_total(text: str) -> bool:
    tokens = _tokens(text)
    return bool(tokens) and any(_token_ratio(tokens[0], word) for word in TOTAL_WORDS)


# --- values --------------------------------------------------------------------------------------------------------


def money(value: Decimal | None) -> str:
    """Money as the reasons print it: ``1,234.56``."""
    return "—" if value is None else f"{value:,.2f}"


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


_CURRENCY = r"(?:[$€£¥]|USD|EUR|GBP|CAD|AUD|US\$)"


def parse_amount(text: str | None) -> tuple[Decimal | None, str | None]:
    """``(value, issue)``: the amount a cell reads as (None when blank or unreadable) and why it needs review.

    ``issue`` is None for a clean amount. An amount with an issue but a value is a usable reading of an OCR slip.
    """
    raw = (text or "").strip()
    if not raw or raw.lower() in EMPTY_AMOUNTS:
        return None, None
    s = raw
    negative = False
    suffix = re.fullmatch(r"(.*?)\s*(CR|DR|Cr|Dr|cr|dr)\.?", s)
    if suffix:
        s, negative = suffix.group(1), suffix.group(2).upper() == "DR"
    s = re.sub(rf"^\s*{_CURRENCY}\s*|\s*{_CURRENCY}\s*$", "", s.strip())
    if s.startswith("(") and s.endswith(")"):
        s, negative = s[1:-1], True
    elif s[:1] in "-−–":
        s, negative = s[1:], True
    elif s.endswith("-"):
        s, negative = s[:-1], True
    elif s.startswith("+"):
        s = s[1:]
    s = re.sub(rf"^\s*{_CURRENCY}\s*", "", s.strip())

    value, issue = _read_number(s)
    if value is None:
        return None, f"'{raw}' is not an amount"
    if negative:
        value = -value
    return value, (f"'{raw}' {issue}; read as {money(value)}" if issue else None)


def _read_number(s: str) -> tuple[Decimal | None, str | None]:
    if re.fullmatch(r"\d{1,3}(,\d{3})+\.\d{2}|\d+\.\d{2}", s):
        return _decimal(s.replace(",", "")), None
    if re.fullmatch(r"\d{1,3}(,\d{3})+|\d+", s):
        return _decimal(s.replace(",", "")), "has no cents"
    if " " in s:
        value, _ = _read_number(s.replace(" ", ""))
        return value, "has a stray space"
    if re.fullmatch(r"\d+,\d{2}", s):
        return _decimal(s.replace(",", ".")), "has a comma where the decimal point belongs"
    if re.fullmatch(r"\d{1,3}(\.\d{3})+,\d{2}", s):
        return _decimal(s.replace(".", "").replace(",", ".")), "uses a decimal comma"
    if re.fullmatch(r"[\d,]*\d\.\d{1}|[\d,]*\d\.\d{3,}", s):
        return _decimal(s.replace(",", "")), "does not have two decimals"
    if re.fullmatch(r"\d[\d,]*(\.\d{2})?", s):
        return _decimal(s.replace(",", "")), "has misplaced thousands separators"
    return None, None


MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_NUMERIC = re.compile(r"(\d{1,2})[-/.](\d{1,2})(?:[-/.](\d{4}|\d{2}))?")
_DAY_MONTH = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?[\s\-/.]*([A-Za-z]{3,9})\.?(?:[\s\-/.,]*(\d{4}|\d{2}))?")
_MONTH_DAY = re.compile(r"([A-Za-z]{3,9})\.?[\s\-/.]*(\d{1,2})(?:st|nd|rd|th)?(?:,?[\s\-/.]*(\d{4}|\d{2}))?")


def _month(name: str) -> int | None:
    name = name.lower()
    # "Jan", "Sept" and "January" are months, "Janitor" is not.
    for number, full in enumerate(MONTH_NAMES, start=1):
        if len(name) >= 3 and (full.startswith(name) or (full == "september" and name == "sept")):
            return number
    return None


def _year(text: str | None) -> int | None:
    if text is None:
        return None
    year = int(text)
    return year if len(text) == 4 else 2000 + year


def _date_parts(text: str, day_first: bool = False) -> tuple[int | None, int, int] | None:
    """(year or None, month, day) of a date text, checked against the calendar (a leap year stands in for none)."""
    s = re.sub(r"\s+", " ", (text or "").strip()).rstrip(".")
    parts: tuple[int | None, int, int] | None = None
    if m := _ISO.fullmatch(s):
        parts = (int(m[1]), int(m[2]), int(m[3]))
    elif m := _NUMERIC.fullmatch(s):
        a, b = int(m[1]), int(m[2])
        month, day = (b, a) if day_first or a > 12 else (a, b)
        parts = (_year(m[3]), month, day)
    elif (m := _DAY_MONTH.fullmatch(s)) and _month(m[2]):
        parts = (_year(m[3]), _month(m[2]), int(m[1]))  # type: ignore[assignment]
    elif (m := _MONTH_DAY.fullmatch(s)) and _month(m[1]):
        parts = (_year(m[3]), _month(m[1]), int(m[2]))  # type: ignore[assignment]
    if parts is None:
        return None
    try:
        date(parts[0] or 2000, parts[1], parts[2])
    except ValueError:
        return None
    return parts


def _iso(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _parse_date(text: str, context: dict | None) -> tuple[date | None, str | None]:
    context = context or {}
    parts = _date_parts(text, bool(context.get("day_first")))
    if parts is None:
        return None, f"'{text}' is not a date"
    year, month, day = parts
    if year is None:
        start, end = _iso(context.get("period_start")), _iso(context.get("period_end"))
        if start and end:
            # The period's year the date falls nearest to: Dec 28 on a Dec-Jan statement is last year's.
            year = min(
                sorted({start.year, end.year}),
                key=lambda y: max(start - _safe_date(y, month, day), _safe_date(y, month, day) - end, timedelta(0)),
            )
        elif context.get("year"):
            year = int(context["year"])
        else:
            return None, f"'{text}' has no year and no statement period gives one"
    try:
        return date(year, month, day), None
    except ValueError:
        return None, f"'{text}' is not a date in {year}"


def _safe_date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:  # 29 Feb of a common year: compare by the day before
        return date(year, month, day - 1)


def parse_date(text: str, context: dict | None = None) -> date | None:
    """The date a cell reads as, inferring a missing year from ``context`` (period_start/period_end/year)."""
    return _parse_date(text, context)[0]


def find_dates(text: str) -> list[date]:
    """Dates with a year written anywhere in a line of text, left to right."""
    tokens = text.replace(",", ", ").split()
    found: list[date] = []
    i = 0
    while i < len(tokens):
        for width in (3, 2, 1):
            chunk = " ".join(tokens[i : i + width]).strip(",;:()")
            parts = _date_parts(chunk) if i + width <= len(tokens) else None
            if parts and parts[0] is not None:
                found.append(date(*parts))  # type: ignore[arg-type]
                i += width
                break
        else:
            i += 1
    return found


def statement_context(lines: list[dict]) -> dict:
    """Statement facts from the page lines: ``{"period_start", "period_end", "account_number", "year"}`` (ISO dates).

    The period is the first two dates at or after a line naming a "period" (or "statement date"), within a few lines
    on the same page; the account number is the first digit group after an "account" line that is not a date.
    """
    context: dict[str, Any] = {"period_start": None, "period_end": None, "account_number": None, "year": None}
    for i, line in enumerate(lines):
        tokens = _tokens(line["text"])
        if context["period_start"] is None and ("period" in tokens or tokens[:2] == ["statement", "date"]):
            window = [ln for ln in lines[i : i + 10] if ln["page"] == line["page"]]
            dates = [d for ln in window for d in find_dates(ln["text"])][:2]
            if len(dates) == 2:
                start, end = sorted(dates)
                context.update(period_start=start.isoformat(), period_end=end.isoformat(), year=end.year)
        labelled = "account" in tokens and {"number", "no", "num"} & set(tokens)
        if context["account_number"] is None and labelled:
            window = [ln for ln in lines[i : i + 5] if ln["page"] == line["page"]]
            for ln in window:
                for token in ln["text"].split():
                    digits = re.sub(r"\D", "", token)
                    if len(digits) >= 6 and re.fullmatch(r"[\dXx*][\dXx*\- ]+\d", token) and not find_dates(token):
                        context["account_number"] = token
                        break
                if context["account_number"]:
                    break
    if context["year"] is None:
        years = Counter(d.year for ln in lines for d in find_dates(ln["text"]))
        context["year"] = years.most_common(1)[0][0] if years else None
    return context


# --- table analysis ------------------------------------------------------------------------------------------------


def _texts(table: dict) -> list[list[str]]:
    """Cell texts with a merge's value only at its top-left position (a description merged over the reference
    column is one description, not also a bad reference)."""
    followers = merge_followers(table)
    return [
        ["" if (cell["row"], cell["col"]) in followers else (cell.get("text") or "").strip() for cell in row]
        for row in table.get("rows", [])
    ]


def _header_row(table: dict) -> int | None:
    rows = table.get("rows", [])
    marked = [r for r, row in enumerate(rows) if any(cell.get("header") for cell in row)]
    if marked:
        last = marked[0]
        while last + 1 in marked:
            last += 1
        return last
    texts = _texts(table)
    for r, row in enumerate(texts[:3]):
        named = {match_header(text) for text in row if text} - {None}
        if len(named) >= 2:
            # A second header line under a merged one ("Amount" over "Debit" | "Credit") belongs to the header.
            while r + 1 < len(texts) and _is_header_line(texts[r + 1]):
                r += 1
            return r
    return None


def _is_header_line(row: list[str]) -> bool:
    values = [text for text in row if text]
    return (
        bool(values)
        and all(_date_parts(text) is None and parse_amount(text)[0] is None for text in values)
        and any(match_header(text) for text in values)
    )


def _header_texts(table: dict, header_row: int | None) -> list[str]:
    if header_row is None:
        return [""] * table.get("n_cols", 0)
    # Here a merge's text counts in every column it covers: "Amount" over "Debit" and "Credit" names both.
    texts = [[(cell.get("text") or "").strip() for cell in row] for row in table["rows"][: header_row + 1]]
    result = []
    for c in range(table.get("n_cols", 0)):
        parts: list[str] = []
        for row in texts:
            if row[c] and row[c] not in parts:  # a merged header repeats its text in every column it covers
                parts.append(row[c])
        result.append(" ".join(parts))
    return result


def _assign(scores: list[tuple[str | None, tuple[int, float]]]) -> list[str]:
    """One column per canonical name: the best-scoring (then leftmost) column keeps it, the rest are column_<n>."""
    winners: dict[str, int] = {}
    for col, (name, score) in enumerate(scores):
        if name and (name not in winners or score > scores[winners[name]][1]):
            winners[name] = col
    headers = [f"column_{c}" for c in range(len(scores))]
    for name, col in winners.items():
        headers[col] = name
    return headers


def _is_money_like(text: str) -> bool:
    return bool(re.fullmatch(r"[\s$€£(+\-]*\d[\d,. ]*[.,]\d{2}\)?-?\s*(CR|DR|Cr|Dr)?", text))


def _profile(texts: list[list[str]], col: int) -> dict[str, float]:
    values = [row[col] for row in texts if row[col]]
    n = len(values) or 1
    return {
        "fill": len(values) / (len(texts) or 1),
        "count": len(values),
        "date": sum(_date_parts(v) is not None and not _is_money_like(v) for v in values) / n,
        "money": sum(_is_money_like(v) for v in values) / n,
        "integer": sum(bool(re.fullmatch(r"#?\d+", v)) for v in values) / n,
        "length": sum(len(v) for v in values) / n,
    }


def _guess_transaction_headers(table: dict, template: list[str] | None) -> list[str] | None:
    texts = _texts(table)
    n_cols = table.get("n_cols", 0)
    profiles = [_profile(texts, c) for c in range(n_cols)]
    dates = [c for c, p in enumerate(profiles) if p["count"] >= 2 and p["date"] >= 0.6]
    moneys = [c for c, p in enumerate(profiles) if p["count"] >= 1 and p["money"] >= 0.8 and c not in dates]
    if not dates or len(moneys) < 2:
        return None
    if template and len(template) == n_cols and "date" in template and template.index("date") == dates[0]:
        return list(template)
    headers = [f"column_{c}" for c in range(n_cols)]
    headers[dates[0]] = "date"
    balance = max(moneys, key=lambda c: (profiles[c]["fill"], c))
    headers[balance] = "balance"
    flows = [c for c in moneys if c != balance][:2]
    # Which flow column the balance goes down with tells withdrawals from deposits whatever the layout's order.
    evidence = {c: 0 for c in flows}
    previous: Decimal | None = None
    for row in texts:
        current = parse_amount(row[balance])[0]
        for c in flows:
            value = parse_amount(row[c])[0]
            if value is not None and previous is not None and current is not None and value:
                evidence[c] += 1 if current - previous == -abs(value) else -1 if current - previous == abs(value) else 0
        previous = current if current is not None else previous
    ordered = sorted(flows, key=lambda c: (-evidence[c], c))
    if len(ordered) == 1:
        headers[ordered[0]] = "withdrawals" if evidence[ordered[0]] >= 0 else "deposits"
    else:
        headers[ordered[0]], headers[ordered[1]] = "withdrawals", "deposits"
    rest = [c for c in range(n_cols) if headers[c].startswith("column_")]
    references = [c for c in rest if profiles[c]["count"] and profiles[c]["integer"] >= 0.8]
    if references:
        headers[references[0]] = "reference"
        rest.remove(references[0])
    if rest:
        headers[max(rest, key=lambda c: (profiles[c]["length"], -c))] = "description"
    return headers


def _summary_columns(table: dict) -> tuple[int, int] | None:
    texts = _texts(table)
    n_cols = table.get("n_cols", 0)
    if n_cols < 2:
        return None
    labelled = [[bool(row[c]) and _summary_label(row[c]) is not None for c in range(n_cols)] for row in texts]
    label_col = max(range(n_cols), key=lambda c: (sum(row[c] for row in labelled), -c))
    rows = [r for r, row in enumerate(labelled) if row[label_col]]
    kinds = {_summary_label(texts[r][label_col]) for r in rows}
    # Transaction descriptions ("Check Deposit") also name money flows; a summary states a balance and has no dates.
    if len(kinds) < 2 or not kinds & {"opening", "closing"}:
        return None
    if any(_profile(texts, c)["date"] >= 0.6 and _profile(texts, c)["count"] >= 2 for c in range(n_cols)):
        return None
    amount_col = max(
        (c for c in range(n_cols) if c != label_col),
        key=lambda c: (sum(parse_amount(texts[r][c])[0] is not None for r in rows), c),
    )
    if not any(parse_amount(texts[r][amount_col])[0] is not None for r in rows):
        return None
    return label_col, amount_col


def _overrides(table: dict) -> dict:
    return table.get("overrides") or {}


def analyse_table(table: dict, template: list[str] | None = None) -> dict:
    """``{"table_type", "headers" (canonical per column), "header_row", "original_headers"}`` of one table.

    ``template``: the previous transactions table's headers, for a continuation table printed without a header.
    Reviewer overrides (:func:`apply_corrections`) win over what the words say.
    """
    n_cols = table.get("n_cols", 0)
    header_row = _header_row(table)
    original = _header_texts(table, header_row)
    scores = [_best_match(text, HEADER_SYNONYMS) if text else (None, (0, 0.0)) for text in original]
    found = {name for name, _ in scores if name}
    forced = _overrides(table).get("table_type")
    table_type, headers = "other", [f"column_{c}" for c in range(n_cols)]

    summary = _summary_columns(table) if forced in (None, "summary") else None
    if forced in (None, "transactions") and {"date", "balance"} <= found and found & {"withdrawals", "deposits"}:
        table_type, headers = "transactions", _assign(scores)
    elif summary is not None:
        table_type = "summary"
        headers[summary[0]], headers[summary[1]] = "label", "amount"
    elif forced in (None, "transactions"):
        guess = _guess_transaction_headers(table, template)
        if guess is not None:
            table_type, headers = "transactions", guess
            if not found:
                header_row, original = None, [""] * n_cols
        elif forced == "transactions":
            table_type, headers = "transactions", _assign(scores)
    if forced:
        table_type = forced

    for col, name in (_overrides(table).get("headers") or {}).items():
        col = int(col)  # JSON turns the int keys into strings
        headers = [f"column_{c}" if h == name and c != col else h for c, h in enumerate(headers)]
        headers[col] = name
    return {"table_type": table_type, "headers": headers, "header_row": header_row, "original_headers": original}


def detect_table_type(table: dict) -> str:
    """The table's type, "transactions", "summary" or "other", from its header words (fuzzy) and content."""
    return analyse_table(table)["table_type"]


def normalize_headers(table: dict) -> dict[int, str]:
    """Column index -> canonical name (date, description, reference, withdrawals, deposits, balance; label, amount).

    Columns outside the table type's vocabulary are ``column_<index>``. Note that JSON turns the int keys into
    strings; :func:`operate` reports the same names as a list instead.
    """
    return dict(enumerate(analyse_table(table)["headers"]))


# --- validation ----------------------------------------------------------------------------------------------------


class _Checks:
    def __init__(self, table: dict) -> None:
        self.table = table
        self.flags: list[dict] = []
        self.counts: dict[str, dict[str, int]] = {name: {"passed": 0, "failed": 0} for name in RULE_NAMES}

    def passed(self, rule: str) -> None:
        self.counts[rule]["passed"] += 1

    def failed(self, rule: str, reason: str, cells: Iterable[tuple[int, int]]) -> None:
        self.counts[rule]["failed"] += 1
        for row, col in cells:
            cell = self.table["rows"][row][col]
            self.flags.append(
                {
                    "row": row,
                    "col": col,
                    "rule": rule,
                    "reason": f"{rule}: {reason}",
                    "reviewed": bool(cell.get("reviewed")),
                }
            )

    def check(self, rule: str, ok: bool, reason: str, cells: Iterable[tuple[int, int]]) -> None:
        if ok:
            self.passed(rule)
        else:
            self.failed(rule, reason, cells)

    def sorted_flags(self) -> list[dict]:
        order = {name: i for i, name in enumerate(RULE_NAMES)}
        return sorted(self.flags, key=lambda f: (f["row"], f["col"], order[f["rule"]]))


def _row_kind(texts: list[str], headers: list[str]) -> str:
    if not any(texts):
        return "blank"
    words = [t for t, h in zip(texts, headers, strict=True) if h in ("description", "label") and t]
    if not words:
        words = [t for t, h in zip(texts, headers, strict=True) if h not in MONEY_COLUMNS + ("date",) and t]
    label = " ".join(words)
    if any(_is_total(t) for t in words):
        return "total"
    matched, _ = _best_match(label, {"opening": OPENING_LABELS, "closing": CLOSING_LABELS})
    return "balance_row" if matched else "transaction"


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _validate_transactions(table: dict, analysis: dict, checks: _Checks, carry: dict, context: dict) -> dict:
    headers, header_row = analysis["headers"], analysis["header_row"]
    col = {name: headers.index(name) for name in TRANSACTION_COLUMNS if name in headers}
    texts = _texts(table)
    start, end = _iso(context.get("period_start")), _iso(context.get("period_end"))
    balance = _dec(carry.get("balance"))
    last_date = _iso(carry.get("date"))
    sums = {name: _dec(carry.get(name)) or Decimal(0) for name in ("withdrawals", "deposits")}
    table_sums = {"withdrawals": Decimal(0), "deposits": Decimal(0)}
    opening = _dec(carry.get("opening_balance"))

    def amount(row: int, name: str) -> tuple[Decimal | None, bool]:
        """(value, readable) of a money cell; flags the cell under ``amount`` when it needs review."""
        if name not in col or not texts[row][col[name]]:
            return None, True
        value, issue = parse_amount(texts[row][col[name]])
        checks.check("amount", issue is None, issue or "", [(row, col[name])])
        if value is not None and name != "balance":
            value = abs(value)
        return value, value is not None

    for r in range(0 if header_row is None else header_row + 1, len(texts)):
        row = texts[r]
        kind = _row_kind(row, headers)
        if kind == "blank":
            continue

        if "date" in col and row[col["date"]]:
            when, problem = _parse_date(row[col["date"]], context)
            checks.check("date", when is not None, problem or "", [(r, col["date"])])
            in_period = when is not None and (not (start and end) or start <= when <= end)
            if when is not None and kind == "transaction" and start and end:
                checks.check(
                    "date_period",
                    in_period,
                    f"{when.isoformat()} is outside the statement period {start.isoformat()} – {end.isoformat()}",
                    [(r, col["date"])],
                )
            # A date outside the period is most likely misread: it neither gets nor sets the order.
            if when is not None and kind == "transaction" and in_period:
                if last_date is not None:
                    checks.check(
                        "date_order",
                        when >= last_date,
                        f"{when.isoformat()} is before the previous row's {last_date.isoformat()}",
                        [(r, col["date"])],
                    )
                last_date = when

        if "reference" in col and row[col["reference"]] and kind == "transaction":
            reference = re.sub(r"^(#|no\.?)\s*", "", row[col["reference"]], flags=re.IGNORECASE)
            checks.check(
                "reference",
                reference.isdigit() and reference.isascii(),
                f"'{row[col['reference']]}' is not a number",
                [(r, col["reference"])],
            )

        out, out_ok = amount(r, "withdrawals")
        into, into_ok = amount(r, "deposits")
        stated, stated_ok = amount(r, "balance")
        flows = [(name, col[name]) for name in ("withdrawals", "deposits") if name in col]
        present = [(name, c) for name, c in flows if row[c] and parse_amount(row[c])[0] != 0]

        if kind == "total":
            for name, value in (("withdrawals", out), ("deposits", into)):
                if value is not None:
                    # A printed total may close the whole statement so far or just this page.
                    ok = value in (sums[name], table_sums[name])
                    checks.check(
                        "totals",
                        ok,
                        f"{name} total {money(value)} ≠ sum of {name} {money(sums[name])}",
                        [(r, col[name])],
                    )
            continue

        if kind == "balance_row":
            checks.check(
                "one_amount",
                not present,
                "a balance row carries a withdrawal or deposit",
                [(r, c) for _, c in present],
            )
            if stated is not None and balance is not None:
                checks.check(
                    "balance",
                    stated == balance,
                    f"balance row {money(stated)} ≠ running balance {money(balance)}",
                    [(r, col["balance"])],
                )
            if stated is not None:
                balance = stated
                opening = stated if opening is None else opening
            continue

        if len(present) == 2:
            checks.failed("one_amount", "both a withdrawal and a deposit on one row", [(r, c) for _, c in present])
        elif not present and flows:
            checks.failed("one_amount", "neither a withdrawal nor a deposit", [(r, c) for _, c in flows])
        elif flows:
            checks.passed("one_amount")
        for name, value in (("withdrawals", out), ("deposits", into)):
            if value is not None:
                sums[name] += value
                table_sums[name] += value

        if not (out_ok and into_ok) or "balance" not in col:
            balance = stated if stated is not None else None
            continue
        if not row[col["balance"]]:
            # No printed balance on this row: carry the computed one to the next printed balance.
            balance = None if balance is None else balance - (out or 0) + (into or 0)
            continue
        if not stated_ok:
            balance = None
            continue
        if balance is None:
            # The chain starts here: what came before this first row is unknown.
            opening = stated + (out or 0) - (into or 0) if opening is None else opening
            balance = stated
            continue
        expected = balance - (out or 0) + (into or 0)
        checks.check(
            "balance",
            expected == stated,
            f"{money(balance)} - {money(out or Decimal(0))} + {money(into or Decimal(0))} = {money(expected)} "
            f"≠ {money(stated)}",
            [(r, c) for _, c in present] + [(r, col["balance"])],
        )
        balance = stated

    return {
        "balance": None if balance is None else str(balance),
        "date": None if last_date is None else last_date.isoformat(),
        "withdrawals": str(sums["withdrawals"]),
        "deposits": str(sums["deposits"]),
        "opening_balance": None if opening is None else str(opening),
        "headers": headers,
        "table_sums": {name: str(value) for name, value in table_sums.items()},
    }


def _validate_summary(table: dict, analysis: dict, checks: _Checks) -> dict:
    headers = analysis["headers"]
    if "label" not in headers or "amount" not in headers:
        return {}
    label_col, amount_col = headers.index("label"), headers.index("amount")
    figures: dict[str, Any] = {}
    cells: dict[str, list[int]] = {}
    for r, row in enumerate(_texts(table)):
        name = _summary_label(row[label_col]) if row[label_col] else None
        if name is None or name in figures or not row[amount_col]:
            continue
        value, issue = parse_amount(row[amount_col])
        checks.check("amount", issue is None, issue or "", [(r, amount_col)])
        if value is not None:
            figures[name] = value if name in ("opening", "closing") else abs(value)
            cells[name] = [r, amount_col]
    if len(figures) == 4:
        expected = figures["opening"] + figures["deposits"] - figures["withdrawals"]
        checks.check(
            "summary_balance",
            expected == figures["closing"],
            f"{money(figures['opening'])} + {money(figures['deposits'])} - {money(figures['withdrawals'])} = "
            f"{money(expected)} ≠ {money(figures['closing'])}",
            [tuple(cells[name]) for name in ("opening", "deposits", "withdrawals", "closing")],
        )
    return {"figures": {k: str(v) for k, v in figures.items()}, "cells": cells}


def validate(
    table: dict,
    *,
    carry: dict | None = None,
    context: dict | None = None,
    analysis: dict | None = None,
) -> dict:
    """Check one table's cells against the business rules for its type.

    ``carry`` is what the previous transactions table left (``balance``, ``date``, running ``withdrawals`` and
    ``deposits`` sums, ``opening_balance``, ``headers``; also this table's own ``table_sums``), so a continuation page's first row follows the previous
    page's last balance; ``context`` gives ``period_start``/``period_end``/``year``/``day_first``.

    Returns ``{"table_id", "table_type", "headers", "header_row", "original_headers", "flags", "checks",
    "carry", "summary"}``; ``checks`` maps each rule to ``{"passed", "failed"}`` counts of checks (a failed
    balance check flags several cells but counts once); ``carry`` feeds the next table.
    """
    carry = dict(carry or {})
    analysis = analysis or analyse_table(table, carry.get("headers"))
    checks = _Checks(table)
    summary: dict = {}
    if analysis["table_type"] == "transactions":
        carry = _validate_transactions(table, analysis, checks, carry, context or {})
    elif analysis["table_type"] == "summary":
        summary = _validate_summary(table, analysis, checks)
    return {
        "table_id": table.get("table_id"),
        **analysis,
        "flags": checks.sorted_flags(),
        "checks": checks.counts,
        "carry": carry,
        "summary": summary,
    }


# --- the document --------------------------------------------------------------------------------------------------


def _line_totals(lines: list[dict], tables: list[dict]) -> list[dict]:
    """Printed totals outside the tables: amounts level with a "Total" line, mapped to the columns below them.

    ``tables`` are the document's transactions tables; a total belongs to the last one on its page.
    """
    found = []
    for line in lines:
        box = line.get("bbox")
        if not box or not _is_total(line["text"]) or len(_tokens(line["text"])) > 2:
            continue
        page_tables = [t for t in tables if t.get("page") == line["page"]]
        if not page_tables:
            continue
        table = page_tables[-1]
        middle = box["Top"] + box["Height"] / 2
        for other in lines:
            obox = other.get("bbox")
            if other is line or other["page"] != line["page"] or not obox or obox["Left"] <= box["Left"]:
                continue
            if not obox["Top"] <= middle <= obox["Top"] + obox["Height"]:
                continue
            value, _ = parse_amount(other["text"])
            if value is None:
                continue
            centre = obox["Left"] + obox["Width"] / 2
            cols = {
                cell["col"]
                for row in table["rows"]
                for cell in row
                if cell.get("bbox") and cell["bbox"]["Left"] <= centre <= cell["bbox"]["Left"] + cell["bbox"]["Width"]
            }
            if len(cols) == 1:
                found.append({"page": line["page"], "table_id": table["table_id"], "col": cols.pop(), "value": value})
    return found


def operate(
    tables: list[dict],
    *,
    confidence_threshold: float = 90.0,
    lines: list[dict] | None = None,
    context: dict | None = None,
    whole_document: bool = True,
) -> dict:
    """Run every rule over one document's tables (and, when given, its lines); the result is the review report.

    ``lines`` (from :func:`~include.documents.reshape.lines_from_blocks`) give the statement period, account number
    and printed totals outside the tables; ``context`` overrides what they give. ``whole_document=False`` (a page
    range) skips the checks that need every transaction. Returns::

        {"tables": [{"table_id", "page", "index", "table_type", "headers": [canonical per column],
                     "header_row", "original_headers", "flags": [{"row", "col", "rule", "reason", "reviewed"}],
                     "checks": {rule: {"passed", "failed"}}}],
         "document_flags": [{"page", "rule", "reason", "reviewed"}],
         "rules": [{"rule", "description", "passed", "failed"}],
         "context": {"period_start", "period_end", "account_number", "year"},
         "totals": {"withdrawals", "deposits", "opening_balance", "closing_balance"} (decimal strings or None),
         "confidence_threshold", "flag_count", "open_flag_count", "needs_review"}
    """
    ctx = statement_context(lines) if lines else {}
    ctx.update({k: v for k, v in (context or {}).items() if v is not None})
    if not ctx.get("year") and not ctx.get("period_start"):
        years = Counter(d.year for t in tables for row in _texts(t) for text in row for d in find_dates(text))
        ctx["year"] = years.most_common(1)[0][0] if years else None
    ordered = sorted(tables, key=lambda t: (t.get("page", 1), t.get("index", 0)))

    carry: dict = {}
    after: dict[str, tuple[dict, dict]] = {}  # transactions table -> (its result, the running carry after it)
    results: list[dict] = []
    summaries: list[tuple[dict, dict]] = []
    for table in ordered:
        result = validate(table, carry=carry, context=ctx)
        if result["table_type"] == "transactions":
            carry = result["carry"]
            after[table["table_id"]] = (result, carry)
        if result["summary"]:
            summaries.append((table, result))
        checks = _Checks(table)
        followers = merge_followers(table)
        for row in table.get("rows", []):
            for cell in row:
                confidence = cell.get("confidence")
                if confidence is None or (cell["row"], cell["col"]) in followers:
                    continue
                checks.check(
                    "confidence",
                    confidence >= confidence_threshold or bool(cell.get("reviewed")),
                    f"{confidence:.1f} < {confidence_threshold:g}",
                    [(cell["row"], cell["col"])],
                )
        result["flags"] = sorted(
            result["flags"] + checks.flags,
            key=lambda f: (f["row"], f["col"], RULE_NAMES.index(f["rule"])),
        )
        result["checks"]["confidence"] = checks.counts["confidence"]
        results.append(result)

    document_flags: list[dict] = []
    counts = {name: {"passed": 0, "failed": 0} for name in RULE_NAMES}
    sums = {name: _dec(carry.get(name)) for name in ("withdrawals", "deposits")}

    transaction_tables = [t for t in ordered if t["table_id"] in after]
    for total in _line_totals(lines or [], transaction_tables):
        result, running = after[total["table_id"]]
        name = result["headers"][total["col"]]
        if name not in ("withdrawals", "deposits"):
            continue
        value = abs(total["value"])
        # A printed total may close the statement so far or just its page.
        ok = value in (Decimal(running[name]), Decimal(result["carry"]["table_sums"][name]))
        counts["totals"]["passed" if ok else "failed"] += 1
        if not ok:
            table = next(t for t in transaction_tables if t["table_id"] == total["table_id"])
            document_flags.append(
                {
                    "page": total["page"],
                    "rule": "totals",
                    "reason": f"totals: printed {name} total {money(value)} ≠ sum of {name} {money(Decimal(running[name]))}",
                    # Settled once a reviewer has been through the table the total closes.
                    "reviewed": all(cell.get("reviewed") for row in table["rows"] for cell in row),
                }
            )

    if whole_document and carry:
        expected = {
            "opening": _dec(carry.get("opening_balance")),
            "closing": _dec(carry.get("balance")),
            "deposits": sums["deposits"],
            "withdrawals": sums["withdrawals"],
        }
        for table, result in summaries:
            checks = _Checks(table)
            for name, value in result["summary"]["figures"].items():
                if expected.get(name) is None:
                    continue
                checks.check(
                    "summary_totals",
                    Decimal(value) == expected[name],
                    f"summary {name} {money(Decimal(value))} ≠ {money(expected[name])} from the transactions",
                    [tuple(result["summary"]["cells"][name])],
                )
            result["flags"] = sorted(
                result["flags"] + checks.flags,
                key=lambda f: (f["row"], f["col"], RULE_NAMES.index(f["rule"])),
            )
            result["checks"]["summary_totals"] = checks.counts["summary_totals"]

    report_tables = []
    for table, result in zip(ordered, results, strict=True):
        for name, count in result["checks"].items():
            counts[name]["passed"] += count["passed"]
            counts[name]["failed"] += count["failed"]
        report_tables.append(
            {
                "table_id": table.get("table_id"),
                "page": table.get("page"),
                "index": table.get("index"),
                "table_type": result["table_type"],
                "headers": result["headers"],
                "header_row": result["header_row"],
                "original_headers": result["original_headers"],
                "flags": result["flags"],
                "checks": result["checks"],
            }
        )

    flags = [f for t in report_tables for f in t["flags"]]
    open_flags = sum(not f["reviewed"] for f in flags + document_flags)
    return {
        "tables": report_tables,
        "document_flags": document_flags,
        "rules": [{"rule": name, "description": text, **counts[name]} for name, text in RULES],
        "context": {k: ctx.get(k) for k in ("period_start", "period_end", "account_number", "year")},
        "totals": {
            "withdrawals": carry.get("withdrawals"),
            "deposits": carry.get("deposits"),
            "opening_balance": carry.get("opening_balance"),
            "closing_balance": carry.get("balance"),
        },
        "confidence_threshold": confidence_threshold,
        "flag_count": len(flags) + len(document_flags),
        "open_flag_count": open_flags,
        "needs_review": open_flags > 0,
    }


# --- reviewer corrections ------------------------------------------------------------------------------------------


def _answer_corrections(tables: dict[str, dict], answer: Mapping[str, Any]) -> list[dict]:
    """An A2I answerContent (localcloud/src/localcloud/services/a2i_runtime/contract.py) as corrections.

    The reviewer submits whole tables, so every answered table is marked reviewed; cell texts that differ from
    the tables' current texts are corrections, and the answer's table type and headers become overrides.
    """
    items: list[dict] = []
    answered = answer.get("tables")
    if answered is None:
        for change in answer.get("corrections") or []:
            if int(change["row"]) < 0:
                items.append({"table_id": change["table_id"], "col": change["col"], "header": change["new"]})
            else:
                items.append({k: change[k] for k in ("table_id", "row", "col")} | {"text": change["new"]})
        return items
    for table_answer in answered:
        table_id = table_answer.get("table_id")
        table = tables.get(table_id)
        if table is None:
            raise ValueError(f"answer for unknown table {table_id!r}")
        rows = table_answer.get("rows") or []
        if len(rows) != table["n_rows"] or any(len(row) != table["n_cols"] for row in rows):
            raise ValueError(f"answer for table {table_id} does not have its {table['n_rows']}x{table['n_cols']} shape")
        items.append({"table_id": table_id, "reviewed": True})
        if table_answer.get("table_type"):
            items.append({"table_id": table_id, "table_type": table_answer["table_type"]})
        for col, header in enumerate(table_answer.get("headers") or []):
            items.append({"table_id": table_id, "col": col, "header": header})
        # Only what changed: re-sending every position of a merge would undo an edit made at another position.
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                if str(text) != table["rows"][r][c].get("text", ""):
                    items.append({"table_id": table_id, "row": r, "col": c, "text": str(text)})
    return items


def _canonical_header(header: str, col: int) -> str:
    if header in TRANSACTION_COLUMNS + SUMMARY_COLUMNS or header == f"column_{col}":
        return header
    matched = match_header(header) or ("amount" if _tokens(header) == ["amount"] else None)
    if matched is None:
        raise ValueError(f"header {header!r} for column {col} is not a canonical column name")
    return matched


def apply_corrections(tables: list[dict], corrections: list[dict] | Mapping[str, Any]) -> list[dict]:
    """Merge reviewer corrections into (a copy of) the tables, ready for another :func:`operate`.

    ``corrections`` is a list of:

    - ``{"table_id", "row", "col", "text"}``: the cell (and every position of its merge) gets ``text``,
      ``reviewed: True`` and, when the text changed, ``corrected: True`` with ``original`` (the first OCR text,
      kept across repeated corrections). Sending the unchanged text confirms the cell.
    - ``{"table_id", "table_type"}``: forces the table type.
    - ``{"table_id", "col", "header"}``: forces a column's canonical name (a printed name like "Debits" is
      mapped to its canonical one).
    - ``{"table_id", "reviewed": True}``: a reviewer has seen the whole table.

    or an A2I ``answerContent`` (``{"tables", "corrections", "reviewer"}``, see :func:`_answer_corrections`).
    An unknown table, cell, type or header raises ValueError: a lost correction should fail loudly.
    """
    result = copy.deepcopy(tables)
    by_id = {t["table_id"]: t for t in result}
    if isinstance(corrections, Mapping):
        corrections = _answer_corrections(by_id, corrections)
    for correction in corrections:
        table = by_id.get(correction.get("table_id"))
        if table is None:
            raise ValueError(f"correction for unknown table {correction.get('table_id')!r}")
        overrides = table.setdefault("overrides", {})
        if correction.get("reviewed") is True:
            for line in table["rows"]:
                for cell in line:
                    cell["reviewed"] = True
        if "table_type" in correction:
            if correction["table_type"] not in TABLE_TYPES:
                raise ValueError(f"unknown table type {correction['table_type']!r}")
            overrides["table_type"] = correction["table_type"]
        if "header" in correction:
            col = int(correction["col"])
            if not 0 <= col < table["n_cols"]:
                raise ValueError(f"header correction outside table {table['table_id']}: col {col}")
            overrides.setdefault("headers", {})[str(col)] = _canonical_header(str(correction["header"]), col)
        if "text" in correction:
            row, col = int(correction["row"]), int(correction["col"])
            if not (0 <= row < table["n_rows"] and 0 <= col < table["n_cols"]):
                raise ValueError(f"correction outside table {table['table_id']}: row {row}, col {col}")
            target = table["rows"][row][col]
            same = [
                cell
                for line in table["rows"]
                for cell in line
                if cell is target or (target.get("merged") and cell.get("block_id") == target.get("block_id"))
            ]
            for cell in same:
                text = str(correction["text"])
                if text != cell.get("text", ""):
                    cell.setdefault("original", cell.get("text", ""))
                    cell["corrected"] = True
                    cell["text"] = text
                cell["reviewed"] = True
        if not overrides:
            del table["overrides"]
    return result
