"""State lives on disk: a restarted localcloud still has every bucket, object, upload, table and item."""

from __future__ import annotations

import os

from localcloud.process import LocalCloudProcess


def test_state_survives_restart(fresh_localcloud):
    server = fresh_localcloud
    s3, ddb = server.client("s3"), server.client("dynamodb")
    s3.create_bucket(Bucket="persist")
    payload = os.urandom(6 * 1024 * 1024)
    s3.put_object(Bucket="persist", Key="renders/img-001.png", Body=payload, Metadata={"shard": "3"})
    upload = s3.create_multipart_upload(Bucket="persist", Key="half-done")["UploadId"]
    part = s3.upload_part(Bucket="persist", Key="half-done", UploadId=upload, PartNumber=1, Body=payload)
    ddb.create_table(
        TableName="tracking",
        KeySchema=[{"AttributeName": "doc", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "doc", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="tracking", Item={"doc": {"S": "a.pdf"}, "stage": {"S": "extract"}, "n": {"N": "3"}})

    server.stop()
    restarted = LocalCloudProcess(server.data_dir, port=server.port).start()
    try:
        s3, ddb = restarted.client("s3"), restarted.client("dynamodb")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["persist"]
        got = s3.get_object(Bucket="persist", Key="renders/img-001.png")
        assert got["Body"].read() == payload
        assert got["Metadata"] == {"shard": "3"}
        # An upload started before the restart can still be finished after it.
        s3.complete_multipart_upload(
            Bucket="persist",
            Key="half-done",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        assert s3.head_object(Bucket="persist", Key="half-done")["ContentLength"] == len(payload)
        assert ddb.describe_table(TableName="tracking")["Table"]["TableStatus"] == "ACTIVE"
        item = ddb.get_item(TableName="tracking", Key={"doc": {"S": "a.pdf"}})["Item"]
        assert item == {"doc": {"S": "a.pdf"}, "stage": {"S": "extract"}, "n": {"N": "3"}}
    finally:
        restarted.stop()


def test_clean_shutdown_leaves_no_write_ahead_log(tmp_path):
    server = LocalCloudProcess(tmp_path / "data").start()
    server.client("s3").create_bucket(Bucket="wal-check")
    server.stop()
    assert server.proc.returncode == 0
    leftovers = sorted(p.name for p in server.data_dir.glob("*.sqlite-wal"))
    assert leftovers == []
