"""Acquire: documents under ``s3://<bucket>/acquire/[<priority>/]<name>``, in priority order.

``p0`` comes before ``p1`` and so on; a key with no priority folder goes last. Within a priority, keys sort by
name, so the order is the same on every run.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

ACQUIRE_PREFIX = "acquire/"
PRIORITY = re.compile(r"^p(\d{1,3})$")
NO_PRIORITY = 1000  # after every p<n>
SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def parse_key(key: str, prefix: str = ACQUIRE_PREFIX) -> dict[str, Any] | None:
    """``acquire/p0/a.pdf`` -> priority 0, name ``a.pdf``; None for keys that are not documents (folders, others)."""
    if not key.startswith(prefix) or key.endswith("/"):
        return None
    rest = key[len(prefix) :]
    parts = rest.split("/")
    priority = NO_PRIORITY
    if len(parts) > 1 and PRIORITY.match(parts[0]):
        priority = int(PRIORITY.match(parts[0]).group(1))
    name = parts[-1]
    if not name.lower().endswith(SUFFIXES):
        return None
    return {
        "key": key,
        "name": name,
        "priority": priority,
        "label": f"p{priority}" if priority < NO_PRIORITY else "none",
    }


def document_id(key: str) -> str:
    """Stable, readable and safe for S3 keys and A2I loop names: ``<slug of the name>-<hash of the key>``."""
    stem = re.sub(r"[^a-z0-9]+", "-", key.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()).strip("-")[:40] or "doc"
    return f"{stem}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def list_documents(s3: Any, bucket: str, prefix: str = ACQUIRE_PREFIX) -> list[dict[str, Any]]:
    """Every document under the acquire prefix, in processing order, with its ETag (a changed file is new work)."""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            parsed = parse_key(obj["Key"], prefix)
            if parsed:
                found.append({**parsed, "etag": obj["ETag"].strip('"'), "size": obj["Size"]})
    for doc in found:
        doc["document_id"] = document_id(doc["key"])
    return sorted(found, key=lambda d: (d["priority"], d["key"]))
