"""Lending-Club-like accepted loans, generated deterministically, with realistic bad rows for ingest tests.

The columns are the first 38 of Lending Club's ``accepted_2007_to_2018Q4.csv`` (the public Kaggle export), in the
real order and with the real formatting: every value is a string as it appears in the file, amounts and counts as
floats ("3600.0"), ``member_id`` and ``desc`` mostly empty, ``term`` with its leading space (" 36 months"),
``int_rate`` as a percent number ("13.56"), ``issue_d`` and ``earliest_cr_line`` as "Dec-2015", ``zip_code`` masked
("123xx"). The relationships a pipeline may rely on hold on every good row:

* ``grade``/``sub_grade`` determine the ``int_rate`` band (``rate_band``); the bands do not overlap.
* ``installment`` is the amortization payment on ``funded_amnt`` (Lending Club amortizes what was funded) at
  ``int_rate`` over ``term`` months, rounded to cents (``installment_for``).
* ``funded_amnt <= loan_amnt`` and ``funded_amnt_inv <= funded_amnt``; about 80% of loans are fully funded
  (``loan_amnt == funded_amnt``) and about 70% have ``int_rate > 10.0``, so that both branches of a later
  "FullyFunded" / ``excess_int_rate`` update step see plenty of rows.
* ``loan_status`` follows the issue date: recent loans are mostly "Current", old ones "Fully Paid" or "Charged
  Off", and 2007-2010 loans include the "Does not meet the credit policy. Status:..." variants.

Bad rows (``bad_rate``) carry exactly one defect each, of a kind in ``DEFECTS``, and are listed in the defect log
so that an ingest's counts reconcile (rows in = rows written + quarantined). Defects are drawn from a separate
random stream, so ``generate(n, r, seed)`` differs from ``generate(n, 0.0, seed)`` only on the logged rows.

``incremental_batch`` builds a MERGE batch against rows already generated: existing ids with a changed
``loan_status`` (and for some a changed ``funded_amnt``), plus loans with new ids.

CLI: ``python -m include.datagen.loans --rows N --bad-rate R --seed S --out loans.csv[.gz]`` (gzip when the name
ends with .gz, like the real ``accepted_2007_to_2018Q4.csv.gz``).
"""

from __future__ import annotations

import argparse
import csv
import gzip as gzip_module
import io
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

COLUMNS = [
    "id",
    "member_id",
    "loan_amnt",
    "funded_amnt",
    "funded_amnt_inv",
    "term",
    "int_rate",
    "installment",
    "grade",
    "sub_grade",
    "emp_title",
    "emp_length",
    "home_ownership",
    "annual_inc",
    "verification_status",
    "issue_d",
    "loan_status",
    "pymnt_plan",
    "url",
    "desc",
    "purpose",
    "title",
    "zip_code",
    "addr_state",
    "dti",
    "delinq_2yrs",
    "earliest_cr_line",
    "fico_range_low",
    "fico_range_high",
    "inq_last_6mths",
    "mths_since_last_delinq",
    "mths_since_last_record",
    "open_acc",
    "pub_rec",
    "revol_bal",
    "revol_util",
    "total_acc",
    "initial_list_status",
]

# Each bad row has exactly one of these; the ingest is expected to quarantine all of them.
DEFECTS = (
    "non_numeric_loan_amnt",  # loan_amnt "n/a", as a hand-edited export leaves it
    "missing_id",  # id empty
    "int_rate_percent",  # int_rate "13.56%", the format of Lending Club's older LoanStats files
    "negative_amount",  # loan_amnt negative
    "wrong_column_count",  # record cut short: the last TRUNCATED_FIELDS fields are missing
)
TRUNCATED_FIELDS = 3

GRADES = "ABCDEFG"
SUB_GRADES = [f"{g}{n}" for g in GRADES for n in range(1, 6)]
# Share of loans per grade in the 2007-2018 file (B and C dominate; F and G are rare).
GRADE_WEIGHTS = (0.19, 0.29, 0.28, 0.14, 0.065, 0.022, 0.013)
# Rates run from about 5.3% (A1) to about 31% (G5), one step per sub-grade; a draw stays within +-RATE_JITTER of
# its sub-grade's centre, under half a step, so the bands never overlap and the grade can be checked from the rate.
RATE_A1 = 5.32
RATE_STEP = 0.755
RATE_JITTER = 0.3

