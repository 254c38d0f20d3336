"""Delta Lake throughput: the loans job on Spark local[2] (delta-spark) against the same work in delta-rs (deltalake).

    python benchmarks/delta_throughput.py [--rows 1000000] [--seed 0] [--driver-memory 2g] [--keep] [--out PATH]

Generates ``--rows`` Lending-Club-like loans (``include/datagen/loans.py``, 1% bad rows) and a MERGE batch of 5%
updates + 5% new loans, as plain CSV files (about 340 MB at 1M rows) in a temp dir under ``$TMPDIR``, generated once
per (rows, seed) in a process and deleted when it exits unless ``--keep``; both engines' tables go next to them
(deleted after each run). Generation is timed separately and not part of any figure.

Then both engines run the same three operations on the same files, one after the other, each timed once (the first
run, no warm-up):

- ingest: CSV read with every column a string, validation (wrong column count, missing required, bad number or
  date, non-positive ``loan_amnt``, duplicate id keeping the first), good rows to a Delta table, bad rows with their
  reason to a quarantine Delta table, rows in = written + quarantined checked against the commit's metrics;
- update: schema evolution (the two ``EVOLVED`` columns) then the two conditional updates (``FUNDING_TYPE_RULE``,
  ``EXCESS_RATE_RULE``), each skipping rows that already hold the value;
- merge: the batch read and validated like the ingest, then MERGE by id: changed loans updated (unchanged ones left
  alone), new ones inserted, with the evolved columns derived for incoming rows.

Spark calls the job's own functions (``include/spark_jobs/loans_delta.py``: ``ingest``, ``evolve`` + ``update``,
``upsert``) in a ``local_session`` (``include/lakehouse/config.py``); its start-up (SparkSession creation: JVM, Ivy
resolution of the cached Delta jars, session) is measured separately and excluded from rows/s. delta-rs reads with
pyarrow.csv (wrong column counts through ``invalid_row_handler``), validates with pyarrow.compute, writes with
``write_deltalake``, evolves with ``DeltaTable.alter.add_columns`` and updates / merges with ``DeltaTable.update`` /
``DeltaTable.merge``.

rows/s counts source rows for ingest, table rows (after ingest) for update, batch rows for merge. ratio = Spark
seconds / delta-rs seconds. Goal: Spark within 2x of delta-rs over the three operations once start-up is excluded.

Both engines must end with the same tables: row count, quarantined count (and per reason), FullyFunded rows, the
steps' own counts (written, updated per column, merged/inserted/updated) and every cell of the final table (compared
by id). Any difference is printed as a MISMATCH and the script exits 2. JSON goes to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import atexit
import csv
import dataclasses
import datetime as dt
import gc
import gzip
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from deltalake import CommitProperties, DeltaTable, Field, write_deltalake

from include.datagen import loans as gen
from include.spark_jobs.loans_delta import (
    EVOLVED,
    EXCESS_RATE_RULE,
    FUNDING_TYPE_RULE,
    KEY,
    POSITIVE,
    REQUIRED,
    SCHEMA,
)

DEFAULT_OUT = REPO / "benchmarks" / "results" / "delta_throughput.json"
GOAL_RATIO = 2.0
BAD_RATE = 0.01
BATCH_UPDATES = 0.05
BATCH_NEW = 0.05
RUN_KEY = "bench/delta_throughput"
OPS = ("ingest", "update", "merge")

# What Spark's try_cast accepts (after the job's trim of spaces): decimal and exponent forms, a float/double suffix,
# and its special literals, case-insensitively. RE2 syntax (pyarrow.compute).
DOUBLE_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[dDfF]?$|^(?i:[+-]?inf(inity)?|nan)$"
BIGINT_RE = r"^[+-]?\d{1,38}$"  # then range-checked: Spark's try_cast gives null outside a long
# Spark reads "Dec-2015" (MMM-yyyy) and ISO dates; arrow's strptime equivalents.
# arrow's %Y also takes "15", Spark's yyyy wants four digits: a shape check goes first.
DATE_FORMATS = (("%b-%Y", r"^[A-Za-z]{3}-\d{4}$"), ("%Y-%m-%d", r"^\d{4}-\d{2}-\d{2}$"))
ARROW_TYPES = {"bigint": pa.int64(), "double": pa.float64(), "string": pa.string(), "date": pa.date32()}
DELTA_TYPES = {"bigint": "long", "double": "double", "string": "string", "date": "date"}
# The update rules in DataFusion SQL: Spark's null-safe `NOT (a <=> b)` is `a IS DISTINCT FROM b` there.
RULES = (("funding_type", FUNDING_TYPE_RULE), ("excess_int_rate", EXCESS_RATE_RULE))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------------
# Data: generated once per (rows, seed) in this process
# ---------------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Generated:
    source: Path
    batch: Path
    rows: int
    batch_rows: int
    bad_rows: int
    seconds: float
    bytes: int
    cached: bool = False


_GENERATED: dict[tuple[int, int, float], Generated] = {}
_DATA_DIR: Path | None = None
_KEEP = False


def data_dir(keep: bool) -> Path:
    """This process's temp dir (``$TMPDIR``): removed when the process exits unless a run asked to keep it."""
    global _DATA_DIR, _KEEP
    _KEEP = _KEEP or keep
    if _DATA_DIR is None:
        _DATA_DIR = Path(tempfile.mkdtemp(prefix="delta-throughput-"))
        atexit.register(lambda path=_DATA_DIR: _KEEP or shutil.rmtree(path, ignore_errors=True))
    return _DATA_DIR


