"""Sample scans for the demo and for trying the DAG from the UI: generated statements dropped into acquire/."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any


def seed_samples(s3: Any, bucket: str, count: int, seed: int = 0, pages: int | None = 1) -> list[str]:
    """Upload ``count`` generated statements under ``acquire/p<n>/``; the same seed writes the same keys and bytes.

    Priorities cycle p0, p1, p2 and one in three is a PNG rather than a PDF, so a demo batch shows both the
    priority order and the image conversion.
    """
    from include.datagen.statements import generate_statement, write_statement

    keys = []
    for index in range(count):
        statement = generate_statement(seed * 1000 + index, pages=pages, name=f"sample-{seed:03d}-{index:03d}")
        priority = f"p{index % 3}"
        if index % 3 == 2:
            buffer = io.BytesIO()
            statement.pages[0].save(buffer, format="PNG", dpi=(statement.dpi, statement.dpi))
            key, body = f"acquire/{priority}/{statement.name}.png", buffer.getvalue()
        else:
            with tempfile.TemporaryDirectory() as tmp:
                written = write_statement(statement, Path(tmp), formats=("pdf",))
                path = next(p for paths in written.values() for p in paths if str(p).endswith(".pdf"))
                key, body = f"acquire/{priority}/{statement.name}.pdf", Path(path).read_bytes()
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        keys.append(key)
    return keys
