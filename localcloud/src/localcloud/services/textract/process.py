"""Starting, waiting for and stopping the OCR engine's job processes (one process group per job)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from localcloud import jobprocs
from localcloud.engines.ocr.job import LOG

MODULE = "localcloud.engines.ocr.job"


def start(job_dir: Path) -> subprocess.Popen:
    """The job in its own process group, so that stopping it stops everything it started."""
    return jobprocs.start(MODULE, job_dir, LOG)


def kill(pid: int | None, job_dir: Path) -> None:
    """Stop the job process ``pid`` if it is still the one working on ``job_dir`` (pids get reused)."""
    jobprocs.kill(pid, job_dir)
