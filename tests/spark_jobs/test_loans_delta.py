"""include/spark_jobs/loans_delta.py on a small generated table, in one real local SparkSession with delta-spark.

The tests run in file order on one table (each step builds on the previous one, as in the DAG); the fixtures
record each step's result so that a later test can check against an earlier version.
"""

from __future__ import annotations

import ast
import gzip
import json
from pathlib import Path

import pytest

pytest.importorskip("pyspark")

from include.datagen import loans as gen  # noqa: E402
from include.lakehouse.config import local_session  # noqa: E402
from include.spark_jobs import loans_delta as job  # noqa: E402

ROWS = 400
BAD_RATE = 0.05
N_UPDATES = 24
N_NEW = 16
SEED = 7
RUN = "manual__2026-11-30T00:00:00"
# What each generator defect must be quarantined as.
REASON_OF_DEFECT = {
    "non_numeric_loan_amnt": "bad_number:loan_amnt",
    "missing_id": "missing:id",
    "int_rate_percent": "bad_number:int_rate",
    "negative_amount": "non_positive:loan_amnt",
    "wrong_column_count": "wrong_column_count",
}


@pytest.fixture(scope="module")
def spark():
    session = local_session()
    yield session
    session.stop()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("lake")
    rows, log = gen.generate(ROWS, BAD_RATE, SEED)
    gen.write_csv(root / "raw" / "loans.csv.gz", rows, gzip=True)
    batch = gen.incremental_batch(rows, N_UPDATES, N_NEW, SEED)
    gen.write_csv(root / "raw" / "batch.csv", batch)
    return {
        "root": root,
        "rows": rows,
        "log": log,
        "batch": batch,
        "source": f"file://{root}/raw/loans.csv.gz",
        "batch_source": f"file://{root}/raw/batch.csv",
        "table": f"file://{root}/loans",
        "quarantine": f"file://{root}/loans_quarantine",
        "results": {},
    }


def _table(spark, lake, version: int | None = None):
    return job.read_version(spark, lake["table"], version=version)


def _by_id(df) -> dict[int, dict]:
    return {row["id"]: row.asDict() for row in df.collect()}


