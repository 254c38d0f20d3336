"""The command line both sample builders share: ``python -m include.cad.build_<x> [out_dir]``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path


def build_command(build: Callable[[Path], list[Path]], default_out_dir: Path, argv: Sequence[str] = ()) -> None:
    """Build into ``argv[0]`` (or ``default_out_dir``), then list every file written with its size."""
    out_dir = Path(argv[0]) if argv else default_out_dir
    for path in build(out_dir):
        print(f"{path.stat().st_size:>8} B  {path}")
