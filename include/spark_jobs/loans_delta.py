"""Curate Lending Club loans into Delta Lake: one spark-submit-able job, one step per run.

    spark-submit --packages io.delta:delta-spark_4.2_2.13:4.4.0 \\
        --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \\
        --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \\
        loans_delta.py ingest --table file:///lake/loans --quarantine file:///lake/loans_quarantine \\
        --source file:///raw/accepted_2007_to_2018Q4.csv.gz --run-key manual-1

Steps: ``ingest``, ``query``, ``evolve``, ``update``, ``upsert``, ``time-travel``, ``maintenance`` (``--help`` on each).

Every step prints one ``LOANS_DELTA_RESULT {json}`` line and, with ``--result URI``, writes the same JSON there
(any Hadoop path: file://, s3a://), so that a scheduler can pass table versions from step to step.

Audit and reruns: each commit carries ``userMetadata = {"run": run_key, "step": step}``. A step whose commit is
already in the table's history for the same ``--run-key`` does nothing and returns what it did then, so a rerun of a
pipeline run duplicates nothing. ``--expect-version V`` (the version an upstream step left) makes a step refuse to
run when anything but this run has committed to the table since V.

The file is self-contained (pyspark and delta-spark only): EMR Serverless runs it as a single entry point.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

RESULT_PREFIX = "LOANS_DELTA_RESULT "

# The curated table: Lending Club's column names in file order, each with the type it is curated to.
# "number" columns are doubles (the file writes counts as "3.0"); dates are the file's "Dec-2015" months.
SCHEMA: list[tuple[str, str]] = [
    ("id", "bigint"),
    ("member_id", "bigint"),
    ("loan_amnt", "double"),
    ("funded_amnt", "double"),
    ("funded_amnt_inv", "double"),
    ("term", "string"),
    ("int_rate", "double"),
    ("installment", "double"),
    ("grade", "string"),
    ("sub_grade", "string"),
    ("emp_title", "string"),
    ("emp_length", "string"),
    ("home_ownership", "string"),
    ("annual_inc", "double"),
    ("verification_status", "string"),
    ("issue_d", "date"),
    ("loan_status", "string"),
    ("pymnt_plan", "string"),
    ("url", "string"),
    ("desc", "string"),
    ("purpose", "string"),
    ("title", "string"),
    ("zip_code", "string"),
    ("addr_state", "string"),
    ("dti", "double"),
    ("delinq_2yrs", "double"),
    ("earliest_cr_line", "date"),
    ("fico_range_low", "double"),
    ("fico_range_high", "double"),
    ("inq_last_6mths", "double"),
    ("mths_since_last_delinq", "double"),
    ("mths_since_last_record", "double"),
    ("open_acc", "double"),
    ("pub_rec", "double"),
    ("revol_bal", "double"),
    ("revol_util", "double"),
    ("total_acc", "double"),
    ("initial_list_status", "string"),
]
KEY = "id"
# Columns a loan cannot be curated without; the rest may be blank (the real file leaves many empty).
REQUIRED = ("id", "loan_amnt", "funded_amnt", "term", "int_rate", "grade", "issue_d")
POSITIVE = ("loan_amnt",)
# Added by the evolve step (mergeSchema) and filled by the update step.
EVOLVED: list[tuple[str, str]] = [("funding_type", "string"), ("excess_int_rate", "double")]
# The update step's rules, as SQL so that upsert derives the same values for incoming rows.
FUNDING_TYPE_RULE = ("loan_amnt = funded_amnt", "'FullyFunded'")
EXCESS_RATE_RULE = ("int_rate > 10.0", "int_rate - 10.0")
# Formats a date column may come in: the file's "Dec-2015", or ISO from a Parquet source's real dates.
DATE_FORMATS = ("MMM-yyyy", "yyyy-MM-dd")
CORRUPT = "_corrupt_record"
ROW = "_row"
# Delta's own floor for VACUUM (delta.deletedFileRetentionDuration defaults to 7 days).
DEFAULT_RETENTION_HOURS = 168.0


class ReconciliationError(RuntimeError):
    """Rows in != rows written + rows quarantined."""


class ConcurrentWriteError(RuntimeError):
    """Someone other than this run committed to the table since the version the step was given."""


# ---------------------------------------------------------------------------------------------------------------------
# Session, history and audit helpers
# ---------------------------------------------------------------------------------------------------------------------
def _commit_metadata(run_key: str | None, step: str) -> str:
    return json.dumps({"run": run_key, "step": step}, sort_keys=True)


@contextlib.contextmanager
def tagged_commits(spark: SparkSession, run_key: str | None, step: str) -> Iterator[None]:
    """Every Delta commit made inside carries ``{"run", "step"}`` as its userMetadata."""
    key = "spark.databricks.delta.commitInfo.userMetadata"
    spark.conf.set(key, _commit_metadata(run_key, step))
    try:
        yield
    finally:
        spark.conf.unset(key)


def history(spark: SparkSession, table: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The table's commits (the last ``limit`` of them), oldest first, as JSON-able dicts."""
    rows = (
        DeltaTable.forPath(spark, table)
        .history(limit)
        .select(
            "version",
            F.date_format("timestamp", "yyyy-MM-dd HH:mm:ss.SSS").alias("timestamp"),
            "operation",
            "operationParameters",
            "operationMetrics",
            "userMetadata",
        )
        .orderBy("version")
        .collect()
    )
    out = []
    for row in rows:
        meta = None
        if row.userMetadata:
            with contextlib.suppress(ValueError):
                meta = json.loads(row.userMetadata)
        out.append(
            {
                "version": row.version,
                "timestamp": row.timestamp,
                "operation": row.operation,
                "parameters": dict(row.operationParameters or {}),
                "metrics": dict(row.operationMetrics or {}),
                "run": meta.get("run") if isinstance(meta, dict) else None,
                "step": meta.get("step") if isinstance(meta, dict) else None,
            }
        )
    return out


