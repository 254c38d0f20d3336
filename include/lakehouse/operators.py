"""Run one step of include/spark_jobs/loans_delta.py as an Airflow task, and hand its JSON result to XCom.

Two engines take the same step arguments:

* ``DeltaSparkSubmitOperator``: the provider's ``SparkSubmitOperator`` (connection ``spark_default``: ``local[*]``
  by default, or a standalone / YARN / Kubernetes master).
* ``DeltaEmrServerlessOperator``: the provider's ``EmrServerlessStartJobOperator`` on an EMR Serverless application
  (real AWS, or localcloud's, which runs spark-submit on the same machine).

The job writes its result JSON next to the warehouse (``result_uri``); the operators read it back after the job
succeeds and return it, so every step's table version lands in XCom. Spark sees ``s3a://`` (Hadoop's connector), while
Airflow and boto3 see ``s3://``: the helpers in ``config`` convert.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from include import s3uri
from include.connections import AWS_CONN_ID, s3_client
from include.lakehouse import config
from include.lakehouse.config import result_uri

JOB_FILE = Path(__file__).resolve().parents[1] / "spark_jobs" / "loans_delta.py"
EMR_DELTA_JARS = "/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar"


def read_text(uri: str, aws_conn_id: str | None = AWS_CONN_ID) -> str:
    """Read a small file at a file:// or s3(a):// URI."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path).read_text()
    if s3uri.is_s3(uri, schemes=(s3uri.S3, s3uri.S3A)):
        bucket, key = s3uri.parse(uri, schemes=(s3uri.S3, s3uri.S3A))
        return s3_client(aws_conn_id).get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    raise ValueError(f"cannot read {uri}: scheme {parsed.scheme!r} is neither file nor s3")


def run_key(dag_id: str, run_id: str) -> str:
    """What the job tags its commits with: a rerun of the same DAG run is recognised by it."""
    return f"{dag_id}/{run_id}"


def step_arguments(step: str, table: str, key: str, result: str, args: Sequence[str], emrfs: bool = False) -> list[str]:
    """The job's command line. Spark's own S3 connector is S3A (``s3a://``); EMR's is EMRFS, which reads ``s3://``."""
    convert = config.to_s3 if emrfs else config.to_s3a
    uris = [convert(str(a)) if config.needs_s3a(str(a)) else str(a) for a in args]
    return [step, "--table", convert(table), "--run-key", key, "--result", convert(result), *uris]


def require_uri(name: str, uri: str) -> None:
    """A table or warehouse must be an absolute URI: a bare path would land relative to whatever directory the driver
    happens to run in, and a leftover ``{{`` means the operator ran unrendered."""
    if "{{" in uri or urlparse(uri).scheme not in ("file", "s3", "s3a"):
        raise ValueError(f"{name} must be a file://, s3:// or s3a:// URI, got {uri!r}")