# ---------------------------------------------------------------------------------------------------------------------
def test_the_job_is_self_contained_and_matches_the_generators_columns():
    tree = ast.parse(Path(job.__file__).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    # EMR Serverless ships the file alone: nothing of this project may be imported.
    assert imported <= {
        "__future__",
        "argparse",
        "contextlib",
        "datetime",
        "json",
        "sys",
        "collections",
        "typing",
        "delta",
        "pyspark",
    }
    assert [name for name, _ in job.SCHEMA] == gen.COLUMNS


def test_ingest_reconciles_and_quarantines_every_bad_row_with_its_reason(spark, lake):
    result = job.ingest(spark, lake["source"], lake["table"], lake["quarantine"], RUN)
    lake["results"]["ingest"] = result
    n_bad = round(ROWS * BAD_RATE)
    assert result["rows_in"] == ROWS
    assert result["rows_quarantined"] == n_bad
    assert result["rows_written"] == ROWS - n_bad
    assert result["rows_in"] == result["rows_written"] + result["rows_quarantined"]
    assert _table(spark, lake).count() == ROWS - n_bad

    quarantined = job.read_version(spark, lake["quarantine"]).collect()
    expected = sorted((entry["row_index"], REASON_OF_DEFECT[entry["defect"]]) for entry in lake["log"])
    assert sorted((row.source_row, row.reason) for row in quarantined) == expected
    assert {row.run for row in quarantined} == {RUN}
    # The raw record is kept so that nothing is lost: a truncated line as read, others as their fields.
    for row in quarantined:
        assert row.record
        if row.reason == "missing:id":
            assert json.loads(row.record)["loan_amnt"]


def test_ingest_types_the_curated_columns(spark, lake):
    table = _table(spark, lake)
    kinds = dict((f.name, f.dataType.simpleString()) for f in table.schema)
    assert kinds == dict(job.SCHEMA)
    good = next(r for r in lake["rows"] if gen._is_good(r))
    row = table.filter(f"id = {good['id']}").first()
    assert row.loan_amnt == float(good["loan_amnt"])
    assert row.term == good["term"].strip()
    assert row.issue_d.strftime("%b-%Y") == good["issue_d"]


def test_ingest_rerun_of_the_same_run_changes_nothing(spark, lake):
    before = job.current_version(spark, lake["table"])
    quarantine_before = job.current_version(spark, lake["quarantine"])
    again = job.ingest(spark, lake["source"], lake["table"], lake["quarantine"], RUN)
    assert again == {"step": "ingest", "table": lake["table"], "version": before, "skipped": True}
    assert job.current_version(spark, lake["table"]) == before
    assert job.current_version(spark, lake["quarantine"]) == quarantine_before


def test_query_orders_by_amount_and_reports_history(spark, lake):
    result = job.query(spark, lake["table"], limit=5)
    assert result["is_delta"] is True
    amounts = [row["loan_amnt"] for row in result["top_by_loan_amnt"]]
    assert amounts == sorted(amounts, reverse=True) and len(amounts) == 5
    best = max(float(r["loan_amnt"]) for r in lake["rows"] if gen._is_good(r))
    assert amounts[0] == best
    assert [(c["version"], c["operation"], c["run"], c["step"]) for c in result["history"]] == [
        (0, "WRITE", RUN, "ingest")
    ]
    assert result["history"][0]["metrics"]["numOutputRows"] == str(result["rows"])
    assert job.DeltaTable.isDeltaTable(spark, lake["table"])
    assert not job.DeltaTable.isDeltaTable(spark, f"file://{lake['root']}/raw")


def test_evolve_adds_the_columns_with_merge_schema(spark, lake):
    result = job.evolve(spark, lake["table"], RUN, expect_version=lake["results"]["ingest"]["version"])
    lake["results"]["evolve"] = result
    assert result["added"] == ["funding_type", "excess_int_rate"]
    schema = [(f.name, f.dataType.simpleString()) for f in _table(spark, lake).schema]
    assert schema == job.SCHEMA + job.EVOLVED
    # The old version still reads with the old schema; the new columns are null until the update step.
    assert [f.name for f in _table(spark, lake, 0).schema] == [n for n, _ in job.SCHEMA]
    assert _table(spark, lake).filter("funding_type IS NOT NULL OR excess_int_rate IS NOT NULL").count() == 0
    last = job.history(spark, lake["table"])[-1]
    assert (last["operation"], last["parameters"]["mode"], last["metrics"]["numOutputRows"]) == ("WRITE", "Append", "0")
    again = job.evolve(spark, lake["table"], RUN)
    assert again["skipped"] is True and again["version"] == result["version"]


def test_update_sets_funding_type_and_excess_rate(spark, lake):
    result = job.update(spark, lake["table"], RUN, expect_version=lake["results"]["evolve"]["version"])
    lake["results"]["update"] = result
    rows = _table(spark, lake).collect()
    fully = [r for r in rows if r.loan_amnt == r.funded_amnt]
    assert 0 < len(fully) < len(rows)
    assert result["updated_rows"]["funding_type"] == len(fully)
    for row in rows:
        assert row.funding_type == ("FullyFunded" if row.loan_amnt == row.funded_amnt else None)
        if row.int_rate > 10.0:
            assert row.excess_int_rate == pytest.approx(row.int_rate - 10.0)
        else:
            assert row.excess_int_rate is None
    assert result["updated_rows"]["excess_int_rate"] == sum(r.int_rate > 10.0 for r in rows)
    ops = [(c["operation"], c["step"]) for c in job.history(spark, lake["table"])][-2:]
    assert ops == [("UPDATE", "update:funding_type"), ("UPDATE", "update:excess_int_rate")]


def test_update_again_matches_nothing_and_commits_nothing(spark, lake):
    version = job.current_version(spark, lake["table"])
    assert job.update(spark, lake["table"], RUN)["skipped"] is True  # this run's retry: recognised
    again = job.update(spark, lake["table"], "another-run")
    assert again["updated_rows"] == {"funding_type": 0, "excess_int_rate": 0}
    assert job.current_version(spark, lake["table"]) == version


def test_a_foreign_commit_since_the_expected_version_is_refused(spark, lake, tmp_path):
    # A copy of the table, so that the foreign commit does not disturb the pipeline under test.
    copy = f"file://{tmp_path}/copy"
    _table(spark, lake).write.format("delta").save(copy)
    with job.tagged_commits(spark, "someone-else", "manual"):
        job.DeltaTable.forPath(spark, copy).update("id < 0", {"loan_status": "'x'"})  # matches nothing: no commit
        job.DeltaTable.forPath(spark, copy).delete(f"id = {_table(spark, lake).first().id}")
    with pytest.raises(job.ConcurrentWriteError, match="committed by run 'someone-else'"):
        job.update(spark, copy, RUN, expect_version=0)


def test_upsert_merges_the_batch_by_id(spark, lake):
    before = _by_id(_table(spark, lake))
    result = job.upsert(
        spark,
        lake["table"],
        lake["quarantine"],
        lake["batch_source"],
        RUN,
        expect_version=lake["results"]["update"]["version"],
    )
    lake["results"]["upsert"] = result
    assert (result["inserted"], result["updated"], result["unchanged"]) == (N_NEW, N_UPDATES, 0)
    assert result["rows_in"] == N_UPDATES + N_NEW and result["rows_quarantined"] == 0
    after = _by_id(_table(spark, lake))
    assert len(after) == len(before) + N_NEW
    for incoming in lake["batch"]:
        row = after[int(incoming["id"])]
        assert row["loan_status"] == incoming["loan_status"]
        assert row["funded_amnt"] == float(incoming["funded_amnt"])
        # Merged rows get the update step's derived columns too, so the table stays consistent.
        assert row["funding_type"] == ("FullyFunded" if row["loan_amnt"] == row["funded_amnt"] else None)
    untouched = set(before) - {int(r["id"]) for r in lake["batch"]}
    assert all(after[i] == before[i] for i in untouched)
    assert job.history(spark, lake["table"])[-1]["operation"] == "MERGE"


def test_upsert_of_the_same_batch_changes_nothing(spark, lake):
    version = job.current_version(spark, lake["table"])
    snapshot = sorted(map(tuple, _table(spark, lake).collect()))
    # Same run (a task retry): recognised from the history.
    assert job.upsert(spark, lake["table"], lake["quarantine"], lake["batch_source"], RUN)["skipped"] is True
    # Another run with the same batch: MERGE finds every row equal, and no empty version is committed.
    again = job.upsert(spark, lake["table"], lake["quarantine"], lake["batch_source"], "second-run")
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, N_UPDATES + N_NEW)
    assert job.current_version(spark, lake["table"]) == version
    assert sorted(map(tuple, _table(spark, lake).collect())) == snapshot