TERMS = (" 36 months", " 60 months")
EMP_LENGTHS = ["< 1 year", "1 year"] + [f"{n} years" for n in range(2, 10)] + ["10+ years", "n/a"]
EMP_LENGTH_WEIGHTS = (0.08, 0.065, 0.09, 0.08, 0.06, 0.062, 0.046, 0.042, 0.045, 0.038, 0.33, 0.062)
EMP_TITLES = [
    "Teacher", "Manager", "Owner", "Registered Nurse", "Driver", "Supervisor", "Sales", "Project Manager",
    "Office Manager", "General Manager", "Director", "Engineer", "Truck Driver", "Operations Manager", "RN",
    "Police Officer", "Store Manager", "Accountant", "Technician", "Nurse", "Administrative Assistant",
    "Software Engineer", "Sales Manager", "Mechanic", "Customer Service", "Account Manager", "Analyst",
]  # fmt: skip
HOME_OWNERSHIP = ("MORTGAGE", "RENT", "OWN", "OTHER")
HOME_WEIGHTS = (0.49, 0.395, 0.11, 0.005)
VERIFICATION = ("Not Verified", "Source Verified", "Verified")
# purpose -> (share, the title Lending Club's form filled in for it)
PURPOSES = {
    "debt_consolidation": (0.565, "Debt consolidation"),
    "credit_card": (0.23, "Credit card refinancing"),
    "home_improvement": (0.065, "Home improvement"),
    "other": (0.06, "Other"),
    "major_purchase": (0.022, "Major purchase"),
    "medical": (0.012, "Medical expenses"),
    "small_business": (0.011, "Business"),
    "car": (0.011, "Car financing"),
    "moving": (0.007, "Moving and relocation"),
    "vacation": (0.007, "Vacation"),
    "house": (0.006, "Home buying"),
    "renewable_energy": (0.002, "Green loan"),
    "wedding": (0.002, "Wedding loan"),
}
# state -> (share of loans, first and last 3-digit zip prefix of the state), roughly as in the file.
STATES = {
    "CA": (0.146, 900, 961), "TX": (0.082, 750, 799), "NY": (0.082, 100, 149), "FL": (0.071, 320, 349),
    "IL": (0.040, 600, 629), "NJ": (0.036, 70, 89), "PA": (0.034, 150, 196), "OH": (0.033, 430, 458),
    "GA": (0.033, 300, 319), "VA": (0.028, 220, 246), "NC": (0.028, 270, 289), "MI": (0.026, 480, 499),
    "AZ": (0.024, 850, 865), "MD": (0.024, 206, 219), "MA": (0.023, 10, 27), "CO": (0.022, 800, 816),
    "WA": (0.021, 980, 994), "MN": (0.018, 550, 567), "IN": (0.016, 460, 479), "MO": (0.016, 630, 658),
    "TN": (0.016, 370, 385), "NV": (0.015, 889, 898), "CT": (0.015, 60, 69), "WI": (0.013, 530, 549),
    "AL": (0.012, 350, 369), "OR": (0.012, 970, 979), "SC": (0.012, 290, 299), "LA": (0.011, 700, 714),
    "KY": (0.010, 400, 427), "OK": (0.009, 730, 749), "KS": (0.008, 660, 679), "AR": (0.008, 716, 729),
    "UT": (0.007, 840, 847), "NM": (0.006, 870, 884), "HI": (0.005, 967, 968), "MS": (0.005, 386, 397),
    "NH": (0.005, 30, 38), "RI": (0.004, 28, 29), "WV": (0.004, 247, 268), "MT": (0.003, 590, 599),
    "DE": (0.003, 197, 199), "DC": (0.002, 200, 205), "AK": (0.002, 995, 999), "WY": (0.002, 820, 831),
    "SD": (0.002, 570, 577), "VT": (0.002, 50, 59), "NE": (0.002, 680, 693), "ME": (0.002, 39, 49),
    "ID": (0.002, 832, 838), "ND": (0.001, 580, 588), "IA": (0.001, 500, 528),
}  # fmt: skip
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Issue months run Jun-2007 .. Dec-2018, as months since Jan-2007; the file's volume grows steeply with time.
FIRST_MONTH = 5
LAST_MONTH = 12 * 12 - 1
URL = "https://lendingclub.com/browse/loanDetail.action?loan_id="
FIRST_ID = 1_077_501  # the smallest id in the real file


def rate_band(sub_grade: str) -> tuple[float, float]:
    """The closed range every good row's ``int_rate`` of this sub-grade lies in."""
    centre = RATE_A1 + SUB_GRADES.index(sub_grade) * RATE_STEP
    return round(centre - RATE_JITTER, 2), round(centre + RATE_JITTER, 2)


