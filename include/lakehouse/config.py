"""Spark settings shared by the Delta Lake job's callers: the DAG's spark-submit, the tests' SparkSession, benchmarks.

No pyspark import here: DAG files read these at parse time.

The Maven coordinates must match the installed pyspark (requirements.txt): Spark 4.2 / Scala 2.13 takes the
``delta-spark_4.2_2.13`` artifact, and pyspark 4.2.0 bundles Hadoop 3.5.0, so s3a:// needs hadoop-aws 3.5.0 (which
brings the AWS SDK v2 bundle, about 690 MB, hence only when a path is s3a://). spark-submit resolves them with Ivy into
``~/.ivy2.5.2`` on first use; ``make spark-jars`` does that ahead of time.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

from include import s3uri

DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"
HADOOP_AWS_PACKAGE = "org.apache.hadoop:hadoop-aws:3.5.0"
# delta-spark 4.4.0 pulls Hadoop 3.4.2 client jars (through Unity Catalog's client); Spark already has 3.5.0.
EXCLUDES = "org.apache.hadoop:hadoop-client-api,org.apache.hadoop:hadoop-client-runtime"

# What makes a plain Spark session a Delta one.
DELTA_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

# Sizing for a single machine: Spark's 200 shuffle partitions and Delta's 50 snapshot partitions turn a
# thousand-row table into hundreds of tiny tasks. A cluster's spark-defaults override these.
LOCAL_CONF: dict[str, str] = {
    "spark.sql.shuffle.partitions": "4",
    "spark.databricks.delta.snapshotPartitions": "2",
    # VACUUM lists the table with this many tasks (10,000 by default): a minute of scheduling on a small table.
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "4",
    # spark-submit logs at INFO otherwise, hundreds of lines per step in the task log; warnings and errors stay.
    "spark.log.level": "WARN",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


def needs_s3a(*uris: str) -> bool:
    """Whether any of ``uris`` is on S3 (and the job needs hadoop-aws)."""
    return any(s3uri.is_s3(uri, schemes=(s3uri.S3, s3uri.S3A)) for uri in uris if uri)


def packages(*uris: str) -> list[str]:
    """The Maven packages a job touching ``uris`` needs."""
    return [DELTA_PACKAGE, HADOOP_AWS_PACKAGE] if needs_s3a(*uris) else [DELTA_PACKAGE]


def s3a_conf(
    endpoint_url: str | None = None, region: str | None = None, env_credentials: bool = False
) -> dict[str, str]:
    """Hadoop S3A settings as ``spark.hadoop.*`` conf for an AWS connection.

    Credentials never go into conf (spark-submit's command line is visible in ``ps`` and in task logs): with
    ``env_credentials`` the job reads them from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN in its
    environment; otherwise S3A's default chain applies (instance profile, EMR or EKS role).
    An ``endpoint_url`` (localcloud, a VPC endpoint, MinIO) switches to path-style addressing, which works with any
    bucket name and needs no wildcard DNS.
    """
    conf: dict[str, str] = {}
    if env_credentials:
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
            "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"
        )
    if region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = region
    if endpoint_url:
        parsed = urlparse(endpoint_url)
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint_url
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = "true" if parsed.scheme == "https" else "false"
    return conf


def result_uri(warehouse: str, dag_id: str, run_id: str, task_id: str) -> str:
    """Where a step's result JSON goes. Hadoop paths cannot hold ':' in a name, which run ids have."""
    safe = re.sub(r"[^A-Za-z0-9._=-]", "_", run_id)
    return f"{warehouse.rstrip('/')}/_airflow/results/{dag_id}/{safe}/{task_id}.json"


def to_s3a(uri: str) -> str:
    """``s3://b/k`` as Hadoop's ``s3a://b/k`` (boto3 and Airflow speak s3://, Hadoop's connector s3a://)."""
    return "s3a://" + uri[len("s3://") :] if uri.startswith("s3://") else uri


def to_s3(uri: str) -> str:
    """The inverse of ``to_s3a``."""
    return "s3://" + uri[len("s3a://") :] if uri.startswith("s3a://") else uri


def session_conf(*uris: str, local: bool = True) -> dict[str, str]:
    """spark.* settings for a Delta session touching ``uris``: packages, Delta extensions, single-machine sizing."""
    conf = {"spark.jars.packages": ",".join(packages(*uris)), "spark.jars.excludes": EXCLUDES, **DELTA_CONF}
    return {**conf, **LOCAL_CONF} if local else conf


def local_session(master: str = "local[2]", app_name: str = "loans_delta", extra: dict[str, str] | None = None):  # noqa: ANN201 - pyspark is imported lazily
    """A Delta-enabled SparkSession in this process (tests, benchmarks); the DAG uses spark-submit instead."""
    import os
    import sys

    from pyspark.sql import SparkSession

    # Python workers (UDFs, RDD code) run this interpreter, not whatever python3 comes first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in {**session_conf(), **(extra or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