def test_upsert_quarantines_bad_batch_rows(spark, lake, tmp_path):
    rows = [dict(r) for r in lake["batch"][:3]]
    rows[0]["loan_amnt"] = "lots"
    rows.append(dict(rows[1]))  # the same id twice in one batch
    gen.write_csv(tmp_path / "bad.csv", rows)
    quarantined_before = job.read_version(spark, lake["quarantine"]).count()
    result = job.upsert(spark, lake["table"], lake["quarantine"], f"file://{tmp_path}/bad.csv", "bad-batch-run")
    assert (result["rows_in"], result["rows_merged"], result["rows_quarantined"]) == (4, 2, 2)
    reasons = job.read_version(spark, lake["quarantine"]).filter("run = 'bad-batch-run'").collect()
    assert sorted(r.reason for r in reasons) == ["bad_number:loan_amnt", "duplicate_id"]
    assert job.read_version(spark, lake["quarantine"]).count() == quarantined_before + 2


def test_time_travel_reads_old_versions_and_writes_a_diff_report(spark, lake):
    ingest_version = lake["results"]["ingest"]["version"]
    upsert_version = lake["results"]["upsert"]["version"]
    report = f"file://{lake['root']}/reports/diff.json"
    result = job.time_travel(spark, lake["table"], ingest_version, upsert_version, report)
    assert _table(spark, lake, ingest_version).count() == lake["results"]["ingest"]["rows_written"]
    assert result["rows_as_of_timestamp"] == _table(spark, lake, upsert_version).count()
    by_time = job.read_version(spark, lake["table"], timestamp=result["to_timestamp"])
    assert sorted(map(tuple, by_time.collect())) == sorted(map(tuple, _table(spark, lake, upsert_version).collect()))
    d = result["diff"]
    assert (d["added"], d["removed"], d["changed"]) == (N_NEW, 0, N_UPDATES)
    assert d["changed_by_column"]["loan_status"] == N_UPDATES
    assert d["columns_added"] == ["funding_type", "excess_int_rate"]
    written = json.loads((lake["root"] / "reports" / "diff.json").read_text())
    assert written["diff"]["added"] == N_NEW and written["to_version"] == upsert_version
    example = next(e for e in d["examples"] if e["change"] == "changed")
    assert "loan_status" in example["columns"]
    with pytest.raises(ValueError, match="no version 99"):
        job.time_travel(spark, lake["table"], 99)


