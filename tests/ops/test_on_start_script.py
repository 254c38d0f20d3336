"""The OnStart lifecycle script itself: valid and shellcheck-clean bash, the cron it installs, and its heartbeat
function run against a fake Jupyter server (python's http.server), uploading with a stub ``aws`` on PATH and,
where the AWS CLI is installed, with the real one into localcloud's S3."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from include.ops.notebooks import autostop, lifecycle

SCRIPT = lifecycle.SCRIPT
INSTANCE = "nb-heartbeat-test"
STUB_AWS = """#!/usr/bin/env bash
# Stands in for the AWS CLI: records its arguments and keeps the file it was asked to copy.
printf '%s\\n' "$@" >"$STUB_AWS_ARGS"
cp "$3" "$STUB_AWS_COPY"
"""


class FakeJupyter:
    """/api/sessions and /api/terminals as a Jupyter server answers them; ``down`` makes it answer 503."""

    def __init__(self) -> None:
        self.sessions: list[dict] = []
        self.terminals: list[dict] = []
        self.down = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                documents = {"/api/sessions": fake.sessions, "/api/terminals": fake.terminals}
                if fake.down or self.path not in documents:
                    self.send_response(503 if fake.down else 404)
                    self.end_headers()
                    return
                body = json.dumps(documents[self.path]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jupyter() -> Iterator[FakeJupyter]:
    fake = FakeJupyter()
    yield fake
    fake.close()


@pytest.fixture
def metadata(tmp_path: Path) -> Path:
    path = tmp_path / "resource-metadata.json"
    arn = f"arn:aws:sagemaker:us-east-1:000000000000:notebook-instance/{INSTANCE}"
    path.write_text(json.dumps({"ResourceArn": arn, "ResourceName": INSTANCE}))
    return path


@pytest.fixture
def stub_aws(tmp_path: Path) -> dict[str, str]:
    """Environment that puts the stub ``aws`` first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(STUB_AWS)
    (bin_dir / "aws").chmod(0o755)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STUB_AWS_ARGS": str(tmp_path / "aws-args"),
        "STUB_AWS_COPY": str(tmp_path / "aws-copy.json"),
    }


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # as Jupyter writes them


def _kernel(last: datetime, state: str = "idle") -> dict:
    return {
        "id": str(uuid.uuid4()),
        "path": "work.ipynb",
        "type": "notebook",
        "kernel": {"id": str(uuid.uuid4()), "name": "python3", "last_activity": _stamp(last), "execution_state": state},
    }


def _run(args: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, env={**os.environ, **env}, capture_output=True, text=True, timeout=60, **kwargs)


