"""boto3 conformance of localcloud's S3: the calls, their exact error codes, and files on disk."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid

import pytest
from botocore.exceptions import ClientError


def _bucket(s3, prefix: str = "t") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def _status(excinfo: pytest.ExceptionInfo[ClientError]) -> int:
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


# -- buckets -----------------------------------------------------------------------------------------
def test_bucket_lifecycle(s3, localcloud):
    name = _bucket(s3)
    assert (localcloud.data_dir / "s3" / name).is_dir()
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    s3.delete_bucket(Bucket=name)
    assert not (localcloud.data_dir / "s3" / name).exists()
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=name)
    assert _code(exc) == "404"


def test_create_existing_bucket_in_us_east_1_answers_200(s3):
    name = _bucket(s3)
    assert s3.create_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_create_existing_bucket_elsewhere_is_already_owned(localcloud):
    s3 = localcloud.client("s3", region="eu-west-1")
    name = f"eu-{uuid.uuid4().hex[:12]}"
    config = {"LocationConstraint": "eu-west-1"}
    s3.create_bucket(Bucket=name, CreateBucketConfiguration=config)
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration=config)
    assert (_code(exc), _status(exc)) == ("BucketAlreadyOwnedByYou", 409)
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"


def test_region_needs_matching_location_constraint(localcloud):
    s3 = localcloud.client("s3", region="eu-west-1")
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=f"eu-{uuid.uuid4().hex[:12]}")
    assert _code(exc) == "IllegalLocationConstraintException"


def test_missing_bucket_errors(s3):
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    for call in (
        lambda: s3.list_objects_v2(Bucket=missing),
        lambda: s3.put_object(Bucket=missing, Key="k", Body=b"x"),
        lambda: s3.get_object(Bucket=missing, Key="k"),
        lambda: s3.delete_bucket(Bucket=missing),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert (_code(exc), _status(exc)) == ("NoSuchBucket", 404)
        assert exc.value.response["Error"]["BucketName"] == missing


def test_non_empty_bucket_cannot_be_deleted(s3):
    name = _bucket(s3)
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=name)
    assert (_code(exc), _status(exc)) == ("BucketNotEmpty", 409)


@pytest.mark.parametrize("name", ["UpperCase", "a", "has_underscore", "x" * 64, "192.168.1.1", "dots..twice"])
def test_invalid_bucket_names(s3, name):
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name)
    assert _code(exc) == "InvalidBucketName"


# -- objects -----------------------------------------------------------------------------------------
def test_put_get_head_roundtrip_with_metadata(s3, localcloud):
    name = _bucket(s3)
    body = b"hello world"
    put = s3.put_object(
        Bucket=name, Key="dir/file.json", Body=body, ContentType="application/json", Metadata={"run-id": "r1"}
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=name, Key="dir/file.json")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/json"
    assert got["Metadata"] == {"run-id": "r1"}
    assert got["ETag"] == put["ETag"]
    head = s3.head_object(Bucket=name, Key="dir/file.json")
    assert head["ContentLength"] == len(body)
    assert head["LastModified"] == got["LastModified"]
    # The object is a plain file a user can open.
    assert (localcloud.data_dir / "s3" / name / "dir" / "file.json").read_bytes() == body


def test_default_content_type_and_overwrite(s3):
    name = _bucket(s3)
    s3.put_object(Bucket=name, Key="k", Body=b"one")
    s3.put_object(Bucket=name, Key="k", Body=b"two")
    got = s3.get_object(Bucket=name, Key="k")
    assert got["ContentType"] == "binary/octet-stream"
    assert got["Body"].read() == b"two"


def test_missing_key(s3):
    name = _bucket(s3)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=name, Key="nope/x")
    assert (_code(exc), _status(exc)) == ("NoSuchKey", 404)
    assert exc.value.response["Error"]["Key"] == "nope/x"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=name, Key="nope/x")
    assert (_code(exc), _status(exc)) == ("404", 404)


@pytest.mark.parametrize(
    ("spec", "expected", "content_range"),
    [
        ("bytes=0-3", b"0123", "bytes 0-3/10"),
        ("bytes=4-", b"456789", "bytes 4-9/10"),
        ("bytes=-3", b"789", "bytes 7-9/10"),
        ("bytes=8-100", b"89", "bytes 8-9/10"),
    ],
)
def test_get_range(s3, spec, expected, content_range):
    name = _bucket(s3)
    s3.put_object(Bucket=name, Key="digits", Body=b"0123456789")
    got = s3.get_object(Bucket=name, Key="digits", Range=spec)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["Body"].read() == expected
    assert got["ContentRange"] == content_range
    assert got["ContentLength"] == len(expected)


def test_unsatisfiable_range(s3):
    name = _bucket(s3)
    s3.put_object(Bucket=name, Key="digits", Body=b"0123456789")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=name, Key="digits", Range="bytes=50-60")
    assert (_code(exc), _status(exc)) == ("InvalidRange", 416)


def test_conditional_requests(s3):
    name = _bucket(s3)
    etag = s3.put_object(Bucket=name, Key="k", Body=b"v1")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=name, Key="k", IfMatch='"0000"')
    assert (_code(exc), _status(exc)) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=name, Key="k", IfNoneMatch=etag)
    assert _status(exc) == 304
    # Conditional create (If-None-Match: *), which table formats use for atomic commits.
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=name, Key="k", Body=b"v2", IfNoneMatch="*")
    assert (_code(exc), _status(exc)) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"v1"
    s3.put_object(Bucket=name, Key="new", Body=b"n", IfNoneMatch="*")


def test_content_md5_mismatch_is_bad_digest_and_stores_nothing(s3):
    name = _bucket(s3)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=name, Key="k", Body=b"payload", ContentMD5=wrong)
    assert _code(exc) == "BadDigest"
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0


def test_delete_object_and_objects(s3, localcloud):
    name = _bucket(s3)
    for key in ("a/1", "a/2", "b"):
        s3.put_object(Bucket=name, Key=key, Body=b"x")
    assert s3.delete_object(Bucket=name, Key="b")["ResponseMetadata"]["HTTPStatusCode"] == 204
    # Deleting a missing key is not an error in S3.
    assert s3.delete_object(Bucket=name, Key="b")["ResponseMetadata"]["HTTPStatusCode"] == 204
    out = s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "a/1"}, {"Key": "a/2"}, {"Key": "zz"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["a/1", "a/2", "zz"]
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    # Emptied folders are pruned so the tree on disk mirrors the keys.
    assert list((localcloud.data_dir / "s3" / name).iterdir()) == []
    quiet = s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "x"}], "Quiet": True})
    assert "Deleted" not in quiet


def test_copy_object(s3):
    name = _bucket(s3)
    s3.put_object(Bucket=name, Key="src key+1.txt", Body=b"data", ContentType="text/plain", Metadata={"a": "1"})
    out = s3.copy_object(Bucket=name, Key="dst", CopySource={"Bucket": name, "Key": "src key+1.txt"})
    assert out["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"data").hexdigest()}"'
    got = s3.get_object(Bucket=name, Key="dst")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (b"data", "text/plain", {"a": "1"})
    s3.copy_object(
        Bucket=name,
        Key="dst",
        CopySource=f"{name}/src key+1.txt",
        MetadataDirective="REPLACE",
        Metadata={"b": "2"},
        ContentType="text/csv",
    )
    head = s3.head_object(Bucket=name, Key="dst")
    assert (head["Metadata"], head["ContentType"]) == ({"b": "2"}, "text/csv")
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=name, Key="dst", CopySource={"Bucket": name, "Key": "dst"})
    assert _code(exc) == "InvalidRequest"
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=name, Key="x", CopySource={"Bucket": name, "Key": "missing"})
    assert _code(exc) == "NoSuchKey"


# -- listing -----------------------------------------------------------------------------------------
def test_list_objects_v2_prefix_delimiter_and_pagination(s3):
    name = _bucket(s3)
    keys = [f"data/part-{i:03d}.csv" for i in range(25)] + ["data/sub/x.csv", "data/sub/y.csv", "other/z", "top"]
    for key in keys:
        s3.put_object(Bucket=name, Key=key, Body=b"x")

    listed, token, pages = [], None, 0
    while True:
        kwargs = {"Bucket": name, "MaxKeys": 7, **({"ContinuationToken": token} if token else {})}
        page = s3.list_objects_v2(**kwargs)
        pages += 1
        listed += [c["Key"] for c in page.get("Contents", [])]
        assert page["KeyCount"] == len(page.get("Contents", []))
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert listed == sorted(keys)
    assert pages == 5

    top = s3.list_objects_v2(Bucket=name, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["data/", "other/"]
    assert [c["Key"] for c in top["Contents"]] == ["top"]

    sub = s3.list_objects_v2(Bucket=name, Prefix="data/", Delimiter="/")
    assert [p["Prefix"] for p in sub["CommonPrefixes"]] == ["data/sub/"]
    assert len(sub["Contents"]) == 25

    after = s3.list_objects_v2(Bucket=name, StartAfter="data/sub/x.csv")
    assert [c["Key"] for c in after["Contents"]] == ["data/sub/y.csv", "other/z", "top"]


def test_paginator_with_delimiter_counts_prefixes_once(s3):
    name = _bucket(s3)
    for i in range(5):
        for j in range(3):
            s3.put_object(Bucket=name, Key=f"p{i}/f{j}", Body=b"x")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=name, Delimiter="/", PaginationConfig={"PageSize": 2})
    prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
    assert prefixes == [f"p{i}/" for i in range(5)]


def test_list_objects_v1_and_url_encoded_keys(s3):
    name = _bucket(s3)
    odd = ["a b/c+d", "percent%20sign", "unicodé/ключ"]
    for key in odd:
        s3.put_object(Bucket=name, Key=key, Body=b"x")
    # boto3 asks for url encoding and decodes it: keys must come back exactly.
    assert sorted(c["Key"] for c in s3.list_objects_v2(Bucket=name)["Contents"]) == sorted(odd)
    assert sorted(c["Key"] for c in s3.list_objects(Bucket=name)["Contents"]) == sorted(odd)
    for key in odd:
        assert s3.get_object(Bucket=name, Key=key)["Body"].read() == b"x"


# -- multipart ---------------------------------------------------------------------------------------
def test_upload_file_50_mb_uses_multipart(s3, tmp_path, localcloud):
    name = _bucket(s3)
    source = tmp_path / "big.bin"
    data = os.urandom(50 * 1024 * 1024)
    source.write_bytes(data)
    s3.upload_file(str(source), name, "models/big.bin")
    head = s3.head_object(Bucket=name, Key="models/big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-7"')  # boto3's 8 MiB parts, as on AWS
    assert (localcloud.data_dir / "s3" / name / "models" / "big.bin").read_bytes() == data
    target = tmp_path / "back.bin"
    s3.download_file(name, "models/big.bin", str(target))
    assert target.read_bytes() == data
    assert s3.list_multipart_uploads(Bucket=name).get("Uploads") is None


def test_multipart_errors_and_abort(s3):
    name = _bucket(s3)
    upload = s3.create_multipart_upload(Bucket=name, Key="mp")["UploadId"]
    small = s3.upload_part(Bucket=name, Key="mp", UploadId=upload, PartNumber=1, Body=b"a" * 100)
    last = s3.upload_part(Bucket=name, Key="mp", UploadId=upload, PartNumber=2, Body=b"b" * 10)
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=name, Key="mp", UploadId=upload)["Parts"]] == [1, 2]
    parts = [{"PartNumber": 1, "ETag": small["ETag"]}, {"PartNumber": 2, "ETag": last["ETag"]}]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=name, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts})
    assert _code(exc) == "EntityTooSmall"
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=name, Key="mp", UploadId=upload, MultipartUpload={"Parts": list(reversed(parts))}
        )
    assert _code(exc) == "InvalidPartOrder"
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=name, Key="mp", UploadId=upload, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"bad"'}]}
        )
    assert _code(exc) == "InvalidPart"
    # A single small part is a valid (last) part.
    done = s3.complete_multipart_upload(Bucket=name, Key="mp", UploadId=upload, MultipartUpload={"Parts": [parts[0]]})
    joined = hashlib.md5(bytes.fromhex(small["ETag"].strip('"'))).hexdigest()
    assert done["ETag"] == f'"{joined}-1"'
    assert s3.get_object(Bucket=name, Key="mp")["Body"].read() == b"a" * 100

    other = s3.create_multipart_upload(Bucket=name, Key="gone")["UploadId"]
    s3.abort_multipart_upload(Bucket=name, Key="gone", UploadId=other)
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=name, Key="gone", UploadId=other, PartNumber=1, Body=b"x")
    assert (_code(exc), _status(exc)) == ("NoSuchUpload", 404)


def test_managed_copy_of_large_object_uses_upload_part_copy(s3, tmp_path):
    name = _bucket(s3)
    data = os.urandom(12 * 1024 * 1024)
    s3.put_object(Bucket=name, Key="src", Body=data)
    s3.copy({"Bucket": name, "Key": "src"}, name, "dst")
    assert s3.head_object(Bucket=name, Key="dst")["ETag"].endswith('-2"')
    assert s3.get_object(Bucket=name, Key="dst")["Body"].read() == data


def test_object_and_prefix_collision_is_refused_clearly(s3):
    name = _bucket(s3)
    s3.put_object(Bucket=name, Key="a", Body=b"file")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=name, Key="a/b", Body=b"nested")
    assert _code(exc) == "InvalidRequest"
    assert "stores each object as a file" in exc.value.response["Error"]["Message"]
    # Folder markers ("dir/") coexist with keys below them.
    s3.put_object(Bucket=name, Key="dir/", Body=b"")
    s3.put_object(Bucket=name, Key="dir/x", Body=b"x")
    assert [c["Key"] for c in s3.list_objects_v2(Bucket=name, Prefix="dir")["Contents"]] == ["dir/", "dir/x"]
    assert s3.get_object(Bucket=name, Key="a")["Body"].read() == b"file"


def test_presigned_get_url(s3):
    import urllib.request

    name = _bucket(s3)
    s3.put_object(Bucket=name, Key="shared.txt", Body=b"presigned")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "shared.txt"}, ExpiresIn=60)
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"presigned"
    tampered = url.replace("shared.txt", "other.txt")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(tampered)
    assert exc.value.code == 403


def _conditional_put(client, name: str, body: bytes, etag: str, barrier, outcomes: list[str]) -> None:
    barrier.wait()
    try:
        client.put_object(Bucket=name, Key="k", Body=body, IfMatch=etag)
        outcomes.append("ok")
    except ClientError as err:
        outcomes.append(err.response["Error"]["Code"])


def test_concurrent_conditional_puts_have_one_winner(localcloud, s3):
    import threading

    name = f"cond-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    etag = s3.put_object(Bucket=name, Key="k", Body=b"v0")["ETag"]
    clients = [localcloud.client("s3") for _ in range(6)]
    for round_ in range(5):
        barrier = threading.Barrier(len(clients))
        outcomes: list[str] = []
        threads = [
            threading.Thread(
                target=_conditional_put, args=(c, name, f"r{round_}w{i}".encode(), etag, barrier, outcomes)
            )
            for i, c in enumerate(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # The check and the write are one transaction: exactly one writer holding the ETag wins each round.
        assert sorted(outcomes) == ["PreconditionFailed"] * 5 + ["ok"]
        etag = s3.head_object(Bucket=name, Key="k")["ETag"]
