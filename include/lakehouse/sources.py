"""Inputs of the loans_delta_lake DAG: the raw extract and the incremental batch, generated or the user's own."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from include import s3uri
from include.datagen import loans as gen
from include.lakehouse.config import to_s3
from include.s3objects import exists

# Python reads and writes through boto3; a user's s3a:// input is read as the same object.
S3_SCHEMES = (s3uri.S3, s3uri.S3A)


def _local(uri: str) -> Path | None:
    """The path of a file:// URI or a bare path; None for anything else."""
    parsed = urlparse(uri)
    return Path(parsed.path) if parsed.scheme in ("", "file") else None


def _exists(uri: str, s3: Any) -> bool:
    local = _local(uri)
    if local is not None:
        return local.exists()
    return exists(s3, *s3uri.parse(uri, schemes=S3_SCHEMES))


def _put(uri: str, local: Path, s3: Any) -> None:
    target = _local(uri)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written beside and renamed, so that a crash never leaves a half file that a rerun would take as done.
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(local.read_bytes())
        partial.replace(target)
    elif s3uri.is_s3(uri):
        s3.upload_file(str(local), *s3uri.parse(uri))
    else:
        raise ValueError(f"cannot write {uri}: use file:// or s3://")


def _first_rows(uri: str, n: int, s3: Any) -> list[dict[str, str]]:
    """The first ``n`` records of a (possibly gzipped) CSV, streamed: the real extract is 1.6 GB unpacked."""
    local = _local(uri)
    if local is not None:
        raw = open(local, "rb")  # noqa: SIM115 - closed below
    elif s3uri.is_s3(uri, schemes=S3_SCHEMES):
        bucket, key = s3uri.parse(uri, schemes=S3_SCHEMES)
        raw = s3.get_object(Bucket=bucket, Key=key)["Body"]
    else:
        raise ValueError(f"cannot read {uri}")
    try:
        stream = gzip.GzipFile(fileobj=raw) if uri.endswith(".gz") else raw
        reader = csv.DictReader(io.TextIOWrapper(stream, encoding="utf-8", newline=""))
        rows = []
        for row in reader:
            if len(rows) >= n:
                break
            # Only the generator's columns matter for a batch; extra columns of the real file are dropped.
            rows.append({name: row.get(name) or "" for name in gen.COLUMNS})
        return rows
    finally:
        raw.close()


def prepare(
    warehouse: str,
    source: str = "",
    batch: str = "",
    rows: int = 20_000,
    bad_rate: float = 0.01,
    seed: int = 0,
    n_updates: int = 500,
    n_new: int = 500,
    s3: Any = None,
) -> dict[str, Any]:
    """The source and batch URIs for this run, writing generated ones under ``{warehouse}/raw/`` if needed.

    Without ``source``, the extract is generated from (rows, bad_rate, seed) and the batch updates ``n_updates`` of its
    loans and adds ``n_new``. With a user's ``source`` but no ``batch``, the batch updates loans from the source's
    first records (new ids could collide with loans further down a file this DAG does not read in Python).
    Generated files are named by a hash of what decides their bytes, so a rerun finds them and writes nothing.
    """
    # Python reads and writes through boto3, which knows s3:// only; Spark gets s3a:// later (operators).
    warehouse, source, batch = to_s3(warehouse.rstrip("/")), to_s3(source), to_s3(batch)
    if source:
        if batch:
            return {"source": source, "batch": batch, "generated": []}
        if source.lower().endswith((".parquet", ".parq")) or source.endswith("/"):
            raise ValueError(f"{source}: give a batch too; one is derived only from a CSV extract's first records")
        base = _first_rows(source, max(n_updates * 4, 1000), s3)
        batch_rows = gen.incremental_batch(base, min(n_updates, len(base)), 0, seed)
        key = hashlib.sha256(f"{source}|{n_updates}|{seed}".encode()).hexdigest()[:12]
        batch_uri = f"{warehouse}/raw/batch-{key}.csv"
        written = _write_if_missing(batch_uri, batch_rows, s3)
        return {"source": source, "batch": batch_uri, "generated": written}
    key = hashlib.sha256(f"{rows}|{bad_rate}|{seed}|{n_updates}|{n_new}".encode()).hexdigest()[:12]
    source_uri = f"{warehouse}/raw/loans-{key}.csv.gz"
    batch_uri = f"{warehouse}/raw/batch-{key}.csv"
    generated: list[str] = []
    if not (_exists(source_uri, s3) and _exists(batch_uri, s3)):
        data, _ = gen.generate(rows, bad_rate, seed)
        generated += _write_if_missing(source_uri, data, s3)
        generated += _write_if_missing(batch_uri, gen.incremental_batch(data, n_updates, n_new, seed), s3)
    return {"source": source_uri, "batch": batch_uri, "generated": generated}


def _write_if_missing(uri: str, rows: list[dict[str, str]], s3: Any) -> list[str]:
    if _exists(uri, s3):
        return []
    with tempfile.TemporaryDirectory() as tmp:
        local = gen.write_csv(Path(tmp) / uri.rsplit("/", 1)[-1], rows, gzip=uri.endswith(".gz"))
        _put(uri, local, s3)
    return [uri]


def stage_job(warehouse: str, s3: Any) -> str:
    """Upload loans_delta.py for EMR Serverless under a name of its content hash (a rerun uploads nothing new)."""
    from include.lakehouse.operators import JOB_FILE

    code = JOB_FILE.read_bytes()
    uri = f"{to_s3(warehouse.rstrip('/'))}/_code/loans_delta-{hashlib.sha256(code).hexdigest()[:12]}.py"
    if not s3uri.is_s3(uri):
        raise ValueError(f"EMR Serverless needs the warehouse on S3, not {warehouse}")
    if not _exists(uri, s3):
        bucket, key = s3uri.parse(uri)
        s3.put_object(Bucket=bucket, Key=key, Body=code)
    return uri
