"""The churn generator: deterministic, the Autopilot sample's columns, realistic rate and signal."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from include.datagen import churn


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return churn.generate(5000, seed=0)


def test_same_seed_same_rows_other_seed_other_rows(rows):
    assert churn.generate(5000, seed=0) == rows
    assert churn.generate(200, seed=1) != rows[:200]


def test_columns_in_the_autopilot_sample_order(rows):
    assert list(rows[0]) == churn.COLUMNS
    assert churn.COLUMNS[0] == "State" and churn.COLUMNS[3] == "Phone" and churn.COLUMNS[-1] == "Churn?"
    assert len(churn.COLUMNS) == 21
    assert {row["Churn?"] for row in rows} == {"True.", "False."}
    assert {row["Int'l Plan"] for row in rows} == {"yes", "no"}
    assert {row["Area Code"] for row in rows} == {408, 415, 510}
    assert len({row["State"] for row in rows}) == 51


def test_phone_is_a_unique_id(rows):
    phones = [row["Phone"] for row in rows]
    assert len(set(phones)) == len(phones)
    assert all(re.fullmatch(r"\d{3}-\d{4}", phone) for phone in phones)


def test_charges_are_proportional_to_minutes(rows):
    for part, tariff in churn.TARIFFS.items():
        mins = np.array([row[f"{part} Mins"] for row in rows])
        charge = np.array([row[f"{part} Charge"] for row in rows])
        assert np.allclose(charge, mins * tariff, atol=0.006), part


def test_about_14_percent_churn(rows):
    rate = np.mean([row["Churn?"] == "True." for row in rows])
    assert 0.12 <= rate <= 0.16


def test_churn_signal(rows):
    churned = np.array([row["Churn?"] == "True." for row in rows])
    calls = np.array([row["CustServ Calls"] for row in rows])
    intl = np.array([row["Int'l Plan"] == "yes" for row in rows])
    day = np.array([row["Day Mins"] for row in rows])
    assert churned[calls >= 4].mean() > 3 * churned[calls < 4].mean()
    assert churned[intl].mean() > 2 * churned[~intl].mean()
    assert churned[day > 270].mean() > 2 * churned[day < 200].mean()
    vmail = np.array([row["VMail Plan"] == "yes" for row in rows])
    assert all(row["VMail Message"] == 0 for row, v in zip(rows, vmail, strict=True) if not v)


def test_true_probabilities_match_the_drawn_rows(rows):
    p = churn.true_probabilities(5000, seed=0)
    churned = np.array([row["Churn?"] == "True." for row in rows])
    assert p.shape == (5000,)
    assert abs(p.mean() - churned.mean()) < 0.02
    assert p[churned].mean() > 2 * p[~churned].mean()


def test_cli_writes_a_csv(tmp_path: Path, capsys):
    out = tmp_path / "churn.csv"
    assert churn.main(["--rows", "50", "--seed", "3", "--out", str(out)]) == 0
    with out.open() as handle:
        table = list(csv.reader(handle))
    assert table[0] == churn.COLUMNS
    assert len(table) == 51
    assert table[1] == [str(v) for v in churn.generate(50, seed=3)[0].values()]
    assert "50 rows" in capsys.readouterr().out
