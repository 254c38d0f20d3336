"""include.s3uri: the one place S3 URIs are split and built."""

from __future__ import annotations

import pytest

from include import s3uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/a/b.png", ("bucket", "a/b.png")),
        ("s3://bucket/prefix/", ("bucket", "prefix/")),
        ("S3://bucket/k", ("bucket", "k")),
        ("s3://b/k with space/x.csv", ("b", "k with space/x.csv")),
    ],
)
def test_parse_splits_bucket_and_key(uri: str, expected: tuple[str, str]) -> None:
    assert s3uri.parse(uri) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://bucket/key", "not an s3:// URI"),
        ("bucket/key", "not an s3:// URI"),
        ("s3a://bucket/key", "not an s3:// URI"),
        ("s3:///key", "no bucket"),
        ("s3://bucket", "needs a bucket and a key"),
        ("s3://bucket/", "needs a bucket and a key"),
    ],
)
def test_parse_refuses_what_is_not_an_object(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        s3uri.parse(uri)
    assert repr(uri) in str(caught.value)  # the message names the offending URI


def test_parse_prefixes_and_s3a_on_request() -> None:
    assert s3uri.parse("s3://bucket", allow_empty_key=True) == ("bucket", "")
    assert s3uri.parse("s3://bucket/photos/", allow_empty_key=True) == ("bucket", "photos/")
    both = (s3uri.S3, s3uri.S3A)
    assert s3uri.parse("s3a://lake/raw/x.csv", schemes=both) == ("lake", "raw/x.csv")
    assert s3uri.is_s3("s3a://lake/x", schemes=both) and not s3uri.is_s3("s3a://lake/x")
    assert not s3uri.is_s3("file:///tmp/s3://x") and s3uri.scheme("/tmp/a") == ""


def test_join_builds_what_parse_reads() -> None:
    assert s3uri.join("b", "datasets", "v1", "manifest.jsonl") == "s3://b/datasets/v1/manifest.jsonl"
    assert s3uri.join("b", "photos/") == "s3://b/photos/"
    assert s3uri.join("b") == "s3://b/"
    with pytest.raises(ValueError, match="bucket"):
        s3uri.join("b/k", "x")


@pytest.mark.parametrize("key", ["a/c.png", "/a", "a//b", "a/", "a b+%2F", "dir/./x", "é/ü.png"])
def test_join_keeps_every_key_as_written(key: str) -> None:
    # A key is any string: a URI that dropped a slash would name another object than the one written.
    assert s3uri.join("b", key) == f"s3://b/{key}"
    assert s3uri.parse(s3uri.join("b", key)) == ("b", key)
    head, _, tail = key.rpartition("/")
    if head:
        assert s3uri.join("b", head, tail) == f"s3://b/{key}"


def test_parent() -> None:
    assert s3uri.parent("s3://b/d/v1/manifest.jsonl") == "s3://b/d/v1"