def installment_for(amount: float, int_rate: float, term_months: int) -> float:
    """The monthly payment that repays ``amount`` at ``int_rate`` percent a year over ``term_months``, to the cent."""
    r = int_rate / 1200.0
    if r == 0:
        return round(amount / term_months, 2)
    return round(amount * r / (1.0 - (1.0 + r) ** -term_months), 2)


def month_label(months_since_2007: int) -> str:
    """The file's "Mon-YYYY" for a month counted from Jan-2007 (negative values reach back before 2007)."""
    year, month = divmod(months_since_2007, 12)
    return f"{MONTHS[month]}-{2007 + year}"


def _num(value: float) -> str:
    """Numbers as the Kaggle export writes them: floats with at least one decimal ("3600.0", "13.56")."""
    return repr(float(round(value, 2)))


def _status(rng: np.random.Generator, issue_month: int, term: int) -> str:
    """A loan status plausible for a loan of this age at the file's snapshot (end of 2018Q4)."""
    age = LAST_MONTH - issue_month
    if age < term and rng.random() < 1.0 - age / term:
        # Young loans are mostly still being repaid; a few are behind.
        return str(
            rng.choice(
                ["Current", "In Grace Period", "Late (16-30 days)", "Late (31-120 days)", "Default"],
                p=[0.93, 0.02, 0.01, 0.035, 0.005],
            )
        )
    charged_off = rng.random() < 0.18
    if issue_month < 12 * 4 and rng.random() < 0.05:
        # Loans of 2007-2010 that did not meet the later credit policy carry a prefixed status in the file.
        return "Does not meet the credit policy. Status:" + ("Charged Off" if charged_off else "Fully Paid")
    return "Charged Off" if charged_off else "Fully Paid"