def current_version(spark: SparkSession, table: str) -> int | None:
    if not DeltaTable.isDeltaTable(spark, table):
        return None
    return DeltaTable.forPath(spark, table).history(1).first().version


def _commits_of(spark: SparkSession, table: str, run_key: str | None, step: str) -> list[dict[str, Any]]:
    """This run's earlier commits of ``step`` (empty without a run key: nothing to recognise a rerun by)."""
    if run_key is None or not DeltaTable.isDeltaTable(spark, table):
        return []
    return _of_run(history(spark, table), run_key, step)


def _of_run(commits: list[dict[str, Any]], run_key: str | None, step: str) -> list[dict[str, Any]]:
    return [c for c in commits if run_key is not None and c["run"] == run_key and c["step"] == step]


def check_lineage(spark: SparkSession, table: str, expect_version: int | None, run_key: str | None) -> None:
    """Refuse to go on if a commit after ``expect_version`` came from anyone but this run."""
    if expect_version is None:
        return
    commits = history(spark, table)
    if not any(c["version"] == expect_version for c in commits):
        raise ConcurrentWriteError(f"{table} has no version {expect_version} (vacuumed history or another table?)")
    foreign = [c for c in commits if c["version"] > expect_version and (run_key is None or c["run"] != run_key)]
    if foreign:
        first = foreign[0]
        raise ConcurrentWriteError(
            f"{table} moved past version {expect_version}: version {first['version']} ({first['operation']}) was "
            f"committed by run {first['run']!r}, not {run_key!r}. Refusing to build on a table this run did not see."
        )


# ---------------------------------------------------------------------------------------------------------------------
# Reading and validating raw loans
# ---------------------------------------------------------------------------------------------------------------------
def _source_format(source: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    name = source.lower().rstrip("/")
    return "parquet" if name.endswith(".parquet") or name.endswith(".parq") else "csv"


def read_raw(spark: SparkSession, source: str, fmt: str | None = None) -> DataFrame:
    """The source as strings, one column per curated column it has, plus ``_row`` (order) and ``_corrupt_record``.

    CSV is read with every field a string against the file's own header (the real export has 151 columns; the ones
    not curated are dropped), so that a malformed number becomes a quarantine reason instead of a null. A record
    whose field count differs from the header's lands in ``_corrupt_record``.
    """
    kind = _source_format(source, fmt)
    if kind == "csv":
        # With column pruning, a record is checked against the columns a query uses, not the header: the real export's
        # one-field summary lines would pass as rows whose id is "Total amount funded ...".
        spark.conf.set("spark.sql.csv.parser.columnPruning.enabled", "false")
        header = spark.read.option("header", "true").option("inferSchema", "false").csv(source).columns
        names = [name.strip() for name in header]
        _require_columns(source, names)
        ddl = ", ".join(f"`{name}` STRING" for name in names) + f", `{CORRUPT}` STRING"
        raw = (
            spark.read.schema(ddl)
            .option("header", "true")
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT)
            .option("enforceSchema", "true")
            .csv(source)
        )
    elif kind == "parquet":
        raw = spark.read.parquet(source)
        _require_columns(source, raw.columns)
        raw = raw.withColumn(CORRUPT, F.lit(None).cast("string"))
    else:
        raise ValueError(f"unsupported source format {kind!r} (csv or parquet)")
    present = [name for name, _ in SCHEMA if name in raw.columns]
    return raw.select(*[F.col(f"`{n}`").cast("string").alias(n) for n in present], CORRUPT).withColumn(
        ROW, F.monotonically_increasing_id()
    )


