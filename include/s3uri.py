"""S3 URIs, split and built in one place: ``s3://bucket/key`` <-> ``("bucket", "key")``.

Pure standard library on purpose: include/ modules run in scripts, benchmarks and worker processes that have no
reason to import Airflow (the Amazon provider's ``S3Hook.parse_s3_url`` would pull it in). Self-contained job
scripts (``include/ops/tenants/glue_extract.py``, ``include/spark_jobs/``) keep their own parsing, since Glue and
Spark run them without this project on the path.
"""

from __future__ import annotations

S3 = "s3"
S3A = "s3a"  # Hadoop's connector; the lakehouse inputs accept it wherever they accept s3://


def scheme(uri: str) -> str:
    """The URI's scheme, lower-cased (``""`` for a bare path): ``s3a://b/k`` -> ``"s3a"``."""
    head, sep, _ = uri.partition("://")
    return head.lower() if sep and "/" not in head else ""


def is_s3(uri: str, *, schemes: tuple[str, ...] = (S3,)) -> bool:
    """Whether ``uri`` is an S3 location in one of ``schemes`` (``s3`` only unless told otherwise)."""
    return scheme(uri) in schemes


def parse(uri: str, *, allow_empty_key: bool = False, schemes: tuple[str, ...] = (S3,)) -> tuple[str, str]:
    """``s3://bucket/a/b.png`` -> ``("bucket", "a/b.png")``.

    Raises ``ValueError`` naming the URI when it is not in one of ``schemes``, has no bucket, or (unless
    ``allow_empty_key``, for prefixes such as ``s3://bucket/``) has no key. The key is returned as written:
    a trailing ``/`` of a prefix is kept.
    """
    if not isinstance(uri, str) or not is_s3(uri, schemes=schemes):
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise ValueError(f"not an {wanted} URI: {uri!r}")
    bucket, _, key = uri.partition("://")[2].partition("/")
    if not bucket:
        raise ValueError(f"S3 URI has no bucket: {uri!r}")
    if not key and not allow_empty_key:
        raise ValueError(f"S3 URI needs a bucket and a key: {uri!r}")
    return bucket, key


def join(bucket: str, *parts: str) -> str:
    """``join("b", "datasets", "v1", "manifest.jsonl")`` -> ``"s3://b/datasets/v1/manifest.jsonl"``.

    The parts are joined with ``/`` exactly as given: no slash is stripped and no empty part dropped, because an S3
    key is any string (``/a``, ``a//b`` and ``a/`` are three other objects than ``a``), and a URI must name the key
    the data was written under. ``join("b", key)`` is ``s3://b/<key>`` for every key, so ``parse`` gives it back.
    """
    if not bucket or "/" in bucket:
        raise ValueError(f"not a bucket name: {bucket!r}")
    return f"s3://{bucket}/" + "/".join(parts)


def parent(uri: str) -> str:
    """The URI one level up, without a trailing slash: ``s3://b/d/v1/manifest.jsonl`` -> ``s3://b/d/v1``."""
    return uri.rsplit("/", 1)[0]
