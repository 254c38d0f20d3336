"""Start and stop the local stack: localcloud + ``airflow standalone``, each in its own process group.

    python scripts/stack.py up      # idempotent; waits for both health endpoints, prints the UI login
    python scripts/stack.py down    # SIGTERM each process group, SIGKILL after a grace period
    python scripts/stack.py status

Why process groups: ``airflow standalone`` spawns scheduler, dag-processor, api-server and triggerer as children;
SIGTERM to its PID alone orphans them. Each service is started with ``start_new_session=True`` (setsid), so its
PID is also its process-group and session id, and ``down`` signals the whole group (``kill -TERM -- -PGID``).

Configuration (environment; the Makefile sets the same defaults):
    AIRFLOW_HOME (.airflow), STACK_RUN_DIR (.run: logs + pid files), LOCALCLOUD_PORT (4566),
    LOCALCLOUD_DATA_DIR (.localcloud), AIRFLOW__API__PORT (8080).
Only the standard library is imported here, so ``down`` works even without the venv.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
# LOCAL-ONLY credentials of the loopback localcloud endpoint (same defaults as localcloud.core).
LOCAL_ACCESS_KEY_ID = "localcloud"
LOCAL_SECRET_ACCESS_KEY = "localcloud-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class Settings:
    airflow_home: Path
    run_dir: Path
    localcloud_port: int
    localcloud_data_dir: Path
    api_port: int

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            airflow_home=Path(env.get("AIRFLOW_HOME") or REPO / ".airflow").resolve(),
            run_dir=Path(env.get("STACK_RUN_DIR") or REPO / ".run").resolve(),
            localcloud_port=int(env.get("LOCALCLOUD_PORT") or 4566),
            localcloud_data_dir=Path(env.get("LOCALCLOUD_DATA_DIR") or REPO / ".localcloud").resolve(),
            api_port=int(env.get("AIRFLOW__API__PORT") or 8080),
        )

    @property
    def localcloud_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.localcloud_port}"

    @property
    def localcloud_health_url(self) -> str:
        return f"{self.localcloud_endpoint}/_localcloud/health"

    @property
    def airflow_url(self) -> str:
        return f"http://localhost:{self.api_port}"

    @property
    def airflow_health_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"


def local_credentials() -> tuple[str, str]:
    """The localcloud key pair (local-only), honouring the same env vars the server reads."""
    return (
        os.environ.get("LOCALCLOUD_ACCESS_KEY_ID", LOCAL_ACCESS_KEY_ID),
        os.environ.get("LOCALCLOUD_SECRET_ACCESS_KEY", LOCAL_SECRET_ACCESS_KEY),
    )


def project_env(settings: Settings) -> dict[str, str]:
    """The environment every Airflow/localcloud subprocess gets; explicit values in os.environ win."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # standalone spawns `airflow` from PATH
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["AIRFLOW_HOME"] = str(settings.airflow_home)
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
    env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO / "plugins"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    key_id, secret = local_credentials()
    env.setdefault(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps(
            {
                "conn_type": "aws",
                "login": key_id,
                "password": secret,
                "extra": {"endpoint_url": settings.localcloud_endpoint, "region_name": REGION},
            }
        ),
    )
    # SparkSubmitOperator's connection: without one the provider assumes YARN.
    env.setdefault("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[*]"}))
    env.setdefault("LAKEHOUSE_URI", f"file://{REPO}/.lakehouse")
    return env