def _require_columns(source: str, columns: Sequence[str]) -> None:
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise ValueError(f"{source}: required columns {missing} are not in its header ({len(columns)} columns)")


def _typed(name: str, kind: str) -> Column:
    blank_is_null = F.when(F.trim(F.col(name)) != "", F.trim(F.col(name)))
    if kind == "date":
        parsed = [F.expr(f"try_to_timestamp(nullif(trim(`{name}`), ''), '{f}')") for f in DATE_FORMATS]
        return F.to_date(F.coalesce(*parsed))
    if kind == "string":
        return blank_is_null
    return F.expr(f"try_cast(nullif(trim(`{name}`), '') AS {kind.upper()})")


def validate(raw: DataFrame) -> DataFrame:
    """``raw`` with every curated column typed and a ``reason`` column: empty for good rows, else why not.

    A reason names the first problem found: ``wrong_column_count``, ``missing:<col>``, ``bad_<type>:<col>``,
    ``non_positive:<col>``, ``duplicate_id`` (a second row with an id seen earlier in the same source).
    """
    kinds = dict(SCHEMA)
    present = [name for name, _ in SCHEMA if name in raw.columns]
    checks: list[Column] = [F.when(F.col(CORRUPT).isNotNull(), F.lit("wrong_column_count"))]
    for name in present:
        raw_value = F.nullif(F.trim(F.col(name)), F.lit(""))
        if name in REQUIRED:
            checks.append(F.when(raw_value.isNull(), F.lit(f"missing:{name}")))
        label = "number" if kinds[name] in ("double", "bigint") else kinds[name]
        checks.append(F.when(raw_value.isNotNull() & _typed(name, kinds[name]).isNull(), F.lit(f"bad_{label}:{name}")))
    for name in POSITIVE:
        checks.append(F.when(_typed(name, kinds[name]) <= 0, F.lit(f"non_positive:{name}")))
    typed = raw.select(
        ROW,
        CORRUPT,
        # The raw fields as JSON, for the quarantine: only bad rows need them (a duplicate's are its typed values).
        F.when(F.coalesce(*checks, F.lit("")) != "", F.to_json(F.struct(*present))).alias("record"),
        F.coalesce(*checks, F.lit("")).alias("reason"),
        *[_typed(name, kinds[name]).alias(name) for name in present],
    )
    # Keep the first row of an id (file order); later ones cannot be told apart from the first by a MERGE.
    first = Window.partitionBy(KEY).orderBy(ROW)
    nth = F.when((F.col("reason") == "") & F.col(KEY).isNotNull(), F.row_number().over(first))
    return typed.withColumn("reason", F.when(nth > 1, F.lit("duplicate_id")).otherwise(F.col("reason")))


def curated_columns(df: DataFrame) -> list[Column]:
    """The curated schema's columns in order (absent ones as typed nulls)."""
    return [(F.col(n) if n in df.columns else F.lit(None)).cast(t).alias(n) for n, t in SCHEMA]


def _quarantine_rows(bad: DataFrame, source: str, run_key: str | None, step: str) -> DataFrame:
    return bad.select(
        F.lit(source).alias("source"),
        F.col(ROW).alias("source_row"),
        F.col(KEY).cast("string").alias("loan_id"),
        "reason",
        F.coalesce(
            F.col(CORRUPT), F.col("record"), F.to_json(F.struct(*[n for n, _ in SCHEMA if n in bad.columns]))
        ).alias("record"),
        F.lit(run_key).cast("string").alias("run"),
        F.lit(step).alias("step"),
        F.current_timestamp().alias("quarantined_at"),
    )


def _last_metrics(spark: SparkSession, table: str) -> tuple[int, dict[str, str]]:
    (last,) = history(spark, table, limit=1)
    return last["version"], last["metrics"]


