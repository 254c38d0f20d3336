"""Decoding of ``Content-Encoding: aws-chunked`` request bodies (SigV4 streaming uploads).

A streaming upload declares ``x-amz-content-sha256`` as one of

* ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``: ``hex-size;chunk-signature=SIG\\r\\n DATA \\r\\n`` chunks, each signed
  with the previous chunk's signature (the first with the Authorization header's, the seed), ending with a
  signed empty chunk;
* ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``: the same, then trailing headers (a checksum) and their
  ``x-amz-trailer-signature``, chained from the final chunk's signature;
* ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``: plain ``hex-size\\r\\n DATA \\r\\n`` chunks and unsigned trailers.

:class:`AwsChunkedReader` is a file-like view of the decoded bytes. It checks every signature as the chunk it
covers ends and, on reaching the final chunk, the trailers and ``x-amz-decoded-content-length``, raising an
AWS-shaped error on the first fault; the caller discards whatever it had read by then. It holds at most one
read's worth of the body in memory.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import BinaryIO

from localcloud.core import AwsError
from localcloud.sigv4 import (
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    StreamingUpload,
    signature_mismatch,
)

_READ = 64 * 1024
_MAX_LINE = 8 * 1024
_TRAILER_SIGNATURE = "x-amz-trailer-signature"


def _incomplete(detail: str) -> AwsError:
    return AwsError("IncompleteBody", f"The request body terminated unexpectedly or is malformed: {detail}.")


def _invalid(detail: str) -> AwsError:
    return AwsError("InvalidRequest", f"Malformed aws-chunked body: {detail}.")


class AwsChunkedReader:
    """The decoded payload of an aws-chunked ``body``, verified against ``upload`` as it is read."""

    def __init__(self, body: BinaryIO, upload: StreamingUpload) -> None:
        if upload.payload not in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER):
            raise AwsError("InvalidRequest", f"Unsupported x-amz-content-sha256 value {upload.payload!r}.")
        self.body = body
        self.upload = upload
        self.signed = upload.payload != STREAMING_UNSIGNED_TRAILER
        self.has_trailer = upload.payload != STREAMING_SIGNED
        self.previous = upload.seed_signature
        self.buffer = bytearray()
        self.chunk_left = 0  # undelivered data bytes of the current chunk
        self.chunk_signature = ""
        self.chunk_hash = hashlib.sha256()
        self.decoded = 0
        self.done = False
        self.trailers: dict[str, str] = {}

    # -- raw body ------------------------------------------------------------------------------------
    def _fill(self) -> bool:
        data = self.body.read(_READ)
        if data:
            self.buffer += data
        return bool(data)

    def _readline(self, *, eof_ok: bool = False) -> str | None:
        """The next CRLF-terminated line, without its CRLF; None at a clean end of body if ``eof_ok``."""
        start = 0
        while True:
            end = self.buffer.find(b"\r\n", start)
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                try:
                    return line.decode("ascii")
                except UnicodeDecodeError as exc:
                    raise _invalid("a chunk header or trailer is not ASCII") from exc
            if len(self.buffer) > _MAX_LINE:
                raise _invalid("a chunk header or trailer line is too long")
            start = max(len(self.buffer) - 1, 0)
            if not self._fill():
                if eof_ok and not self.buffer:
                    return None
                raise _incomplete("a chunk header or trailer line is cut short")

    def _take(self, size: int) -> bytes:
        if not self.buffer and not self._fill():
            raise _incomplete("a chunk has fewer bytes than its size says")
        data = bytes(self.buffer[:size])
        del self.buffer[: len(data)]
        return data

    # -- framing -------------------------------------------------------------------------------------
    def _chunk_header(self) -> int:
        line = self._readline()
        size_text, _, extensions = line.partition(";")
        try:
            size = int(size_text.strip(), 16)
        except ValueError as exc:
            raise _invalid(f"chunk size {size_text[:32]!r} is not hexadecimal") from exc
        if size < 0:
            raise _invalid("negative chunk size")
        signature = ""
        for extension in extensions.split(";") if extensions else []:
            name, _, value = extension.strip().partition("=")
            if name == "chunk-signature":
                signature = value.strip()
        if self.signed and not signature:
            raise AwsError("IncompleteSignature", "A chunk of a signed streaming upload carries no chunk-signature.")
        self.chunk_signature = signature
        self.chunk_hash = hashlib.sha256()
        return size

    def _end_chunk(self) -> None:
        if self.signed:
            expected = self.upload.chunk_signature(self.previous, self.chunk_hash.hexdigest())
            if not hmac.compare_digest(expected, self.chunk_signature):
                raise signature_mismatch()
            self.previous = expected

    def _finish(self) -> None:
        """After the empty final chunk: trailers, their signature, the decoded length, nothing left over."""
        self._end_chunk()
        if self.has_trailer:
            self._read_trailers()
        else:
            line = self._readline(eof_ok=True)
            if line:
                raise _invalid("data follows the final chunk")
        if self.buffer or self._fill():
            raise _invalid("data follows the end of the aws-chunked body")
        declared = self.upload.decoded_length
        if declared is not None and declared != self.decoded:
            raise AwsError(
                "IncompleteBody",
                f"The decoded body has {self.decoded} bytes but x-amz-decoded-content-length says {declared}.",
            )
        self.done = True

    def _read_trailers(self) -> None:
        signature = None
        while (line := self._readline(eof_ok=True)) is not None and line != "":
            name, sep, value = line.partition(":")
            if not sep:
                raise _invalid(f"trailer line {line[:64]!r} is not 'name:value'")
            name, value = name.strip().lower(), value.strip()
            if name == _TRAILER_SIGNATURE:
                signature = value
            else:
                self.trailers[name] = value
        announced = set(self.upload.trailer)
        if set(self.trailers) != announced:
            raise _invalid(
                f"trailers {sorted(self.trailers)} differ from those x-amz-trailer announced {sorted(announced)}"
            )
        if self.signed:
            if signature is None:
                raise AwsError("IncompleteSignature", "The signed trailer carries no x-amz-trailer-signature.")
            canonical = "".join(f"{name}:{value}\n" for name, value in self.trailers.items())
            expected = self.upload.trailer_signature(self.previous, hashlib.sha256(canonical.encode()).hexdigest())
            if not hmac.compare_digest(expected, signature):
                raise signature_mismatch()

    # -- file-like -----------------------------------------------------------------------------------
    def read(self, size: int = -1) -> bytes:
        size = _READ if size is None or size < 0 else size
        while not self.done:
            if self.chunk_left == 0:
                self.chunk_left = self._chunk_header()
                if self.chunk_left == 0:
                    self._finish()
                    return b""
            data = self._take(min(size, self.chunk_left))
            self.chunk_left -= len(data)
            self.chunk_hash.update(data)
            self.decoded += len(data)
            declared = self.upload.decoded_length
            if declared is not None and self.decoded > declared:
                raise AwsError("IncompleteBody", "The decoded body is longer than x-amz-decoded-content-length.")
            if self.chunk_left == 0:
                if self._readline() != "":
                    raise _invalid("a chunk's data is not followed by CRLF")
                self._end_chunk()
            if data:
                return data
        return b""
