"""The Lending-Club-like loans generator: deterministic, real columns, consistent values, logged bad rows."""

from __future__ import annotations

import csv
import gzip
import re
from collections import Counter
from pathlib import Path

import pytest

from include.datagen import loans

ROWS = 3000
BAD_RATE = 0.03


@pytest.fixture(scope="module")
def generated() -> tuple[list[dict], list[dict]]:
    return loans.generate(ROWS, BAD_RATE, seed=7)


@pytest.fixture(scope="module")
def good(generated) -> list[dict]:
    rows, log = generated
    bad = {entry["row_index"] for entry in log}
    return [row for i, row in enumerate(rows) if i not in bad]


def test_same_seed_same_rows_other_seed_other_rows(generated):
    assert loans.generate(ROWS, BAD_RATE, seed=7) == generated
    assert loans.generate(200, BAD_RATE, seed=8)[0] != generated[0][:200]


def test_bad_rate_only_touches_the_logged_rows(generated):
    rows, log = generated
    clean, clean_log = loans.generate(ROWS, 0.0, seed=7)
    assert clean_log == []
    bad = {entry["row_index"] for entry in log}
    assert [i for i in range(ROWS) if rows[i] != clean[i]] == sorted(bad)


def test_header_is_the_real_files_leading_columns(tmp_path):
    assert loans.COLUMNS[:10] == [
        "id", "member_id", "loan_amnt", "funded_amnt", "funded_amnt_inv", "term", "int_rate", "installment",
        "grade", "sub_grade",
    ]  # fmt: skip
    assert loans.COLUMNS[15:25] == [
        "issue_d", "loan_status", "pymnt_plan", "url", "desc", "purpose", "title", "zip_code", "addr_state", "dti",
    ]  # fmt: skip
    assert len(loans.COLUMNS) == len(set(loans.COLUMNS)) >= 25
    path = loans.write_csv(tmp_path / "l.csv", loans.generate(5, seed=0)[0])
    assert path.read_text().splitlines()[0] == ",".join(loans.COLUMNS)


