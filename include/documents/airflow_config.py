"""Airflow wiring helpers of the digitization DAG (imported at parse time: keep it light)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from include.connections import dynamodb_client

# Pools for self-regulation; both count deferred tasks (`make migrate` creates them with --include-deferred), so
# their sizes are the number of Textract jobs in flight and of human loops open at once.
TEXTRACT_POOL = "textract_jobs"
REVIEW_POOL = "human_loops"
ACQUIRE_TASK = "acquire"
# The A2I worker task template registered for AWS mode (localcloud serves its own review page).
REVIEW_TEMPLATE = str(Path(__file__).with_name("a2i_review_template.html"))


def _document(context: dict[str, Any]) -> dict[str, Any] | None:
    ti = context["ti"]
    documents = ti.xcom_pull(task_ids=ACQUIRE_TASK) or []
    index = getattr(ti, "map_index", -1)
    return documents[index] if 0 <= index < len(documents) else None


def tracking_callbacks(stage: str, table_param: str = "tracking_table") -> dict[str, Callable]:
    """on_execute/success/failure callbacks that keep a mapped document's tracking item at ``stage``.

    For classic operators (Textract, A2I) in the per-document task group; TaskFlow stages track themselves.
    """

    def record(state: str) -> Callable:
        def callback(context: dict[str, Any]) -> None:
            from include.documents import tracking

            document = _document(context)
            if document is None:
                return
            error = context.get("exception")
            ddb = dynamodb_client()
            tracking.update(
                ddb,
                context["params"][table_param],
                document["document_id"],
                stage,
                state,
                error=f"{type(error).__name__}: {error}" if error else None,
            )

        return callback

    return {
        "on_execute_callback": record("running"),
        "on_success_callback": record("done"),
        "on_failure_callback": record("failed"),
    }
