"""S3 on the local filesystem: object bytes in plain files, their index and metadata in SQLite."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import sqlite3
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, unquote

from localcloud.core import DEFAULT_REGION, AwsError, RequestContext, ensure_dir
from localcloud.services.s3 import storage
from localcloud.services.s3.chunked import AwsChunkedReader
from localcloud.store import SqliteStore

CHUNK = 1 << 20
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
OWNER = {"ID": "localcloud", "DisplayName": "localcloud"}
# Headers S3 stores with an object and returns on GET/HEAD.
STORED_HEADERS = ("CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage", "Expires")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Trailing checksum headers of an aws-chunked upload, as the parameters they stand in for.
_TRAILER_CHECKSUMS = {
    f"x-amz-checksum-{name.lower()}": f"Checksum{name}" for name in ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, region TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    modified TEXT NOT NULL, content_type TEXT NOT NULL, metadata TEXT NOT NULL, headers TEXT NOT NULL,
    checksums TEXT NOT NULL DEFAULT '{}', parts INTEGER,
    PRIMARY KEY (bucket, key)
);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, initiated TEXT NOT NULL,
    content_type TEXT NOT NULL, metadata TEXT NOT NULL, headers TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL, number INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    modified TEXT NOT NULL, PRIMARY KEY (upload_id, number)
);
"""


def _now() -> datetime:
    # S3 reports times to the second in Last-Modified; keep the stored value consistent with that.
    return datetime.now(UTC).replace(microsecond=0)


def _quote_etag(digest_hex: str) -> str:
    return f'"{digest_hex}"'


def _no_such_bucket(bucket: str) -> AwsError:
    return AwsError("NoSuchBucket", "The specified bucket does not exist", 404, fields={"BucketName": bucket})


def _no_such_key(key: str) -> AwsError:
    return AwsError("NoSuchKey", "The specified key does not exist.", 404, fields={"Key": key})


def _no_such_upload(upload_id: str) -> AwsError:
    return AwsError(
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
        "aborted or completed.",
        404,
        fields={"UploadId": upload_id},
    )


