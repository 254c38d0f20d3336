"""Lending Club loans -> curated Delta table: ingest, query, evolve, update, MERGE, time travel, maintenance."""

from __future__ import annotations

import os

from airflow.sdk import Param, dag, task

from include.assets import LOANS_CURATED
from include.connections import AWS_CONN_ID, SPARK_CONN_ID, s3_client
from include.lakehouse.operators import DeltaEmrServerlessOperator, DeltaSparkSubmitOperator

# Deployment settings, read at parse time from the environment (no I/O): where the lake lives by default and which
# engine runs the Spark steps. LAKEHOUSE_URI is file:///... locally and s3://bucket/prefix on AWS.
DEFAULT_WAREHOUSE = os.environ.get("LAKEHOUSE_URI", "file:///tmp/lakehouse")
ENGINE = os.environ.get("LAKEHOUSE_SPARK_ENGINE", "spark-submit")
EMR_APPLICATION_ID = os.environ.get("LAKEHOUSE_EMR_APPLICATION_ID", "")
EMR_ROLE_ARN = os.environ.get("LAKEHOUSE_EMR_ROLE_ARN", "")

WAREHOUSE = "{{ params.warehouse.rstrip('/') }}"
TABLE = WAREHOUSE + "/loans"
QUARANTINE = WAREHOUSE + "/loans_quarantine"


def _version(task_id: str) -> str:
    return "{{ ti.xcom_pull(task_ids='" + task_id + "')['version'] }}"


DOC_MD = """
### loans_delta_lake

Curates Lending Club loans into a Delta table with Spark (`include/spark_jobs/loans_delta.py`), one step per task:

1. **prepare_sources**: the raw extract and an incremental batch. Either generated (`rows`, `bad_rate`, `seed`) or
   your own `source` (e.g. `accepted_2007_to_2018Q4.csv.gz`, file:// or s3://) and optional `batch`.
2. **ingest**: explicit schema; bad rows go to `loans_quarantine` with their reason; rows in = written + quarantined.
3. **query**: largest loans by SQL on the path, `isDeltaTable`, `history()`.
4. **evolve**: `funding_type`, `excess_int_rate` added with `mergeSchema`.
5. **update**: `FullyFunded` where `loan_amnt == funded_amnt`; `excess_int_rate = int_rate - 10` above 10%.
6. **upsert**: MERGE of the batch by `id` (the same batch again changes nothing).
7. **time_travel**: `versionAsOf` / `timestampAsOf`; diff report between the ingest and upsert versions.
8. **maintenance**: OPTIMIZE (`zorder_by`), VACUUM with a retention guard (`vacuum_retention_hours`).
9. **publish**: the `loans_delta_curated` Asset event, with the table, version and report in its extra.

Every step returns its table version (XCom) and the next step refuses to run if anyone else committed since. Each
commit's `userMetadata` names this DAG run, so a rerun is recognised and changes nothing.

Engine: `spark_default` (`local[*]` by default; any standalone, YARN or Kubernetes master: docs/lakehouse.md), or EMR
Serverless when the deployment sets `LAKEHOUSE_SPARK_ENGINE=emr-serverless`.
"""


def _step(task_id: str, step: str, args: list[str], **kwargs):
    """One job step on the configured engine."""
    common = {"task_id": task_id, "step": step, "table": TABLE, "warehouse": WAREHOUSE, "step_args": args}
    if ENGINE == "emr-serverless":
        return DeltaEmrServerlessOperator(
            **common,
            entry_point="{{ ti.xcom_pull(task_ids='stage_job_code') }}",
            application_id=EMR_APPLICATION_ID,
            execution_role_arn=EMR_ROLE_ARN,
            aws_conn_id=AWS_CONN_ID,
            waiter_delay=5,
            **kwargs,
        )
    return DeltaSparkSubmitOperator(**common, conn_id=SPARK_CONN_ID, aws_conn_id=AWS_CONN_ID, **kwargs)


