"""include/lakehouse: Spark settings, S3A settings from the AWS connection, inputs of the DAG, result files."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest

from include.datagen import loans as gen
from include.lakehouse import config, jars, sources
from include.lakehouse.operators import read_text, result_uri, run_key, s3a_settings, step_arguments
from tests.conftest import point_aws_default


def test_s3_paths_bring_hadoop_aws_and_local_paths_do_not():
    assert config.packages("file:///lake/loans") == [config.DELTA_PACKAGE]
    assert config.packages("file:///lake", "s3://bucket/raw.csv") == [config.DELTA_PACKAGE, config.HADOOP_AWS_PACKAGE]
    conf = config.session_conf("s3a://b/t")
    assert conf["spark.jars.packages"].split(",") == [config.DELTA_PACKAGE, config.HADOOP_AWS_PACKAGE]
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert "spark.sql.shuffle.partitions" in conf
    assert "spark.sql.shuffle.partitions" not in config.session_conf("s3a://b/t", local=False)


def test_the_pinned_jars_match_the_installed_pyspark():
    from importlib.metadata import version as dist_version

    import pyspark

    major_minor = ".".join(pyspark.__version__.split(".")[:2])
    _, artifact, version = config.DELTA_PACKAGE.split(":")
    # The Scala jar and delta-spark's Python half must be the same release, built for this Spark.
    assert artifact == f"delta-spark_{major_minor}_2.13"
    assert version == dist_version("delta-spark")
    assert jars.jar_name(config.HADOOP_AWS_PACKAGE) == "org.apache.hadoop_hadoop-aws-3.5.0.jar"


def test_uri_schemes_convert_both_ways():
    assert config.to_s3a("s3://b/k") == "s3a://b/k"
    assert config.to_s3("s3a://b/k") == "s3://b/k"
    assert config.to_s3a("file:///x") == config.to_s3("file:///x") == "file:///x"


def test_s3a_settings_come_from_the_aws_connection_and_keep_secrets_off_the_command_line(localcloud, monkeypatch):
    point_aws_default(localcloud, monkeypatch)
    conf, env = s3a_settings("aws_default")
    assert conf["spark.hadoop.fs.s3a.endpoint"] == localcloud.endpoint
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "us-east-1"
    assert conf["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith("EnvironmentVariableCredentialsProvider")
    assert env == {"AWS_ACCESS_KEY_ID": localcloud.access_key, "AWS_SECRET_ACCESS_KEY": localcloud.secret_key}
    assert localcloud.secret_key not in json.dumps(conf)


def test_real_aws_needs_no_endpoint_settings():
    conf = config.s3a_conf(None, "eu-west-1")
    assert conf == {"spark.hadoop.fs.s3a.endpoint.region": "eu-west-1"}


def test_result_paths_are_hadoop_safe_and_arguments_carry_the_run_key():
    uri = result_uri("s3://lake/", "loans_delta_lake", "manual__2026-11-30T10:00:00+00:00", "ingest")
    assert uri == "s3://lake/_airflow/results/loans_delta_lake/manual__2026-11-30T10_00_00_00_00/ingest.json"
    args = step_arguments("ingest", "s3://lake/loans", run_key("d", "r"), uri, ["--source", "s3://raw/x.csv"])
    assert args[:4] == ["ingest", "--table", "s3a://lake/loans", "--run-key"]
    assert args[4] == "d/r" and args[6].startswith("s3a://") and args[-1] == "s3a://raw/x.csv"
    emr = step_arguments("ingest", "s3a://lake/loans", "d/r", uri, ["--source", "s3a://raw/x.csv", "7"], emrfs=True)
    assert emr[2] == "s3://lake/loans" and emr[-2:] == ["s3://raw/x.csv", "7"]


def test_read_text_reads_local_and_s3_results(localcloud, monkeypatch, tmp_path, s3):
    point_aws_default(localcloud, monkeypatch)
    (tmp_path / "r.json").write_text('{"version": 3}')
    assert json.loads(read_text(f"file://{tmp_path}/r.json")) == {"version": 3}
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="r.json", Body=b'{"version": 4}')
    assert json.loads(read_text(f"s3a://{bucket}/r.json")) == {"version": 4}
    with pytest.raises(ValueError, match="neither file nor s3"):
        read_text("hdfs://nn/r.json")


def test_generated_inputs_are_written_once_and_found_by_a_rerun(tmp_path):
    warehouse = f"file://{tmp_path}/lake"
    first = sources.prepare(warehouse, rows=50, bad_rate=0.1, seed=1, n_updates=5, n_new=3)
    assert sorted(first["generated"]) == sorted([first["source"], first["batch"]])
    again = sources.prepare(warehouse, rows=50, bad_rate=0.1, seed=1, n_updates=5, n_new=3)
    assert again == {**first, "generated": []}
    rows = gzip.decompress((tmp_path / first["source"].split(f"{tmp_path}/")[1]).read_bytes()).decode().splitlines()
    assert len(rows) == 51 and rows[0] == ",".join(gen.COLUMNS)
    other = sources.prepare(warehouse, rows=60, bad_rate=0.1, seed=1, n_updates=5, n_new=3)
    assert other["source"] != first["source"]


def test_a_users_extract_gets_a_batch_of_updates_from_its_first_rows(tmp_path, s3):
    rows, _ = gen.generate(40, 0.0, 5)
    # The real export has more columns than the generator; they are ignored here.
    wide = [{**row, "extra_col": "x"} for row in rows]
    path = tmp_path / "accepted.csv.gz"
    with gzip.open(path, "wt", newline="") as handle:
        handle.write(",".join([*gen.COLUMNS, "extra_col"]) + "\n")
        for row in wide:
            handle.write(",".join(f'"{v}"' for v in row.values()) + "\n")
    bucket = f"raw-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(path), bucket, "accepted_2007_to_2018Q4.csv.gz")
    out = sources.prepare(f"s3://{bucket}/lake", f"s3://{bucket}/accepted_2007_to_2018Q4.csv.gz", n_updates=5, s3=s3)
    assert out["batch"].startswith(f"s3://{bucket}/lake/raw/batch-")
    body = s3.get_object(Bucket=bucket, Key=out["batch"].split(f"{bucket}/", 1)[1])["Body"].read().decode()
    batch_ids = [line.split(",")[0] for line in body.splitlines()[1:]]
    assert len(batch_ids) == 5 and set(batch_ids) <= {row["id"] for row in rows}
    assert sources.prepare(f"s3a://{bucket}/lake", out["source"], n_updates=5, s3=s3)["generated"] == []
    with pytest.raises(ValueError, match="give a batch too"):
        sources.prepare(f"s3://{bucket}/lake", f"s3://{bucket}/loans.parquet", s3=s3)


def test_emr_serverless_needs_the_job_code_on_s3(tmp_path, s3):
    bucket = f"code-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    uri = sources.stage_job(f"s3://{bucket}/lake", s3)
    assert uri.startswith(f"s3://{bucket}/lake/_code/loans_delta-") and uri.endswith(".py")
    assert sources.stage_job(f"s3a://{bucket}/lake", s3) == uri
    with pytest.raises(ValueError, match="on S3"):
        sources.stage_job(f"file://{tmp_path}", s3)


def test_steps_refuse_relative_or_unrendered_paths(tmp_path):
    from include.lakehouse.operators import DeltaSparkSubmitOperator

    op = DeltaSparkSubmitOperator(task_id="t", step="query", table="{{ params.w }}/loans", warehouse="lake")
    with pytest.raises(ValueError, match="table must be a file://"):
        op.execute({"run_id": "r"})
    op.table = f"file://{tmp_path}/loans"
    with pytest.raises(ValueError, match="warehouse must be"):
        op.execute({"run_id": "r"})
    assert list(tmp_path.iterdir()) == []