class DeltaSparkSubmitOperator(SparkSubmitOperator):
    """spark-submit one loans_delta.py step; returns the step's result (table version, counts) as XCom.

    :param step: ingest, query, evolve, update, upsert, time-travel or maintenance.
    :param table: the curated table's URI (file:// or s3://; handed to Spark as s3a://).
    :param warehouse: where result files go (the table's parent, usually).
    :param step_args: the step's own arguments (templated), e.g. ``["--source", "{{ ... }}"]``.
    :param aws_conn_id: connection whose credentials and endpoint S3A uses when a path is on S3.
    """

    template_fields: Sequence[str] = (*SparkSubmitOperator.template_fields, "step_args", "table", "warehouse")

    def __init__(
        self,
        *,
        step: str,
        table: str,
        warehouse: str,
        step_args: Sequence[str] = (),
        aws_conn_id: str | None = AWS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", f"loans_delta_{step}")
        super().__init__(application=str(JOB_FILE), **kwargs)
        self.step = step
        self.table = table
        self.warehouse = warehouse
        self.step_args = list(step_args)
        self.aws_conn_id = aws_conn_id

    def _result_uri(self, context: Any) -> str:
        return result_uri(self.warehouse, self.dag_id, context["run_id"], self.task_id)

    def execute(self, context: Any) -> dict[str, Any]:
        require_uri("table", self.table)
        require_uri("warehouse", self.warehouse)
        uris = [self.table, self.warehouse, *[a for a in self.step_args if "://" in str(a)]]
        result = self._result_uri(context)
        key = run_key(self.dag_id, context["run_id"])
        self.application_args = step_arguments(self.step, self.table, key, result, self.step_args)
        if self._hook is None:
            self._hook = self._get_hook()
        local = str(self._hook._connection["master"]).startswith("local")
        self.conf = {**config.session_conf(*uris, local=local), **(self.conf or {})}
        self.packages = None  # spark.jars.packages in conf carries them (with the s3a extras when needed)
        env = dict(self.env_vars or {})
        if local:
            # The driver runs here: use this interpreter (and its pyspark/delta-spark), not whatever python3 is first.
            env.setdefault("PYSPARK_PYTHON", sys.executable)
            env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        if config.needs_s3a(*uris):
            s3_conf, s3_env = s3a_settings(self.aws_conn_id)
            self.conf.update(s3_conf)
            env.update(s3_env)
        self.env_vars = env
        # The hook was built before conf was final: rebuild it so that spark-submit gets the conf above.
        self._hook = self._get_hook()
        super().execute(context)
        return json.loads(read_text(result, self.aws_conn_id))


def s3a_settings(aws_conn_id: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """S3A conf and the environment holding the connection's credentials (never on the command line)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="s3")
    endpoint = hook.conn_config.get_service_endpoint_url("s3") if aws_conn_id else None
    creds = hook.get_credentials()
    env: dict[str, str] = {}
    if creds and creds.access_key:
        env = {"AWS_ACCESS_KEY_ID": creds.access_key, "AWS_SECRET_ACCESS_KEY": creds.secret_key}
        if creds.token:
            env["AWS_SESSION_TOKEN"] = creds.token
    conf = config.s3a_conf(endpoint, hook.conn_region_name, env_credentials=bool(env))
    return conf, env


class DeltaEmrServerlessOperator(EmrServerlessStartJobOperator):
    """The same step on an EMR Serverless application; returns the step's result as XCom.

    :param entry_point: S3 URI of loans_delta.py (the DAG uploads it).
    :param spark_conf: extra ``--conf`` for spark-submit (on EMR, Delta comes with the release: docs/lakehouse.md).
    """

    template_fields: Sequence[str] = (
        *EmrServerlessStartJobOperator.template_fields,
        "step_args",
        "entry_point",
        "table",
        "warehouse",
    )

    def __init__(
        self,
        *,
        step: str,
        table: str,
        warehouse: str,
        entry_point: str,
        step_args: Sequence[str] = (),
        spark_conf: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("deferrable", False)
        super().__init__(job_driver={}, **kwargs)
        # EMR releases ship Delta Lake; these are the jars AWS documents for EMR Serverless (localcloud maps them to
        # the Maven package).
        self.step = step
        self.table = table
        self.warehouse = warehouse
        self.entry_point = entry_point
        self.step_args = list(step_args)
        self.spark_conf = {"spark.jars": EMR_DELTA_JARS, **(spark_conf or {})}

    def execute(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        require_uri("table", self.table)
        require_uri("warehouse", self.warehouse)
        result = result_uri(self.warehouse, self.dag_id, context["run_id"], self.task_id)
        conf = {**config.DELTA_CONF, **self.spark_conf}
        self.job_driver = {
            "sparkSubmit": {
                "entryPoint": config.to_s3(self.entry_point),
                "entryPointArguments": step_arguments(
                    self.step, self.table, run_key(self.dag_id, context["run_id"]), result, self.step_args, emrfs=True
                ),
                "sparkSubmitParameters": " ".join(f"--conf {k}={v}" for k, v in conf.items()),
            }
        }
        super().execute(context, event)
        return json.loads(read_text(config.to_s3(result), self.aws_conn_id))

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        super().execute_complete(context, event)
        result = result_uri(self.warehouse, self.dag_id, context["run_id"], self.task_id)
        return json.loads(read_text(config.to_s3(result), self.aws_conn_id))