@dag(
    dag_id="loans_delta_lake",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["lakehouse", "spark", "delta"],
    doc_md=DOC_MD,
    default_args={"owner": "lakehouse", "retries": 0},
    params={
        "warehouse": Param(DEFAULT_WAREHOUSE, type="string", description="file:///... or s3://bucket/prefix"),
        "source": Param("", type="string", description="raw CSV(.gz)/Parquet; empty = generated loans"),
        "batch": Param("", type="string", description="incremental batch for MERGE; empty = generated"),
        "rows": Param(20000, type="integer", minimum=10),
        "bad_rate": Param(0.01, type="number", minimum=0, maximum=1),
        "seed": Param(0, type="integer", minimum=0),
        "batch_updates": Param(500, type="integer", minimum=0),
        "batch_new": Param(500, type="integer", minimum=0),
        "zorder_by": Param("addr_state,issue_d", type="string", description="empty = plain compaction"),
        "vacuum_retention_hours": Param(168, type="number", minimum=0),
    },
)
def loans_delta_lake():
    @task
    def prepare_sources(params=None) -> dict:
        from include.lakehouse.config import needs_s3a
        from include.lakehouse.sources import prepare

        warehouse = params["warehouse"]
        needs_s3 = needs_s3a(warehouse, params["source"], params["batch"])
        return prepare(
            warehouse,
            params["source"],
            params["batch"],
            rows=params["rows"],
            bad_rate=params["bad_rate"],
            seed=params["seed"],
            n_updates=params["batch_updates"],
            n_new=params["batch_new"],
            s3=s3_client() if needs_s3 else None,
        )

    sources = prepare_sources()
    head = sources
    if ENGINE == "emr-serverless":

        @task
        def stage_job_code(params=None) -> str:
            from include.lakehouse.sources import stage_job

            return stage_job(params["warehouse"], s3_client())

        head = stage_job_code()
        sources >> head

    ingest = _step(
        "ingest",
        "ingest",
        ["--source", "{{ ti.xcom_pull(task_ids='prepare_sources')['source'] }}", "--quarantine", QUARANTINE],
    )
    query = _step("query", "query", ["--limit", "10"])
    evolve = _step("evolve", "evolve", ["--expect-version", _version("ingest")])
    update = _step("update", "update", ["--expect-version", _version("evolve")])
    upsert = _step(
        "upsert",
        "upsert",
        [
            "--batch",
            "{{ ti.xcom_pull(task_ids='prepare_sources')['batch'] }}",
            "--quarantine",
            QUARANTINE,
            "--expect-version",
            _version("update"),
        ],
    )
    time_travel = _step(
        "time_travel",
        "time-travel",
        [
            "--from-version",
            _version("ingest"),
            "--to-version",
            _version("upsert"),
            "--report",
            WAREHOUSE + "/_reports/loans/{{ run_id | replace(':', '_') | replace('+', '_') }}/diff.json",
        ],
    )
    maintenance = _step(
        "maintenance",
        "maintenance",
        [
            "--zorder-by",
            "{{ params.zorder_by }}",
            "--retention-hours",
            "{{ params.vacuum_retention_hours }}",
            "--keep-version",
            _version("ingest"),
            "--expect-version",
            _version("upsert"),
        ],
    )

    @task(outlets=[LOANS_CURATED])
    def publish(ti=None, outlet_events=None) -> dict:
        ingest_result = ti.xcom_pull(task_ids="ingest")
        upsert_result = ti.xcom_pull(task_ids="upsert")
        report = ti.xcom_pull(task_ids="time_travel")
        final = ti.xcom_pull(task_ids="maintenance")
        extra = {
            "table": final["table"],
            "version": final["version"],
            "versions": {
                task_id: ti.xcom_pull(task_ids=task_id)["version"]
                for task_id in ("ingest", "evolve", "update", "upsert", "maintenance")
            },
            "rows_in": ingest_result.get("rows_in"),
            "quarantined": ingest_result.get("rows_quarantined", 0) + upsert_result.get("rows_quarantined", 0),
            "report": report.get("report"),
            "diff": {k: report["diff"][k] for k in ("added", "removed", "changed", "unchanged")},
        }
        outlet_events[LOANS_CURATED].extra = extra
        return extra

    head >> ingest >> [query, evolve]
    evolve >> update >> upsert >> time_travel >> maintenance >> publish()
    query >> upsert


loans_delta_lake()