def test_maintenance_refuses_a_short_retention_without_force(spark, lake):
    with pytest.raises(ValueError, match="floor"):
        job.maintenance(spark, lake["table"], RUN, retention_hours=1)
    # Forced, but the audit still needs version 0: refused as well, before anything is deleted.
    with pytest.raises(ValueError, match="version 0 .* unreadable"):
        job.maintenance(spark, lake["table"], RUN, retention_hours=0, force_retention=True, keep_version=0)
    assert _table(spark, lake, 0).count() == lake["results"]["ingest"]["rows_written"]


def test_maintenance_optimizes_with_zorder_and_vacuums(spark, lake):
    files_before = len(spark.read.format("delta").load(lake["table"]).inputFiles())
    result = job.maintenance(spark, lake["table"], RUN, zorder_by=["addr_state"])
    assert result["optimize"]["zorder_by"] == ["addr_state"]
    assert len(spark.read.format("delta").load(lake["table"]).inputFiles()) <= files_before
    assert result["vacuum"] == {"retention_hours": 168.0, "files_deleted": 0}
    ops = [c["operation"] for c in job.history(spark, lake["table"])]
    assert "OPTIMIZE" in ops and ops[-2:] == ["VACUUM START", "VACUUM END"]
    optimize = next(c for c in job.history(spark, lake["table"]) if c["operation"] == "OPTIMIZE")
    assert json.loads(optimize["parameters"]["zOrderBy"]) == ["addr_state"]
    # Within the window, time travel to the first version still works.
    assert _table(spark, lake, 0).count() == lake["results"]["ingest"]["rows_written"]


def test_forced_vacuum_deletes_old_files_and_ends_time_travel(spark, lake, tmp_path):
    copy = f"file://{tmp_path}/copy"
    _table(spark, lake, 0).write.format("delta").save(copy)
    job.DeltaTable.forPath(spark, copy).update("true", {"loan_status": "'Current'"})
    result = job.maintenance(spark, copy, "vacuum-run", retention_hours=0, force_retention=True)
    assert result["vacuum"]["files_deleted"] >= 1
    assert job.read_version(spark, copy).filter("loan_status <> 'Current'").count() == 0
    with pytest.raises(Exception, match="(?i)not.?found|does not exist|FileNotFound|FAILED_READ_FILE"):
        job.read_version(spark, copy, version=0).collect()


def test_history_records_every_step_of_the_run(spark, lake):
    steps = [(c["operation"], c["step"]) for c in job.history(spark, lake["table"]) if c["run"] == RUN]
    assert steps[:5] == [
        ("WRITE", "ingest"),
        ("WRITE", "evolve"),
        ("UPDATE", "update:funding_type"),
        ("UPDATE", "update:excess_int_rate"),
        ("MERGE", "upsert"),
    ]