def test_good_rows_parse_to_their_types(good):
    for row in good:
        assert list(row) == loans.COLUMNS
        assert all(isinstance(value, str) for value in row.values())
        assert row["id"].isdigit() and row["member_id"] == ""
        for name in ("loan_amnt", "funded_amnt", "funded_amnt_inv", "installment", "annual_inc", "dti", "revol_bal"):
            assert float(row[name]) >= 0, name
        assert float(row["loan_amnt"]) >= 1000 and float(row["loan_amnt"]) % 25 == 0
        assert row["term"] in (" 36 months", " 60 months")
        assert row["emp_length"] in loans.EMP_LENGTHS
        assert row["home_ownership"] in loans.HOME_OWNERSHIP
        assert row["verification_status"] in loans.VERIFICATION
        assert re.fullmatch(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-20(0[7-9]|1[0-8])", row["issue_d"])
        assert re.fullmatch(r"[A-Z][a-z]{2}-(19|20)\d\d", row["earliest_cr_line"])
        assert re.fullmatch(r"\d{3}xx", row["zip_code"]) and row["addr_state"] in loans.STATES
        assert row["title"] == loans.PURPOSES[row["purpose"]][1]
        assert row["url"].endswith(f"loan_id={row['id']}")
        assert float(row["fico_range_high"]) == float(row["fico_range_low"]) + 4
    ids = [row["id"] for row in good]
    assert len(set(ids)) == len(ids)
    assert {row["term"] for row in good} == {" 36 months", " 60 months"}
    statuses = Counter(row["loan_status"] for row in good)
    assert {"Fully Paid", "Charged Off", "Current"} <= set(statuses)
    assert any(s.startswith("Late (") for s in statuses)


def test_installment_is_the_amortization_payment_on_the_funded_amount(good):
    for row in good:
        principal = float(row["funded_amnt"])
        r = float(row["int_rate"]) / 1200
        n = int(row["term"].split()[0])
        assert float(row["installment"]) == pytest.approx(principal * r / (1 - (1 + r) ** -n), abs=0.006)
    assert loans.installment_for(10_000, 12.0, 36) == 332.14


def test_grade_matches_sub_grade_and_rate_band(good):
    for row in good:
        assert row["sub_grade"][0] == row["grade"] and row["sub_grade"][1] in "12345"
        low, high = loans.rate_band(row["sub_grade"])
        assert low <= float(row["int_rate"]) <= high, row["sub_grade"]
    mean_rate = {g: [float(r["int_rate"]) for r in good if r["grade"] == g] for g in "ABCD"}
    means = [sum(v) / len(v) for v in mean_rate.values()]
    assert means == sorted(means)


def test_funding_and_rate_cases_for_the_update_step_are_both_common(good):
    loan = [float(r["loan_amnt"]) for r in good]
    funded = [float(r["funded_amnt"]) for r in good]
    inv = [float(r["funded_amnt_inv"]) for r in good]
    assert all(f <= a for f, a in zip(funded, loan, strict=True))
    assert all(i <= f for i, f in zip(inv, funded, strict=True))
    full = sum(f == a for f, a in zip(funded, loan, strict=True)) / len(good)
    high_rate = sum(float(r["int_rate"]) > 10.0 for r in good) / len(good)
    assert 0.6 <= full <= 0.95
    assert 0.5 <= high_rate <= 0.85


def test_bad_rows_are_exactly_the_logged_ones(generated):
    rows, log = generated
    assert len(rows) == ROWS
    assert len(log) == round(ROWS * BAD_RATE)
    assert Counter(entry["defect"] for entry in log) == {kind: len(log) // 5 for kind in loans.DEFECTS}
    assert [e["row_index"] for e in log] == sorted({e["row_index"] for e in log})
    clean = loans.generate(ROWS, 0.0, seed=7)[0]
    for entry in log:
        row = rows[entry["row_index"]]
        assert entry["id"] == clean[entry["row_index"]]["id"]
        defect = entry["defect"]
        if defect == "wrong_column_count":
            assert len(row) == len(loans.COLUMNS) - loans.TRUNCATED_FIELDS
            continue
        assert len(row) == len(loans.COLUMNS)
        if defect == "missing_id":
            assert row["id"] == ""
        elif defect == "non_numeric_loan_amnt":
            assert row["loan_amnt"] == "n/a"
        elif defect == "int_rate_percent":
            assert row["int_rate"].endswith("%") and float(row["int_rate"][:-1]) > 0
        elif defect == "negative_amount":
            assert float(row["loan_amnt"]) < 0
    # A simple validator that knows nothing of the log finds exactly the logged rows.
    flagged = [i for i, row in enumerate(rows) if not loans._is_good(row)]
    assert flagged == [e["row_index"] for e in log]


@pytest.mark.parametrize(("rows", "rate"), [(0, 0.5), (10, 0.0), (10, 1.0), (7, 0.25), (1000, 0.001)])
def test_bad_count_is_rounded_rows_times_rate(rows, rate):
    assert len(loans.generate(rows, rate, seed=1)[1]) == round(rows * rate)


def test_incremental_batch_updates_and_new_ids(generated):
    base, _ = generated
    batch = loans.incremental_batch(base, n_updates=40, n_new=25, seed=3)
    assert batch == loans.incremental_batch(base, n_updates=40, n_new=25, seed=3)
    assert len(batch) == 65
    by_id = {row["id"]: row for row in base if row["id"]}
    ids = [row["id"] for row in batch]
    assert len(set(ids)) == len(ids)
    updates = [row for row in batch if row["id"] in by_id]
    new = [row for row in batch if row["id"] not in by_id]
    assert len(updates) == 40 and len(new) == 25
    assert min(int(r["id"]) for r in new) > max(int(i) for i in by_id)
    assert all(r["loan_status"] != by_id[r["id"]]["loan_status"] for r in updates)
    changed_funding = [r for r in updates if r["funded_amnt"] != by_id[r["id"]]["funded_amnt"]]
    assert len(changed_funding) == 20
    for row in batch:
        assert list(row) == loans.COLUMNS and loans._is_good(row)
        assert float(row["funded_amnt"]) <= float(row["loan_amnt"])
        principal, r = float(row["funded_amnt"]), float(row["int_rate"]) / 1200
        n = int(row["term"].split()[0])
        assert float(row["installment"]) == pytest.approx(principal * r / (1 - (1 + r) ** -n), abs=0.006)
    with pytest.raises(ValueError):
        loans.incremental_batch(base[:5], n_updates=10, n_new=0)


def test_cli_writes_gzip_when_the_name_ends_with_gz(tmp_path: Path, capsys):
    out = tmp_path / "accepted.csv.gz"
    assert loans.main(["--rows", "200", "--bad-rate", "0.05", "--seed", "4", "--out", str(out)]) == 0
    assert "200 rows, 10 bad" in capsys.readouterr().out
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    with gzip.open(out, "rt", newline="") as handle:
        records = list(csv.reader(handle))
    expected, log = loans.generate(200, 0.05, seed=4)
    assert records[0] == loans.COLUMNS
    assert [list(row.values()) for row in expected] == records[1:]
    widths = Counter(len(r) for r in records[1:])
    short = sum(e["defect"] == "wrong_column_count" for e in log)
    assert widths == {len(loans.COLUMNS): 200 - short, len(loans.COLUMNS) - loans.TRUNCATED_FIELDS: short}
    plain = tmp_path / "accepted.csv"
    loans.main(["--rows", "20", "--out", str(plain)])
    assert plain.read_text().startswith("id,member_id,loan_amnt,")


def test_gzip_output_is_byte_identical(tmp_path):
    rows, _ = loans.generate(50, bad_rate=0.1, seed=3)
    first = loans.write_csv(tmp_path / "a.csv.gz", rows, gzip=True).read_bytes()
    second = loans.write_csv(tmp_path / "b.csv.gz", rows, gzip=True).read_bytes()
    assert first == second and first[:2] == b"\x1f\x8b"
