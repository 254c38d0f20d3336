"""Public API: start and stop a real localcloud server in a subprocess, the way `make up` does.

Tests and benchmarks of the Airflow project use localcloud through this module (a process on a free loopback port,
boto3 clients for it), never through the package's internals.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalCloudProcess:
    """One ``python -m localcloud serve`` process bound to a free loopback port."""

    access_key = "localcloud"
    secret_key = "localcloud-secret"

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        keep_credentials_env: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.keep_credentials_env = keep_credentials_env
        self.extra_env = env or {}  # the server's own settings (e.g. a training budget), kept across restarts
        self.proc: subprocess.Popen | None = None
        # Every server keeps an IAM audit log, so a DAG test can hold its role to the calls it made.
        self.audit_log = Path(
            self.extra_env.get("LOCALCLOUD_IAM_AUDIT_LOG")
            or os.environ.get("LOCALCLOUD_IAM_AUDIT_LOG")
            or self.data_dir.parent / f"{self.data_dir.name}-iam-audit.jsonl"
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> LocalCloudProcess:
        env = {**os.environ, **self.extra_env, "LOCALCLOUD_IAM_AUDIT_LOG": str(self.audit_log)}
        if not self.keep_credentials_env:
            env.pop("LOCALCLOUD_ACCESS_KEY_ID", None)
            env.pop("LOCALCLOUD_SECRET_ACCESS_KEY", None)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.data_dir.parent / f"localcloud-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "localcloud",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            cwd=self.data_dir.parent,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"localcloud exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_localcloud/health", timeout=1) as resp:
                    if resp.status == 200:
                        self.health = json.load(resp)
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError("localcloud did not become healthy")

    def __enter__(self) -> LocalCloudProcess:
        """``with LocalCloudProcess(data_dir) as cloud:`` starts it if it is not running, and stops it after."""
        return self if self.proc and self.proc.poll() is None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if getattr(self, "log", None):
            self.log.close()

    def client(self, service: str, region: str = "us-east-1", **config: object):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def resource(self, service: str, region: str = "us-east-1"):
        return boto3.resource(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )
