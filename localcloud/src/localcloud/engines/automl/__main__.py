"""Run one AutoML job in its own process: ``python -m localcloud.engines.automl SPEC.json WORKDIR``.

Progress goes to stdout as JSON lines ``{"status": ..., "info": {...}}``; the result is ``WORKDIR/result.json``.
Exit status 0 on success, 2 for an ``AutoMLError`` (its code and message in ``WORKDIR/error.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from localcloud.engines.automl.errors import AutoMLError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path, help="JSON file with the job specification")
    parser.add_argument("workdir", type=Path)
    args = parser.parse_args(argv)

    def progress(status: str, info: dict[str, Any]) -> None:
        print(json.dumps({"status": status, "info": info}, default=str), flush=True)

    from localcloud.engines.automl.job import run

    spec = json.loads(args.spec.read_text())
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        run(spec, args.workdir, progress)
    except AutoMLError as exc:
        (args.workdir / "error.json").write_text(json.dumps({"code": exc.code, "message": exc.message}))
        print(json.dumps({"status": "Failed", "info": {"code": exc.code, "message": exc.message}}), flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
