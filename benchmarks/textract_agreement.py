"""Textract agreement: localcloud's table cells against real Amazon Textract's, on the real bank statement scan.

    python benchmarks/textract_agreement.py [--dpi N] [--out PATH]

Runs the fixture PDF (``tests/fixtures/textract-bank-statement``, two 100 ppi scanned pages) through localcloud's
Textract exactly as a DAG does (a live server, boto3 StartDocumentAnalysis with TABLES, GetDocumentAnalysis
paginated) and compares its TABLE/CELL blocks with the real Textract response for the same PDF.

Agreement is defined over real Textract's cells (all of them, empty ones included):

- each real TABLE is matched to our TABLE on the same page whose bounding box overlaps it most (IoU);
- each real CELL to the cell of that table whose box overlaps it most (IoU >= 0.3), so a table with an extra or a
  missing row or column costs only the cells it displaces;
- a cell agrees when the texts of their CHILD words are equal: ``exact`` after collapsing whitespace only;
  ``normalised`` also ignoring case and accents and reading ',' as '.' (real Textract reads "80,00" and "RÉTAILER"
  on this scan, where the print says "80.00" and "RETAILER").

A real cell with no counterpart counts as a disagreement. Every disagreement is listed (ours vs Textract's) so a
reader can see who read the scan right. Also printed: tables and grid shapes matched, and seconds per page
(job wall time from StartDocumentAnalysis to SUCCEEDED, divided by the pages). Goal: normalised >= 95%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from localcloud.process import LocalCloudProcess

FIXTURES = REPO / "tests" / "fixtures" / "textract-bank-statement"
PDF = "0001_NationalBank_2Pages.pdf"
REAL = "0001_NationalBank_2Pages_TextractOutput_1.json"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "textract_agreement.json"
GOAL = 0.95
MIN_CELL_IOU = 0.3


def fixtures_dir() -> Path:
    if (FIXTURES / PDF).exists():
        return FIXTURES
    raise SystemExit(f"fixture {PDF} not found under {FIXTURES}")


def run_localcloud(pdf: Path, dpi: float | None) -> tuple[list[dict[str, Any]], float, int]:
    """Our blocks for the PDF, the job's wall seconds and its page count."""
    env = {"LOCALCLOUD_TEXTRACT_DPI": str(dpi)} if dpi else {}
    with tempfile.TemporaryDirectory(prefix="textract-bench-") as tmp:
        server = LocalCloudProcess(Path(tmp) / "data", env=env).start()
        try:
            s3, textract = server.client("s3"), server.client("textract")
            s3.create_bucket(Bucket="bench")
            s3.put_object(Bucket="bench", Key=pdf.name, Body=pdf.read_bytes())
            started = time.monotonic()
            job = textract.start_document_analysis(
                DocumentLocation={"S3Object": {"Bucket": "bench", "Name": pdf.name}}, FeatureTypes=["TABLES"]
            )["JobId"]
            while (reply := textract.get_document_analysis(JobId=job))["JobStatus"] == "IN_PROGRESS":
                time.sleep(0.2)
            seconds = time.monotonic() - started
            if reply["JobStatus"] != "SUCCEEDED":
                raise SystemExit(f"job ended {reply['JobStatus']}: {reply.get('StatusMessage')}")
            blocks = list(reply["Blocks"])
            while reply.get("NextToken"):
                reply = textract.get_document_analysis(JobId=job, NextToken=reply["NextToken"])
                blocks.extend(reply["Blocks"])
            return blocks, seconds, reply["DocumentMetadata"]["Pages"]
        finally:
            server.stop()