def generated(workdir: Path, rows: int, seed: int, bad_rate: float = BAD_RATE) -> Generated:
    """The source CSV and the MERGE batch CSV for (rows, seed), written under ``workdir`` on first use."""
    key = (rows, seed, bad_rate)
    if key in _GENERATED and _GENERATED[key].source.exists():
        return dataclasses.replace(_GENERATED[key], cached=True)
    folder = workdir / f"raw-{rows}-{seed}"
    started = time.perf_counter()
    data, defects = gen.generate(rows, bad_rate, seed)
    batch = gen.incremental_batch(data, round(rows * BATCH_UPDATES), round(rows * BATCH_NEW), seed)
    source = gen.write_csv(folder / "loans.csv", data)
    batch_path = gen.write_csv(folder / "batch.csv", batch)
    result = Generated(
        source,
        batch_path,
        len(data),
        len(batch),
        len(defects),
        time.perf_counter() - started,
        source.stat().st_size + batch_path.stat().st_size,
    )
    del data, batch, defects
    gc.collect()
    _GENERATED[key] = result
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Spark: the job's own functions
# ---------------------------------------------------------------------------------------------------------------------
def run_spark(data: Generated, lake: Path, master: str, driver_memory: str) -> dict[str, Any]:
    from pyspark import SparkContext

    from include.lakehouse.config import local_session

    jvm_running = SparkContext._gateway is not None  # a second run in this process: no JVM start to pay
    started = time.perf_counter()
    spark = local_session(master=master, app_name="delta_throughput", extra={"spark.driver.memory": driver_memory})
    startup = time.perf_counter() - started
    log(f"spark: session up in {startup:.1f} s")
    from include.spark_jobs import loans_delta as job

    table, quarantine = f"file://{lake}/loans", f"file://{lake}/loans_quarantine"
    seconds: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        ingested = job.ingest(spark, f"file://{data.source}", table, quarantine, RUN_KEY, "csv", "overwrite")
        seconds["ingest"] = time.perf_counter() - t0
        log(f"spark: ingest {seconds['ingest']:.1f} s {ingested}")
        t0 = time.perf_counter()
        evolved = job.evolve(spark, table, RUN_KEY)
        updated = job.update(spark, table, RUN_KEY)
        seconds["update"] = time.perf_counter() - t0
        log(f"spark: evolve + update {seconds['update']:.1f} s {updated}")
        t0 = time.perf_counter()
        merged = job.upsert(spark, table, quarantine, f"file://{data.batch}", RUN_KEY, "csv")
        seconds["merge"] = time.perf_counter() - t0
        log(f"spark: upsert {seconds['merge']:.1f} s {merged}")
    finally:
        spark.stop()
    return {
        "startup_s": startup,
        "jvm_was_running": jvm_running,
        "seconds": seconds,
        "table": str(lake / "loans"),
        "quarantine": str(lake / "loans_quarantine"),
        "counts": {
            "rows_in": ingested["rows_in"],
            "rows_written": ingested["rows_written"],
            "rows_quarantined": ingested["rows_quarantined"],
            "columns_added": evolved["added"],
            "updated_rows": updated["updated_rows"],
            "batch_rows_in": merged["rows_in"],
            "batch_quarantined": merged["rows_quarantined"],
            "inserted": merged["inserted"],
            "updated": merged["updated"],
        },
    }