def _split_and_count(spark: SparkSession, source: str, fmt: str | None) -> tuple[DataFrame, int, int, int]:
    """Read and validate ``source``; its rows cached, with counts (in, good, bad) that must add up."""
    raw = read_raw(spark, source, fmt)
    rows_in = raw.count()  # counted by the reader alone, apart from the validation it is checked against
    checked = validate(raw).cache()
    by_reason = {
        row["good"]: row["count"] for row in checked.groupBy((F.col("reason") == "").alias("good")).count().collect()
    }
    good, bad = by_reason.get(True, 0), by_reason.get(False, 0)
    if rows_in != good + bad:
        raise ReconciliationError(f"{source}: {rows_in} rows read but {good} good + {bad} bad after validation")
    return checked, rows_in, good, bad


def _quarantine(
    spark: SparkSession, checked: DataFrame, quarantine: str, source: str, run_key: str | None, step: str, bad: int
) -> int | None:
    """Append the bad rows to the quarantine table; its new version (None when there were none)."""
    if not bad:
        return None
    rows = _quarantine_rows(checked.filter(F.col("reason") != ""), source, run_key, step)
    with tagged_commits(spark, run_key, step):
        rows.write.format("delta").mode("append").save(quarantine)
    version, metrics = _last_metrics(spark, quarantine)
    written = int(metrics.get("numOutputRows", -1))
    if written != bad:
        raise ReconciliationError(f"quarantine version {version} holds {written} rows, expected {bad}")
    return version


# ---------------------------------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------------------------------
def ingest(
    spark: SparkSession,
    source: str,
    table: str,
    quarantine: str,
    run_key: str | None = None,
    fmt: str | None = None,
    mode: str = "overwrite",
) -> dict[str, Any]:
    """Raw CSV/Parquet -> the curated table (``mode`` overwrite: the source is a full extract) + quarantine."""
    done = _commits_of(spark, table, run_key, "ingest")
    if done:
        return {"step": "ingest", "table": table, "version": done[-1]["version"], "skipped": True}
    if mode not in ("overwrite", "append"):
        raise ValueError("mode must be overwrite or append")
    checked, rows_in, good, bad = _split_and_count(spark, source, fmt)
    quarantine_version = _quarantine(spark, checked, quarantine, source, run_key, "ingest", bad)
    rows = checked.filter(F.col("reason") == "").select(*curated_columns(checked))
    if DeltaTable.isDeltaTable(spark, table):
        # An overwrite keeps the evolved columns (as nulls until the update step runs again).
        existing = spark.read.format("delta").load(table).schema
        extra = [f for f in existing.fields if f.name not in rows.columns]
        rows = rows.select("*", *[F.lit(None).cast(f.dataType).alias(f.name) for f in extra])
    with tagged_commits(spark, run_key, "ingest"):
        rows.write.format("delta").mode(mode).save(table)
    version, metrics = _last_metrics(spark, table)
    written = int(metrics.get("numOutputRows", -1))
    checked.unpersist()
    if rows_in != written + bad:
        raise ReconciliationError(
            f"{source}: {rows_in} rows in, but version {version} wrote {written} and {bad} were quarantined"
        )
    return {
        "step": "ingest",
        "table": table,
        "version": version,
        "quarantine_version": quarantine_version,
        "rows_in": rows_in,
        "rows_written": written,
        "rows_quarantined": bad,
        "skipped": False,
    }


def query(spark: SparkSession, table: str, limit: int = 10) -> dict[str, Any]:
    """The largest loans by SQL on the path, whether it is a Delta table, and its history."""
    is_delta = DeltaTable.isDeltaTable(spark, table)
    if not is_delta:
        raise ValueError(f"{table} is not a Delta table")
    top = spark.sql(
        f"SELECT id, loan_amnt, funded_amnt, int_rate, grade, loan_status FROM delta.`{table}` "
        f"ORDER BY loan_amnt DESC, id LIMIT {int(limit)}"
    ).collect()
    count = spark.sql(f"SELECT count(*) AS n FROM delta.`{table}`").first().n
    commits = history(spark, table)
    return {
        "step": "query",
        "table": table,
        "is_delta": is_delta,
        "version": commits[-1]["version"],
        "rows": count,
        "top_by_loan_amnt": [row.asDict() for row in top],
        "history": commits,
    }