# ---------------------------------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------------------------------
def http_ok(url: str, timeout: float = 2.0) -> dict | None:
    """The decoded JSON body if ``url`` answers 200, else None."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            if resp.status != 200:
                return None
            body = resp.read()
    except (OSError, ValueError):
        return None
    try:
        return json.loads(body or b"{}")
    except ValueError:
        return {}


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group or session is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may contain spaces/parens, so split after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp, session = fields[0], int(fields[2]), int(fields[3])
        if state not in ("Z", "X") and pgid in (pgrp, session):
            members.append(int(entry.name))
    return sorted(members)


def start_group(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start ``cmd`` as the leader of a new session/process group, output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_group(pgid: int, name: str, grace: float = 20.0) -> bool:
    """SIGTERM the group, wait up to ``grace`` s, then SIGKILL it. True when nothing of it remains."""
    if not group_members(pgid):
        return True
    _signal_group(pgid, signal.SIGTERM)
    if _wait_gone(pgid, grace):
        return True
    survivors = ", ".join(f"{pid} ({_cmdline(pid)})" for pid in group_members(pgid))
    print(f"{name}: still running after {grace:.0f} s, sending SIGKILL to group {pgid}: {survivors}")
    _signal_group(pgid, signal.SIGKILL)
    return _wait_gone(pgid, 5.0)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:80]
    except OSError:
        return "?"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    # Stragglers that moved to their own process group but stayed in the session.
    for pid in group_members(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_members(pgid):
            return True
        time.sleep(0.2)
    return not group_members(pgid)


def wait_healthy(url: str, proc: subprocess.Popen | None, timeout: float, log_path: Path | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = http_ok(url)
        if proc is not None and proc.poll() is not None:
            other = f"; whatever answers {url} is another process" if body is not None else ""
            raise RuntimeError(f"exited with code {proc.returncode}{other}{_log_hint(log_path)}")
        if body is not None:
            return body
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s{_log_hint(log_path)}")


def _log_hint(log_path: Path | None) -> str:
    if not log_path or not log_path.exists():
        return ""
    tail = log_path.read_text(errors="replace").splitlines()[-25:]
    return f"; last lines of {log_path}:\n    " + "\n    ".join(tail)


def start_localcloud(settings: Settings, log_path: Path) -> subprocess.Popen:
    cmd = [
        _python(),
        "-m",
        "localcloud",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.localcloud_port),
        "--data-dir",
        str(settings.localcloud_data_dir),
    ]
    return start_group(cmd, project_env(settings), log_path)


def _python() -> str:
    venv_python = VENV_BIN / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


# ---------------------------------------------------------------------------------------------------------------------
# Services managed by up/down
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Service:
    name: str
    health_url: str
    timeout: float

    def pid_file(self, settings: Settings) -> Path:
        return settings.run_dir / f"{self.name}.pid"

    def log_file(self, settings: Settings) -> Path:
        return settings.run_dir / f"{self.name}.log"

    def running_pgid(self, settings: Settings) -> int | None:
        """The recorded group id if that group still has live processes."""
        try:
            pgid = int(self.pid_file(settings).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pgid if group_members(pgid) else None


def services(settings: Settings) -> list[Service]:
    return [
        Service("localcloud", settings.localcloud_health_url, timeout=60),
        # airflow standalone migrates, then starts 4 components: about 45 s on 2 cores.
        Service("airflow", settings.airflow_health_url, timeout=float(os.environ.get("STACK_AIRFLOW_TIMEOUT", 240))),
    ]


def _spawn(service: Service, settings: Settings) -> subprocess.Popen:
    log = service.log_file(settings)
    if service.name == "localcloud":
        return start_localcloud(settings, log)
    env = project_env(settings)
    env["AIRFLOW__API__PORT"] = str(settings.api_port)
    # Laptop defaults (override in the environment): UI on loopback only, and 8 LocalExecutor workers instead
    # of parallelism=32 (32 idle workers cost about 5 GB RSS on this stack).
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    env.setdefault("AIRFLOW__CORE__PARALLELISM", "8")
    # The execution API defaults to http://localhost:8080/execution/; follow the chosen port.
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://localhost:{settings.api_port}/execution/")
    return start_group([str(VENV_BIN / "airflow"), "standalone"], env, log)


def airflow_ready(body: dict) -> bool:
    """/monitor/health answers before the scheduler heartbeats; wait for that too."""
    return body.get("metadatabase", {}).get("status") == "healthy" and (
        body.get("scheduler", {}).get("status") == "healthy"
    )


def admin_password(settings: Settings, timeout: float = 30.0) -> str | None:
    path = settings.airflow_home / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + timeout
    while True:
        try:
            return json.loads(path.read_text()).get("admin")
        except (OSError, ValueError):
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.5)


def cmd_up(settings: Settings) -> int:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    started: list[tuple[Service, subprocess.Popen]] = []
    try:
        for service in services(settings):
            pgid = service.running_pgid(settings)
            if pgid:
                print(f"{service.name}: already running (process group {pgid})")
                continue
            if http_ok(service.health_url) is not None:
                print(f"{service.name}: something else already answers {service.health_url}; leaving it alone")
                continue
            proc = _spawn(service, settings)
            service.pid_file(settings).write_text(f"{proc.pid}\n")
            started.append((service, proc))
            print(f"{service.name}: started (process group {proc.pid}), log {service.log_file(settings)}")

        t0 = time.monotonic()
        for service in services(settings):
            proc = next((p for s, p in started if s.name == service.name), None)
            body = wait_healthy(service.health_url, proc, service.timeout, service.log_file(settings))
            if service.name == "airflow":
                while not airflow_ready(body) and time.monotonic() - t0 < service.timeout:
                    time.sleep(1)
                    body = http_ok(service.health_url) or {}
            print(f"{service.name}: healthy at {service.health_url} ({time.monotonic() - t0:.0f} s)")
    except (RuntimeError, TimeoutError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        for service, proc in started:
            stop_group(proc.pid, service.name)
            service.pid_file(settings).unlink(missing_ok=True)
        return 1

    password = admin_password(settings) or f"(see {settings.airflow_home}/simple_auth_manager_passwords.json.generated)"
    print()
    print(f"Airflow UI: {settings.airflow_url}")
    print(f"Login:      admin / {password}")
    data_dir = (http_ok(settings.localcloud_health_url) or {}).get("data_dir") or settings.localcloud_data_dir
    print(f"localcloud: {settings.localcloud_endpoint} (data in {data_dir})")
    print(f"Logs:       {settings.run_dir}/*.log   Stop with: make down")
    return 0


def cmd_down(settings: Settings) -> int:
    ok = True
    for service in reversed(services(settings)):
        pid_file = service.pid_file(settings)
        try:
            pgid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            print(f"{service.name}: not running (no pid file)")
            continue
        if not group_members(pgid):
            print(f"{service.name}: not running (stale pid file)")
        elif stop_group(pgid, service.name):
            print(f"{service.name}: stopped (process group {pgid})")
        left = group_members(pgid)
        if left:
            ok = False
            print(f"ERROR: {service.name}: processes {left} of group {pgid} survived SIGKILL", file=sys.stderr)
        else:
            pid_file.unlink(missing_ok=True)
    return 0 if ok else 1


def cmd_status(settings: Settings) -> int:
    for service in services(settings):
        pgid = service.running_pgid(settings)
        health = "answers" if http_ok(service.health_url) is not None else "does not answer"
        state = f"running (process group {pgid})" if pgid else "not started by stack.py"
        print(f"{service.name}: {state}; {service.health_url} {health}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    return {"up": cmd_up, "down": cmd_down, "status": cmd_status}[args.command](settings)


if __name__ == "__main__":
    sys.exit(main())
