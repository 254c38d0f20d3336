"""Smoke test of the AWS plumbing: stock Amazon-provider operators against ``aws_default``.

Offline, ``aws_default`` points at localcloud (docs/offline.md); in prod the same DAG runs against AWS.
"""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.amazon.aws.transfers.local_to_s3 import LocalFilesystemToS3Operator
from airflow.sdk import Param, dag, task

from include.connections import AWS_CONN_ID

# Deterministic per run: a rerun of the same run overwrites its own object and item, nothing else.
MANIFEST_KEY = "smoke/{{ run_id }}/manifest.json"

DOC_MD = """
### localcloud_smoke

End-to-end check that `aws_default` works, using only stock `apache-airflow-providers-amazon` pieces:

1. `S3CreateBucketOperator` creates `params.bucket` (no-op if it exists).
2. `write_manifest` writes a small JSON manifest of the run to a local temp file.
3. `LocalFilesystemToS3Operator` uploads it to `s3://<bucket>/smoke/<run_id>/manifest.json` (`replace=True`).
4. `S3KeySensor` (poke mode) waits for that key.
5. `record_run` creates the DynamoDB table `params.table` if missing, puts one item keyed by `run_id`,
   reads it back and checks it.

Steps 2-3 share a local file, so they must run on one machine (true for `airflow dags test`, standalone and
LocalExecutor). Reruns are idempotent: the key and the item are functions of `run_id` only.
"""


@dag(
    dag_id="localcloud_smoke",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["foundation", "localcloud", "smoke"],
    doc_md=DOC_MD,
    default_args={"owner": "platform", "retries": 0},
    params={
        "bucket": Param("industrial-ml-demo", type="string", description="S3 bucket (created if missing)"),
        "table": Param("industrial-ml-runs", type="string", description="DynamoDB table (created if missing)"),
    },
)
def localcloud_smoke():
    create_bucket = S3CreateBucketOperator(
        task_id="create_bucket",
        bucket_name="{{ params.bucket }}",
        aws_conn_id=AWS_CONN_ID,
    )

    @task
    def write_manifest(params=None, run_id=None, dag=None, logical_date=None) -> str:
        """Write the run's manifest to ``<tmp>/localcloud_smoke/<run_id>/manifest.json``; return the path."""
        import json
        import re
        import tempfile
        from pathlib import Path

        manifest = {
            "dag_id": dag.dag_id,
            "run_id": run_id,
            "logical_date": logical_date.isoformat() if logical_date else None,
            "bucket": params["bucket"],
            "table": params["table"],
        }
        safe_run = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)
        path = Path(tempfile.gettempdir()) / "localcloud_smoke" / safe_run / "manifest.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return str(path)

    manifest_path = write_manifest()

    upload = LocalFilesystemToS3Operator(
        task_id="upload_manifest",
        filename=manifest_path,
        dest_bucket="{{ params.bucket }}",
        dest_key=MANIFEST_KEY,
        replace=True,
        aws_conn_id=AWS_CONN_ID,
    )

    wait_for_manifest = S3KeySensor(
        task_id="wait_for_manifest",
        bucket_name="{{ params.bucket }}",
        bucket_key=MANIFEST_KEY,
        mode="poke",
        poke_interval=1,
        timeout=60,
        aws_conn_id=AWS_CONN_ID,
    )

    @task
    def record_run(params=None, run_id=None, dag=None) -> dict:
        """Create the table if missing, put this run's item, read it back and check it."""
        from airflow.providers.amazon.aws.hooks.dynamodb import DynamoDBHook
        from botocore.exceptions import ClientError

        table = params["table"]
        hook = DynamoDBHook(aws_conn_id=AWS_CONN_ID)
        client = hook.client
        try:
            client.describe_table(TableName=table)
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            try:
                client.create_table(
                    TableName=table,
                    AttributeDefinitions=[{"AttributeName": "run_id", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "run_id", "KeyType": "HASH"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            except ClientError as create_err:  # a concurrent run created it first
                if create_err.response["Error"]["Code"] != "ResourceInUseException":
                    raise
        client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

        item = {
            "run_id": run_id,
            "dag_id": dag.dag_id,
            "bucket": params["bucket"],
            "manifest_key": f"smoke/{run_id}/manifest.json",
        }
        hook.put_item(table_name=table, item=item)
        stored = hook.get_item(table_name=table, key={"run_id": run_id})
        if stored != item:
            raise ValueError(f"DynamoDB read-back mismatch: wrote {item}, read {stored}")
        return item

    create_bucket >> manifest_path >> upload >> wait_for_manifest >> record_run()


localcloud_smoke()