def _heartbeat(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Source the script and call its heartbeat function, as the cron entry's "heartbeat" command does."""
    return _run(["bash", "-c", 'source "$0" && heartbeat', str(script)], env)


def _settings(jupyter: FakeJupyter, metadata: Path, bucket: str = "hb-bucket") -> dict[str, str]:
    return {
        "HEARTBEAT_BUCKET": bucket,
        "HEARTBEAT_PREFIX": "hb",
        "JUPYTER_URL": jupyter.url,
        "RESOURCE_METADATA": str(metadata),
    }


def test_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt: shellcheck)")
def test_script_is_shellcheck_clean(tmp_path):
    rendered = tmp_path / "on-start.sh"
    rendered.write_text(lifecycle.render_on_start("ops-bucket", "team/hb", 5))
    for path in (SCRIPT, rendered):
        result = subprocess.run(["shellcheck", "--shell=bash", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def test_install_writes_the_cron_entry_and_a_rerun_changes_nothing(tmp_path):
    rendered = tmp_path / "OnStart_2025-06-02"
    rendered.write_text(lifecycle.render_on_start("ops-bucket", "team/hb", 7))
    rendered.chmod(0o755)
    env = {"INSTALL_DIR": str(tmp_path / "bin"), "CRON_DIR": str(tmp_path / "cron.d"), "HEARTBEAT_LOG": "/dev/null"}
    first = _run([str(rendered)], env)  # no argument: what SageMaker runs at start
    assert first.returncode == 0, first.stderr
    installed = tmp_path / "bin" / "notebook-heartbeat"
    assert installed.read_text() == rendered.read_text() and os.access(installed, os.X_OK)
    cron = (tmp_path / "cron.d" / "notebook-heartbeat").read_text()
    lines = cron.splitlines()
    assert "HEARTBEAT_BUCKET=ops-bucket" in lines and "HEARTBEAT_PREFIX=team/hb" in lines
    assert lines[-1] == f"*/7 * * * * root {installed} heartbeat >>/dev/null 2>&1"
    assert oct((tmp_path / "cron.d" / "notebook-heartbeat").stat().st_mode & 0o777) == "0o644"

    again = _run([str(rendered), "install"], env)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "cron.d" / "notebook-heartbeat").read_text() == cron
    assert sorted(p.name for p in (tmp_path / "cron.d").iterdir()) == ["notebook-heartbeat"]

    # The unrendered script has no bucket: it refuses to install rather than report nowhere.
    bare = _run(["bash", str(SCRIPT), "install"], env)
    assert bare.returncode == 1 and "HEARTBEAT_BUCKET is empty" in bare.stderr


def test_heartbeat_reports_the_latest_kernel_or_terminal_activity(jupyter, metadata, stub_aws, tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    jupyter.sessions = [_kernel(now - timedelta(hours=2)), _kernel(now - timedelta(minutes=50))]
    jupyter.terminals = [{"name": "1", "last_activity": _stamp(now - timedelta(minutes=20))}]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = _heartbeat(SCRIPT, {**stub_aws, **_settings(jupyter, metadata), "TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stderr
    assert list(scratch.iterdir()) == []  # its scratch directory is gone
    args = Path(stub_aws["STUB_AWS_ARGS"]).read_text().splitlines()
    assert args[:2] == ["s3", "cp"]
    assert args[3:] == [
        f"s3://hb-bucket/hb/{INSTANCE}/heartbeat.json",
        "--content-type",
        "application/json",
        "--only-show-errors",
    ]
    doc = json.loads(Path(stub_aws["STUB_AWS_COPY"]).read_text())
    assert doc["instance"] == INSTANCE and doc["schema_version"] == 1
    assert (doc["kernels"], doc["busy_kernels"], doc["terminals"]) == (2, 0, 1)
    assert doc["last_activity"] == (now - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    beat = autostop.parse_heartbeat(json.dumps(doc).encode())  # the DAG reads what the script writes
    assert abs((beat.checked_at - datetime.now(UTC)).total_seconds()) < 60


def test_a_busy_kernel_is_activity_now_and_no_sessions_is_none(jupyter, metadata, stub_aws):
    jupyter.sessions = [_kernel(datetime.now(UTC) - timedelta(hours=3), state="busy")]
    assert _heartbeat(SCRIPT, {**stub_aws, **_settings(jupyter, metadata)}).returncode == 0
    doc = json.loads(Path(stub_aws["STUB_AWS_COPY"]).read_text())
    assert doc["busy_kernels"] == 1 and doc["last_activity"] == doc["checked_at"]

    jupyter.sessions, jupyter.terminals = [], []
    assert _heartbeat(SCRIPT, {**stub_aws, **_settings(jupyter, metadata)}).returncode == 0
    doc = json.loads(Path(stub_aws["STUB_AWS_COPY"]).read_text())
    assert (doc["last_activity"], doc["kernels"], doc["terminals"]) == (None, 0, 0)


def test_jupyter_down_keeps_the_previous_heartbeat(jupyter, metadata, stub_aws):
    jupyter.down = True
    result = _heartbeat(SCRIPT, {**stub_aws, **_settings(jupyter, metadata)})
    assert result.returncode != 0
    assert "did not answer /api/sessions; the previous heartbeat stays" in result.stderr
    assert not Path(stub_aws["STUB_AWS_ARGS"]).exists()


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed; the stub tests cover the script")
def test_heartbeat_with_the_aws_cli_into_localcloud(localcloud, jupyter, metadata, tmp_path):
    s3 = localcloud.client("s3")
    bucket = f"hb-cli-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    jupyter.terminals = [{"name": "1", "last_activity": _stamp(datetime(2025, 6, 2, 11, 0, tzinfo=UTC))}]
    env = {
        **_settings(jupyter, metadata, bucket),
        "AWS_ENDPOINT_URL": localcloud.endpoint,
        "AWS_ACCESS_KEY_ID": localcloud.access_key,
        "AWS_SECRET_ACCESS_KEY": localcloud.secret_key,
        # Nothing from a developer's AWS profile, and the region from the instance's ARN.
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        ["bash", "-c", 'source "$0" && heartbeat', str(SCRIPT)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    beat, error = autostop.read_heartbeat(s3, bucket, "hb", INSTANCE)
    assert error is None and beat.last_activity == datetime(2025, 6, 2, 11, 0, tzinfo=UTC)
    head = s3.head_object(Bucket=bucket, Key=f"hb/{INSTANCE}/heartbeat.json")
    assert head["ContentType"] == "application/json"
