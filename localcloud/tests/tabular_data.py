"""A small, deterministic churn table for localcloud's AutoML tests: the 21 columns of the mobile-operator churn
sample that SageMaker Autopilot's examples use, with the target ``Churn?`` as ``"True."`` / ``"False."``.

The emulator's tests own their data: nothing here comes from the Airflow project. The signal is learnable but not
trivial: churn rises steeply with heavy daytime use and with four or more customer-service calls, the
international plan raises it, the voicemail plan lowers it, and the rest is noise (``Phone`` is a unique id
that AutoML must drop; the charges are the minutes times a tariff, so they carry the same signal again).
About one customer in seven churns.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = [
    "State", "Account Length", "Area Code", "Phone", "Int'l Plan", "VMail Plan", "VMail Message",
    "Day Mins", "Day Calls", "Day Charge", "Eve Mins", "Eve Calls", "Eve Charge",
    "Night Mins", "Night Calls", "Night Charge", "Intl Mins", "Intl Calls", "Intl Charge",
    "CustServ Calls", "Churn?",
]  # fmt: skip
TARGET = "Churn?"
POSITIVE, NEGATIVE = "True.", "False."
STATES = ["CA", "NY", "TX", "WA", "OH", "WV", "NJ", "MN", "AL", "OR", "KS", "VT"]
TARIFF = {"Day": 0.17, "Eve": 0.085, "Night": 0.045, "Intl": 0.27}  # dollars per minute


def _minutes(rng: np.random.Generator, mean: float, sd: float, high: float, rows: int) -> np.ndarray:
    return np.round(np.clip(rng.normal(mean, sd, rows), 0.0, high), 1)


def _counts(rng: np.random.Generator, mean: float, rows: int) -> np.ndarray:
    return np.clip(np.rint(rng.normal(mean, mean / 5, rows)), 0, 2 * mean).astype(int)


def generate(rows: int = 800, seed: int = 0) -> list[dict[str, Any]]:
    """``rows`` customers as dicts keyed by :data:`COLUMNS`; the same seed gives the same rows."""
    rng = np.random.default_rng(seed)
    intl_plan = rng.random(rows) < 0.1
    vmail_plan = rng.random(rows) < 0.28
    day = _minutes(rng, 180.0, 55.0, 350.0, rows)
    eve = _minutes(rng, 200.0, 50.0, 360.0, rows)
    night = _minutes(rng, 200.0, 50.0, 390.0, rows)
    intl = _minutes(rng, 10.0, 2.8, 20.0, rows)
    service_calls = np.minimum(rng.poisson(1.6, rows), 9)
    logit = (
        -3.6
        + 5.0 / (1.0 + np.exp(-(day - 245.0) / 8.0))  # heavy daytime users leave for a cheaper tariff
        + 3.6 * (service_calls >= 4)  # a frustrated customer
        + 2.6 * intl_plan
        - 1.5 * vmail_plan
        + 0.004 * (eve - 200.0)
    )
    churned = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    phones = rng.permutation(9_000_000)[:rows] + 1_000_000  # unique, like an id
    columns: dict[str, Any] = {
        "State": rng.choice(STATES, rows),
        "Account Length": np.clip(np.rint(rng.normal(100.0, 40.0, rows)), 1, 240).astype(int),
        "Area Code": rng.choice([408, 415, 510], rows, p=[0.25, 0.5, 0.25]),
        "Phone": [f"{n // 10_000:03d}-{n % 10_000:04d}" for n in phones],
        "Int'l Plan": np.where(intl_plan, "yes", "no"),
        "VMail Plan": np.where(vmail_plan, "yes", "no"),
        "VMail Message": np.where(vmail_plan, _counts(rng, 28.0, rows), 0),
        "Intl Calls": np.minimum(rng.poisson(4.5, rows), 20),
        "CustServ Calls": service_calls,
        "Churn?": np.where(churned, POSITIVE, NEGATIVE),
    }
    for part, minutes in (("Day", day), ("Eve", eve), ("Night", night), ("Intl", intl)):
        columns[f"{part} Mins"] = minutes
        columns[f"{part} Charge"] = np.round(minutes * TARIFF[part], 2)
        if part != "Intl":
            columns[f"{part} Calls"] = _counts(rng, 100.0, rows)

    def plain(value: Any) -> Any:
        return value.item() if isinstance(value, np.generic) else value

    return [{name: plain(columns[name][i]) for name in COLUMNS} for i in range(rows)]


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """``rows`` as CSV with a header line, columns in :data:`COLUMNS` order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows([row[name] for name in COLUMNS] for row in rows)
    return path
