"""Long jobs (training, OCR, AutoML, transforms) run as ``python -m <module> <job_dir>`` in a process group of their
own, so that stopping one stops everything it started, and localcloud's request threads never do the heavy work."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from localcloud.core import DEFAULT_PORT


def start(module: str, job_dir: Path, log_name: str) -> subprocess.Popen:
    """Start ``module`` (one of localcloud's, importable wherever localcloud is installed) on ``job_dir``, in that
    directory; its output is appended to ``job_dir/log_name``."""
    log = open(job_dir / log_name, "ab")  # noqa: SIM115 - owned by the child from here on
    try:
        return subprocess.Popen(
            [sys.executable, "-m", module, str(job_dir)],
            cwd=job_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()


def kill(pid: int | None, job_dir: Path | None = None) -> None:
    """Kill the process group of ``pid``; with ``job_dir``, only if that pid still works on it (pids get reused)."""
    if not pid:
        return
    if job_dir is not None:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return
        if str(job_dir).encode() not in cmdline:
            return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def orphans(module: str, job_dir: Path) -> list[int]:
    """Processes of ``module`` still working on ``job_dir`` (one whose pid a crash kept from being recorded, say)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if module.encode() in cmdline and str(job_dir).encode() in cmdline:
            found.append(int(entry.name))
    return found


def end(module: str, pid: int | None, job_dir: Path) -> None:
    """After a crash: stop every process of the job, the recorded ``pid`` and any orphan of ``module`` on it."""
    for each in {*(p for p in [pid] if p), *orphans(module, job_dir)}:
        kill(each, job_dir)


def tail_lines(path: Path, size: int = 65536) -> list[str]:
    """The lines of the last ``size`` bytes of a job's log (none if it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(handle.seek(0, os.SEEK_END) - size, 0))
            return handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def endpoint_for(host: str) -> str:
    """localcloud's URL as a job should call it back: the loopback host:port the caller reached us on."""
    parsed = urlsplit(f"//{host}")
    try:
        name = parsed.hostname or ""
        loopback = name == "localhost" or ipaddress.ip_address(name).is_loopback
        port = parsed.port
    except ValueError:
        loopback, port = False, None
    if loopback and host:
        return f"http://{host}"
    # Never hand the job's credentials to a host a client named: localcloud only listens on loopback anyway.
    return f"http://127.0.0.1:{port or DEFAULT_PORT}"