def evolve(
    spark: SparkSession, table: str, run_key: str | None = None, expect_version: int | None = None
) -> dict[str, Any]:
    """Add ``funding_type`` and ``excess_int_rate`` by appending no rows with ``mergeSchema``."""
    done = _commits_of(spark, table, run_key, "evolve")
    if done:
        return {"step": "evolve", "table": table, "version": done[-1]["version"], "added": [], "skipped": True}
    check_lineage(spark, table, expect_version, run_key)
    current = spark.read.format("delta").load(table)
    missing = [(n, t) for n, t in EVOLVED if n not in current.columns]
    if not missing:
        return {
            "step": "evolve",
            "table": table,
            "version": current_version(spark, table),
            "added": [],
            "skipped": True,
        }
    empty = current.limit(0).select("*", *[F.lit(None).cast(t).alias(n) for n, t in missing])
    with tagged_commits(spark, run_key, "evolve"):
        empty.write.format("delta").mode("append").option("mergeSchema", "true").save(table)
    return {
        "step": "evolve",
        "table": table,
        "version": current_version(spark, table),
        "added": [n for n, _ in missing],
        "schema": [[f.name, f.dataType.simpleString()] for f in spark.read.format("delta").load(table).schema],
        "skipped": False,
    }


def update(
    spark: SparkSession, table: str, run_key: str | None = None, expect_version: int | None = None
) -> dict[str, Any]:
    """``funding_type = 'FullyFunded'`` where fully funded; ``excess_int_rate = int_rate - 10`` above 10%.

    Rows that already hold the value are left alone, so a second run updates nothing and commits nothing.
    """
    done = [
        c
        for step in ("update:funding_type", "update:excess_int_rate")
        for c in _commits_of(spark, table, run_key, step)
    ]
    if done:
        version = max(c["version"] for c in done)
        return {"step": "update", "table": table, "version": version, "updated_rows": {}, "skipped": True}
    check_lineage(spark, table, expect_version, run_key)
    columns = spark.read.format("delta").load(table).columns
    missing = [n for n, _ in EVOLVED if n not in columns]
    if missing:
        raise ValueError(f"{table} lacks {missing}: run the evolve step first")
    target = DeltaTable.forPath(spark, table)
    updated: dict[str, int] = {}
    for column, (condition, value) in (("funding_type", FUNDING_TYPE_RULE), ("excess_int_rate", EXCESS_RATE_RULE)):
        before = current_version(spark, table)
        with tagged_commits(spark, run_key, f"update:{column}"):
            target.update(f"({condition}) AND NOT ({column} <=> {value})", {column: F.expr(value)})
        after, metrics = _last_metrics(spark, table)
        updated[column] = int(metrics.get("numUpdatedRows", 0)) if after != before else 0
    version = current_version(spark, table)
    return {"step": "update", "table": table, "version": version, "updated_rows": updated, "skipped": False}


def _derived(df: DataFrame) -> DataFrame:
    """Incoming rows with the update step's columns worked out the same way."""
    out = df
    for column, (condition, value) in (("funding_type", FUNDING_TYPE_RULE), ("excess_int_rate", EXCESS_RATE_RULE)):
        out = out.withColumn(column, F.expr(f"CASE WHEN {condition} THEN {value} END"))
    return out