# ---------------------------------------------------------------------------------------------------------------------
def test_parquet_sources_go_through_the_same_checks(spark, lake, tmp_path):
    raw = spark.read.option("header", "true").csv(lake["source"]).limit(50)
    raw.write.parquet(str(tmp_path / "loans.parquet"))
    result = job.ingest(spark, f"file://{tmp_path}/loans.parquet", f"file://{tmp_path}/t", f"file://{tmp_path}/q")
    assert result["rows_in"] == 50
    assert result["rows_in"] == result["rows_written"] + result["rows_quarantined"]


def test_a_source_without_required_columns_is_refused_before_anything_is_written(spark, tmp_path):
    (tmp_path / "x.csv").write_text("id,loan_amnt\n1,100\n")
    with pytest.raises(ValueError, match=r"required columns \['funded_amnt'"):
        job.ingest(spark, f"file://{tmp_path}/x.csv", f"file://{tmp_path}/t", f"file://{tmp_path}/q")
    assert not (tmp_path / "t").exists() and not (tmp_path / "q").exists()


def test_a_corrupt_gzip_fails_the_ingest_and_writes_nothing(spark, tmp_path):
    good = gzip.compress(b"".join(f"{','.join(gen.COLUMNS)}\n".encode() for _ in range(1)))
    (tmp_path / "broken.csv.gz").write_bytes(good[: len(good) // 2] + b"garbage")
    with pytest.raises(Exception):  # noqa: B017 - Spark's error class depends on where the stream breaks
        job.ingest(spark, f"file://{tmp_path}/broken.csv.gz", f"file://{tmp_path}/t", f"file://{tmp_path}/q")
    assert not (tmp_path / "t").exists()


def test_duplicate_ids_in_one_source_keep_the_first(spark, tmp_path):
    rows, _ = gen.generate(5, 0.0, 3)
    rows.append(dict(rows[2], loan_status="Charged Off"))
    gen.write_csv(tmp_path / "dup.csv", rows)
    result = job.ingest(spark, f"file://{tmp_path}/dup.csv", f"file://{tmp_path}/t", f"file://{tmp_path}/q")
    assert (result["rows_written"], result["rows_quarantined"]) == (5, 1)
    kept = job.read_version(spark, f"file://{tmp_path}/t").filter(f"id = {rows[2]['id']}").first()
    assert kept.loan_status == rows[2]["loan_status"]
    assert job.read_version(spark, f"file://{tmp_path}/q").first().reason == "duplicate_id"


def test_command_line_runs_a_step_and_writes_its_result(spark, lake, tmp_path, capsys):
    out = tmp_path / "query.json"
    args = job.parser().parse_args(["query", "--table", lake["table"], "--limit", "2", "--result", f"file://{out}"])
    result = job.run_step(spark, args)
    job.write_text(spark, args.result, json.dumps(result, default=str))
    assert json.loads(out.read_text())["version"] == job.current_version(spark, lake["table"])
    with pytest.raises(SystemExit):
        job.parser().parse_args(["upsert", "--table", "t"])  # --batch and --quarantine are required


def test_the_real_exports_extra_columns_and_summary_lines(spark, tmp_path):
    """accepted_2007_to_2018Q4.csv.gz has 151 columns and ends with two summary lines; both must be handled."""
    rows, _ = gen.generate(20, 0.0, 11)
    extra = ["pymnt_plan_extra", "hardship_flag", "debt_settlement_flag"]
    lines = [",".join([*gen.COLUMNS, *extra])]
    lines += [",".join([*(f'"{v}"' for v in row.values()), "", "N", "N"]) for row in rows]
    lines += ["Total amount funded in policy code 1: 6417608175", "Total amount funded in policy code 2: 1591314"]
    (tmp_path / "accepted.csv.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    result = job.ingest(spark, f"file://{tmp_path}/accepted.csv.gz", f"file://{tmp_path}/t", f"file://{tmp_path}/q")
    assert (result["rows_in"], result["rows_written"], result["rows_quarantined"]) == (22, 20, 2)
    summary = job.read_version(spark, f"file://{tmp_path}/q").collect()
    assert {r.reason for r in summary} == {"wrong_column_count"}
    assert sorted(r.record for r in summary)[0].startswith("Total amount funded in policy code 1")
    assert job.read_version(spark, f"file://{tmp_path}/t").columns == [n for n, _ in job.SCHEMA]
