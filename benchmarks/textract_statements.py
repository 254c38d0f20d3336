"""Textract on generated statements: localcloud's table cells against the generator's ground truth.

    python benchmarks/textract_statements.py [--quick] [--seed S] [--json PATH]

For each case of a small grid (layout x dpi x skew), ``include.datagen.statements`` draws a one-page bank statement
(scan effects on) and localcloud's Textract engine analyses the page image in process (``analyze_page`` with
TABLES, no server: the engine alone is timed). The blocks are reshaped into grids with
``include.documents.reshape.tables_from_blocks``, the same shaping the DAGs use, and compared with the page's truth
transactions table:

- found: the truth table's pixel bbox is converted to normalised page coordinates; the reshaped table on the page
  whose bbox overlaps it most (IoU) is the match, and the table is found when that IoU is > 0;
- shape: the matched grid's rows x cols against the truth's (header row included);
- cells: every truth cell (header and data, blank ones included) is matched to the cell of the matched grid whose
  bbox overlaps its (normalised) bbox most, IoU >= 0.3, so an extra or missing row or column only costs the cells it
  displaces; a cell is right when the texts are equal: ``exact`` after collapsing whitespace, ``normalised`` also
  ignoring case, every space and reading ',' as '.'. A truth cell with no counterpart counts as wrong;
- seconds per page: wall time of ``analyze_page`` alone (generation and reshaping excluded).

Figures only, no pass/fail. ``--json`` also lists every wrong cell (truth vs ours) per case.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.textract_agreement import exact, iou
from include.datagen.statements import generate_statement
from include.documents.reshape import tables_from_blocks
from localcloud.engines.ocr.analyze import analyze_page

LAYOUTS = ("national", "ledger", "modern")
DPIS = (150, 200)
SKEWS = (0.0, 1.2)
QUICK_DPIS = (150,)
QUICK_SKEWS = (1.2,)
MIN_CELL_IOU = 0.3


def normalise_box(bbox: list[float], width: int, height: int) -> dict[str, float]:
    """A truth pixel bbox [x0, y0, x1, y1] as a Textract BoundingBox (fractions of the page)."""
    x0, y0, x1, y1 = bbox
    return {"Left": x0 / width, "Top": y0 / height, "Width": (x1 - x0) / width, "Height": (y1 - y0) / height}


def normalised(text: str) -> str:
    return "".join(text.casefold().split()).replace(",", ".")


def compare(truth_page: dict[str, Any], ours: list[dict[str, Any]]) -> dict[str, Any]:
    """Found / shape / cell accuracy of our tables against the page's truth transactions table."""
    width, height = truth_page["width"], truth_page["height"]
    truth = next(t for t in truth_page["tables"] if t["type"] == "transactions")
    truth_box = normalise_box(truth["bbox"], width, height)
    truth_shape = [max(c["row"] for c in truth["cells"]) + 1, max(c["col"] for c in truth["cells"]) + 1]
    match = max(ours, key=lambda t: iou(t["bbox"], truth_box), default=None)
    table_iou = iou(match["bbox"], truth_box) if match else 0.0
    if table_iou <= 0:
        match = None
    our_cells = [c for row in match["rows"] for c in row if c["bbox"]] if match else []
    right_exact = right_norm = 0
    wrong = []
    for cell in truth["cells"]:
        box = normalise_box(cell["bbox"], width, height)
        best = max(our_cells, key=lambda c: iou(c["bbox"], box), default=None)
        text = best["text"] if best is not None and iou(best["bbox"], box) >= MIN_CELL_IOU else None
        same_exact = text is not None and exact(text) == exact(cell["text"])
        same_norm = text is not None and normalised(text) == normalised(cell["text"])
        right_exact += same_exact
        right_norm += same_norm
        if not same_exact:
            wrong.append({"row": cell["row"], "col": cell["col"], "truth": cell["text"], "ours": text})
    total = len(truth["cells"])
    return {
        "tables_ours": len(ours),
        "found": match is not None,
        "table_iou": round(table_iou, 3),
        "shape_truth": truth_shape,
        "shape_ours": [match["n_rows"], match["n_cols"]] if match else None,
        "cells": total,
        "cells_exact": right_exact,
        "cells_normalised": right_norm,
        "wrong_cells": wrong,
    }