def upsert(
    spark: SparkSession,
    table: str,
    quarantine: str,
    batch: str,
    run_key: str | None = None,
    fmt: str | None = None,
    expect_version: int | None = None,
) -> dict[str, Any]:
    """MERGE an incremental batch by loan id: changed loans are updated, new ones inserted, identical ones untouched.

    Bad batch rows go to quarantine like at ingest. Merging the same batch again changes nothing.
    """
    done = _commits_of(spark, table, run_key, "upsert")
    if done:
        return {"step": "upsert", "table": table, "version": done[-1]["version"], "skipped": True}
    check_lineage(spark, table, expect_version, run_key)
    checked, rows_in, good, bad = _split_and_count(spark, batch, fmt)
    quarantine_version = _quarantine(spark, checked, quarantine, batch, run_key, "upsert", bad)
    target = DeltaTable.forPath(spark, table)
    target_columns = target.toDF().columns
    incoming = checked.filter(F.col("reason") == "").select(*curated_columns(checked))
    if all(n in target_columns for n, _ in EVOLVED):
        incoming = _derived(incoming)
    columns = [c for c in target_columns if c in incoming.columns]
    unchanged = " AND ".join(f"t.`{c}` <=> s.`{c}`" for c in columns)
    before = current_version(spark, table)
    # A batch the table already holds row for row would still make MERGE commit an empty version, so count first
    # what it would change: batch rows whose id is new, or whose values differ (ids are unique on both sides).
    existing = target.toDF().select(*columns).alias("t")
    differs = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in columns)
    seen = (
        incoming.alias("s")
        .join(existing, F.col(f"s.{KEY}") == F.col(f"t.{KEY}"))
        .agg(F.count(F.lit(1)).alias("matched"), F.count(F.when(F.expr(differs), 1)).alias("changed"))
        .first()
    )
    pending = seen.changed + (good - seen.matched)
    if pending:
        with tagged_commits(spark, run_key, "upsert"):
            (
                target.alias("t")
                .merge(incoming.alias("s"), f"t.{KEY} = s.{KEY}")
                .whenMatchedUpdate(condition=f"NOT ({unchanged})", set={f"`{c}`": f"s.`{c}`" for c in columns})
                .whenNotMatchedInsert(values={f"`{c}`": f"s.`{c}`" for c in columns})
                .execute()
            )
    version, metrics = _last_metrics(spark, table)
    checked.unpersist()
    committed = version != before
    inserted = int(metrics.get("numTargetRowsInserted", 0)) if committed else 0
    updated = int(metrics.get("numTargetRowsUpdated", 0)) if committed else 0
    return {
        "step": "upsert",
        "table": table,
        "version": version,
        "quarantine_version": quarantine_version,
        "rows_in": rows_in,
        "rows_merged": good,
        "rows_quarantined": bad,
        "inserted": inserted,
        "updated": updated,
        "unchanged": good - inserted - updated,
        "skipped": False,
    }