# ---------------------------------------------------------------------------------------------------------------------
# delta-rs: the same steps with pyarrow + deltalake
# ---------------------------------------------------------------------------------------------------------------------
def _commit(step: str) -> CommitProperties:
    """The job's audit tag (commitInfo.userMetadata = {"run", "step"})."""
    return CommitProperties(
        custom_metadata={"userMetadata": json.dumps({"run": RUN_KEY, "step": step}, sort_keys=True)}
    )


def _header(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle))


def rs_read_raw(path: Path) -> tuple[pa.Table, list[str], list[str]]:
    """Every curated column as a string (the file's other columns dropped), the raw text of each record whose field
    count differs from the header's (skipped by the reader, like Spark's ``_corrupt_record``), and the header."""
    header = _header(path)
    names = [n.strip() for n in header]
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise ValueError(f"{path}: required columns {missing} are not in its header")
    corrupt: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        corrupt.append(row.text)
        return "skip"

    wanted = {name for name, _ in SCHEMA}
    include = [raw for raw, name in zip(header, names, strict=True) if name in wanted]
    table = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()), include_columns=include, strings_can_be_null=False
        ),
    )
    table = table.rename_columns([n.strip() for n in table.column_names])
    return table, corrupt, names


def _strip(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Spark's ``nullif(trim(x), '')`` (trim removes spaces only), and whether that is null."""
    trimmed = pc.utf8_trim(column, characters=" ")
    blank = pc.or_kleene(pc.is_null(trimmed), pc.equal(trimmed, ""))
    return pc.if_else(blank, pa.scalar(None, pa.string()), trimmed), blank


def _typed(value: pa.ChunkedArray, kind: str) -> pa.ChunkedArray:
    """``value`` (already nullif-trimmed) as ``kind``; null where Spark's try_cast / try_to_timestamp gives null."""
    if kind == "string":
        return value
    if kind == "double":
        ok = pc.match_substring_regex(value, DOUBLE_RE)
        kept = pc.if_else(ok, value, pa.scalar(None, pa.string()))
        return pc.cast(pc.replace_substring_regex(kept, r"([\d.])[dDfF]$", r"\1"), pa.float64())
    if kind == "bigint":
        ok = pc.match_substring_regex(value, BIGINT_RE)
        wide = pc.cast(pc.if_else(ok, value, pa.scalar(None, pa.string())), pa.decimal128(38, 0))
        lo, hi = pa.scalar(-(2**63), pa.decimal128(38, 0)), pa.scalar(2**63 - 1, pa.decimal128(38, 0))
        inside = pc.and_kleene(pc.greater_equal(wide, lo), pc.less_equal(wide, hi))
        return pc.cast(pc.if_else(inside, wide, pa.scalar(None, wide.type)), pa.int64())
    if kind == "date":
        parsed = [
            pc.strptime(
                pc.if_else(pc.match_substring_regex(value, shape), value, pa.scalar(None, pa.string())),
                format=fmt,
                unit="s",
                error_is_null=True,
            )
            for fmt, shape in DATE_FORMATS
        ]
        return pc.cast(pc.coalesce(*parsed), pa.date32())
    raise ValueError(f"unsupported type {kind!r}")


def rs_validate(raw: pa.Table) -> tuple[pa.Table, pa.ChunkedArray]:
    """The curated columns typed (absent ones as nulls) and a reason per row ("" when good), as the job's validate."""
    none = pa.scalar(None, pa.string())
    reason = pa.chunked_array([pa.nulls(raw.num_rows, pa.string())])
    typed: dict[str, pa.ChunkedArray] = {}
    for name, kind in SCHEMA:
        if name not in raw.column_names:
            typed[name] = pa.chunked_array([pa.nulls(raw.num_rows, ARROW_TYPES[kind])])
            continue
        value, blank = _strip(raw[name])
        typed[name] = _typed(value, kind)
        if name in REQUIRED:
            reason = pc.coalesce(reason, pc.if_else(blank, pa.scalar(f"missing:{name}"), none))
        if kind != "string":
            label = "number" if kind in ("double", "bigint") else kind
            bad = pc.and_(pc.invert(blank), pc.is_null(typed[name]))
            reason = pc.coalesce(reason, pc.if_else(bad, pa.scalar(f"bad_{label}:{name}"), none))
    for name in POSITIVE:
        reason = pc.coalesce(reason, pc.if_else(pc.less_equal(typed[name], 0), pa.scalar(f"non_positive:{name}"), none))
    reason = pc.fill_null(reason, "").combine_chunks()
    # Keep the first good row of an id (file order), as the job's row_number() over (id ORDER BY _row).
    good_idx = np.flatnonzero(pc.equal(reason, "").to_numpy(zero_copy_only=False))
    ids = typed[KEY].take(pa.array(good_idx)).to_numpy()
    _, first = np.unique(ids, return_index=True)
    if len(first) < len(good_idx):
        dup = np.ones(len(good_idx), dtype=bool)
        dup[first] = False
        reasons = reason.to_numpy(zero_copy_only=False).astype(object)
        reasons[good_idx[dup]] = "duplicate_id"
        reason = pa.array(reasons, pa.string())
    return pa.table({name: typed[name] for name, _ in SCHEMA}), pa.chunked_array([reason])


def _quarantine_rows(
    raw: pa.Table,
    typed: pa.Table,
    reason: pa.ChunkedArray,
    corrupt: list[str],
    header: list[str],
    source: str,
    step: str,
) -> pa.Table:
    """The job's quarantine schema. ``record`` is the raw text of a wrong-column-count record, else a JSON object of
    the row's non-empty raw fields (as Spark's ``to_json``)."""
    bad_mask = pc.not_equal(reason, "")
    bad_idx = pa.array(np.flatnonzero(bad_mask.to_numpy(zero_copy_only=False)))
    bad_raw = raw.take(bad_idx).to_pylist()
    source_row = bad_idx.to_pylist()
    loan_id = pc.cast(typed[KEY].take(bad_idx), pa.string()).to_pylist()
    reasons = reason.take(bad_idx).to_pylist()
    records = [
        json.dumps({k: v for k, v in row.items() if v}, separators=(",", ":"), ensure_ascii=False) for row in bad_raw
    ]
    for text in corrupt:
        fields = next(csv.reader([text]), [])
        first = dict(zip(header, fields, strict=False)).get(KEY, "").strip()
        source_row.append(None)
        loan_id.append(first if first.isdigit() else None)
        reasons.append("wrong_column_count")
        records.append(text)
    n = len(reasons)
    now = dt.datetime.now(dt.UTC)
    return pa.table(
        {
            "source": pa.array([source] * n, pa.string()),
            "source_row": pa.array(source_row, pa.int64()),
            "loan_id": pa.array(loan_id, pa.string()),
            "reason": pa.array(reasons, pa.string()),
            "record": pa.array(records, pa.string()),
            "run": pa.array([RUN_KEY] * n, pa.string()),
            "step": pa.array([step] * n, pa.string()),
            "quarantined_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        }
    )


def _added_rows(path: str) -> int:
    return int(DeltaTable(path).history(1)[0]["operationMetrics"]["num_added_rows"])


def rs_split(source: Path, quarantine: str, step: str) -> tuple[pa.Table, int, int]:
    """Read, validate and quarantine ``source``: (good rows typed, rows in, rows quarantined), reconciled."""
    raw, corrupt, header = rs_read_raw(source)
    typed, reason = rs_validate(raw)
    rows_in = raw.num_rows + len(corrupt)
    good_mask = pc.equal(reason, "")
    good = typed.filter(good_mask)
    bad = rows_in - good.num_rows
    if bad:
        rows = _quarantine_rows(raw, typed, reason, corrupt, header, f"file://{source}", step)
        write_deltalake(quarantine, rows, mode="append", commit_properties=_commit(step))
        if _added_rows(quarantine) != bad:
            raise RuntimeError(f"quarantine holds {_added_rows(quarantine)} new rows, expected {bad}")
    return good, rows_in, bad


def rs_ingest(source: Path, table: str, quarantine: str) -> dict[str, Any]:
    good, rows_in, bad = rs_split(source, quarantine, "ingest")
    write_deltalake(table, good, mode="overwrite", commit_properties=_commit("ingest"))
    written = _added_rows(table)
    if rows_in != written + bad:
        raise RuntimeError(f"{source}: {rows_in} rows in, but {written} written and {bad} quarantined")
    return {"rows_in": rows_in, "rows_written": written, "rows_quarantined": bad}


def rs_update(table: str) -> dict[str, Any]:
    target = DeltaTable(table)
    present = {f.name for f in target.schema().fields}
    missing = [(n, t) for n, t in EVOLVED if n not in present]
    if missing:
        target.alter.add_columns(
            [Field(n, DELTA_TYPES[t], nullable=True) for n, t in missing], commit_properties=_commit("evolve")
        )
    updated: dict[str, int] = {}
    for column, (condition, value) in RULES:
        metrics = target.update(
            predicate=f"({condition}) AND ({column} IS DISTINCT FROM ({value}))",
            updates={column: value},
            commit_properties=_commit(f"update:{column}"),
        )
        updated[column] = int(metrics["num_updated_rows"])
    return {"columns_added": [n for n, _ in missing], "updated_rows": updated}


# _derived spells these rules in pyarrow.compute: a changed rule in the job must be changed there too.
ARROW_RULES = {
    "funding_type": ("loan_amnt = funded_amnt", "'FullyFunded'"),
    "excess_int_rate": ("int_rate > 10.0", "int_rate - 10.0"),
}


def _derived(incoming: pa.Table) -> pa.Table:
    """The update rules applied to incoming rows (CASE WHEN cond THEN value END), in arrow."""
    fully = pc.equal(incoming["loan_amnt"], incoming["funded_amnt"])
    above = pc.greater(incoming["int_rate"], 10.0)
    return incoming.append_column(
        "funding_type", pc.if_else(fully, pa.scalar("FullyFunded"), pa.scalar(None, pa.string()))
    ).append_column(
        "excess_int_rate", pc.if_else(above, pc.subtract(incoming["int_rate"], 10.0), pa.scalar(None, pa.float64()))
    )


def _balanced(op: str, terms: list[str]) -> str:
    """``terms`` joined by ``op`` as a balanced tree: delta-rs's SQL parser gives up on a flat chain of 40."""
    if len(terms) == 1:
        return terms[0]
    mid = len(terms) // 2
    return f"({_balanced(op, terms[:mid])}) {op} ({_balanced(op, terms[mid:])})"


def rs_merge(batch: Path, table: str, quarantine: str) -> dict[str, Any]:
    incoming, rows_in, bad = rs_split(batch, quarantine, "upsert")
    target = DeltaTable(table)
    target_columns = [f.name for f in target.schema().fields]
    if all(n in target_columns for n, _ in EVOLVED):
        incoming = _derived(incoming)
    columns = [c for c in target_columns if c in incoming.column_names]
    changed = _balanced("OR", [f't."{c}" IS DISTINCT FROM s."{c}"' for c in columns])
    # delta-rs commits nothing when a MERGE changes nothing, so the job's "skip an already merged batch" check
    # (a subtract against the whole table) needs no counterpart here.
    metrics = (
        target.merge(
            incoming.select(columns),
            f"t.{KEY} = s.{KEY}",
            source_alias="s",
            target_alias="t",
            commit_properties=_commit("upsert"),
        )
        .when_matched_update_all(predicate=changed)
        .when_not_matched_insert_all()
        .execute()
    )
    return {
        "batch_rows_in": rows_in,
        "batch_quarantined": bad,
        "inserted": int(metrics["num_target_rows_inserted"]),
        "updated": int(metrics["num_target_rows_updated"]),
    }


def run_delta_rs(data: Generated, lake: Path) -> dict[str, Any]:
    table, quarantine = str(lake / "loans"), str(lake / "loans_quarantine")
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    ingested = rs_ingest(data.source, table, quarantine)
    seconds["ingest"] = time.perf_counter() - t0
    log(f"delta-rs: ingest {seconds['ingest']:.1f} s {ingested}")
    gc.collect()
    t0 = time.perf_counter()
    updated = rs_update(table)
    seconds["update"] = time.perf_counter() - t0
    log(f"delta-rs: evolve + update {seconds['update']:.1f} s {updated}")
    t0 = time.perf_counter()
    merged = rs_merge(data.batch, table, quarantine)
    seconds["merge"] = time.perf_counter() - t0
    log(f"delta-rs: merge {seconds['merge']:.1f} s {merged}")
    gc.collect()
    return {"seconds": seconds, "table": table, "quarantine": quarantine, "counts": {**ingested, **updated, **merged}}


# ---------------------------------------------------------------------------------------------------------------------
# Same work? Both engines' tables read back with deltalake (untimed)
# ---------------------------------------------------------------------------------------------------------------------
def final_state(table: str, quarantine: str) -> tuple[pa.Table, dict[str, Any]]:
    loans = DeltaTable(table).to_pyarrow_table().sort_by(KEY)
    reasons = Counter(DeltaTable(quarantine).to_pyarrow_table(columns=["reason"])["reason"].to_pylist())
    fully = pc.sum(pc.equal(loans["funding_type"], "FullyFunded")).as_py() or 0
    return loans, {
        "rows": loans.num_rows,
        "quarantined": sum(reasons.values()),
        "fully_funded": fully,
        "quarantined_by_reason": dict(sorted(reasons.items())),
    }


def differing_cells(left: pa.Table, right: pa.Table) -> dict[str, int]:
    """Per column, how many rows differ between two tables sorted by id (nulls equal to nulls)."""
    if left.num_rows != right.num_rows:
        return {"<rows>": abs(left.num_rows - right.num_rows)}
    out: dict[str, int] = {}
    for name in left.column_names:
        if name not in right.column_names:
            out[name] = left.num_rows
            continue
        a, b = left[name], pc.cast(right[name], left[name].type)
        same = pc.or_kleene(pc.fill_null(pc.equal(a, b), False), pc.and_(pc.is_null(a), pc.is_null(b)))
        if pa.types.is_floating(a.type):  # NaN is equal to NaN in a table
            same = pc.or_(same, pc.and_(pc.fill_null(pc.is_nan(a), False), pc.fill_null(pc.is_nan(b), False)))
        n = left.num_rows - (pc.sum(same).as_py() or 0)
        if n:
            out[name] = n
    return out


def compare(spark: dict[str, Any], rs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    s_loans, s_final = final_state(spark["table"], spark["quarantine"])
    r_loans, r_final = final_state(rs["table"], rs["quarantine"])
    columns = [n for n, _ in SCHEMA] + [n for n, _ in EVOLVED]
    cells = differing_cells(s_loans.select(columns), r_loans.select(columns))
    del s_loans, r_loans
    mismatches = [
        f"{what}: spark {s_final[what]} vs delta-rs {r_final[what]}"
        for what in s_final
        if s_final[what] != r_final[what]
    ]
    mismatches += [
        f"step count {what}: spark {spark['counts'][what]} vs delta-rs {rs['counts'].get(what)}"
        for what in spark["counts"]
        if spark["counts"][what] != rs["counts"].get(what)
    ]
    mismatches += [f"final table column {name}: {n} rows differ" for name, n in cells.items()]
    return {"spark": s_final, "delta_rs": r_final, "differing_cells": cells}, mismatches


# ---------------------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="loans to generate (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    parser.add_argument("--driver-memory", default="2g", help="spark.driver.memory (default 2g)")
    parser.add_argument("--keep", action="store_true", help="keep the generated CSVs and both lakes (temp dir)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if dict(RULES) != ARROW_RULES:
        raise SystemExit(f"the job's update rules changed ({dict(RULES)}): update _derived() in {__file__}")

    load_before = os.getloadavg()
    workdir = data_dir(args.keep)
    lakes = Path(tempfile.mkdtemp(prefix="lakes-", dir=workdir))
    wall = time.perf_counter()
    try:
        log(f"{args.rows:,} loans (seed {args.seed}) under {workdir}")
        data = generated(workdir, args.rows, args.seed)
        done = "reused the CSVs generated earlier" if data.cached else "generated"
        log(f"{done} in {data.seconds:.1f} s ({data.bytes / 1e6:.0f} MB of CSV)")
        rs = run_delta_rs(data, lakes / "delta-rs")
        spark = run_spark(data, lakes / "spark", args.master, args.driver_memory)
        same, mismatches = compare(spark, rs)
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(lakes, ignore_errors=True)
    load_after = os.getloadavg()

    table_rows = rs["counts"]["rows_written"]
    rows = {"ingest": data.rows, "update": table_rows, "merge": data.batch_rows}
    ops = []
    for op in OPS:
        s, r = spark["seconds"][op], rs["seconds"][op]
        ops.append(
            {
                "operation": op,
                "rows": rows[op],
                "spark_s": s,
                "spark_rows_per_s": rows[op] / s,
                "delta_rs_s": r,
                "delta_rs_rows_per_s": rows[op] / r,
                "ratio": s / r,
            }
        )
    spark_total = sum(spark["seconds"].values())
    rs_total = sum(rs["seconds"].values())
    ratio = spark_total / rs_total
    met = ratio <= GOAL_RATIO

    print(
        f"Delta throughput: {data.rows:,} loans ({data.bad_rows:,} bad), merge batch {data.batch_rows:,}; "
        f"Spark {args.master} + delta-spark vs delta-rs; {platform.machine()}, {os.cpu_count()} cpus"
    )
    print(
        f"{'operation':<10}{'rows':>11}{'spark s':>10}{'spark rows/s':>14}"
        f"{'delta-rs s':>12}{'delta-rs rows/s':>17}{'ratio':>8}"
    )
    print("-" * 82)
    for o in ops:
        print(
            f"{o['operation']:<10}{o['rows']:>11,}{o['spark_s']:>10.2f}{o['spark_rows_per_s']:>14,.0f}"
            f"{o['delta_rs_s']:>12.2f}{o['delta_rs_rows_per_s']:>17,.0f}{o['ratio']:>7.1f}x"
        )
    print(f"{'total':<10}{'':>11}{spark_total:>10.2f}{'':>14}{rs_total:>12.2f}{'':>17}{ratio:>7.1f}x")
    warm = " (JVM already running in this process)" if spark["jvm_was_running"] else ""
    print(f"Spark start-up (JVM + jars + session, excluded above): {spark['startup_s']:.1f} s{warm}")
    generation = f"{data.seconds:.1f} s" + (", reused this time" if data.cached else "")
    print(
        f"data generation (excluded): {generation}; "
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cpus)"
    )
    print(
        f"goal: Spark within {GOAL_RATIO:.0f}x of delta-rs once start-up is excluded: "
        f"{'met' if met else 'NOT met'} ({ratio:.2f}x over the three operations)"
    )
    final = same["spark"]
    print(
        f"same work: {final['rows']:,} rows, {final['quarantined']:,} quarantined, {final['fully_funded']:,} "
        f"FullyFunded, every cell equal: {'yes' if not same['differing_cells'] else 'NO'}"
    )
    for line in mismatches:
        print(f"MISMATCH {line}", file=sys.stderr)
        print(f"MISMATCH {line}")

    report = {
        "rows": data.rows,
        "seed": args.seed,
        "bad_rate": BAD_RATE,
        "batch_rows": data.batch_rows,
        "master": args.master,
        "driver_memory": args.driver_memory,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "load_average_before": load_before,
        "load_average_after": load_after,
        "generation_s": data.seconds,
        "generation_reused": data.cached,
        "spark_startup_s": spark["startup_s"],
        "spark_jvm_was_running": spark["jvm_was_running"],
        "operations": ops,
        "spark_total_s": spark_total,
        "delta_rs_total_s": rs_total,
        "ratio": ratio,
        "goal_ratio": GOAL_RATIO,
        "goal_met": met,
        "wall_s": time.perf_counter() - wall,
        "spark_counts": spark["counts"],
        "delta_rs_counts": rs["counts"],
        "final": same,
        "mismatches": mismatches,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 2 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
