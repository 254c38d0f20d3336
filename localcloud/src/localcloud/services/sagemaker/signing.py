"""Model artifacts that only this localcloud's AutoML can have written: an HMAC per file, under a per-data-dir key.

Batch transform unpickles the model in an artifact, and unpickling runs whatever code the pickle names; so a
transform loads only artifacts that this server's AutoML jobs wrote. When an AutoML job publishes a candidate, the
server re-packs its ``model.tar.gz`` with one more member, ``localcloud-signature.json``: the HMAC-SHA256 of each
other member's exact bytes, bound to its name. The signature travels inside the tarball, so it survives anything
that copies the bytes (CreateModel pointing at the candidate's ``ModelDataUrl``, CopyObject, a download and
re-upload) and needs no record keyed by S3 location.

The key is 32 random bytes in ``<data dir>/sagemaker-model-signing.key`` (mode 0600), made on the server's first
start and read on every start. It never leaves the server process: not over the API, not into a job's environment
or files. The server verifies an artifact before the transform job's process starts, while extracting it, and
hands the process only the extracted files' SHA-256 digests, which the process checks again before unpickling
(so a file swapped after the check is not loaded either). Another data dir's key, a changed byte, a re-packed
tarball, a missing or extra member: each fails the job before anything is unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import tarfile
import time
import zlib
from collections.abc import Iterable
from io import BytesIO
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

KEY_FILE = "sagemaker-model-signing.key"
KEY_BYTES = 32
SIGNATURE = "localcloud-signature.json"
_DOMAIN = b"localcloud sagemaker model artifact v1\0"
_SIGNATURE_LIMIT = 64 * 1024  # the manifest names a handful of files
_EXTRACT_LIMIT = 8 * 1024**3  # a decompression bomb fails the job instead of filling the disk
_CHUNK = 1024 * 1024


class ArtifactRejected(Exception):
    """The artifact is not one this server's AutoML wrote; the message says why."""


def load_key(data_dir: Path) -> bytes:
    """The data dir's signing key, made on first use (atomically: a crash never leaves a short key behind)."""
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        tmp = path.with_name(f"{KEY_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(KEY_BYTES))
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)  # fails if another process made the key first: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        log.warning("%s was readable by others; setting it to 0600", path)
        path.chmod(0o600)
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise RuntimeError(f"{path} holds {len(key)} bytes, not a {KEY_BYTES}-byte key; remove it to make a new one")
    return key


def _mac(key: bytes, name: str) -> hmac.HMAC:
    # The name is in the message, so that two members' bytes cannot be swapped under each other's names.
    return hmac.new(key, _DOMAIN + name.encode("utf-8") + b"\0", hashlib.sha256)


def _chunks(stream: IO[bytes]) -> Iterable[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


class _Tee:
    """A reader that MACs what it reads: signing streams a member once, whatever its size."""

    def __init__(self, stream: IO[bytes], mac: hmac.HMAC) -> None:
        self.stream, self.mac = stream, mac

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.mac.update(data)
        return data


def sign_artifact(source: Path, target: Path, key: bytes) -> None:
    """``source`` (a tarball our own AutoML job packed) re-packed at ``target`` with its signature member."""
    macs: dict[str, str] = {}
    tmp = target.with_name(target.name + ".signing")
    with tarfile.open(source, "r:*") as src, tarfile.open(tmp, "w:gz") as out:
        for member in src:
            if member.name == SIGNATURE:
                continue  # signed before (a publish retried after a restart): signed afresh
            if not member.isfile() or "/" in member.name:
                raise ValueError(f"{source}: {member.name} is not a plain file at the tarball's root")
            stream = src.extractfile(member)
            assert stream is not None  # a regular file always has one
            tee = _Tee(stream, _mac(key, member.name))
            out.addfile(member, tee)  # type: ignore[arg-type]  # tarfile needs only read()
            macs[member.name] = tee.mac.hexdigest()
        manifest = json.dumps({"version": 1, "algorithm": "HMAC-SHA256", "files": macs}, indent=1).encode()
        info = tarfile.TarInfo(SIGNATURE)
        info.size, info.mode, info.mtime = len(manifest), 0o644, int(time.time())
        out.addfile(info, BytesIO(manifest))
    os.replace(tmp, target)


def extract_verified(artifact: Path, target: Path, key: bytes) -> dict[str, str]:
    """Extract ``artifact`` into ``target`` if its signature holds; the SHA-256 of each file extracted.

    Nothing is unpickled here: the members are only copied and hashed. ``target`` is replaced only when every
    member checks out, so a rejected artifact leaves nothing behind to load.
    """
    tmp = target.with_name(target.name + ".verifying")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        digests = _extract(artifact, tmp, key)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return digests


def _extract(artifact: Path, folder: Path, key: bytes) -> dict[str, str]:
    macs: dict[str, str] = {}
    digests: dict[str, str] = {}
    manifest: bytes | None = None
    total = 0
    try:
        with tarfile.open(artifact, "r:*") as tar:
            for member in tar:
                name = member.name
                if not member.isfile() or "/" in name or name in ("", ".", "..") or name in macs:
                    raise ArtifactRejected(f"it holds {name!r}, which localcloud's AutoML never writes")
                stream = tar.extractfile(member)
                assert stream is not None  # a regular file always has one
                if name == SIGNATURE:
                    if manifest is not None or member.size > _SIGNATURE_LIMIT:
                        raise ArtifactRejected(f"its {SIGNATURE} is not one localcloud wrote")
                    manifest = stream.read()
                    continue
                mac, sha = _mac(key, name), hashlib.sha256()
                with open(folder / name, "xb") as out:
                    for chunk in _chunks(stream):
                        total += len(chunk)
                        if total > _EXTRACT_LIMIT:
                            raise ArtifactRejected(f"it unpacks to more than {_EXTRACT_LIMIT} bytes")
                        mac.update(chunk)
                        sha.update(chunk)
                        out.write(chunk)
                macs[name], digests[name] = mac.hexdigest(), sha.hexdigest()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ArtifactRejected(f"it is not a valid model.tar.gz: {exc}") from exc
    if manifest is None:
        raise ArtifactRejected(f"it has no {SIGNATURE}")
    try:
        signed = json.loads(manifest)["files"]
        if not isinstance(signed, dict) or not all(isinstance(v, str) for v in signed.values()):
            raise TypeError("files is not a map of names to MACs")
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactRejected(f"its {SIGNATURE} cannot be read: {exc}") from exc
    if set(signed) != set(macs):
        raise ArtifactRejected(f"its files {sorted(macs)} are not the ones it signs ({sorted(signed)})")
    for name, mac in macs.items():
        # compare_digest: how long the comparison takes says nothing about where a forged MAC goes wrong.
        if not hmac.compare_digest(mac, signed[name]):
            raise ArtifactRejected(f"the signature of {name} does not match its bytes under this localcloud's key")
    return digests


def check_digests(folder: Path, digests: dict[str, str]) -> None:
    """Raise ArtifactRejected unless ``folder`` holds exactly the files of ``digests``, byte for byte."""
    present = {entry.name for entry in folder.iterdir()} if folder.is_dir() else set()
    if not digests or present != set(digests):
        raise ArtifactRejected(f"the extracted files {sorted(present)} are not the verified ones {sorted(digests)}")
    for name, expected in digests.items():
        sha = hashlib.sha256()
        with open(folder / name, "rb") as stream:
            for chunk in _chunks(stream):
                sha.update(chunk)
        if not hmac.compare_digest(sha.hexdigest(), expected):
            raise ArtifactRejected(f"{name} changed after it was verified")
