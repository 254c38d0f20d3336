"""e2e: loans_delta_lake with dag.test(): every step a real spark-submit (local master) on a file:// warehouse."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.dags.test_train_custom_labels import _states

pytest.importorskip("pyspark")
pytestmark = pytest.mark.usefixtures("airflow_db")

ROWS = 300
BAD_RATE = 0.04
N_UPDATES = 12
N_NEW = 8


@pytest.fixture
def spark_env(monkeypatch):
    # spark-submit comes with pyspark in the venv; Airflow finds it on PATH (the Makefile puts .venv/bin first).
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))


def _xcoms(dag_id: str, run_id: str) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.dag_id == dag_id, XComModel.run_id == run_id).all()
        return {row.task_id: row.value for row in rows if row.key == "return_value"}


def test_the_whole_pipeline_and_a_second_run_that_adds_nothing(dagbag, spark_env, tmp_path):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    dag = dagbag.dags["loans_delta_lake"]
    conf = {
        "warehouse": f"file://{tmp_path}/lake",
        "rows": ROWS,
        "bad_rate": BAD_RATE,
        "seed": 3,
        "batch_updates": N_UPDATES,
        "batch_new": N_NEW,
        "zorder_by": "addr_state",
    }
    run = dag.test(run_conf=conf)
    states = _states(dag.dag_id, run.run_id)
    assert run.state == "success", states
    x = {k: json.loads(v) if isinstance(v, str) else v for k, v in _xcoms(dag.dag_id, run.run_id).items()}

    bad = round(ROWS * BAD_RATE)
    ingest = x["ingest"]
    assert (ingest["rows_in"], ingest["rows_written"], ingest["rows_quarantined"]) == (ROWS, ROWS - bad, bad)
    # Versions pass from step to step: each builds on the one before.
    assert [x[t]["version"] for t in ("ingest", "evolve", "update", "upsert")] == [0, 1, 3, 4]
    assert x["query"]["is_delta"] is True and x["query"]["history"][0]["step"] == "ingest"
    assert (x["upsert"]["inserted"], x["upsert"]["updated"]) == (N_NEW, N_UPDATES)
    diff = x["time_travel"]["diff"]
    assert (diff["added"], diff["removed"], diff["changed"]) == (N_NEW, 0, N_UPDATES)
    report = Path(x["time_travel"]["report"].removeprefix("file://"))
    assert json.loads(report.read_text())["diff"]["added"] == N_NEW
    assert x["maintenance"]["optimize"]["zorder_by"] == ["addr_state"]
    assert x["maintenance"]["vacuum"]["files_deleted"] == 0

    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_run_id == run.run_id).all()
        assert len(events) == 1
        extra = events[0].extra
    assert extra["table"] == f"file://{tmp_path}/lake/loans"
    assert extra["versions"]["upsert"] == 4 and extra["quarantined"] == bad
    assert extra["diff"]["added"] == N_NEW

    # Every commit of the run names it.
    history = x["query"]["history"]
    assert {c["run"] for c in history} == {f"loans_delta_lake/{run.run_id}"}

    # A second run on the same inputs: the extract is a full snapshot (overwrite), so the batch's changes are merged
    # again onto it, and the table ends with the same rows, none twice.
    second = dag.test(run_conf=conf)
    assert second.state == "success", _states(dag.dag_id, second.run_id)
    y = {k: json.loads(v) if isinstance(v, str) else v for k, v in _xcoms(dag.dag_id, second.run_id).items()}
    assert y["prepare_sources"]["generated"] == []  # the generated files were found, not rewritten
    assert y["evolve"]["skipped"] is True
    assert (y["upsert"]["inserted"], y["upsert"]["updated"]) == (N_NEW, N_UPDATES)
    assert y["time_travel"]["diff"]["rows_new"] == x["time_travel"]["diff"]["rows_new"] == ROWS - bad + N_NEW
    assert y["query"]["rows"] == ROWS - bad