def _good_rows(rows: int, rng: np.random.Generator, first_id: int) -> list[dict[str, str]]:
    """``rows`` valid loans with increasing ids from ``first_id``, in issue-date order as the ids are assigned."""
    gaps = rng.integers(1, 400, size=rows)
    ids = first_id + np.cumsum(gaps) - gaps[0]
    # Volume grows with time: sample issue months with a weight rising steeply towards 2018, then sort them so ids
    # and issue dates increase together as they do in the real file.
    months = np.arange(FIRST_MONTH, LAST_MONTH + 1)
    weights = np.exp((months - LAST_MONTH) / 30.0)
    issue = np.sort(rng.choice(months, size=rows, p=weights / weights.sum()))
    grade_idx = rng.choice(len(GRADES), size=rows, p=GRADE_WEIGHTS)
    sub_idx = grade_idx * 5 + rng.integers(0, 5, size=rows)
    rates = np.round(RATE_A1 + sub_idx * RATE_STEP + rng.uniform(-RATE_JITTER, RATE_JITTER, rows), 2)
    # Amounts are multiples of 25 between 1,000 and 40,000, most of them round thousands as borrowers ask for.
    raw = np.clip(rng.lognormal(np.log(12_000), 0.6, rows), 1000, 40_000)
    amounts = np.where(rng.random(rows) < 0.7, np.round(raw / 1000) * 1000, np.round(raw / 25) * 25)
    amounts = np.clip(amounts, 1000, 40_000)
    fully_funded = rng.random(rows) < 0.8
    shortfall = np.minimum(rng.integers(1, 200, size=rows) * 25, amounts - 500)
    funded = np.where(fully_funded, amounts, amounts - shortfall)
    inv_short = np.where(rng.random(rows) < 0.15, rng.integers(1, 40, size=rows) * 25.0, 0.0)
    funded_inv = np.maximum(funded - inv_short, 0.0)
    # Longer terms are likelier for larger loans and weaker grades, as in the file (about 30% overall).
    p60 = np.clip(0.1 + 0.25 * (amounts > 15_000) + 0.04 * grade_idx, 0.0, 0.9)
    term60 = rng.random(rows) < p60
    state_names = list(STATES)
    state_p = np.array([STATES[s][0] for s in state_names])
    state_idx = rng.choice(len(state_names), size=rows, p=state_p / state_p.sum())
    purposes = list(PURPOSES)
    purpose_p = np.array([PURPOSES[p][0] for p in purposes])
    purpose_idx = rng.choice(len(purposes), size=rows, p=purpose_p / purpose_p.sum())
    income = np.round(np.clip(rng.lognormal(np.log(66_000), 0.5, rows), 8_000, 2_000_000) / 100) * 100
    dti = np.round(np.clip(rng.gamma(4.0, 4.6, rows), 0.0, 49.9), 2)
    # Better grades go with better FICO scores; scores come in 5-point bands "low..low+4".
    fico = np.clip(np.round((760 - 14 * grade_idx + rng.normal(0, 25, rows)) / 5) * 5, 660, 845).astype(int)
    out: list[dict[str, str]] = []
    for i in range(rows):
        term = 60 if term60[i] else 36
        state = state_names[state_idx[i]]
        _, zlo, zhi = STATES[state]
        purpose = purposes[purpose_idx[i]]
        delinq = int(min(rng.poisson(0.3), 15))
        open_acc = int(np.clip(rng.normal(11.5, 5.5), 1, 60))
        revol_bal = float(np.round(rng.lognormal(np.log(11_000), 0.9)))
        credit_age = int(rng.integers(36, 360))
        row = {
            "id": str(int(ids[i])),
            "member_id": "",
            "loan_amnt": _num(amounts[i]),
            "funded_amnt": _num(funded[i]),
            "funded_amnt_inv": _num(funded_inv[i]),
            "term": TERMS[1] if term60[i] else TERMS[0],
            "int_rate": _num(rates[i]),
            "installment": _num(installment_for(float(funded[i]), float(rates[i]), term)),
            "grade": GRADES[grade_idx[i]],
            "sub_grade": SUB_GRADES[sub_idx[i]],
            "emp_title": "" if rng.random() < 0.07 else str(rng.choice(EMP_TITLES)),
            "emp_length": str(rng.choice(EMP_LENGTHS, p=EMP_LENGTH_WEIGHTS)),
            "home_ownership": str(rng.choice(HOME_OWNERSHIP, p=HOME_WEIGHTS)),
            "annual_inc": _num(income[i]),
            "verification_status": str(rng.choice(VERIFICATION, p=(0.32, 0.39, 0.29))),
            "issue_d": month_label(int(issue[i])),
            "loan_status": _status(rng, int(issue[i]), term),
            "pymnt_plan": "n",
            "url": f"{URL}{int(ids[i])}",
            "desc": "",
            "purpose": purpose,
            "title": PURPOSES[purpose][1],
            "zip_code": f"{int(rng.integers(zlo, zhi + 1)):03d}xx",
            "addr_state": state,
            "dti": _num(dti[i]),
            "delinq_2yrs": _num(delinq),
            "earliest_cr_line": month_label(int(issue[i]) - credit_age),
            "fico_range_low": _num(fico[i]),
            "fico_range_high": _num(fico[i] + 4),
            "inq_last_6mths": _num(min(rng.poisson(0.6), 8)),
            # Empty when the borrower never had a delinquency / public record, as in the file.
            "mths_since_last_delinq": _num(rng.integers(0, 120)) if delinq or rng.random() < 0.3 else "",
            "mths_since_last_record": _num(rng.integers(0, 120)) if rng.random() < 0.15 else "",
            "open_acc": _num(open_acc),
            "pub_rec": _num(min(rng.poisson(0.2), 10)),
            "revol_bal": _num(revol_bal),
            "revol_util": _num(np.clip(rng.normal(51.0, 24.0), 0.0, 120.0)),
            "total_acc": _num(open_acc + int(rng.integers(0, 30))),
            "initial_list_status": "w" if rng.random() < 0.6 else "f",
        }
        out.append(row)
    return out


def _break(row: dict[str, str], defect: str) -> dict[str, str]:
    """A copy of ``row`` with ``defect`` applied."""
    bad = dict(row)
    if defect == "non_numeric_loan_amnt":
        bad["loan_amnt"] = "n/a"
    elif defect == "missing_id":
        bad["id"] = ""
    elif defect == "int_rate_percent":
        bad["int_rate"] = f"{row['int_rate']}%"
    elif defect == "negative_amount":
        bad["loan_amnt"] = f"-{row['loan_amnt']}"
    elif defect == "wrong_column_count":
        # A record cut short (a truncated line): the dict keeps only the leading fields, so write_csv emits fewer.
        bad = {name: row[name] for name in COLUMNS[:-TRUNCATED_FIELDS]}
    else:
        raise ValueError(f"unknown defect {defect!r}")
    return bad


