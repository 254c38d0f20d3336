"""Where S3 objects live on disk: one plain file per object under ``<data>/s3/<bucket>/<key>``.

Keys map to paths segment by segment. Segments that a filesystem would read as navigation
(``..``, ``.``, empty ones from ``a//b`` or a leading ``/``) and the NUL byte are escaped, with ``%``
escaping itself, so the mapping is one-to-one and no key can leave its bucket's folder.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from localcloud.core import AwsError

_SPECIAL_SEGMENTS = {"": "%", ".": "%2E", "..": "%2E%2E"}
MAX_KEY_BYTES = 1024


def encode_segment(segment: str) -> str:
    escaped = segment.replace("%", "%25").replace("\0", "%00")
    return _SPECIAL_SEGMENTS.get(escaped, escaped)


def key_path(bucket_dir: Path, key: str) -> Path:
    """The file holding ``key``; always strictly inside ``bucket_dir``."""
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise AwsError("KeyTooLongError", "Your key is too long", fields={"Key": key[:64]})
    path = bucket_dir.joinpath(*(encode_segment(s) for s in key.split("/")))
    # Belt and braces: the encoding already makes escape impossible; this keeps it so if it ever changes.
    base = os.path.normpath(bucket_dir)
    if os.path.commonpath([base, os.path.normpath(path)]) != base or os.path.normpath(path) == base:
        raise AwsError("InvalidArgument", f"Key {key!r} does not map inside its bucket.")
    return path


def check_placeable(bucket_dir: Path, path: Path, key: str) -> None:
    """Refuse a key whose file would collide with another object's folder, or the reverse.

    S3 lets ``a`` and ``a/b`` coexist; a filesystem does not. We answer clearly instead of losing data.
    """
    if path.is_dir():
        raise _conflict(key, "other objects' keys start with it followed by '/'")
    parent = path.parent
    while parent != bucket_dir:
        if parent.is_file():
            raise _conflict(key, f"an object is stored where its folder {parent.name!r} would be")
        parent = parent.parent


def _conflict(key: str, why: str) -> AwsError:
    return AwsError(
        "InvalidRequest",
        f"localcloud stores each object as a file, and key {key!r} cannot be: {why}.",
        fields={"Key": key},
    )


def place(tmp: Path, path: Path, key: str) -> None:
    """Atomically move a fully written temp file to its object path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENAMETOOLONG:
            raise AwsError("KeyTooLongError", "A segment of your key is too long for local storage.") from exc
        if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
            raise _conflict(key, "it collides with another object's file or folder") from exc
        raise


def remove(path: Path, bucket_dir: Path) -> None:
    """Delete an object's file and prune folders it leaves empty, so the tree mirrors the keys."""
    path.unlink(missing_ok=True)
    parent = path.parent
    while parent != bucket_dir and parent.is_dir():
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent
