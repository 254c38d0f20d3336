"""Every 15 minutes: pending tenant extraction requests (DynamoDB) -> a Glue job per request, run as the tenant's
role -> masked Parquet in the tenant's bucket -> status written back to the request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.sdk import Param, dag, task, task_group

from include.connections import AWS_CONN_ID, dynamodb_client

SCRIPT = str(Path(__file__).resolve().parents[2] / "include" / "ops" / "tenants" / "glue_extract.py")

DOC_MD = """
### tenant_data_extraction

Requests are items in the `requests_table` DynamoDB table: `request_id`, `tenant`, `tables`, `masking`
(`{table: {column: rule}}`, rules `hash` (HMAC-SHA256 under a per-tenant key derived from the Airflow Variable
`tenant_masking_secret`), `redact`, `last4`, `email_domain`, `year`) and `status`. Submit one with
`include.ops.tenants.requests.submit`; onboard a tenant (bucket `tenant-<t>-exports`, role
`tenant-<t>-extraction`) with `python -m include.ops.tenants.provision <t> --artifacts-bucket <bucket>`.

1. **find_pending**: the PENDING requests (and this run's own unfinished or failed ones, so a rerun retries
   them); a request that can never be valid is marked FAILED with the reason.
2. per request (a mapped task group):
   - **scope**: takes the request (PENDING -> RUNNING, conditional), assumes the tenant's role (STS AssumeRole with
     the tenant's external id) and lists the tenant's own prefix with it, so that a broken role fails here;
   - **extract** (`GlueJobOperator`, Python shell): `include/ops/tenants/glue_extract.py` runs **as the tenant's
     role**, reads the tenant's rows from the read-only replica (`replica_uri`), masks the configured columns and
     writes `s3://tenant-<t>-exports/extractions/<request_id>/<table>.parquet` and `_manifest.json`;
   - **record_status**: SUCCEEDED with the row counts and the output location (the manifest is read with the
     tenant's credentials), or FAILED with Glue's error message; a failed extraction also fails the task.

Cross-tenant access is impossible by construction: each job only ever holds its tenant's role credentials.
"""


@dag(
    dag_id="tenant_data_extraction",
    schedule=timedelta(minutes=15),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["ops", "glue", "tenants"],
    doc_md=DOC_MD,
    default_args={"owner": "ops", "retries": 0},
    params={
        "requests_table": Param("tenant-extraction-requests", type="string"),
        "artifacts_bucket": Param("industrial-ml-ops", type="string", description="where the job script is uploaded"),
        "replica_uri": Param(
            "",
            type="string",
            description="sqlite:////<absolute path> of the read-only replica; empty = $TENANT_REPLICA_URI",
        ),
        "max_requests": Param(10, type="integer", minimum=1, maximum=100),
    },
)
def tenant_data_extraction():
    @task
    def find_pending(params=None, dag_run=None) -> list[dict]:
        from include.ops.tenants.extraction import masking_master_key, plan

        # Before any request is taken: a deployment without a masking key fails here, naming the Variable to set.
        masking_master_key(AWS_CONN_ID, may_generate=True)
        return plan(dynamodb_client(), params["requests_table"], dag_run.run_id, params["max_requests"])

    @task_group
    def per_request(request: dict):
        @task(map_index_template="{{ request_id }}")
        def scope(request: dict, params=None, dag_run=None) -> dict:
            import os

            from airflow.sdk.log import mask_secret

            from include.ops.tenants import extraction, masking

            replica = params["replica_uri"] or os.environ.get("TENANT_REPLICA_URI", "")
            if not replica:
                raise ValueError("no replica: set the replica_uri param or TENANT_REPLICA_URI")
            # The master key stays in this worker; the tenant's job gets only its tenant's key (masking.py says why).
            key = masking.tenant_key(extraction.masking_master_key(AWS_CONN_ID), request["tenant"])
            mask_secret(key)
            return extraction.scope(**_per_request(request, params, dag_run), replica_uri=replica, masking_key=key)

        job = scope(request)
        extract = GlueJobOperator(
            task_id="extract",
            job_name=job["job_name"],
            script_location=SCRIPT,
            s3_bucket="{{ params.artifacts_bucket }}",
            replace_script_file=True,
            update_config=True,
            iam_role_arn=job["iam_role_arn"],
            script_args=job["script_args"],
            num_of_dpus=0.0625,  # Glue's smallest Python shell size, plenty for one tenant's extract
            concurrent_run_limit=4,
            create_job_kwargs={
                "Command": {
                    "Name": "pythonshell",
                    "PythonVersion": "3.9",
                    "ScriptLocation": "s3://{{ params.artifacts_bucket }}/artifacts/glue-scripts/glue_extract.py",
                },
                "Timeout": 60,
                "Tags": {"workload": "tenant-extraction"},
            },
            job_poll_interval=2,
            aws_conn_id=AWS_CONN_ID,
        )
        job >> extract

        @task(trigger_rule="all_done", map_index_template="{{ request_id }}")
        def record_status(request: dict, job_run_id: str | None, params=None, dag_run=None) -> dict:
            from include.ops.tenants import extraction

            return extraction.record(**_per_request(request, params, dag_run), job_run_id=job_run_id)

        record_status(request, extract.output)

    per_request.expand(request=find_pending())


def _per_request(request: dict, params: dict, dag_run) -> dict:
    """What scope and record_status pass to extraction: the connection's clients, the table, the request, the run.

    Also names the mapped task instance by its request in the UI (map_index_template).
    """
    from airflow.sdk import get_current_context

    from include.ops.tenants.extraction import connection_clients

    get_current_context()["request_id"] = request["request_id"]
    return {
        "clients": connection_clients(AWS_CONN_ID),
        "table": params["requests_table"],
        "request": request,
        "run_id": dag_run.run_id,
    }


tenant_data_extraction()
