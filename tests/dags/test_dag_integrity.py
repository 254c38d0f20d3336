"""Every DAG file imports cleanly, fast, and carries the metadata the UI and on-call rely on."""

from __future__ import annotations

MAX_PARSE_SECONDS = 0.5  # per file, with Airflow already imported


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, "\n\n".join(f"{f}:\n{err}" for f, err in dagbag.import_errors.items())


def test_at_least_one_dag(dagbag):
    assert dagbag.dags, "no DAGs found under dags/"


def test_every_dag_file_defines_a_dag(dagbag):
    # A file that imports cleanly but never calls its @dag function defines nothing, and raises no import error.
    from tests.dags.conftest import DAGS

    files = {str(path) for path in DAGS.rglob("*.py") if not path.name.startswith("_")}
    assert files - {dag.fileloc for dag in dagbag.dags.values()} == set()


def test_every_dag_has_tags_owner_and_docs(dagbag):
    problems = []
    for dag_id, dag in sorted(dagbag.dags.items()):
        if not dag.tags:
            problems.append(f"{dag_id}: no tags")
        if not dag.owner or dag.owner == "airflow":
            problems.append(f"{dag_id}: owner not set (default_args={{'owner': ...}})")
        if not (dag.doc_md or "").strip():
            problems.append(f"{dag_id}: no doc_md")
    assert not problems, "\n".join(problems)


def test_every_file_parses_quickly(dagbag):
    slow = [
        f"{stat.file}: {stat.duration.total_seconds():.3f} s"
        for stat in dagbag.dagbag_stats
        if stat.duration.total_seconds() >= MAX_PARSE_SECONDS
    ]
    assert dagbag.dagbag_stats
    assert not slow, f"DAG files must be wiring only (parse < {MAX_PARSE_SECONDS} s):\n" + "\n".join(slow)
