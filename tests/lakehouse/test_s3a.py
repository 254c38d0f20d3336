"""Hadoop's S3A connector (hadoop-aws 3.5, AWS SDK v2) against localcloud's S3, from a real local SparkSession.

The session is configured as the lakehouse job's callers configure it (include.lakehouse.config: the Delta and
hadoop-aws packages, DELTA_CONF, LOCAL_CONF and ``s3a_conf(endpoint, region, env_credentials=True)``), with
localcloud's local credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. One session serves the module: Spark
takes ~15 s to start. A fresh machine first downloads hadoop-aws and the AWS SDK bundle (~690 MB, into ~/.ivy2.5.2).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import uuid
import zlib

import pytest

from include.lakehouse import config

pytest.importorskip("pyspark")
pytest.importorskip("delta")
if shutil.which("java") is None:
    pytest.skip("Spark needs a Java runtime", allow_module_level=True)


def _release_jvm() -> None:
    """Stop any SparkContext and its JVM: packages are fixed when a JVM starts, so each module starts its own."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
    if SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()
    gateway = SparkContext._gateway
    if gateway is not None:
        proc = getattr(gateway, "proc", None)
        gateway.shutdown()
        if proc is not None:
            proc.stdin.close()  # the JVM exits when its stdin closes
            proc.wait(timeout=60)
        SparkContext._gateway = None
        SparkContext._jvm = None


@pytest.fixture(scope="module")
def lake(localcloud, tmp_path_factory):
    """(spark, s3 client, bucket): a Delta + S3A session on localcloud, and a bucket of the module's own."""
    from pyspark.sql import SparkSession

    s3 = localcloud.client("s3")
    bucket = f"s3a-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    conf = {
        "spark.jars.packages": f"{config.DELTA_PACKAGE},{config.HADOOP_AWS_PACKAGE}",
        **config.DELTA_CONF,
        **config.LOCAL_CONF,
        **config.s3a_conf(localcloud.endpoint, "us-east-1", env_credentials=True),
        "spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("warehouse")),
    }
    _release_jvm()
    with pytest.MonkeyPatch.context() as env:
        # The JVM reads them once, when it starts (EnvironmentVariableCredentialsProvider).
        env.setenv("AWS_ACCESS_KEY_ID", localcloud.access_key)
        env.setenv("AWS_SECRET_ACCESS_KEY", localcloud.secret_key)
        builder = SparkSession.builder.master("local[2]").appName("test_s3a")
        for key, value in conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    yield spark, s3, bucket
    _release_jvm()


