"""Glue (Python shell) job: one tenant's rows of the configured tables, masked, as Parquet in the tenant's bucket.

The job runs as the tenant's role, so the credentials it gets can reach that tenant's bucket and nothing else; the
replica is opened read-only. This file is self-contained (standard library, boto3, pyarrow) because Glue runs it
on its own, without this project on the path; the DAG imports it only to validate requests with the same rules.

Arguments (Glue passes ``--name value``): ``--tenant``, ``--request_id``, ``--tables`` (JSON list),
``--masking`` (JSON ``{table: {column: rule}}``), ``--masking_secret`` (the tenant's HMAC key for ``hash``, hex; see
``masking.py``), ``--replica`` (``sqlite:////abs/path.db``), ``--output``
(``s3://bucket/prefix/``). Writes ``<output><table>.parquet`` per table, then ``<output>_manifest.json`` last:
a manifest means a complete extract.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

TENANT_COLUMN = "tenant_id"
MANIFEST = "_manifest.json"
BATCH_ROWS = 50_000
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_TENANT = re.compile(r"^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$")


class ExtractionError(ValueError):
    """A request this job refuses, with the reason the requester sees."""


def _hash(key: bytes) -> Callable[[Any], Any]:
    # HMAC under the tenant's key, which the tenant cannot read: the tenant cannot hash candidate values to reverse a
    # pseudonym (an unkeyed hash of a 4-digit code or a name falls to a dictionary). The key is per tenant, so
    # pseudonyms join within one tenant's extracts but never across tenants.
    if not key:
        raise ExtractionError("the hash masking rule needs the job argument --masking_secret (the tenant's key)")

    def mask(value: Any) -> Any:
        if value is None:
            return None
        return hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()

    return mask


def _redact(_key: bytes) -> Callable[[Any], Any]:
    return lambda value: None


def _last4(_key: bytes) -> Callable[[Any], Any]:
    def mask(value: Any) -> Any:
        if value is None:
            return None
        text = str(value)
        return "*" * max(len(text) - 4, 0) + text[-4:]

    return mask


def _email_domain(_key: bytes) -> Callable[[Any], Any]:
    def mask(value: Any) -> Any:
        if value is None:
            return None
        _, at, domain = str(value).rpartition("@")
        return f"***@{domain}" if at else "***"

    return mask


def _year(_key: bytes) -> Callable[[Any], Any]:
    def mask(value: Any) -> Any:
        if value is None:
            return None
        match = re.match(r"^\s*(\d{4})", str(value))
        return match.group(1) if match else None

    return mask


# rule name -> factory(tenant's masking key) -> mask(value). Masked columns are written as strings (or null).
RULES: dict[str, Callable[[bytes], Callable[[Any], Any]]] = {
    "hash": _hash,
    "redact": _redact,
    "last4": _last4,
    "email_domain": _email_domain,
    "year": _year,
}


def validate_request(tenant: str, tables: Any, masking: Any) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The request's (tables, masking) in canonical form, or ExtractionError with every problem found."""
    problems: list[str] = []
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        problems.append(f"tenant {tenant!r} must be 3-32 lowercase letters, digits or hyphens")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, str) for t in tables):
        problems.append("tables must be a non-empty list of table names")
        tables = []
    if masking is None:
        masking = {}
    if not isinstance(masking, Mapping):
        problems.append("masking must map table -> {column: rule}")
        masking = {}
    bad = [t for t in [*tables, *masking] if not _IDENTIFIER.match(str(t))]
    if bad:
        problems.append(f"invalid table names {sorted(set(map(str, bad)))}")
    if len(set(tables)) != len(tables):
        problems.append("tables are listed more than once")
    extra = sorted(set(masking) - set(tables))
    if extra:
        problems.append(f"masking names tables that are not extracted: {extra}")
    clean: dict[str, dict[str, str]] = {}
    for table, columns in masking.items():
        if not isinstance(columns, Mapping):
            problems.append(f"masking of {table} must map column -> rule")
            continue
        for column, rule in columns.items():
            if not _IDENTIFIER.match(str(column)):
                problems.append(f"invalid column name {column!r} in {table}")
            elif rule not in RULES:
                problems.append(f"unknown masking rule {rule!r} for {table}.{column}; known: {sorted(RULES)}")
            elif column == TENANT_COLUMN:
                problems.append(f"{table}.{TENANT_COLUMN} cannot be masked")
            else:
                clean.setdefault(str(table), {})[str(column)] = str(rule)
    if problems:
        raise ExtractionError("; ".join(problems))
    return list(tables), clean


def open_replica(uri: str) -> sqlite3.Connection:
    """The replica, opened read-only: a write through this connection fails, whatever the job does."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        raise ExtractionError(f"replica {uri!r}: only sqlite:////<absolute path> replicas are supported locally")
    # SQLAlchemy's form: sqlite:////abs/path.db. The job runs in a directory of its own, so relative paths are refused.
    path = Path(unquote(parsed.path)[1:])
    if not path.is_absolute():
        raise ExtractionError(f"replica {uri!r}: give an absolute path, as sqlite:////abs/path.db")
    if not path.is_file():
        raise ExtractionError(f"replica {uri!r}: no database file at {path}")
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    db.execute("PRAGMA query_only = ON")
    return db


def table_columns(db: sqlite3.Connection, table: str) -> dict[str, str]:
    """The table's columns and declared types, in order."""
    if not _IDENTIFIER.match(table):
        raise ExtractionError(f"invalid table name {table!r}")
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (table,)).fetchone()
    if found is None:
        raise ExtractionError(f"table {table!r} is not in the replica")
    columns = {row[1]: str(row[2]).upper() for row in db.execute(f'PRAGMA table_info("{table}")')}
    if TENANT_COLUMN not in columns:
        # A table without a tenant column cannot be split by tenant, so no tenant may extract it.
        raise ExtractionError(f"table {table!r} has no {TENANT_COLUMN} column and cannot be extracted per tenant")
    return columns


