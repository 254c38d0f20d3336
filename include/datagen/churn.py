"""The classic mobile-operator churn table (the SageMaker Autopilot sample's 21 columns), generated deterministically.

Distributions follow the well-known public sample: state, account length in days, one of three area codes, a
unique phone number (an ID column that AutoML must drop), international and voicemail plans ("yes"/"no"),
minutes and calls per day part with charges exactly proportional to the minutes (per-minute tariffs 0.17 day,
0.085 evening, 0.045 night, 0.27 international), customer-service calls, and the target ``Churn?`` as "True." /
"False." with about 14% positives.

Churn is drawn from a known probability (``churn_probability``) so that benchmarks can state the ceiling a model can
reach. The signal is non-linear, as in the real data: heavy daytime users are price-sensitive, four or more
customer-service calls signal a frustrated customer (less so for heavy users, who call about their bills), the
international plan raises churn (more so with many international minutes or few international calls), the
voicemail plan lowers it.

CLI: ``python -m include.datagen.churn --rows N --seed S --out file.csv``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = [
    "State",
    "Account Length",
    "Area Code",
    "Phone",
    "Int'l Plan",
    "VMail Plan",
    "VMail Message",
    "Day Mins",
    "Day Calls",
    "Day Charge",
    "Eve Mins",
    "Eve Calls",
    "Eve Charge",
    "Night Mins",
    "Night Calls",
    "Night Charge",
    "Intl Mins",
    "Intl Calls",
    "Intl Charge",
    "CustServ Calls",
    "Churn?",
]
TARGET = "Churn?"
POSITIVE = "True."
NEGATIVE = "False."

# The 50 states and DC; the public sample is close to uniform with West Virginia over-represented.
STATES = [
    "AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "HI", "IA", "ID", "IL", "IN", "KS",
    "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MS", "MT", "NC", "ND", "NE", "NH", "NJ", "NM", "NV",
    "NY", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VA", "VT", "WA", "WI", "WV", "WY",
]  # fmt: skip
AREA_CODES = (415, 408, 510)
AREA_WEIGHTS = (0.5, 0.25, 0.25)
TARIFFS = {"Day": 0.17, "Eve": 0.085, "Night": 0.045, "Intl": 0.27}
# Calibrated once on 400,000 rows so that the mean churn probability is 14%; a constant, not refitted per sample,
# so that the formula (and the ceiling it implies) is the same for every seed and size.
INTERCEPT = -3.1430


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def churn_probability(
    day_mins: np.ndarray,
    eve_mins: np.ndarray,
    intl_plan: np.ndarray,
    vmail_plan: np.ndarray,
    intl_mins: np.ndarray,
    intl_calls: np.ndarray,
    custserv_calls: np.ndarray,
) -> np.ndarray:
    """The true probability of churn per customer (boolean arrays for the plans)."""
    intl = intl_plan.astype(float)
    frustrated = (custserv_calls >= 4).astype(float)
    logit = (
        INTERCEPT
        + 3.0 * _sigmoid((day_mins - 255.0) / 12.0)
        + 0.9 * _sigmoid((eve_mins - 265.0) / 15.0)
        + 2.6 * frustrated * (1.0 - 0.8 * _sigmoid((day_mins - 215.0) / 15.0))
        + 0.2 * custserv_calls
        + intl * (1.6 + 1.3 * (intl_mins > 13.0) + 1.0 * (intl_calls <= 2))
        - 0.9 * vmail_plan.astype(float)
    )
    return _sigmoid(logit)


def _normal_int(rng: np.random.Generator, mean: float, sd: float, low: int, high: int, size: int) -> np.ndarray:
    return np.clip(np.rint(rng.normal(mean, sd, size)), low, high).astype(int)


def _sample(rows: int, seed: int) -> dict[str, np.ndarray]:
    """Every column as an array, plus the true churn probability under "_p"."""
    rng = np.random.default_rng(seed)
    state_weights = np.ones(len(STATES))
    state_weights[STATES.index("WV")] = 2.0
    state_weights /= state_weights.sum()
    cols: dict[str, np.ndarray] = {
        "State": rng.choice(np.array(STATES), size=rows, p=state_weights),
        "Account Length": _normal_int(rng, 101.0, 40.0, 1, 243, rows),
        "Area Code": rng.choice(np.array(AREA_CODES), size=rows, p=AREA_WEIGHTS),
    }
    # Sampling without replacement keeps phones unique: random 7-digit numbers collide at a few thousand rows.
    numbers = rng.choice(10_000_000 - 3_270_000, size=rows, replace=False) + 3_270_000
    cols["Phone"] = np.array([f"{n // 10_000:03d}-{n % 10_000:04d}" for n in numbers])
    intl_plan = rng.random(rows) < 0.097
    vmail_plan = rng.random(rows) < 0.277
    cols["Int'l Plan"] = np.where(intl_plan, "yes", "no")
    cols["VMail Plan"] = np.where(vmail_plan, "yes", "no")
    cols["VMail Message"] = np.where(vmail_plan, _normal_int(rng, 29.0, 7.5, 1, 51, rows), 0)
    for part, (mean, sd, high) in {
        "Day": (180.0, 54.0, 351.0),
        "Eve": (201.0, 51.0, 364.0),
        "Night": (201.0, 51.0, 395.0),
    }.items():
        minutes = np.round(np.clip(rng.normal(mean, sd, rows), 0.0, high), 1)
        cols[f"{part} Mins"] = minutes
        cols[f"{part} Calls"] = _normal_int(rng, 100.0, 20.0, 0, 170, rows)
        cols[f"{part} Charge"] = np.round(minutes * TARIFFS[part], 2)
    intl_mins = np.round(np.clip(rng.normal(10.2, 2.8, rows), 0.0, 20.0), 1)
    cols["Intl Mins"] = intl_mins
    cols["Intl Calls"] = np.minimum(rng.poisson(4.5, rows), 20)
    cols["Intl Charge"] = np.round(intl_mins * TARIFFS["Intl"], 2)
    cols["CustServ Calls"] = np.minimum(rng.poisson(1.56, rows), 9)
    p = churn_probability(
        cols["Day Mins"],
        cols["Eve Mins"],
        intl_plan,
        vmail_plan,
        intl_mins,
        cols["Intl Calls"],
        cols["CustServ Calls"],
    )
    cols["Churn?"] = np.where(rng.random(rows) < p, POSITIVE, NEGATIVE)
    cols["_p"] = p
    return cols


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def generate(rows: int = 5000, seed: int = 0) -> list[dict[str, Any]]:
    """``rows`` customers as dicts keyed by ``COLUMNS`` (ints, floats and strings); the same seed gives the same rows."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    cols = _sample(rows, seed)
    return [{name: _python(cols[name][i]) for name in COLUMNS} for i in range(rows)]


def true_probabilities(rows: int = 5000, seed: int = 0) -> np.ndarray:
    """The churn probability each row of ``generate(rows, seed)`` was drawn with (for ceilings in benchmarks)."""
    return _sample(rows, seed)["_p"]


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``rows`` with a header line in ``COLUMNS`` order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row[name] for name in COLUMNS])
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="CSV file to write")
    args = parser.parse_args(argv)
    rows = generate(args.rows, args.seed)
    path = write_csv(args.out, rows)
    positives = sum(row[TARGET] == POSITIVE for row in rows)
    print(f"{path}: {len(rows)} rows, {positives / len(rows):.1%} churn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
