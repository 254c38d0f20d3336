"""Fixtures for DAG tests: a migrated metadata DB in the session's AIRFLOW_HOME and a parsed DagBag."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests import REPO
from tests.conftest import running_localcloud

DAGS = REPO / "dags"


def _is_migrated(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return False
    return {"alembic_version", "dag_run", "task_instance"} <= tables


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """``airflow db migrate`` once per session (about 9 s), in a subprocess with this process's environment."""
    home = Path(os.environ["AIRFLOW_HOME"])
    db = home / "airflow.db"
    if not _is_migrated(db):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        airflow = Path(sys.executable).with_name("airflow")
        proc = subprocess.run(
            [str(airflow), "db", "migrate"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, f"airflow db migrate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return db


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    # Example DAGs stay out through AIRFLOW__CORE__LOAD_EXAMPLES=False (tests/conftest.py); Airflow 3.3's
    # DagBag has no include_examples argument any more.
    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def training_cloud(tmp_path_factory):
    """A localcloud of the module's own that trains Custom Labels versions on a tiny budget (mechanics, not quality)."""
    from tests.offline import TRAINING_BUDGET

    yield from running_localcloud(tmp_path_factory.mktemp("training-cloud") / "data", TRAINING_BUDGET)


def task_states(dag_id: str, run_id: str) -> dict[str, str]:
    """task_id (with the rendered map index for mapped tasks) -> state, for a run's assertions and messages."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        return {
            (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.rendered_map_index or ti.map_index}]"): str(
                ti.state
            )
            for ti in tis
        }