def _arrow_type(declared: str) -> Any:
    import pyarrow as pa

    # SQLite's type affinity rules, in the order SQLite applies them.
    if "INT" in declared:
        return pa.int64()
    if any(t in declared for t in ("CHAR", "CLOB", "TEXT")):
        return pa.string()
    if any(t in declared for t in ("REAL", "FLOA", "DOUB")):
        return pa.float64()
    if "BLOB" in declared:
        return pa.binary()
    return pa.string()


def _batches(db: sqlite3.Connection, table: str, columns: list[str], tenant: str) -> Iterator[list[tuple]]:
    select = ", ".join(f'"{c}"' for c in columns)
    # rowid order keeps the output stable from run to run, so a rerun writes the same file.
    cursor = db.execute(f'SELECT {select} FROM "{table}" WHERE "{TENANT_COLUMN}" = ? ORDER BY rowid', (tenant,))
    while rows := cursor.fetchmany(BATCH_ROWS):
        yield rows


def extract_table(
    db: sqlite3.Connection, table: str, tenant: str, masking: Mapping[str, str], out_path: Path, key: bytes = b""
) -> dict[str, Any]:
    """Write one table's tenant rows to ``out_path`` (Parquet); the counts, columns and digest.

    ``key`` is the tenant's masking key, which the ``hash`` rule needs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    declared = table_columns(db, table)
    columns = list(declared)
    unknown = sorted(set(masking) - set(columns))
    if unknown:
        raise ExtractionError(f"masking names columns {unknown} that {table!r} does not have")
    masks = {c: RULES[rule](key) for c, rule in masking.items()}
    schema = pa.schema([(c, pa.string() if c in masks else _arrow_type(declared[c])) for c in columns])
    rows = 0
    with pq.ParquetWriter(out_path, schema) as writer:
        for batch in _batches(db, table, columns, tenant):
            arrays = []
            for i, column in enumerate(columns):
                values = [row[i] for row in batch]
                if column in masks:
                    values = [masks[column](v) for v in values]
                try:
                    arrays.append(pa.array(values, type=schema.field(column).type))
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    # SQLite lets a row hold a value of another type than the column's; say which column.
                    raise ExtractionError(f"{table}.{column}: a value does not fit {declared[column]}: {exc}") from exc
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            rows += len(batch)
    written = pq.ParquetFile(out_path).metadata.num_rows
    if written != rows:
        raise RuntimeError(f"{table}: read {rows} rows but the Parquet file holds {written}")
    return {
        "table": table,
        "rows": rows,
        "columns": columns,
        "masked": dict(sorted(masking.items())),
        "sha256": hashlib.sha256(out_path.read_bytes()).hexdigest(),
        "bytes": out_path.stat().st_size,
    }


def split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ExtractionError(f"output {uri!r} is not an s3:// location")
    prefix = parsed.path.lstrip("/")
    return parsed.netloc, prefix if not prefix or prefix.endswith("/") else prefix + "/"


def masking_key(text: str) -> bytes:
    """The tenant's key from its hex argument (empty: none, and the ``hash`` rule refuses to run)."""
    try:
        return bytes.fromhex(text)
    except ValueError:
        # Never echo the argument: it is a secret, and the error message reaches the request item.
        raise ExtractionError("--masking_secret is not a hex key") from None


def run(args: argparse.Namespace, s3: Any) -> dict[str, Any]:
    tables, masking = validate_request(args.tenant, json.loads(args.tables), json.loads(args.masking or "{}"))
    bucket, prefix = split_s3(args.output)
    hmac_key = masking_key(args.masking_secret)
    db = open_replica(args.replica)
    try:
        for table in tables:  # every table is checked before anything is written
            table_columns(db, table)
        outputs = []
        with tempfile.TemporaryDirectory() as tmp:
            for table in tables:
                path = Path(tmp) / f"{table}.parquet"
                info = extract_table(db, table, args.tenant, masking.get(table, {}), path, hmac_key)
                key = f"{prefix}{table}.parquet"
                s3.upload_file(str(path), bucket, key)
                outputs.append({**info, "uri": f"s3://{bucket}/{key}"})
    finally:
        db.close()
    manifest = {
        "tenant": args.tenant,
        "request_id": args.request_id,
        "job_run_id": args.JOB_RUN_ID,
        "tables": outputs,
        "rows": sum(o["rows"] for o in outputs),
    }
    s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}{MANIFEST}",
        Body=json.dumps(manifest, indent=2).encode(),
        ContentType="application/json",
    )
    return manifest


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("JOB_NAME", "JOB_RUN_ID", "tenant", "request_id", "tables", "replica", "output"):
        parser.add_argument(f"--{name}", required=name not in ("JOB_NAME", "JOB_RUN_ID"), default="")
    parser.add_argument("--masking", default="{}")
    parser.add_argument("--masking_secret", default="")
    # Glue adds its own arguments (and Airflow its task UUID); ignore what this job does not use.
    args, _ = parser.parse_known_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    import boto3

    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        manifest = run(args, boto3.client("s3"))
    except ExtractionError as exc:
        print(f"ExtractionError: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"tenant": manifest["tenant"], "rows": manifest["rows"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
