"""The developer entry points: scripts/stack.py (make up/down) and scripts/demo.py (make demo).

Each runs as a subprocess with its own AIRFLOW_HOME, run dir, data dir and free ports, so it never touches a
developer's running stack.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from localcloud.process import free_port
from scripts.stack import group_members, http_ok
from tests import REPO

pytestmark = pytest.mark.slow

PYTHON = sys.executable


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Whatever the Makefile exported for the developer's stack must not leak in.
    env.pop("AIRFLOW_CONN_AWS_DEFAULT", None)
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "STACK_RUN_DIR": str(tmp_path / "run"),
            "LOCALCLOUD_DATA_DIR": str(tmp_path / "localcloud"),
            "LOCALCLOUD_PORT": str(free_port()),
            "AIRFLOW__API__PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    return env


def _run(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _pgid(env: dict[str, str], name: str) -> int:
    return int((Path(env["STACK_RUN_DIR"]) / f"{name}.pid").read_text().split()[0])


def test_stack_up_then_down_leaves_no_process(tmp_path):
    env = _isolated_env(tmp_path)
    lc_health = f"http://127.0.0.1:{env['LOCALCLOUD_PORT']}/_localcloud/health"
    af_health = f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}/api/v2/monitor/health"
    groups: dict[str, int] = {}
    try:
        up = _run([PYTHON, "scripts/stack.py", "up"], env, timeout=400)
        out = up.stdout + up.stderr
        assert up.returncode == 0, out
        groups = {name: _pgid(env, name) for name in ("localcloud", "airflow")}
        assert "localcloud: healthy" in out and "airflow: healthy" in out, out
        login = re.search(r"Login:\s+admin / (\S+)", out)
        assert login and not login.group(1).startswith("("), out
        assert f"Airflow UI: http://localhost:{env['AIRFLOW__API__PORT']}" in out
        assert http_ok(lc_health) is not None
        assert http_ok(af_health) is not None
        assert all(group_members(pgid) for pgid in groups.values())

        again = _run([PYTHON, "scripts/stack.py", "up"], env, timeout=120)
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.count("already running") == 2, again.stdout
    finally:
        down = _run([PYTHON, "scripts/stack.py", "down"], env, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped" in down.stdout
    for name, pgid in groups.items():
        assert group_members(pgid) == [], f"{name}: processes of group {pgid} survived"
        assert not (Path(env["STACK_RUN_DIR"]) / f"{name}.pid").exists()
    assert http_ok(lc_health) is None
    assert http_ok(af_health) is None


@pytest.mark.timeout(1200)
def test_demo_runs_and_summarises(tmp_path):
    env = _isolated_env(tmp_path)
    airflow = str(Path(PYTHON).with_name("airflow"))
    migrate = _run([airflow, "db", "migrate"], env, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]

    # A small dataset: the demo's sizes are env vars precisely so that this can be quick.
    env.update({"DEMO_IMAGES_PER_CLASS": "2", "DEMO_RESOLUTION": "128", "DEMO_SHARD_SIZE": "5", "DEMO_PROCESSES": "1"})
    # And a tiny training: the mechanics, not the quality (benchmarks/custom_labels_quality.py measures that).
    env.update({"DEMO_TEST_IMAGES_PER_CLASS": "2", "DEMO_TRAIN_SECONDS": "20", "LOCALCLOUD_TRAIN_IMAGE_SIZE": "128"})
    env["DEMO_STATEMENTS"] = "2"
    env.update({"DEMO_AUTOML_ROWS": "800", "DEMO_AUTOML_CANDIDATES": "3", "DEMO_AUTOML_SECONDS": "30"})
    env.update({"DEMO_LOANS_ROWS": "300", "DEMO_LOANS_UPDATES": "10", "DEMO_LOANS_NEW": "5"})
    env["LAKEHOUSE_URI"] = f"file://{tmp_path}/lakehouse"
    demo = _run([PYTHON, "scripts/demo.py"], env, timeout=900)
    out = demo.stdout + demo.stderr
    assert demo.returncode == 0, out
    assert "== demo summary ==" in out
    assert re.search(r"^localcloud_smoke\s+ok\s+[\d.]+ s", out, re.M), out
    assert re.search(r"s3://industrial-ml-demo/smoke/\S+/manifest\.json\s+\d+ B\s+-> \S+", out), out
    assert "NOT FOUND" not in out, out
    assert re.search(r"dynamodb industrial-ml-runs\[run_id=manual__\S+\] = \{", out), out
    assert "localcloud stopped" in out
    objects = list((tmp_path / "localcloud" / "s3" / "industrial-ml-demo" / "smoke").rglob("manifest.json"))
    assert len(objects) == 1
    # The rendered gearbox dataset: its figures, and a manifest that exists where the summary says.
    assert re.search(r"^render_synthetic_dataset\s+ok\s+[\d.]+ s", out, re.M), out
    figures = re.search(r"dataset version \w+: (\d+) images of (\d+) planned", out)
    assert figures and int(figures.group(1)) > 0 and figures.group(2) == str(5 * 2), out
    manifest = re.search(r"manifest\s+s3://\S+\s+-> (\S+)", out)
    assert manifest and (REPO / manifest.group(1)).is_file(), out
    # The trained model: its F1 overall and per label, and the per-label plot on disk.
    assert re.search(r"^train_custom_labels\s+ok\s+[\d.]+ s", out, re.M), out
    assert re.search(r"version\s+gearbox-parts-demo-\S+: F1 [01]\.\d{3} \(deployed\)", out), out
    assert re.search(r"^\s+Gear_Housing\s+F1 [01]\.\d{3}$", out, re.M), out
    plot = re.search(r"plot\s+s3://\S+label_f1\.png\s+-> (\S+)", out)
    assert plot and (REPO / plot.group(1)).read_bytes()[:4] == b"\x89PNG", out
    # The digitized sample statements: each catalogued, its workbook on disk where the summary says.
    assert re.search(r"^digitize_bank_statements\s+ok\s+[\d.]+ s", out, re.M), out
    assert len(re.findall(r"^\s+document\s+acquire/p\d/sample-\S+: catalog done$", out, re.M)) == 2, out
    workbooks = re.findall(r"workbook\s+s3://\S+\.xlsx\s+-> (\S+)", out)
    assert len(workbooks) == 2 and all((REPO / w).read_bytes()[:2] == b"PK" for w in workbooks), out
    # The AutoML evaluation summary and the PR curve on disk.
    assert re.search(r"^autopilot_batch_predictions\s+ok\s+[\d.]+ s", out, re.M), out
    assert re.search(r"held out\s+160 rows: F1 [01]\.\d{3}, accuracy [01]\.\d{3}, AUC [01]\.\d{3}", out), out
    curve = re.search(r"pr curve\s+s3://\S+\s+-> (\S+)", out)
    assert curve and (REPO / curve.group(1)).read_bytes()[:4] == b"\x89PNG", out
    # The Delta table's history, step by step, and the diff between the ingest and MERGE versions.
    assert re.search(r"^loans_delta_lake\s+ok\s+[\d.]+ s", out, re.M), out
    assert re.search(r"^\s+0\s+WRITE\s+ingest\s", out, re.M), out
    assert re.search(r"^\s+4\s+MERGE\s+upsert\s", out, re.M), out
    assert re.search(r"diff\s+v0 -> v4: 5 added, 0 removed, 10 changed", out), out
    assert http_ok(f"http://127.0.0.1:{env['LOCALCLOUD_PORT']}/_localcloud/health") is None