def tables(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each TABLE as {page, box, shape, cells: [{row, col, box, text}]}; the same parsing for both sides."""
    by_id = {b["Id"]: b for b in blocks}

    def children(block: dict[str, Any]) -> list[dict[str, Any]]:
        return [by_id[i] for r in block.get("Relationships") or [] if r["Type"] == "CHILD" for i in r["Ids"]]

    result = []
    for table in (b for b in blocks if b["BlockType"] == "TABLE"):
        cells = [
            {
                "row": c["RowIndex"],
                "col": c["ColumnIndex"],
                "box": c["Geometry"]["BoundingBox"],
                "text": " ".join(w.get("Text") or "" for w in children(c) if w["BlockType"] == "WORD"),
            }
            for c in children(table)
            if c["BlockType"] == "CELL"
        ]
        shape = (max(c["row"] for c in cells), max(c["col"] for c in cells)) if cells else (0, 0)
        result.append({"page": table["Page"], "box": table["Geometry"]["BoundingBox"], "shape": shape, "cells": cells})
    return result


def iou(a: dict[str, float] | None, b: dict[str, float] | None) -> float:
    """Intersection over union of two normalised BoundingBoxes (0 when either is missing)."""
    if not a or not b:
        return 0.0
    x0, y0 = max(a["Left"], b["Left"]), max(a["Top"], b["Top"])
    x1 = min(a["Left"] + a["Width"], b["Left"] + b["Width"])
    y1 = min(a["Top"] + a["Height"], b["Top"] + b["Height"])
    inter = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
    union = a["Width"] * a["Height"] + b["Width"] * b["Height"] - inter
    return inter / union if union > 0 else 0.0


def exact(text: str) -> str:
    return " ".join(text.split())


def normalised(text: str) -> str:
    folded = unicodedata.normalize("NFKD", exact(text).casefold())
    return "".join(ch for ch in folded if not unicodedata.combining(ch)).replace(",", ".")


def compare(ours: list[dict[str, Any]], real: list[dict[str, Any]]) -> dict[str, Any]:
    total = agree_exact = agree_norm = 0
    differences, shapes = [], []
    for table in real:
        candidates = [t for t in ours if t["page"] == table["page"]]
        match = max(candidates, key=lambda t: iou(t["box"], table["box"]), default=None)
        if match is not None and iou(match["box"], table["box"]) <= 0:
            match = None
        shapes.append(
            {
                "page": table["page"],
                "textract": list(table["shape"]),
                "ours": list(match["shape"]) if match else None,
                "table_iou": round(iou(match["box"], table["box"]), 3) if match else 0.0,
            }
        )
        for cell in table["cells"]:
            total += 1
            best = None
            if match:
                best = max(match["cells"], key=lambda c: iou(c["box"], cell["box"]), default=None)
                if best is not None and iou(best["box"], cell["box"]) < MIN_CELL_IOU:
                    best = None
            ours_text = best["text"] if best else None
            same_exact = ours_text is not None and exact(ours_text) == exact(cell["text"])
            same_norm = ours_text is not None and normalised(ours_text) == normalised(cell["text"])
            agree_exact += same_exact
            agree_norm += same_norm
            if not same_norm:
                differences.append(
                    {
                        "page": table["page"],
                        "row": cell["row"],
                        "col": cell["col"],
                        "textract": cell["text"],
                        "ours": ours_text,
                    }
                )
    return {
        "cells": total,
        "agreement_exact": agree_exact / total if total else 0.0,
        "agreement_normalised": agree_norm / total if total else 0.0,
        "tables": shapes,
        "differences": differences,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dpi", type=float, default=None, help="PDF rendering resolution (default: per scan)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    folder = fixtures_dir()
    real = json.loads((folder / REAL).read_text())["Blocks"]
    blocks, seconds, pages = run_localcloud(folder / PDF, args.dpi)
    report = compare(tables(blocks), tables(real))
    report.update(
        {
            "seconds_per_page": seconds / pages,
            "pages": pages,
            "dpi": args.dpi or "auto",
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
            "goal": GOAL,
        }
    )
    print(f"Textract agreement on {PDF} ({pages} pages, dpi {report['dpi']}, {report['machine']})")
    print(f"{'measure':<44}{'value':>12}")
    print(f"{'real Textract cells':<44}{report['cells']:>12}")
    print(f"{'cells agreeing, exact text':<44}{report['agreement_exact']:>11.1%}")
    print(f"{'cells agreeing, normalised text':<44}{report['agreement_normalised']:>11.1%}")
    for shape in report["tables"]:
        ours = "x".join(map(str, shape["ours"])) if shape["ours"] else "none"
        label = f"table p{shape['page']} {'x'.join(map(str, shape['textract']))} (IoU {shape['table_iou']:.2f})"
        print(f"{label:<44}{ours:>12}")
    print(f"{'seconds per page':<44}{report['seconds_per_page']:>12.1f}")
    verdict = "met" if report["agreement_normalised"] >= GOAL else "NOT met"
    print(f"goal {GOAL:.0%} normalised: {verdict}")
    for diff in report["differences"]:
        print(
            f"  p{diff['page']} r{diff['row']} c{diff['col']}: ours {diff['ours']!r} vs Textract {diff['textract']!r}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