def read_version(
    spark: SparkSession, table: str, version: int | None = None, timestamp: str | None = None
) -> DataFrame:
    """The table as of a version or a timestamp ("yyyy-MM-dd HH:mm:ss.SSS", the session's time zone)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", int(version))
    if timestamp is not None:
        reader = reader.option("timestampAsOf", timestamp)
    return reader.load(table)


def diff(old: DataFrame, new: DataFrame, sample: int = 20) -> dict[str, Any]:
    """Loans added, removed and changed between two snapshots, keyed by id, with per-column change counts."""
    columns = [c for c in new.columns if c in old.columns and c != KEY]
    added_columns = [c for c in new.columns if c not in old.columns]
    joined = old.alias("o").join(new.alias("n"), F.col(f"o.{KEY}") == F.col(f"n.{KEY}"), "full_outer")
    flags = [F.when(~(F.col(f"o.`{c}`").eqNullSafe(F.col(f"n.`{c}`"))), F.lit(c)) for c in columns]
    compared = joined.select(
        F.coalesce(F.col(f"o.{KEY}"), F.col(f"n.{KEY}")).alias(KEY),
        F.when(F.col(f"o.{KEY}").isNull(), F.lit("added"))
        .when(F.col(f"n.{KEY}").isNull(), F.lit("removed"))
        .otherwise(F.lit("same"))
        .alias("change"),
        F.filter(F.array(*flags), lambda c: c.isNotNull()).alias("changed_columns") if flags else F.array(),
        *[
            F.struct(
                F.col(f"o.`{c}`").cast("string").alias("old"), F.col(f"n.`{c}`").cast("string").alias("new")
            ).alias(c)
            for c in columns
        ],
    ).withColumn(
        "change",
        F.when((F.col("change") == "same") & (F.size("changed_columns") > 0), "changed").otherwise(F.col("change")),
    )
    compared = compared.cache()
    counts = {row.change: row["count"] for row in compared.groupBy("change").count().collect()}
    per_column = {
        row.col: row["count"]
        for row in compared.filter(F.col("change") == "changed")
        .select(F.explode("changed_columns").alias("col"))
        .groupBy("col")
        .count()
        .collect()
    }
    examples = []
    for row in compared.filter(F.col("change") != "same").orderBy(KEY).limit(sample).collect():
        entry: dict[str, Any] = {KEY: row[KEY], "change": row.change}
        if row.change == "changed":
            entry["columns"] = {c: {"old": row[c].old, "new": row[c].new} for c in row.changed_columns}
        examples.append(entry)
    compared.unpersist()
    return {
        "rows_old": old.count(),
        "rows_new": new.count(),
        "added": counts.get("added", 0),
        "removed": counts.get("removed", 0),
        "changed": counts.get("changed", 0),
        "unchanged": counts.get("same", 0),
        "changed_by_column": dict(sorted(per_column.items())),
        "columns_added": added_columns,
        "examples": examples,
    }


def time_travel(
    spark: SparkSession, table: str, from_version: int, to_version: int | None = None, report: str | None = None
) -> dict[str, Any]:
    """Read two versions (``versionAsOf``, and the newer also by ``timestampAsOf``) and report what changed."""
    commits = {c["version"]: c for c in history(spark, table)}
    to_version = max(commits) if to_version is None else to_version
    for v in (from_version, to_version):
        if v not in commits:
            raise ValueError(f"{table} has no version {v} (versions {min(commits)}..{max(commits)})")
    old = read_version(spark, table, version=from_version)
    new = read_version(spark, table, version=to_version)
    stamp = commits[to_version]["timestamp"]
    by_time = read_version(spark, table, timestamp=stamp)
    # timestampAsOf resolves to the last commit at or before the instant: the same snapshot as versionAsOf unless
    # two commits share the millisecond.
    by_time_rows = by_time.count()
    result = {
        "step": "time-travel",
        "table": table,
        "from_version": from_version,
        "to_version": to_version,
        "to_timestamp": stamp,
        "rows_as_of_timestamp": by_time_rows,
        "diff": diff(old, new),
    }
    if report:
        write_text(spark, report, json.dumps(result, indent=2, sort_keys=True, default=str))
        result["report"] = report
    return result


def maintenance(
    spark: SparkSession,
    table: str,
    run_key: str | None = None,
    zorder_by: Sequence[str] = (),
    retention_hours: float = DEFAULT_RETENTION_HOURS,
    force_retention: bool = False,
    keep_version: int | None = None,
    expect_version: int | None = None,
) -> dict[str, Any]:
    """OPTIMIZE (Z-ORDER BY ``zorder_by`` if given), then VACUUM files older than ``retention_hours``.

    Retention guard: under Delta's 7-day floor VACUUM needs ``force_retention`` (readers and time travel older than
    the window break), and with ``keep_version`` it refuses any retention that would make that version unreadable.
    """
    check_lineage(spark, table, expect_version, run_key)
    if retention_hours < 0:
        raise ValueError("retention_hours must be >= 0")
    if retention_hours < DEFAULT_RETENTION_HOURS and not force_retention:
        raise ValueError(
            f"VACUUM RETAIN {retention_hours} HOURS is under Delta's {DEFAULT_RETENTION_HOURS:.0f}-hour floor: "
            "time travel and running readers older than that would break. Pass force_retention to do it anyway."
        )
    commits = history(spark, table)
    if keep_version is not None:
        _guard_version(spark, table, commits, keep_version, retention_hours)
    target = DeltaTable.forPath(spark, table)
    done = _of_run(commits, run_key, "maintenance")
    optimize: dict[str, Any]
    if done:
        optimize = {"version": done[0]["version"], "skipped": True}
    else:
        before = current_version(spark, table)
        with tagged_commits(spark, run_key, "maintenance"):
            builder = target.optimize()
            (builder.executeZOrderBy(*zorder_by) if zorder_by else builder.executeCompaction()).collect()
        after, metrics = _last_metrics(spark, table)
        optimize = {
            "version": after if after != before else None,
            "zorder_by": list(zorder_by),
            "files_added": int(metrics.get("numAddedFiles", 0)) if after != before else 0,
            "files_removed": int(metrics.get("numRemovedFiles", 0)) if after != before else 0,
        }
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    previous = spark.conf.get(check, "true")
    spark.conf.set(check, "false" if force_retention else "true")
    try:
        doomed = spark.sql(f"VACUUM delta.`{table}` RETAIN {retention_hours} HOURS DRY RUN").count()
        with tagged_commits(spark, run_key, "vacuum"):
            target.vacuum(retention_hours)
    finally:
        spark.conf.set(check, previous)
    return {
        "step": "maintenance",
        "table": table,
        "version": current_version(spark, table),
        "optimize": optimize,
        "vacuum": {"retention_hours": retention_hours, "files_deleted": doomed},
    }


def _guard_version(
    spark: SparkSession, table: str, commits: list[dict[str, Any]], keep: int, retention_hours: float
) -> None:
    """Version ``keep`` stays readable while every commit after it is younger than the retention window."""
    later = [c for c in commits if c["version"] > keep]
    if not later:
        return
    # Files a later commit removed are what VACUUM deletes once that commit is older than the window.
    oldest_removal = spark.sql(f"SELECT to_timestamp('{later[0]['timestamp']}') AS t").first().t
    now = spark.sql("SELECT current_timestamp() AS t").first().t
    if now - oldest_removal >= dt.timedelta(hours=retention_hours):
        raise ValueError(
            f"VACUUM RETAIN {retention_hours} HOURS would make version {keep} of {table} unreadable (version "
            f"{later[0]['version']} replaced its files at {later[0]['timestamp']}); keep a longer retention."
        )


# ---------------------------------------------------------------------------------------------------------------------
# I/O through Hadoop (file://, s3a://, hdfs:// alike) and the command line
# ---------------------------------------------------------------------------------------------------------------------
def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Write ``text`` to any Hadoop path, replacing it."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def delta_session(app_name: str = "loans_delta") -> SparkSession:
    """The session spark-submit set up (master, packages and Delta conf come from its command line)."""
    return SparkSession.builder.appName(app_name).getOrCreate()


def run_step(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    step = args.step
    if step == "ingest":
        return ingest(spark, args.source, args.table, args.quarantine, args.run_key, args.format, args.mode)
    if step == "query":
        return query(spark, args.table, args.limit)
    if step == "evolve":
        return evolve(spark, args.table, args.run_key, args.expect_version)
    if step == "update":
        return update(spark, args.table, args.run_key, args.expect_version)
    if step == "upsert":
        return upsert(spark, args.table, args.quarantine, args.batch, args.run_key, args.format, args.expect_version)
    if step == "time-travel":
        return time_travel(spark, args.table, args.from_version, args.to_version, args.report)
    if step == "maintenance":
        zorder = [c.strip() for c in (args.zorder_by or "").split(",") if c.strip()]
        return maintenance(
            spark,
            args.table,
            args.run_key,
            zorder,
            args.retention_hours,
            args.force_retention,
            args.keep_version,
            args.expect_version,
        )
    raise ValueError(f"unknown step {step!r}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loans_delta.py", description=__doc__.splitlines()[0])
    steps = p.add_subparsers(dest="step", required=True)

    def step(name: str, help_text: str) -> argparse.ArgumentParser:
        sp = steps.add_parser(name, help=help_text)
        sp.add_argument("--table", required=True, help="curated Delta table path (file://, s3a://)")
        sp.add_argument("--run-key", help="who is running: commits are tagged with it and reruns recognised by it")
        sp.add_argument("--result", help="also write the step's JSON result to this path")
        return sp

    sp = step("ingest", "raw CSV/Parquet -> curated Delta table + quarantine")
    sp.add_argument("--source", required=True)
    sp.add_argument("--quarantine", required=True)
    sp.add_argument("--format", choices=("csv", "parquet"))
    sp.add_argument("--mode", choices=("overwrite", "append"), default="overwrite")
    sp = step("query", "largest loans, isDeltaTable, history")
    sp.add_argument("--limit", type=int, default=10)
    for name, text in (("evolve", "add funding_type, excess_int_rate (mergeSchema)"), ("update", "fill them")):
        step(name, text).add_argument("--expect-version", type=int)
    sp = step("upsert", "MERGE an incremental batch by id")
    sp.add_argument("--batch", required=True)
    sp.add_argument("--quarantine", required=True)
    sp.add_argument("--format", choices=("csv", "parquet"))
    sp.add_argument("--expect-version", type=int)
    sp = step("time-travel", "read two versions and write a diff report")
    sp.add_argument("--from-version", type=int, required=True)
    sp.add_argument("--to-version", type=int)
    sp.add_argument("--report")
    sp = step("maintenance", "OPTIMIZE [ZORDER BY] and VACUUM")
    sp.add_argument("--zorder-by", help="comma-separated columns")
    sp.add_argument("--retention-hours", type=float, default=DEFAULT_RETENTION_HOURS)
    sp.add_argument("--force-retention", action="store_true")
    sp.add_argument("--keep-version", type=int)
    sp.add_argument("--expect-version", type=int)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    spark = delta_session()
    try:
        result = run_step(spark, args)
        text = json.dumps(result, sort_keys=True, default=str)
        if args.result:
            write_text(spark, args.result, text)
        print(RESULT_PREFIX + text, flush=True)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
