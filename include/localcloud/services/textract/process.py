"""Starting, waiting for and stopping the OCR engine's job processes (one process group per job)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from include.localcloud.engines.ocr.job import LOG

PROJECT_ROOT = Path(__file__).resolve().parents[4]
MODULE = "include.localcloud.engines.ocr.job"


def start(job_dir: Path) -> subprocess.Popen:
    """The job in its own process group, so that stopping it stops everything it started."""
    log = open(job_dir / LOG, "ab")  # noqa: SIM115 - owned by the child from here on
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    try:
        return subprocess.Popen(
            [sys.executable, "-m", MODULE, str(job_dir)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()


def kill(pid: int | None, job_dir: Path) -> None:
    """Stop the job process ``pid`` if it is still the one working on ``job_dir`` (pids get reused)."""
    if not pid:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if str(job_dir).encode() not in cmdline:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