def _keys(s3, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_delta_table_write_append_update_merge_and_time_travel(lake):
    from delta.tables import DeltaTable

    spark, s3, bucket = lake
    path = f"s3a://{bucket}/delta/loans"
    spark.createDataFrame([(1, "open", 100.0), (2, "open", 250.0)], ["id", "status", "amount"]).write.format(
        "delta"
    ).mode("overwrite").save(path)
    spark.createDataFrame([(3, "open", 75.5)], ["id", "status", "amount"]).write.format("delta").mode("append").save(
        path
    )
    table = DeltaTable.forPath(spark, path)
    table.update("id = 2", {"status": "'paid'"})
    updates = spark.createDataFrame([(3, "late", 80.0), (4, "open", 10.0)], ["id", "status", "amount"])
    (
        table.alias("t")
        .merge(updates.alias("u"), "t.id = u.id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )

    current = sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())
    assert current == [(1, "open", 100.0), (2, "paid", 250.0), (3, "late", 80.0), (4, "open", 10.0)]
    first = sorted(tuple(r) for r in spark.read.format("delta").option("versionAsOf", 0).load(path).collect())
    assert first == [(1, "open", 100.0), (2, "open", 250.0)]
    assert spark.read.format("delta").option("versionAsOf", 1).load(path).count() == 3
    history = [r["operation"] for r in table.history().orderBy("version").collect()]
    assert history == ["WRITE", "WRITE", "UPDATE", "MERGE"]
    log = _keys(s3, bucket, "delta/loans/_delta_log/")
    assert {f"delta/loans/_delta_log/{v:020d}.json" for v in range(4)} <= set(log)


def test_csv_and_partitioned_parquet_overwrite(lake):
    spark, s3, bucket = lake
    rows = [(i, f"region-{i % 3}", i * 1.5) for i in range(30)]
    frame = spark.createDataFrame(rows, ["id", "region", "value"])

    frame.write.mode("overwrite").option("header", True).csv(f"s3a://{bucket}/csv/data")
    back = spark.read.option("header", True).option("inferSchema", True).csv(f"s3a://{bucket}/csv/data")
    assert sorted(tuple(r) for r in back.select("id", "region", "value").collect()) == rows

    target = f"s3a://{bucket}/parquet/data"
    frame.write.mode("overwrite").partitionBy("region").parquet(target)
    assert {k.split("/")[2] for k in _keys(s3, bucket, "parquet/data/") if "=" in k} == {
        "region=region-0",
        "region=region-1",
        "region=region-2",
    }
    only = spark.read.parquet(target).where("region = 'region-1'")
    assert sorted(r["id"] for r in only.collect()) == [i for i in range(30) if i % 3 == 1]
    # Overwriting deletes the old files (DeleteObjects) before the new ones are committed (copy + delete renames).
    frame.limit(3).write.mode("overwrite").parquet(target)
    assert spark.read.parquet(target).count() == 3
    keys = _keys(s3, bucket, "parquet/data/")
    assert not [k for k in keys if "region=" in k or "_temporary" in k]


def _filesystem(spark, bucket: str, **settings: str):
    """A Hadoop FileSystem on the bucket: the session's S3A settings, plus ``settings``, in an instance of its own."""
    jvm = spark._jvm
    conf = jvm.org.apache.hadoop.conf.Configuration(spark._jsc.hadoopConfiguration())
    for key, value in settings.items():
        conf.set(key, value)
    uri = jvm.java.net.URI(f"s3a://{bucket}/")
    return jvm.org.apache.hadoop.fs.FileSystem.newInstance(uri, conf), jvm.org.apache.hadoop.fs.Path


def _write(fs, path, chunks: list[bytes]) -> None:
    out = fs.create(path, True)
    for chunk in chunks:
        out.write(bytearray(chunk))
    out.close()


def test_filesystem_markers_multipart_ranges_rename_and_delete(lake):
    spark, s3, bucket = lake
    fs, Path = _filesystem(spark, bucket, **{"fs.s3a.multipart.size": "5M", "fs.s3a.multipart.threshold": "5M"})
    try:
        base = f"s3a://{bucket}/fs"
        assert fs.mkdirs(Path(f"{base}/dir/sub"))
        assert "fs/dir/sub/" in _keys(s3, bucket, "fs/")  # a directory marker
        assert fs.getFileStatus(Path(f"{base}/dir")).isDirectory()
        assert fs.getFileStatus(Path(f"{base}/dir/sub")).isDirectory()

        block = bytes(range(256)) * 4096  # 1 MiB
        data = b"".join(block[i:] + block[:i] for i in range(12))  # 12 MiB: three 5 MiB parts
        _write(fs, Path(f"{base}/dir/sub/big.bin"), [data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20)])
        head = s3.head_object(Bucket=bucket, Key="fs/dir/sub/big.bin")
        assert head["ContentLength"] == len(data) and head["ETag"].endswith('-3"')  # a multipart upload
        assert fs.getFileStatus(Path(f"{base}/dir/sub/big.bin")).getLen() == len(data)

        for kind in ("classic", "analytics"):  # S3A's input streams: its own, and the Analytics Accelerator's
            reader, _ = _filesystem(spark, bucket, **{"fs.s3a.input.stream.type": kind})
            stream = reader.open(Path(f"{base}/dir/sub/big.bin"))
            assert (
                stream.getWrappedStream().getClass().getSimpleName()
                == {"classic": "S3AInputStream", "analytics": "AnalyticsStream"}[kind]
            )
            for offset in (7 * (1 << 20) + 3, 17, len(data) - 1):  # seeks: ranged GETs
                stream.seek(offset)
                assert stream.read() == data[offset], kind
            stream.close()
            reader.close()

        _write(fs, Path(f"{base}/dir/small.txt"), [b"hello"])
        assert fs.rename(Path(f"{base}/dir"), Path(f"{base}/moved"))  # CopyObject each, then DeleteObjects
        assert not fs.exists(Path(f"{base}/dir"))
        listed = sorted(str(s.getPath()) for s in fs.listStatus(Path(f"{base}/moved")))
        assert listed == [f"{base}/moved/small.txt", f"{base}/moved/sub"]
        moved = s3.get_object(Bucket=bucket, Key="fs/moved/sub/big.bin")["Body"].read()
        assert hashlib.sha256(moved).digest() == hashlib.sha256(data).digest()

        assert fs.delete(Path(f"{base}/moved"), True)
        assert not fs.exists(Path(f"{base}/moved"))
        assert _keys(s3, bucket, "fs/") == ["fs/"]  # S3A keeps the parent "directory" with a marker
    finally:
        fs.close()


def test_sdk_v2_checksums_are_verified_and_stored(lake):
    """With checksum generation on, SDK v2 sends CRC32 trailers on aws-chunked bodies; localcloud checks and keeps them."""
    spark, s3, bucket = lake
    fs, Path = _filesystem(
        spark,
        bucket,
        **{
            "fs.s3a.checksum.generation": "true",
            "fs.s3a.create.checksum.algorithm": "CRC32",
            "fs.s3a.checksum.validation": "true",
            "fs.s3a.multipart.size": "5M",
            "fs.s3a.multipart.threshold": "5M",
        },
    )
    try:
        data = b"checksummed by the AWS SDK v2\n" * 1000
        _write(fs, Path(f"s3a://{bucket}/checksums/a.txt"), [data])
        head = s3.head_object(Bucket=bucket, Key="checksums/a.txt", ChecksumMode="ENABLED")
        assert head["ChecksumCRC32"] == base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        lines = spark.read.text(f"s3a://{bucket}/checksums/a.txt").collect()
        assert [r["value"] for r in lines] == data.decode().splitlines()

        big = bytes(range(256)) * (44 * 1024)  # 11 MiB: multipart, each part with its own CRC32
        _write(
            fs, Path(f"s3a://{bucket}/checksums/big.bin"), [big[i : i + (1 << 20)] for i in range(0, len(big), 1 << 20)]
        )
        stored = s3.get_object(Bucket=bucket, Key="checksums/big.bin")
        assert stored["ETag"].endswith('-3"') and stored["Body"].read() == big
    finally:
        fs.close()
