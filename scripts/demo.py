"""Run the demo DAGs end to end against localcloud with ``airflow dags test``, then say where everything landed.

    python scripts/demo.py                    # every DAG in DEMO_DAGS
    python scripts/demo.py --dag localcloud_smoke

localcloud is started (own process group, data in LOCALCLOUD_DATA_DIR, port LOCALCLOUD_PORT) unless one already
answers on that port; it is stopped at the end only if this script started it. Sizes and names come from DEMO_*
environment variables (see DEMO_DAGS). Exit status is non-zero if any DAG failed. `make demo` runs
``airflow db migrate`` first; run that yourself when calling this script directly.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.stack import (  # noqa: I001 - needs the sys.path line above
    REGION,
    Settings,
    http_ok,
    local_credentials,
    project_env,
    start_localcloud,
    stop_group,
    wait_healthy,
)


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass(frozen=True)
class DemoDag:
    """One DAG the demo runs. ``conf`` is the run conf; ``dynamodb`` lists (conf key of a table, its hash key),
    and the demo shows the item whose hash key equals the run id. ``dataset`` names the conf keys
    (bucket, prefix, name) of a rendered dataset, summarized instead of listed object by object."""

    dag_id: str
    conf: dict = field(default_factory=dict)
    dynamodb: tuple[tuple[str, str], ...] = ()
    dataset: tuple[str, str, str] | None = None
    ledger: tuple[str, str] | None = None  # conf keys of (bucket, project_name): show the trained versions
    documents: tuple[str, str] | None = None  # conf keys of (bucket, tracking_table): show each document's workbook
    evaluation: str | None = None  # conf key of the bucket: show the AutoML evaluation reports in it
    lakehouse: str | None = None  # conf key of the warehouse URI: show the Delta table's history and version diff


# The demo's Custom Labels training budget, unless the environment sets one (LOCALCLOUD_TRAIN_*). A localcloud that
# already runs (make up) keeps the budget it was started with.
DEMO_TRAINING = {"LOCALCLOUD_TRAIN_MAX_SECONDS": env("DEMO_TRAIN_SECONDS", "180")}


# Later workloads append their flagship DAGs here; sizes/names come from DEMO_* env vars.
DEMO_DAGS: list[DemoDag] = [
    DemoDag(
        dag_id="localcloud_smoke",
        conf={
            "bucket": env("DEMO_BUCKET", "industrial-ml-demo"),
            "table": env("DEMO_TABLE", "industrial-ml-runs"),
        },
        dynamodb=(("table", "run_id"),),
    ),
    DemoDag(
        dag_id="render_synthetic_dataset",
        conf={
            "bucket": env("DEMO_DATASET_BUCKET", "industrial-ml-datasets"),
            "prefix": "datasets",
            "dataset_name": "gearbox",
            "images_per_class": int(env("DEMO_IMAGES_PER_CLASS", "20")),
            "resolution": int(env("DEMO_RESOLUTION", "256")),
            "shard_size": int(env("DEMO_SHARD_SIZE", "10")),
            "processes": int(env("DEMO_PROCESSES", "0")),
            "seed": int(env("DEMO_SEED", "0")),
        },
        dataset=("bucket", "prefix", "dataset_name"),
    ),
    # Trains on the dataset just rendered (the Asset event), tests on a domain-shifted render, deploys if F1 passes.
    DemoDag(
        dag_id="train_custom_labels",
        conf={
            "bucket": env("DEMO_DATASET_BUCKET", "industrial-ml-datasets"),
            "dataset_bucket": env("DEMO_DATASET_BUCKET", "industrial-ml-datasets"),
            "project_name": env("DEMO_PROJECT", "gearbox-parts-demo"),
            "test_images_per_class": int(env("DEMO_TEST_IMAGES_PER_CLASS", "4")),
            "shard_size": int(env("DEMO_SHARD_SIZE", "10")),
            "processes": int(env("DEMO_PROCESSES", "0")),
            "min_f1": float(env("DEMO_MIN_F1", "0.0")),
            "smoke_min_confidence": 1.0,
        },
        ledger=("bucket", "project_name"),
    ),
    # Generated sample scans (PDF and PNG, priorities p0-p2) -> Textract in localcloud -> rules -> workbooks. The
    # demo runs without a person, so human review is off; docs/documents.md says how to review in the page.
    DemoDag(
        dag_id="digitize_bank_statements",
        conf={
            "bucket": env("DEMO_DOCUMENTS_BUCKET", "industrial-ml-documents"),
            "tracking_table": env("DEMO_TRACKING_TABLE", "document-tracking"),
            "sample_statements": int(env("DEMO_STATEMENTS", "3")),
            "review": False,
        },
        documents=("bucket", "tracking_table"),
    ),
    # Generated churn data -> Autopilot in localcloud (real AutoML) -> best candidate -> batch transform -> report.
    DemoDag(
        dag_id="autopilot_batch_predictions",
        conf={
            "bucket": env("DEMO_TABULAR_BUCKET", "industrial-ml-tabular"),
            "rows": int(env("DEMO_AUTOML_ROWS", "3000")),
            "max_candidates": int(env("DEMO_AUTOML_CANDIDATES", "12")),
            "max_runtime_seconds": int(env("DEMO_AUTOML_SECONDS", "90")),
        },
        evaluation="bucket",
    ),
    # Generated Lending Club loans -> Delta Lake with local Spark: ingest, evolve, update, MERGE, time travel, OPTIMIZE.
    DemoDag(
        dag_id="loans_delta_lake",
        conf={
            "warehouse": env("LAKEHOUSE_URI", f"file://{REPO}/.lakehouse"),
            "rows": int(env("DEMO_LOANS_ROWS", "20000")),
            "batch_updates": int(env("DEMO_LOANS_UPDATES", "500")),
            "batch_new": int(env("DEMO_LOANS_NEW", "500")),
        },
        lakehouse="warehouse",
    ),
]


@dataclass
class Result:
    dag: DemoDag
    ok: bool
    seconds: float
    log: Path
    started_at: datetime
    run_id: str | None = None


def run_dag(demo: DemoDag, settings: Settings, timeout: float) -> Result:
    log_path = settings.run_dir / "demo" / f"{demo.dag_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["airflow", "dags", "test", demo.dag_id, "--conf", json.dumps(demo.conf)]
    print(f"==> {demo.dag_id}: airflow dags test (log: {_rel(log_path)})", flush=True)
    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            rc = subprocess.run(
                cmd, cwd=REPO, env=project_env(settings), stdout=log, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            log.write(f"\n[demo] timed out after {timeout:.0f} s\n".encode())
            rc = -1
    result = Result(demo, rc == 0, time.monotonic() - t0, log_path, started_at, latest_run_id(settings, demo.dag_id))
    if not result.ok:
        tail = log_path.read_text(errors="replace").splitlines()[-40:]
        print(f"    FAILED (exit {rc}); last lines of the log:\n      " + "\n      ".join(tail), flush=True)
    return result


def latest_run_id(settings: Settings, dag_id: str) -> str | None:
    """The newest run of ``dag_id`` in Airflow's default SQLite metadata DB (None for other backends)."""
    db = settings.airflow_home / "airflow.db"
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            row = conn.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
            ).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