class _Digests:
    """Hashes computed while a body streams to disk, and checks of the ones the client declared."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5()
        self.sha1 = hashlib.sha1()
        self.sha256 = hashlib.sha256()
        self.crc32 = 0
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        self.sha1.update(chunk)
        self.sha256.update(chunk)
        self.crc32 = zlib.crc32(chunk, self.crc32)
        self.size += len(chunk)

    def computed(self) -> dict[str, str]:
        return {
            "ChecksumCRC32": base64.b64encode(self.crc32.to_bytes(4, "big")).decode(),
            "ChecksumSHA1": base64.b64encode(self.sha1.digest()).decode(),
            "ChecksumSHA256": base64.b64encode(self.sha256.digest()).decode(),
        }

    def verify(self, params: dict[str, Any]) -> dict[str, str]:
        """Compare every declared digest we can compute; return the verified ones to store."""
        if params.get("ContentMD5") and params["ContentMD5"] != base64.b64encode(self.md5.digest()).decode():
            raise AwsError("BadDigest", "The Content-MD5 you specified did not match what we received.")
        verified = {}
        for name, value in self.computed().items():
            declared = params.get(name)
            if declared is None:
                continue
            if declared != value:
                raise AwsError("BadDigest", f"The {name[8:]} you specified did not match the calculated checksum.")
            verified[name] = value
        return verified


class S3Backend:
    def __init__(self, data_dir: Path) -> None:
        self.root = ensure_dir(Path(data_dir) / "s3")
        staging = Path(data_dir) / ".s3-staging"
        self.tmp_dir = ensure_dir(staging / "tmp")
        self.parts_dir = ensure_dir(staging / "multipart")
        self._store = SqliteStore(Path(data_dir) / "s3.sqlite", SCHEMA)

    def close(self) -> None:
        self._store.close()

    # -- plumbing ----------------------------------------------------------------------------------
    def _bucket(self, name: str) -> sqlite3.Row:
        rows = self._store.query("SELECT * FROM buckets WHERE name = ?", (name,))
        if not rows:
            raise _no_such_bucket(name)
        return rows[0]

    def _object(self, bucket: str, key: str) -> sqlite3.Row:
        self._bucket(bucket)
        rows = self._store.query("SELECT * FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
        if not rows:
            raise _no_such_key(key)
        return rows[0]

    def _path(self, bucket: str, key: str) -> Path:
        return storage.key_path(self.root / bucket, key)

    def _spool(self, body: BinaryIO | bytes | None, digests: _Digests) -> Path:
        """Stream a request body into a private temp file, hashing as it goes."""
        tmp = self.tmp_dir / uuid.uuid4().hex
        try:
            with open(tmp, "wb") as out:
                if isinstance(body, bytes | bytearray):
                    digests.update(bytes(body))
                    out.write(body)
                elif body is not None:
                    while chunk := body.read(CHUNK):
                        digests.update(chunk)
                        out.write(chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def _receive(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> tuple[Path, _Digests, dict[str, str], dict[str, Any]]:
        """Spool an upload's body and check the digests it declared: (temp file, digests, verified, params).

        A streaming (aws-chunked) body is decoded and its signatures checked as it spools; its trailing
        checksums join the declared ones, and ``aws-chunked`` leaves the Content-Encoding to store.
        """
        body = params.get("Body")
        upload = ctx.streaming_upload
        reader = AwsChunkedReader(body if body is not None else io.BytesIO(), upload) if upload else None
        digests = _Digests()
        tmp = self._spool(reader or body, digests)
        try:
            if reader is not None:
                params = self._decoded_params(params, reader.trailers)
            checksums = digests.verify(params)
        except AwsError:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, digests, checksums, params

    @staticmethod
    def _decoded_params(params: dict[str, Any], trailers: dict[str, str]) -> dict[str, Any]:
        params = dict(params)
        for name, value in trailers.items():
            if name in _TRAILER_CHECKSUMS:
                params[_TRAILER_CHECKSUMS[name]] = value
        encodings = [e.strip() for e in (params.get("ContentEncoding") or "").split(",")]
        encodings = [e for e in encodings if e and e.lower() != "aws-chunked"]
        if encodings:
            params["ContentEncoding"] = ",".join(encodings)
        else:
            params.pop("ContentEncoding", None)
        return params

    def _commit_object(
        self, bucket: str, key: str, tmp: Path, record: dict[str, Any], conditions: dict[str, Any] | None = None
    ) -> None:
        path = self._path(bucket, key)
        with self._store.transaction() as db:
            if not db.execute("SELECT 1 FROM buckets WHERE name = ?", (bucket,)).fetchone():
                tmp.unlink(missing_ok=True)
                raise _no_such_bucket(bucket)
            if conditions:
                # Checked inside the write's transaction: two writers with the same IfMatch ETag must not both win.
                row = db.execute("SELECT * FROM objects WHERE bucket = ? AND key = ?", (bucket, key)).fetchone()
                try:
                    self._check_preconditions(row, {**conditions, "Key": key}, write=True)
                except AwsError:
                    tmp.unlink(missing_ok=True)
                    raise
            try:
                storage.check_placeable(self.root / bucket, path, key)
            except AwsError:
                tmp.unlink(missing_ok=True)
                raise
            storage.place(tmp, path, key)
            db.execute(
                "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    bucket,
                    key,
                    record["size"],
                    record["etag"],
                    record["modified"].isoformat(),
                    record["content_type"],
                    json.dumps(record["metadata"]),
                    json.dumps(record["headers"]),
                    json.dumps(record.get("checksums", {})),
                    record.get("parts"),
                ),
            )

    @staticmethod
    def _check_preconditions(row: sqlite3.Row | None, params: dict[str, Any], *, write: bool) -> None:
        etag = row["etag"] if row else None
        if params.get("IfMatch") is not None and (
            etag is None or params["IfMatch"] not in (etag, "*", etag.strip('"'))
        ):
            if write and etag is None:
                raise _no_such_key(params.get("Key", ""))
            raise AwsError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412)
        if_none = params.get("IfNoneMatch")
        if if_none is not None and etag is not None and if_none in ("*", etag, etag.strip('"')):
            if write:
                raise AwsError(
                    "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412
                )
            raise AwsError("NotModified", "Not Modified", 304)
        if row is None:
            return
        modified = datetime.fromisoformat(row["modified"])
        if params.get("IfModifiedSince") and modified <= params["IfModifiedSince"]:
            raise AwsError("NotModified", "Not Modified", 304)
        if params.get("IfUnmodifiedSince") and modified > params["IfUnmodifiedSince"]:
            raise AwsError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412)

    def object_file(self, bucket: str, key: str) -> Path:
        """The file holding an existing object, for services that read S3 data in place (Rekognition)."""
        self._object(bucket, key)
        return self._path(bucket, key)

    def readable_object_file(self, bucket: str, key: str) -> Path:
        """``object_file``, failing as Rekognition and Textract do when they cannot read an object from S3."""
        try:
            return self.object_file(bucket, key)
        except AwsError as exc:
            raise AwsError(
                "InvalidS3ObjectException",
                f"Unable to get object metadata from S3 ({exc.code}). Check object key, region and/or access "
                "permissions.",
            ) from exc

    # -- buckets -----------------------------------------------------------------------------------
    def create_bucket(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Bucket"]
        if not _BUCKET_NAME.match(name) or ".." in name or re.match(r"^\d+\.\d+\.\d+\.\d+$", name):
            raise AwsError("InvalidBucketName", "The specified bucket is not valid.", fields={"BucketName": name})
        constraint = (params.get("CreateBucketConfiguration") or {}).get("LocationConstraint")
        # AWS insists the constraint names the region the request was sent to (and none for us-east-1).
        if ctx.region != DEFAULT_REGION and constraint != ctx.region:
            raise AwsError(
                "IllegalLocationConstraintException",
                f"The {constraint or 'unspecified'} location constraint is incompatible for the region specific "
                "endpoint this request was sent to.",
            )
        if ctx.region == DEFAULT_REGION and constraint not in (None, "", DEFAULT_REGION):
            raise AwsError("InvalidLocationConstraint", "The specified location-constraint is not valid")
        with self._store.transaction() as db:
            existing = db.execute("SELECT region FROM buckets WHERE name = ?", (name,)).fetchone()
            if existing:
                # us-east-1 keeps its legacy answer: re-creating your own bucket succeeds.
                if ctx.region == DEFAULT_REGION and existing["region"] == DEFAULT_REGION:
                    return {"Location": f"/{name}"}
                raise AwsError(
                    "BucketAlreadyOwnedByYou",
                    "Your previous request to create the named bucket succeeded and you already own it.",
                    409,
                    fields={"BucketName": name},
                )
            ensure_dir(self.root / name)
            db.execute("INSERT INTO buckets VALUES (?, ?, ?)", (name, ctx.region, _now().isoformat()))
        return {"Location": f"/{name}"}

    def head_bucket(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"BucketRegion": self._bucket(params["Bucket"])["region"]}

    def get_bucket_location(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self._bucket(params["Bucket"])["region"]
        return {"LocationConstraint": None if region == DEFAULT_REGION else region}

    def list_buckets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rows = self._store.query("SELECT * FROM buckets ORDER BY name")
        prefix = params.get("Prefix") or ""
        buckets = [
            {"Name": r["name"], "CreationDate": datetime.fromisoformat(r["created"]), "BucketRegion": r["region"]}
            for r in rows
            if r["name"].startswith(prefix)
            and (not params.get("BucketRegion") or r["region"] == params["BucketRegion"])
        ]
        return {"Buckets": buckets, "Owner": OWNER, **({"Prefix": prefix} if prefix else {})}

    def delete_bucket(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Bucket"]
        with self._store.transaction() as db:
            if not db.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone():
                raise _no_such_bucket(name)
            if db.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)).fetchone():
                raise AwsError(
                    "BucketNotEmpty",
                    "The bucket you tried to delete is not empty",
                    409,
                    fields={"BucketName": name},
                )
            for row in db.execute("SELECT upload_id FROM uploads WHERE bucket = ?", (name,)).fetchall():
                self._drop_upload(db, row["upload_id"])
            db.execute("DELETE FROM buckets WHERE name = ?", (name,))
            shutil.rmtree(self.root / name, ignore_errors=True)
        return {}

    # -- objects -----------------------------------------------------------------------------------
    def put_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket, key = params["Bucket"], params["Key"]
        self._bucket(bucket)
        self._path(bucket, key)  # reject bad keys before reading the body
        tmp, digests, checksums, params = self._receive(ctx, params)
        etag = _quote_etag(digests.md5.hexdigest())
        conditions = {k: params[k] for k in ("IfMatch", "IfNoneMatch") if params.get(k) is not None}
        self._commit_object(bucket, key, tmp, self._record(params, digests.size, etag, checksums), conditions)
        return {"ETag": etag, **checksums}

    @staticmethod
    def _record(params: dict[str, Any], size: int, etag: str, checksums: dict | None = None) -> dict[str, Any]:
        headers = {}
        for name in STORED_HEADERS:
            if params.get(name) is not None:
                value = params[name]
                headers[name] = value.isoformat() if isinstance(value, datetime) else value
        return {
            "size": size,
            "etag": etag,
            "modified": _now(),
            "content_type": params.get("ContentType") or DEFAULT_CONTENT_TYPE,
            "metadata": params.get("Metadata") or {},
            "headers": headers,
            "checksums": checksums or {},
        }

    def _describe(self, row: sqlite3.Row, params: dict[str, Any]) -> dict[str, Any]:
        headers = json.loads(row["headers"])
        if "Expires" in headers:
            headers["Expires"] = datetime.fromisoformat(headers["Expires"])
        out: dict[str, Any] = {
            "ETag": row["etag"],
            "LastModified": datetime.fromisoformat(row["modified"]),
            "ContentLength": row["size"],
            "ContentType": row["content_type"],
            "Metadata": json.loads(row["metadata"]),
            "AcceptRanges": "bytes",
            **headers,
        }
        if row["parts"]:
            out["PartsCount"] = row["parts"]
        if params.get("ChecksumMode") == "ENABLED":
            out.update(json.loads(row["checksums"]))
            out["ChecksumType"] = "FULL_OBJECT" if row["checksums"] != "{}" else None
        return out

    def _range(self, spec: str | None, size: int) -> tuple[int, int] | None:
        if not spec:
            return None
        match = _RANGE.match(spec.strip())
        if not match or match.groups() == ("", ""):
            return None  # S3 ignores a Range header it cannot parse
        first, last = match.groups()
        if first == "":
            start, end = max(size - int(last), 0), size - 1
        else:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        if start >= size or start > end:
            raise AwsError(
                "InvalidRange",
                "The requested range is not satisfiable",
                416,
                fields={"RangeRequested": spec, "ActualObjectSize": str(size)},
                headers={"Content-Range": f"bytes */{size}"},
            )
        return start, end

    def _read(self, ctx: RequestContext, params: dict[str, Any], *, body: bool) -> dict[str, Any]:
        bucket, key = params["Bucket"], params["Key"]
        row = self._object(bucket, key)
        self._check_preconditions(row, params, write=False)
        out = self._describe(row, params)
        span = self._range(params.get("Range"), row["size"])
        if span:
            start, end = span
            out["ContentLength"] = end - start + 1
            out["ContentRange"] = f"bytes {start}-{end}/{row['size']}"
            for name in list(out):
                if name.startswith("Checksum"):
                    del out[name]  # a checksum describes the whole object, not a range
        if body:
            handle = open(self._path(bucket, key), "rb")  # noqa: SIM115 - the protocol streams and closes it
            handle.seek(span[0] if span else 0)
            out["Body"] = handle
        return out

    def get_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._read(ctx, params, body=True)

    def head_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._read(ctx, params, body=False)

    def _delete_key(self, db: sqlite3.Connection, bucket: str, key: str) -> None:
        db.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
        storage.remove(self._path(bucket, key), self.root / bucket)

    def delete_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._bucket(params["Bucket"])
        with self._store.transaction() as db:
            self._delete_key(db, params["Bucket"], params["Key"])
        return {}

    def delete_objects(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = params["Bucket"]
        self._bucket(bucket)
        request = params["Delete"]
        if len(request["Objects"]) > 1000:
            raise AwsError("MalformedXML", "A DeleteObjects request can name at most 1000 keys.")
        deleted, errors = [], []
        for item in request["Objects"]:
            try:
                with self._store.transaction() as db:
                    self._delete_key(db, bucket, item["Key"])
                deleted.append({"Key": item["Key"]})
            except AwsError as exc:
                errors.append({"Key": item["Key"], "Code": exc.code, "Message": exc.message})
        out: dict[str, Any] = {}
        if deleted and not request.get("Quiet"):
            out["Deleted"] = deleted
        if errors:
            out["Errors"] = errors
        return out

    @staticmethod
    def _copy_source(value: str) -> tuple[str, str]:
        source = unquote(value.split("?versionId=", 1)[0]).lstrip("/")
        bucket, _, key = source.partition("/")
        if not bucket or not key:
            raise AwsError("InvalidArgument", "Copy Source must mention the source bucket and key: bucket/key.")
        return bucket, key

    def copy_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        src_bucket, src_key = self._copy_source(params["CopySource"])
        bucket, key = params["Bucket"], params["Key"]
        source = self._object(src_bucket, src_key)
        self._bucket(bucket)
        replace = params.get("MetadataDirective") == "REPLACE"
        if (src_bucket, src_key) == (bucket, key) and not replace:
            raise AwsError(
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object to itself without changing "
                "the object's metadata, storage class, website redirect location or encryption attributes.",
            )
        tmp = self.tmp_dir / uuid.uuid4().hex
        shutil.copyfile(self._path(src_bucket, src_key), tmp)
        if replace:
            record = self._record(params, source["size"], source["etag"])
        else:
            record = {
                "size": source["size"],
                "etag": source["etag"],
                "modified": _now(),
                "content_type": source["content_type"],
                "metadata": json.loads(source["metadata"]),
                "headers": json.loads(source["headers"]),
                "checksums": json.loads(source["checksums"]),
                "parts": source["parts"],
            }
        self._commit_object(bucket, key, tmp, record)
        return {"CopyObjectResult": {"ETag": record["etag"], "LastModified": record["modified"]}}

    # -- listing -----------------------------------------------------------------------------------
    def _keys_after(self, bucket: str, prefix: str, after: str) -> Iterator[sqlite3.Row]:
        while True:
            rows = self._store.query(
                "SELECT key, size, etag, modified FROM objects WHERE bucket = ? AND key > ? "
                "AND substr(key, 1, ?) = ? ORDER BY key LIMIT 1000",
                (bucket, after, len(prefix), prefix),
            )
            yield from rows
            if len(rows) < 1000:
                return
            after = rows[-1]["key"]

    def _list(self, bucket: str, prefix: str, delimiter: str, after: str, max_keys: int) -> dict[str, Any]:
        """One page of keys and common prefixes in UTF-8 order, as both ListObjects versions page them."""
        contents: list[dict[str, Any]] = []
        prefixes: list[str] = []
        last = ""
        truncated = False
        skip_prefix = after if delimiter and after.endswith(delimiter) else None
        for row in self._keys_after(bucket, prefix, after):
            key = row["key"]
            if skip_prefix and key.startswith(skip_prefix):
                continue
            rest = key[len(prefix) :]
            common = None
            if delimiter and delimiter in rest:
                common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if prefixes and prefixes[-1] == common:
                    continue
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            if common:
                prefixes.append(common)
                skip_prefix = common
                last = common
            else:
                contents.append(
                    {
                        "Key": key,
                        "LastModified": datetime.fromisoformat(row["modified"]),
                        "ETag": row["etag"],
                        "Size": row["size"],
                        "StorageClass": "STANDARD",
                    }
                )
                last = key
        return {"contents": contents, "prefixes": prefixes, "truncated": truncated, "last": last}

    @staticmethod
    def _encoder(params: dict[str, Any]):
        if params.get("EncodingType") == "url":
            return lambda value: quote(value, safe="/") if value else value
        return lambda value: value

    def list_objects_v2(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = params["Bucket"]
        self._bucket(bucket)
        prefix, delimiter = params.get("Prefix") or "", params.get("Delimiter") or ""
        max_keys = params.get("MaxKeys", 1000)
        after = params.get("StartAfter") or ""
        if params.get("ContinuationToken"):
            try:
                after = base64.urlsafe_b64decode(params["ContinuationToken"].encode()).decode()
            except (ValueError, UnicodeDecodeError) as exc:
                raise AwsError("InvalidArgument", "The continuation token provided is incorrect") from exc
        page = self._list(bucket, prefix, delimiter, after, max_keys)
        enc = self._encoder(params)
        out: dict[str, Any] = {
            "Name": bucket,
            "Prefix": enc(prefix),
            "MaxKeys": max_keys,
            "KeyCount": len(page["contents"]) + len(page["prefixes"]),
            "IsTruncated": page["truncated"],
            "Contents": [{**c, "Key": enc(c["Key"])} for c in page["contents"]] or None,
            "CommonPrefixes": [{"Prefix": enc(p)} for p in page["prefixes"]] or None,
            "Delimiter": enc(delimiter) or None,
            "EncodingType": params.get("EncodingType"),
            "ContinuationToken": params.get("ContinuationToken"),
            "StartAfter": enc(params.get("StartAfter")),
        }
        if page["truncated"]:
            out["NextContinuationToken"] = base64.urlsafe_b64encode(page["last"].encode()).decode()
        return out

    def list_objects(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = params["Bucket"]
        self._bucket(bucket)
        prefix, delimiter = params.get("Prefix") or "", params.get("Delimiter") or ""
        max_keys = params.get("MaxKeys", 1000)
        page = self._list(bucket, prefix, delimiter, params.get("Marker") or "", max_keys)
        enc = self._encoder(params)
        out: dict[str, Any] = {
            "Name": bucket,
            "Prefix": enc(prefix),
            "Marker": enc(params.get("Marker") or ""),
            "MaxKeys": max_keys,
            "IsTruncated": page["truncated"],
            "Contents": [{**c, "Key": enc(c["Key"]), "Owner": OWNER} for c in page["contents"]] or None,
            "CommonPrefixes": [{"Prefix": enc(p)} for p in page["prefixes"]] or None,
            "Delimiter": enc(delimiter) or None,
            "EncodingType": params.get("EncodingType"),
        }
        if page["truncated"] and delimiter:
            out["NextMarker"] = enc(page["last"])
        return out

    # -- multipart ---------------------------------------------------------------------------------
    def _upload(self, upload_id: str, bucket: str, key: str) -> sqlite3.Row:
        self._bucket(bucket)
        rows = self._store.query("SELECT * FROM uploads WHERE upload_id = ?", (upload_id,))
        if not rows or rows[0]["bucket"] != bucket or rows[0]["key"] != key:
            raise _no_such_upload(upload_id)
        return rows[0]

    def _drop_upload(self, db: sqlite3.Connection, upload_id: str) -> None:
        db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
        db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
        shutil.rmtree(self.parts_dir / upload_id, ignore_errors=True)

    def create_multipart_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket, key = params["Bucket"], params["Key"]
        self._bucket(bucket)
        self._path(bucket, key)
        upload_id = uuid.uuid4().hex
        record = self._record(params, 0, "")
        ensure_dir(self.parts_dir / upload_id)
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    upload_id,
                    bucket,
                    key,
                    _now().isoformat(),
                    record["content_type"],
                    json.dumps(record["metadata"]),
                    json.dumps(record["headers"]),
                ),
            )
        return {"Bucket": bucket, "Key": key, "UploadId": upload_id}

    def _store_part(self, upload_id: str, number: int, tmp: Path, size: int, etag: str) -> datetime:
        if not 1 <= number <= MAX_PART_NUMBER:
            tmp.unlink(missing_ok=True)
            raise AwsError("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
        modified = _now()
        with self._store.transaction() as db:
            if not db.execute("SELECT 1 FROM uploads WHERE upload_id = ?", (upload_id,)).fetchone():
                tmp.unlink(missing_ok=True)
                raise _no_such_upload(upload_id)
            tmp.replace(self.parts_dir / upload_id / str(number))
            db.execute(
                "INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?)",
                (upload_id, number, size, etag, modified.isoformat()),
            )
        return modified

    def upload_part(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._upload(params["UploadId"], params["Bucket"], params["Key"])
        tmp, digests, checksums, params = self._receive(ctx, params)
        etag = _quote_etag(digests.md5.hexdigest())
        self._store_part(params["UploadId"], params["PartNumber"], tmp, digests.size, etag)
        return {"ETag": etag, **checksums}

    def upload_part_copy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._upload(params["UploadId"], params["Bucket"], params["Key"])
        src_bucket, src_key = self._copy_source(params["CopySource"])
        source = self._object(src_bucket, src_key)
        span = self._range(params.get("CopySourceRange"), source["size"]) or (0, source["size"] - 1)
        digests = _Digests()
        with open(self._path(src_bucket, src_key), "rb") as handle:
            handle.seek(span[0])
            tmp = self._spool(_Limited(handle, span[1] - span[0] + 1), digests)
        etag = _quote_etag(digests.md5.hexdigest())
        modified = self._store_part(params["UploadId"], params["PartNumber"], tmp, digests.size, etag)
        return {"CopyPartResult": {"ETag": etag, "LastModified": modified}}

    def list_parts(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        upload = self._upload(params["UploadId"], params["Bucket"], params["Key"])
        marker = int(params.get("PartNumberMarker") or 0)
        limit = params.get("MaxParts", 1000)
        rows = self._store.query(
            "SELECT * FROM parts WHERE upload_id = ? AND number > ? ORDER BY number LIMIT ?",
            (upload["upload_id"], marker, limit + 1),
        )
        parts = [
            {
                "PartNumber": r["number"],
                "ETag": r["etag"],
                "Size": r["size"],
                "LastModified": datetime.fromisoformat(r["modified"]),
            }
            for r in rows[:limit]
        ]
        out = {
            "Bucket": upload["bucket"],
            "Key": upload["key"],
            "UploadId": upload["upload_id"],
            "MaxParts": limit,
            "IsTruncated": len(rows) > limit,
            "Parts": parts or None,
            "StorageClass": "STANDARD",
        }
        if len(rows) > limit:
            out["NextPartNumberMarker"] = parts[-1]["PartNumber"]
        return out

    def list_multipart_uploads(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = params["Bucket"]
        self._bucket(bucket)
        prefix = params.get("Prefix") or ""
        rows = self._store.query(
            "SELECT * FROM uploads WHERE bucket = ? AND substr(key, 1, ?) = ? ORDER BY key, initiated",
            (bucket, len(prefix), prefix),
        )
        uploads = [
            {"Key": r["key"], "UploadId": r["upload_id"], "Initiated": datetime.fromisoformat(r["initiated"])}
            for r in rows
        ]
        return {"Bucket": bucket, "Prefix": prefix, "IsTruncated": False, "Uploads": uploads or None}

    def abort_multipart_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._upload(params["UploadId"], params["Bucket"], params["Key"])
        with self._store.transaction() as db:
            self._drop_upload(db, params["UploadId"])
        return {}

    def complete_multipart_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket, key, upload_id = params["Bucket"], params["Key"], params["UploadId"]
        upload = self._upload(upload_id, bucket, key)
        requested = (params.get("MultipartUpload") or {}).get("Parts") or []
        if not requested:
            raise AwsError("MalformedXML", "You must specify at least one part.")
        stored = {r["number"]: r for r in self._store.query("SELECT * FROM parts WHERE upload_id = ?", (upload_id,))}
        numbers = [p["PartNumber"] for p in requested]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise AwsError("InvalidPartOrder", "The list of parts was not in ascending order.")
        for index, part in enumerate(requested):
            row = stored.get(part["PartNumber"])
            if row is None or part.get("ETag", "").strip('"') != row["etag"].strip('"'):
                raise AwsError(
                    "InvalidPart",
                    "One or more of the specified parts could not be found. The part may not have been uploaded, "
                    "or the specified entity tag may not match the part's entity tag.",
                    fields={"PartNumber": str(part["PartNumber"])},
                )
            if index < len(requested) - 1 and row["size"] < MIN_PART_SIZE:
                raise AwsError(
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed object size.",
                    fields={"PartNumber": str(part["PartNumber"]), "ProposedSize": str(row["size"])},
                )
        joined = hashlib.md5()
        tmp = self.tmp_dir / uuid.uuid4().hex
        with open(tmp, "wb") as out:
            for number in numbers:
                joined.update(bytes.fromhex(stored[number]["etag"].strip('"')))
                with open(self.parts_dir / upload_id / str(number), "rb") as part:
                    shutil.copyfileobj(part, out, CHUNK)
        etag = _quote_etag(f"{joined.hexdigest()}-{len(numbers)}")
        record = {
            "size": sum(stored[n]["size"] for n in numbers),
            "etag": etag,
            "modified": _now(),
            "content_type": upload["content_type"],
            "metadata": json.loads(upload["metadata"]),
            "headers": json.loads(upload["headers"]),
            "parts": len(numbers),
        }
        self._commit_object(bucket, key, tmp, record)
        with self._store.transaction() as db:
            self._drop_upload(db, upload_id)
        return {"Location": f"http://{ctx.host}/{bucket}/{quote(key)}", "Bucket": bucket, "Key": key, "ETag": etag}


class _Limited:
    """A read-only view of the next ``remaining`` bytes of a file."""

    def __init__(self, handle: BinaryIO, remaining: int) -> None:
        self.handle = handle
        self.remaining = remaining

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        size = self.remaining if size < 0 else min(size, self.remaining)
        chunk = self.handle.read(size)
        self.remaining -= len(chunk)
        return chunk