def run_case(layout: str, dpi: int, skew: float, seed: int) -> dict[str, Any]:
    statement = generate_statement(seed, layout=layout, dpi=dpi, pages=1, skew_deg=skew, scan_effects=True)
    rgb = np.asarray(statement.pages[0].convert("RGB"))
    started = time.perf_counter()
    blocks = analyze_page(rgb, 1, ["TABLES"])
    seconds = time.perf_counter() - started
    result = compare(statement.truth["pages"][0], tables_from_blocks(blocks))
    return {"layout": layout, "dpi": dpi, "skew_deg": skew, "seed": seed, "seconds": round(seconds, 2)} | result


def shape_text(shape: list[int] | None) -> str:
    return "x".join(map(str, shape)) if shape else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"dpi {QUICK_DPIS} and skew {QUICK_SKEWS} only")
    parser.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    parser.add_argument("--dpis", nargs="+", type=int, default=None, help=f"default {DPIS}")
    parser.add_argument("--skews", nargs="+", type=float, default=None, help=f"degrees, default {SKEWS}")
    parser.add_argument("--seed", type=int, default=1, help="statement seed (the same content in every case)")
    parser.add_argument("--json", type=Path, default=None, help="write the cases and totals here")
    args = parser.parse_args()

    dpis = args.dpis or (QUICK_DPIS if args.quick else DPIS)
    skews = args.skews or (QUICK_SKEWS if args.quick else SKEWS)
    machine = f"{platform.machine()}, {os.cpu_count()} cpus"
    print(f"Textract on generated statements (seed {args.seed}, 1 page per case, {machine})")
    header = f"{'layout':<10}{'dpi':>5}{'skew':>6}{'found':>7}{'IoU':>6}{'truth':>8}{'ours':>8}"
    print(f"{header}{'cells':>7}{'exact':>8}{'norm.':>8}{'s/page':>8}")
    cases = []
    for layout, dpi, skew in itertools.product(args.layouts, dpis, skews):
        case = run_case(layout, dpi, skew, args.seed)
        cases.append(case)
        print(
            f"{layout:<10}{dpi:>5}{skew:>6.1f}{'yes' if case['found'] else 'no':>7}{case['table_iou']:>6.2f}"
            f"{shape_text(case['shape_truth']):>8}{shape_text(case['shape_ours']):>8}{case['cells']:>7}"
            f"{case['cells_exact'] / case['cells']:>8.1%}{case['cells_normalised'] / case['cells']:>8.1%}"
            f"{case['seconds']:>8.1f}",
            flush=True,
        )
    cells = sum(c["cells"] for c in cases)
    totals = {
        "cases": len(cases),
        "tables_found": sum(c["found"] for c in cases),
        "shapes_equal": sum(c["shape_ours"] == c["shape_truth"] for c in cases),
        "cells": cells,
        "cells_exact": sum(c["cells_exact"] for c in cases) / cells if cells else 0.0,
        "cells_normalised": sum(c["cells_normalised"] for c in cases) / cells if cells else 0.0,
        "seconds_per_page": sum(c["seconds"] for c in cases) / len(cases) if cases else 0.0,
    }
    print(
        f"total: found {totals['tables_found']}/{totals['cases']}, shapes equal {totals['shapes_equal']}/{totals['cases']}"
        f", cells {cells}: exact {totals['cells_exact']:.1%}, normalised {totals['cells_normalised']:.1%}"
        f", {totals['seconds_per_page']:.1f} s/page"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"seed": args.seed, "machine": machine, "min_cell_iou": MIN_CELL_IOU, "cases": cases, "totals": totals}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