# ---------------------------------------------------------------------------------------------------------------------
# Artifacts, read back through the AWS API (boto3) like any client would
# ---------------------------------------------------------------------------------------------------------------------
def clients(settings: Settings):
    import boto3
    from botocore.config import Config

    key_id, secret = local_credentials()  # LOCAL-ONLY localcloud credentials
    kwargs = {
        "endpoint_url": settings.localcloud_endpoint,
        "region_name": REGION,
        "aws_access_key_id": key_id,
        "aws_secret_access_key": secret,
        "config": Config(retries={"max_attempts": 2}),
    }
    return boto3.client("s3", **kwargs), boto3.client("dynamodb", **kwargs)


def dataset_lines(result: Result, settings: Settings, s3) -> list[str]:
    """The newest rendered dataset version under the DAG's prefix: where it is and what it holds."""
    bucket_key, prefix_key, name_key = result.dag.dataset
    bucket, conf = result.dag.conf[bucket_key], result.dag.conf
    root = f"{conf[prefix_key]}/{conf[name_key]}/"
    summaries = [
        obj
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root)
        for obj in page.get("Contents", [])
        if obj["Key"].endswith("/dataset.json")
    ]
    if not summaries:
        return [f"no dataset.json under s3://{bucket}/{root}"]
    newest = max(summaries, key=lambda o: o["LastModified"])
    prefix = newest["Key"].rsplit("/", 1)[0]
    summary = json.loads(s3.get_object(Bucket=bucket, Key=newest["Key"])["Body"].read())
    local = settings.localcloud_data_dir / "s3" / bucket / prefix
    rate = summary["images"] / summary["render_seconds"] if summary.get("render_seconds") else 0
    return [
        f"dataset version {summary['version']}: {summary['images']} images of {summary['planned']} planned, "
        f"skipped {summary['skipped'] or 'none'}, boxes per class {summary['boxes']}, {rate:.1f} img/s rendering",
        f"manifest   s3://{bucket}/{prefix}/manifest.jsonl  -> {_rel(local / 'manifest.jsonl')}",
        f"images     {_rel(local / 'images')}/",
        f"coco       {_rel(local / 'coco.json')}",
        f"overlays   {_rel(local / 'debug')}/ (contact sheets with boxes drawn)",
    ]


