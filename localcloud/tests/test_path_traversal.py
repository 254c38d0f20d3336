"""No key, however crafted, may reach outside ``<data>/s3/<bucket>``."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import rawhttp

from localcloud.core import AwsError
from localcloud.services.s3 import storage


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def bucket(s3) -> str:
    name = f"trav-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.mark.parametrize(
    ("raw_key", "key"),
    [
        ("../../escape.txt", "../../escape.txt"),
        ("%2E%2E/%2E%2E/%2E%2E/escape.txt", "../../../escape.txt"),
        ("..%2F..%2Fescape.txt", "../../escape.txt"),
        ("/etc/passwd", "/etc/passwd"),
        ("a/./b/../c", "a/./b/../c"),
        ("nul%00byte", "nul\0byte"),
        ("..", ".."),
    ],
)
def test_crafted_keys_stay_inside_the_bucket(localcloud, s3, bucket, raw_key, key):
    root = localcloud.data_dir.parent
    before = _files(root)
    put = rawhttp.send(localcloud.endpoint, "PUT", f"/{bucket}/{raw_key}", body=b"payload")
    assert put.status == 200, put.body
    created = _files(root) - before
    bucket_dir = (localcloud.data_dir / "s3" / bucket).resolve()
    objects = [p for p in created if p.resolve().is_relative_to(bucket_dir)]
    assert len(objects) == 1, created
    # Apart from the object file, only localcloud's own bookkeeping may change (SQLite WAL, logs).
    for path in created - set(objects):
        assert path.resolve().is_relative_to(localcloud.data_dir.resolve()) or path.suffix == ".log", path
    # The key survives exactly as the client meant it, and reads back.
    assert key in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    got = rawhttp.send(localcloud.endpoint, "GET", f"/{bucket}/{raw_key}")
    assert (got.status, got.body) == (200, b"payload")


def test_boto3_dotdot_key_roundtrip(s3, bucket, localcloud):
    s3.put_object(Bucket=bucket, Key="../../../../tmp/boto3-escape", Body=b"x")
    assert s3.get_object(Bucket=bucket, Key="../../../../tmp/boto3-escape")["Body"].read() == b"x"
    assert not (localcloud.data_dir.parent / "tmp" / "boto3-escape").exists()


@pytest.mark.parametrize("path", ["/../outside", "/..", "/./x", "/%2E%2E/x"])
def test_dot_buckets_are_invalid_names(localcloud, path):
    response = rawhttp.send(localcloud.endpoint, "PUT", path)
    assert response.status in (400, 404, 405)
    assert not (localcloud.data_dir / "outside").exists()
    assert not (localcloud.data_dir.parent / "outside").exists()


def test_key_path_encoding_is_injective_and_contained(tmp_path):
    keys = ["a", "a/", "a//b", "/a", "%", "%2E", ".", "..", "../x", "x/..", "a\0b", "a%00b", ""]
    paths = {}
    for key in keys:
        path = storage.key_path(tmp_path, key)
        assert path.resolve().is_relative_to(tmp_path.resolve()) and path != tmp_path
        paths.setdefault(path, []).append(key)
    assert all(len(v) == 1 for v in paths.values()), paths


def test_overlong_key_is_refused(tmp_path):
    with pytest.raises(AwsError) as exc:
        storage.key_path(tmp_path, "k" * 1025)
    assert exc.value.code == "KeyTooLongError"
