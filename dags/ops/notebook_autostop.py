"""Hourly: stop SageMaker notebook instances idle past a threshold, except those tagged autostop=false."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerStopNotebookOperator
from airflow.sdk import Param, dag, task

from include.connections import AWS_CONN_ID, s3_client, sagemaker_client

log = logging.getLogger(__name__)

DOC_MD = """
### notebook_autostop

1. **find_idle**: every `InService` notebook instance (ListNotebookInstances, `name_contains` optional), its tags
   and its heartbeat `s3://<bucket>/<heartbeat_prefix>/<instance>/heartbeat.json`. Last activity is the later of
   the heartbeat's `last_activity` and the instance's `LastModifiedTime` (its last start); idle longer than
   `idle_minutes` before the run's `run_after` means stop, unless the instance is tagged `autostop=false`.
2. **record_report**: the decisions as JSON at `s3://<bucket>/<report_prefix>/<yyyy>/<mm>/<dd>/<run id>.json`,
   written before anything is stopped. A retry of the run overwrites it with the same content.
3. **stop_idle** (`SageMakerStopNotebookOperator`, one mapped task per instance): StopNotebookInstance and the
   `notebook_instance_stopped` waiter.

The heartbeat comes from the lifecycle configuration in `include/ops/notebooks/on-start.sh`; create or update it
with `python -m include.ops.notebooks.lifecycle apply --name <config> --bucket <bucket>`.
"""


@dag(
    dag_id="notebook_autostop",
    schedule="@hourly",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["ops", "sagemaker", "notebooks"],
    doc_md=DOC_MD,
    default_args={"owner": "ops", "retries": 0},
    params={
        "bucket": Param("industrial-ml-ops", type="string", description="bucket of the heartbeats and the reports"),
        "heartbeat_prefix": Param("notebooks/heartbeats", type="string"),
        "report_prefix": Param("notebooks/autostop", type="string"),
        "idle_minutes": Param(60, type="number", exclusiveMinimum=0, description="stop when idle longer than this"),
        "name_contains": Param("", type="string", description="only instances whose name contains this"),
    },
)
def notebook_autostop():
    @task
    def find_idle(params=None, dag_run=None) -> dict:
        from include.ops.notebooks import autostop

        return autostop.plan(
            sagemaker_client(),
            s3_client(),
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            as_of=dag_run.run_after,
            bucket=params["bucket"],
            heartbeat_prefix=params["heartbeat_prefix"],
            report_prefix=params["report_prefix"],
            idle_minutes=params["idle_minutes"],
            name_contains=params["name_contains"],
        )

    @task
    def record_report(plan: dict, params=None) -> list[str]:
        from include.ops.notebooks import autostop

        s3 = s3_client()
        uri = autostop.write_report(s3, params["bucket"], plan["report_key"], plan["report"])
        log.info("report %s; stopping %s", uri, plan["to_stop"] or "nothing")
        return plan["to_stop"]

    SageMakerStopNotebookOperator.partial(
        task_id="stop_idle", aws_conn_id=AWS_CONN_ID, map_index_template="{{ task.instance_name }}"
    ).expand(instance_name=record_report(find_idle()))


notebook_autostop()