def ledger_lines(result: Result, settings: Settings, s3) -> list[str]:
    """The Custom Labels versions in the project's ledger: F1 overall and per label, and where the plots are."""
    bucket_key, project_key = result.dag.ledger
    bucket, project = result.dag.conf[bucket_key], result.dag.conf[project_key]
    key = f"custom-labels/{project}/ledger.json"
    try:
        book = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return [f"no ledger at s3://{bucket}/{key}"]
    lines = [f"ledger     s3://{bucket}/{key}  -> {_rel(settings.localcloud_data_dir / 's3' / bucket / key)}"]
    for version in book.get("versions", []):
        f1 = version.get("f1")
        shown = "no F1" if f1 is None else f"F1 {f1:.3f}"
        state = "deployed" if version.get("deployed") else version.get("status", "?")
        lines.append(f"version    {version['version_name']}: {shown} ({state}), test set {version['test']['manifest']}")
        for label, score in sorted((version.get("label_f1") or {}).items()):
            lines.append(f"             {label:16} F1 {score:.3f}")
        if version.get("chart"):
            lines.append(f"plot       {version['chart']}  -> {_rel(_on_disk(settings, version['chart']))}")
    return lines


def _on_disk(settings: Settings, uri: str) -> Path:
    """Where localcloud keeps the object at ``uri``: ``<data>/s3/<bucket>/<key>``."""
    from include import s3uri

    bucket, key = s3uri.parse(uri)
    return settings.localcloud_data_dir / "s3" / bucket / key


def document_lines(result: Result, settings: Settings, ddb) -> list[str]:
    """Every tracked document: priority, stage, state, and where its workbook is (S3 and on disk)."""
    bucket_key, table_key = result.dag.documents
    table = result.dag.conf[table_key]
    sys.path.insert(0, str(REPO))
    from include.documents.pipeline import status

    lines = []
    for row in status(ddb, table):
        lines.append(
            f"document   {row['key']}: {row['stage']} {row['state']}" + (f" ({row['error']})" if row["error"] else "")
        )
        if row["workbook"]:
            lines.append(f"workbook   {row['workbook']}  -> {_rel(_on_disk(settings, row['workbook']))}")
    return lines or [f"no documents tracked in {table}"]


