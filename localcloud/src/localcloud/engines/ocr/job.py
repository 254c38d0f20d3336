"""One document analysis, run as its own process: ``python -m localcloud.engines.ocr.job JOB_DIR``.

``JOB_DIR/spec.json`` names the document, the features and optionally the PDF rendering ``dpi`` (default: the
scan's own resolution, see ``document.render_dpi``). Each page's blocks are written to
``JOB_DIR/pages/NNNNN.json`` as soon as the page is done (atomically), so a job that is stopped and started
again resumes at the first page it had not finished. ``JOB_DIR/result.json`` (atomic too) ends the job: either
``{"status": "ok", "pages": N, "failed_pages": [...]}`` or ``{"status": "failed", "kind": ..., "reason": ...}``;
the caller only ever reads those files, so a crash on either side cannot leave an outcome half-written.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

SPEC, RESULT, PAGES, LOG = "spec.json", "result.json", "pages", "job.log"
INTERNAL = "internal"


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)


def page_file(job_dir: Path, page: int) -> Path:
    return job_dir / PAGES / f"{page:05d}.json"


def read_blocks(job_dir: Path, pages: int) -> list[dict[str, Any]]:
    """Every finished page's blocks, in page order."""
    blocks: list[dict[str, Any]] = []
    for page in range(1, pages + 1):
        path = page_file(job_dir, page)
        if path.exists():
            blocks.extend(json.loads(path.read_text()))
    return blocks


def run(job_dir: Path) -> dict[str, Any]:
    from localcloud.engines.ocr import DocumentError, analyze_page, open_document

    spec = json.loads((job_dir / SPEC).read_text())
    document = open_document(Path(spec["document"]))
    (job_dir / PAGES).mkdir(exist_ok=True)
    failed: list[dict[str, Any]] = []
    for index in range(document.pages):
        out = page_file(job_dir, index + 1)
        if out.exists():
            continue
        started = time.monotonic()
        try:
            blocks = analyze_page(document.render(index, spec.get("dpi")), index + 1, spec["features"])
        except DocumentError as exc:  # one unreadable page fails that page, not the whole document
            failed.append({"page": index + 1, "reason": str(exc)})
            continue
        write_json(out, blocks)
        print(f"page {index + 1}/{document.pages}: {len(blocks)} blocks in {time.monotonic() - started:.1f} s")
        sys.stdout.flush()
    if failed and len(failed) == document.pages:
        return {"status": "failed", "kind": "bad", "reason": failed[0]["reason"]}
    return {"status": "ok", "pages": document.pages, "failed_pages": failed}


def main(argv: list[str]) -> int:
    from localcloud.engines.ocr import DocumentError

    job_dir = Path(argv[0])
    try:
        result = run(job_dir)
    except DocumentError as exc:
        result = {"status": "failed", "kind": exc.kind, "reason": str(exc)}
    except Exception as exc:  # the outcome must reach the caller in every case
        traceback.print_exc()
        result = {"status": "failed", "kind": INTERNAL, "reason": f"{type(exc).__name__}: {exc}"}
    write_json(job_dir / RESULT, result)
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
