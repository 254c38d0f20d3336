"""S3 uploads with ``Content-Encoding: aws-chunked`` bodies (SigV4 streaming), as Hadoop S3A sends them.

The requests are signed here by a small independent signer that follows AWS's chunked-upload documentation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import io
import uuid
import zlib
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from localcloud import sigv4
from localcloud.core import AwsError
from localcloud.services.s3.chunked import AwsChunkedReader

ACCESS_KEY, SECRET, REGION = "localcloud", "localcloud-secret", "us-east-1"
SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class Signer:
    """Seed, chunk and trailer signatures for one streaming request."""

    def __init__(self, secret: str = SECRET, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        self.amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = self.amz_date[:8]
        self.scope = f"{day}/{REGION}/s3/aws4_request"
        key = f"AWS4{secret}".encode()
        for part in (day, REGION, "s3", "aws4_request"):
            key = _hmac(key, part)
        self.key = key
        self.previous = ""

    def _sign(self, *lines: str) -> str:
        return hmac.new(self.key, "\n".join(lines).encode(), hashlib.sha256).hexdigest()

    def seed(self, method: str, path: str, query: str, headers: dict[str, str]) -> str:
        names = sorted(headers)
        canonical = "\n".join(
            [
                method,
                path,
                query,
                "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                ";".join(names),
                headers["x-amz-content-sha256"],
            ]
        )
        self.previous = self._sign(
            "AWS4-HMAC-SHA256", self.amz_date, self.scope, hashlib.sha256(canonical.encode()).hexdigest()
        )
        credential = f"Credential={ACCESS_KEY}/{self.scope}"
        return f"AWS4-HMAC-SHA256 {credential}, SignedHeaders={';'.join(names)}, Signature={self.previous}"

    def chunk(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.previous = self._sign("AWS4-HMAC-SHA256-PAYLOAD", self.amz_date, self.scope, self.previous, EMPTY, digest)
        return self.previous

    def trailer(self, canonical: str) -> str:
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        self.previous = self._sign("AWS4-HMAC-SHA256-TRAILER", self.amz_date, self.scope, self.previous, digest)
        return self.previous


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def encode(
    data: bytes,
    payload: str,
    signer: Signer,
    *,
    chunk_size: int = 64 * 1024,
    trailers: dict[str, str] | None = None,
    tamper: int | None = None,
) -> bytes:
    """The aws-chunked body; ``tamper`` flips a byte of that chunk after it is signed."""
    out = bytearray()
    signed = payload != UNSIGNED_TRAILER
    pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for index, piece in enumerate(pieces):
        extension = f";chunk-signature={signer.chunk(piece)}" if signed else ""
        if tamper == index:
            piece = bytes([piece[0] ^ 1]) + piece[1:]
        out += f"{len(piece):x}{extension}\r\n".encode()
        if piece:
            out += piece + b"\r\n"
    if payload == SIGNED:
        return bytes(out + b"\r\n")
    canonical = "".join(f"{k}:{v}\n" for k, v in (trailers or {}).items())
    out += canonical.replace("\n", "\r\n").encode()
    if signed:
        out += f"x-amz-trailer-signature:{signer.trailer(canonical)}\r\n".encode()
    return bytes(out + b"\r\n")


def put_chunked(
    endpoint: str,
    path: str,
    data: bytes,
    payload: str,
    *,
    query: str = "",
    trailers: dict[str, str] | None = None,
    decoded_length: int | None = None,
    secret: str = SECRET,
    extra_headers: dict[str, str] | None = None,
    body_hook=None,
    **encode_options,
) -> tuple[int, dict[str, str], bytes]:
    host = endpoint.split("//", 1)[1]
    signer = Signer(secret)
    headers = {
        "host": host,
        "x-amz-date": signer.amz_date,
        "x-amz-content-sha256": payload,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data) if decoded_length is None else decoded_length),
        **(extra_headers or {}),
    }
    if trailers:
        headers["x-amz-trailer"] = ",".join(trailers)
    headers["authorization"] = signer.seed("PUT", path, query, {k: v for k, v in headers.items()})
    body = encode(data, payload, signer, trailers=trailers, **encode_options)
    if body_hook:
        body = body_hook(body)
    conn = http.client.HTTPConnection(host, timeout=60)
    try:
        conn.putrequest("PUT", f"{path}?{query}" if query else path, skip_host=True, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture
def bucket(s3):
    name = f"chunked-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


def _absent(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


def _code(body: bytes) -> str:
    return body.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0].decode()


@pytest.mark.parametrize("payload", [SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER])
def test_chunked_put_round_trips(localcloud, s3, bucket, payload):
    data = bytes(range(256)) * 1000 + b"tail"  # several chunks and a short last one
    trailers = {"x-amz-checksum-crc32": crc32(data)} if payload != SIGNED else None
    status, headers, body = put_chunked(
        localcloud.endpoint,
        f"/{bucket}/obj",
        data,
        payload,
        trailers=trailers,
        extra_headers={"content-type": "application/x-parquet"},
    )
    assert status == 200, body
    assert headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == data
    assert got["ContentLength"] == len(data)
    assert got["ContentType"] == "application/x-parquet"
    assert "ContentEncoding" not in got  # aws-chunked is a transfer detail, not stored
    if trailers:
        assert headers["x-amz-checksum-crc32"] == trailers["x-amz-checksum-crc32"]


def test_other_content_encodings_are_kept(localcloud, s3, bucket):
    data = b"gzipped-bytes"
    status, _, body = put_chunked(
        localcloud.endpoint, f"/{bucket}/gz", data, SIGNED, extra_headers={"content-encoding": "gzip,aws-chunked"}
    )
    assert status == 200, body
    assert s3.head_object(Bucket=bucket, Key="gz")["ContentEncoding"] == "gzip"


def test_empty_chunked_put(localcloud, s3, bucket):
    status, _, body = put_chunked(localcloud.endpoint, f"/{bucket}/empty", b"", SIGNED)
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""


def test_multipart_upload_part_chunked(localcloud, s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    first, second = b"a" * (5 * 1024 * 1024), b"second part"
    etags = []
    for number, (data, payload) in enumerate([(first, SIGNED), (second, UNSIGNED_TRAILER)], start=1):
        trailers = {"x-amz-checksum-crc32": crc32(data)} if payload == UNSIGNED_TRAILER else None
        status, headers, body = put_chunked(
            localcloud.endpoint,
            f"/{bucket}/mp",
            data,
            payload,
            query=f"partNumber={number}&uploadId={upload}",
            trailers=trailers,
        )
        assert status == 200, body
        assert headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
        etags.append(headers["etag"])
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]},
    )
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == first + second


@pytest.mark.parametrize("payload", [SIGNED, SIGNED_TRAILER])
def test_tampered_chunk_is_signature_does_not_match_and_not_stored(localcloud, s3, bucket, payload):
    data = b"x" * 200_000
    trailers = {"x-amz-checksum-crc32": crc32(data)} if payload == SIGNED_TRAILER else None
    status, _, body = put_chunked(localcloud.endpoint, f"/{bucket}/t", data, payload, trailers=trailers, tamper=1)
    assert (status, _code(body)) == (403, "SignatureDoesNotMatch")
    assert _absent(s3, bucket, "t")


def test_wrong_seed_secret_is_refused(localcloud, s3, bucket):
    status, _, body = put_chunked(localcloud.endpoint, f"/{bucket}/w", b"data", SIGNED, secret="wrong")
    assert (status, _code(body)) == (403, "SignatureDoesNotMatch")
    assert _absent(s3, bucket, "w")


def test_tampered_trailer_signature_is_refused(localcloud, s3, bucket):
    data = b"payload"
    trailers = {"x-amz-checksum-crc32": crc32(data)}

    def swap_trailer(body: bytes) -> bytes:  # a different (still correct-looking) trailer under the old signature
        return body.replace(trailers["x-amz-checksum-crc32"].encode(), crc32(b"other").encode())

    status, _, body = put_chunked(
        localcloud.endpoint, f"/{bucket}/ts", data, SIGNED_TRAILER, trailers=trailers, body_hook=swap_trailer
    )
    assert (status, _code(body)) == (403, "SignatureDoesNotMatch")
    assert _absent(s3, bucket, "ts")


@pytest.mark.parametrize("declared", [10, 10_000])
def test_wrong_decoded_length_is_incomplete_body(localcloud, s3, bucket, declared):
    status, _, body = put_chunked(localcloud.endpoint, f"/{bucket}/len", b"z" * 1000, SIGNED, decoded_length=declared)
    assert (status, _code(body)) == (400, "IncompleteBody")
    assert _absent(s3, bucket, "len")


@pytest.mark.parametrize("payload", [UNSIGNED_TRAILER, SIGNED_TRAILER])
def test_bad_trailing_checksum_is_bad_digest(localcloud, s3, bucket, payload):
    trailers = {"x-amz-checksum-crc32": crc32(b"something else")}
    status, _, body = put_chunked(localcloud.endpoint, f"/{bucket}/bd", b"the data", payload, trailers=trailers)
    assert (status, _code(body)) == (400, "BadDigest")
    assert _absent(s3, bucket, "bd")


@pytest.mark.parametrize(
    ("hook", "code"),
    [
        (lambda b: b[:-40], "IncompleteBody"),  # cut short inside the final chunk's header
        (lambda b: b"zz" + b[1:], "InvalidRequest"),  # chunk size not hex
        (lambda b: b + b"junk", "InvalidRequest"),  # bytes after the end
    ],
)
def test_malformed_framing_is_refused(localcloud, s3, bucket, hook, code):
    status, _, body = put_chunked(localcloud.endpoint, f"/{bucket}/mf", b"q" * 100, SIGNED, body_hook=hook)
    assert status in (400, 403) and _code(body) == code, body
    assert _absent(s3, bucket, "mf")


def test_missing_announced_trailer_is_refused(localcloud, s3, bucket):
    trailers = {"x-amz-checksum-crc32": crc32(b"d")}

    def drop_trailer(body: bytes) -> bytes:
        return body.replace(f"x-amz-checksum-crc32:{trailers['x-amz-checksum-crc32']}\r\n".encode(), b"")

    status, _, body = put_chunked(
        localcloud.endpoint, f"/{bucket}/mt", b"d", UNSIGNED_TRAILER, trailers=trailers, body_hook=drop_trailer
    )
    assert (status, _code(body)) == (400, "InvalidRequest")
    assert _absent(s3, bucket, "mt")


def test_large_body_streams(localcloud, s3, bucket):
    data = hashlib.sha256(b"seed").digest() * (20 * 1024 * 1024 // 32)  # 20 MiB
    status, headers, body = put_chunked(
        localcloud.endpoint,
        f"/{bucket}/big",
        data,
        SIGNED_TRAILER,
        trailers={"x-amz-checksum-crc32": crc32(data)},
        chunk_size=128 * 1024,
    )
    assert status == 200, body
    assert headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == data


def _upload(signer: Signer, payload: str, length: int, trailer: tuple[str, ...] = ()) -> sigv4.StreamingUpload:
    return sigv4.StreamingUpload(payload, signer.key, signer.amz_date, signer.scope, signer.previous, length, trailer)


def test_reader_holds_little_of_the_body_in_memory():
    data = b"m" * (20 * 1024 * 1024)
    signer = Signer()
    signer.previous = "0" * 64  # the seed
    upload = _upload(signer, SIGNED, len(data))
    encoded = encode(data, SIGNED, signer, chunk_size=1024 * 1024)
    reader = AwsChunkedReader(io.BytesIO(encoded), upload)
    largest, total = 0, 0
    while piece := reader.read(1 << 20):
        total += len(piece)
        largest = max(largest, len(reader.buffer))
    assert total == len(data) and reader.done
    assert largest <= 128 * 1024


def test_reader_rejects_unsigned_chunks_for_a_signed_payload():
    signer = Signer()
    signer.previous = "0" * 64
    upload = _upload(signer, SIGNED, 3)
    reader = AwsChunkedReader(io.BytesIO(b"3\r\nabc\r\n0\r\n\r\n"), upload)
    with pytest.raises(AwsError) as exc:
        reader.read()
    assert exc.value.code == "IncompleteSignature"