def evaluation_lines(result: Result, settings: Settings, s3) -> list[str]:
    """The newest AutoML evaluation report: candidate, F1, accuracy, AUC, confusion matrix, where the PR curve is."""
    bucket = result.dag.conf[result.dag.evaluation]
    reports = [
        obj
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for obj in page.get("Contents", [])
        if obj["Key"].endswith("/evaluation.json")
    ]
    if not reports:
        return [f"no evaluation report in s3://{bucket}"]
    newest = max(reports, key=lambda o: o["LastModified"])
    report = json.loads(s3.get_object(Bucket=bucket, Key=newest["Key"])["Body"].read())
    auc = report.get("auc")
    png = newest["Key"].rsplit("/", 1)[0] + "/pr_curve.png"
    best = report.get("best_threshold") or {}
    return [
        f"candidate  {report['candidate']} (rank {report['candidate_rank']} of {len(report['ranking'])})",
        f"held out   {report['rows']} rows: F1 {report.get('f1', 0):.3f}, accuracy {report['accuracy']:.3f}, "
        + (f"AUC {auc:.3f}" if auc is not None else "AUC n/a"),
        f"best F1    {best.get('f1', 0):.3f} at threshold {best.get('threshold', 0):.3f}",
        f"confusion  {report['confusion_matrix']['labels']} (rows truth, columns predicted): "
        f"{report['confusion_matrix']['matrix']}",
        f"report     s3://{bucket}/{newest['Key']}  -> {_rel(settings.localcloud_data_dir / 's3' / bucket / newest['Key'])}",
        f"pr curve   s3://{bucket}/{png}  -> {_rel(settings.localcloud_data_dir / 's3' / bucket / png)}",
    ]


def lakehouse_lines(result: Result) -> list[str]:
    """The Delta table's history (read from its _delta_log, as any Delta reader would) and the run's version diff."""
    warehouse = result.dag.conf[result.dag.lakehouse].removeprefix("file://").rstrip("/")
    log_dir = Path(warehouse) / "loans" / "_delta_log"
    commits = []
    for path in sorted(log_dir.glob("*.json")):
        for line in path.read_text().splitlines():
            info = json.loads(line).get("commitInfo")
            if info:
                commits.append((int(path.stem), info))
    if not commits:
        return [f"no Delta table at {log_dir.parent}"]
    lines = [
        f"table      {log_dir.parent} ({len(commits)} versions)",
        "history    version  operation       step                    metrics",
    ]
    keys = (
        "numOutputRows",
        "numUpdatedRows",
        "numTargetRowsInserted",
        "numTargetRowsUpdated",
        "numAddedFiles",
        "numRemovedFiles",
    )
    for version, info in commits:
        meta = json.loads(info.get("userMetadata") or "{}")
        metrics = {k: v for k, v in (info.get("operationMetrics") or {}).items() if k in keys}
        lines.append(f"           {version:7}  {info['operation']:15} {str(meta.get('step', '')):23} {metrics}")
    from include.lakehouse.config import result_uri

    diff_file = Path(result_uri(warehouse, result.dag.dag_id, result.run_id or "", "time_travel"))
    if diff_file.exists():
        travel = json.loads(diff_file.read_text())
        d = travel["diff"]
        lines.append(
            f"diff       v{travel['from_version']} -> v{travel['to_version']}: {d['added']} added, {d['removed']} removed, "
            f"{d['changed']} changed, {d['unchanged']} unchanged; changed columns {d['changed_by_column']}"
        )
        for example in d["examples"][:3]:
            lines.append(f"           {json.dumps(example, sort_keys=True)[:160]}")
        lines.append(f"report     {travel.get('report', '')}")
    quarantine = Path(warehouse) / "loans_quarantine"
    lines.append(f"quarantine {quarantine} (a Delta table: reason, source row, raw record)")
    return lines