def generate(rows: int, bad_rate: float = 0.0, seed: int = 0) -> tuple[list[dict[str, str]], list[dict]]:
    """``rows`` loans in file order (dicts of strings keyed by ``COLUMNS``) and the defect log.

    ``round(rows * bad_rate)`` of them are bad rows, each with one defect from ``DEFECTS`` (spread evenly over the
    kinds); the log has one ``{"row_index", "id", "defect"}`` per bad row, in row order, where ``id`` is the loan's
    true id (also for ``missing_id``, whose row has it blank). A ``wrong_column_count`` row lacks the last
    ``TRUNCATED_FIELDS`` keys.
    """
    if rows < 0:
        raise ValueError("rows must be >= 0")
    if not 0.0 <= bad_rate <= 1.0:
        raise ValueError("bad_rate must be within [0, 1]")
    data = _good_rows(rows, np.random.default_rng(seed), FIRST_ID) if rows else []
    # A separate stream for defects keeps the good rows independent of bad_rate.
    drng = np.random.default_rng([seed, 1])
    n_bad = round(rows * bad_rate)
    picked = np.sort(drng.choice(rows, size=n_bad, replace=False)) if n_bad else np.array([], dtype=int)
    kinds = [DEFECTS[k % len(DEFECTS)] for k in range(n_bad)]
    drng.shuffle(kinds)
    log: list[dict] = []
    for index, defect in zip(picked.tolist(), kinds, strict=True):
        log.append({"row_index": index, "id": data[index]["id"], "defect": defect})
        data[index] = _break(data[index], defect)
    return data, log


def _is_good(row: dict[str, str]) -> bool:
    """Whether a row has all columns, a numeric id and a positive numeric amount (what a MERGE can key on)."""
    if len(row) != len(COLUMNS) or not row["id"].isdigit():
        return False
    try:
        return float(row["loan_amnt"]) > 0 and float(row["int_rate"]) > 0
    except ValueError:
        return False


def incremental_batch(
    base_rows: Sequence[dict[str, str]], n_updates: int, n_new: int, seed: int = 0
) -> list[dict[str, str]]:
    """A MERGE batch: ``n_updates`` existing loans changed, then ``n_new`` loans with ids above all of ``base_rows``.

    Each update changes ``loan_status`` (to a different status); every other update also changes ``funded_amnt``
    (a partly funded loan becomes fully funded, a fully funded one loses some funding) with ``funded_amnt_inv`` and
    ``installment`` following, so that a downstream "FullyFunded" flag flips both ways. Only good base rows (see
    ``_is_good``) are updated; ids are unique within the batch.
    """
    rng = np.random.default_rng([seed, 2])
    good = [row for row in base_rows if _is_good(row)]
    if n_updates > len(good):
        raise ValueError(f"n_updates={n_updates} exceeds the {len(good)} good base rows")
    batch: list[dict[str, str]] = []
    picked = np.sort(rng.choice(len(good), size=n_updates, replace=False)) if n_updates else []
    statuses = ["Current", "Fully Paid", "Charged Off", "Late (31-120 days)", "In Grace Period"]
    for k, idx in enumerate(picked):
        row = dict(good[int(idx)])
        choices = [s for s in statuses if s != row["loan_status"]]
        row["loan_status"] = str(rng.choice(choices))
        if k % 2 == 0:
            amount = float(row["loan_amnt"])
            funded = float(row["funded_amnt"])
            new_funded = amount if funded < amount else max(amount - 25.0 * int(rng.integers(1, 40)), 500.0)
            row["funded_amnt"] = _num(new_funded)
            row["funded_amnt_inv"] = _num(new_funded)
            months = int(row["term"].split()[0])
            row["installment"] = _num(installment_for(new_funded, float(row["int_rate"]), months))
        batch.append(row)
    if n_new:
        ids = [int(row["id"]) for row in good]
        next_id = (max(ids) if ids else FIRST_ID) + 1
        batch.extend(_good_rows(n_new, np.random.default_rng([seed, 3]), next_id))
    return batch


def write_csv(path: str | Path, rows: Sequence[dict[str, str]], gzip: bool = False) -> Path:
    """Write a header line and ``rows`` (each row's values in its own key order, so truncated rows stay short)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw:
        # mtime=0: gzip otherwise stamps the clock into the header, and the same seed must give the same bytes.
        binary = gzip_module.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") if gzip else raw
        with io.TextIOWrapper(binary, encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            for row in rows:
                writer.writerow(list(row.values()))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--bad-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="CSV file to write; gzip-compressed when it ends with .gz")
    args = parser.parse_args(argv)
    rows, log = generate(args.rows, args.bad_rate, args.seed)
    path = write_csv(args.out, rows, gzip=str(args.out).endswith(".gz"))
    print(f"{path}: {len(rows)} rows, {len(log)} bad")
    return 0


if __name__ == "__main__":
    sys.exit(main())