def artifact_lines(result: Result, settings: Settings, s3, ddb) -> list[str]:
    if result.dag.lakehouse:
        return lakehouse_lines(result)
    if result.dag.dataset:
        return dataset_lines(result, settings, s3)
    if result.dag.evaluation:
        return evaluation_lines(result, settings, s3)
    if result.dag.documents:
        return document_lines(result, settings, ddb)
    if result.dag.ledger:
        return ledger_lines(result, settings, s3)
    lines = []
    since = result.started_at - timedelta(seconds=2)  # LastModified has 1 s resolution
    own = result.dag.conf.get("bucket")  # other demo DAGs write to the same localcloud
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        if own and name != own:
            continue
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                if obj["LastModified"] < since:
                    continue
                on_disk = settings.localcloud_data_dir / "s3" / name / obj["Key"]
                where = _rel(on_disk) if on_disk.exists() else f"{_rel(on_disk)} (NOT FOUND on disk)"
                lines.append(f"s3://{name}/{obj['Key']}  {obj['Size']} B  -> {where}")
    for conf_key, hash_key in result.dag.dynamodb:
        table = result.dag.conf[conf_key]
        if not result.run_id:
            lines.append(f"dynamodb {table}: run id unknown, item not looked up")
            continue
        item = ddb.get_item(TableName=table, Key={hash_key: {"S": result.run_id}}).get("Item")
        shown = json.dumps(_plain(item), sort_keys=True) if item else "NOT FOUND"
        lines.append(f"dynamodb {table}[{hash_key}={result.run_id}] = {shown}")
    return lines or ["(no new S3 objects)"]


def _plain(item: dict) -> dict:
    """DynamoDB's typed JSON ({"S": "x"}) -> plain values, for printing."""
    return {k: next(iter(v.values())) for k, v in item.items()}


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    known = [d.dag_id for d in DEMO_DAGS]
    parser.add_argument("--dag", action="append", choices=known, help="run only this DAG (repeatable)")
    parser.add_argument("--timeout", type=float, default=float(env("DEMO_DAG_TIMEOUT", "1800")), help="seconds per DAG")
    args = parser.parse_args(argv)
    demos = [d for d in DEMO_DAGS if not args.dag or d.dag_id in args.dag]

    settings = Settings.from_env()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    started = None
    health = http_ok(settings.localcloud_health_url)
    if health is not None:
        print(f"==> localcloud already answers on {settings.localcloud_endpoint}; using it")
        if health.get("data_dir"):  # artifacts live in *its* data dir
            settings = dataclasses.replace(settings, localcloud_data_dir=(REPO / health["data_dir"]).resolve())
    else:
        log = settings.run_dir / "localcloud-demo.log"
        print(f"==> starting localcloud on {settings.localcloud_endpoint} (data: {_rel(settings.localcloud_data_dir)})")
        for name, value in DEMO_TRAINING.items():
            os.environ.setdefault(name, value)
        started = start_localcloud(settings, log)
        try:
            wait_healthy(settings.localcloud_health_url, started, timeout=60, log_path=log)
        except (RuntimeError, TimeoutError) as err:
            print(f"ERROR: localcloud did not start: {err}", file=sys.stderr)
            stop_group(started.pid, "localcloud")
            return 1

    try:
        results = [run_dag(demo, settings, args.timeout) for demo in demos]
        s3, ddb = clients(settings)
        print("\n== demo summary ==")
        for r in results:
            print(f"{r.dag.dag_id:32} {'ok' if r.ok else 'FAILED':6} {r.seconds:7.1f} s   log: {_rel(r.log)}")
        print("\n== artifacts ==")
        for r in results:
            print(f"{r.dag.dag_id} (run {r.run_id or '?'}):")
            try:
                lines = artifact_lines(r, settings, s3, ddb)
            except Exception as err:  # report, do not hide the per-DAG verdicts above
                lines = [f"could not list artifacts: {err}"]
            for line in lines:
                print(f"  {line}")
        print(f"\nlocalcloud data dir: {settings.localcloud_data_dir}")
    finally:
        if started is not None:
            stop_group(started.pid, "localcloud")
            print("==> localcloud stopped")
    failed = [r.dag.dag_id for r in results if not r.ok]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
