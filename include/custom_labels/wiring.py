"""Task wiring both Custom Labels DAGs share (parse-time code: operators only, no I/O)."""

from __future__ import annotations

from typing import Any

from aws_ml.operators.rekognition import RekognitionCreateDatasetOperator, RekognitionTrainProjectVersionOperator

from include.custom_labels.airflow_config import TRAINING_POOL


def import_and_train(project_arn: Any, plan: Any, aws_conn_id: str) -> RekognitionTrainProjectVersionOperator:
    """TRAIN and TEST datasets from ``plan``'s manifests, then one deferrable training in the training pool.

    ``plan`` is a ``multiple_outputs`` task's output with ``train_bucket/train_key``, ``test_bucket/test_key``,
    ``version_name`` and ``evaluation_prefix``. Returns the training task.
    """
    datasets = [
        RekognitionCreateDatasetOperator(
            task_id=f"create_{kind}_dataset",
            project_arn=project_arn,
            dataset_type=kind.upper(),
            manifest_bucket=plan[f"{kind}_bucket"],
            manifest_key=plan[f"{kind}_key"],
            waiter_delay=2,
            aws_conn_id=aws_conn_id,
        )
        for kind in ("train", "test")
    ]
    training = RekognitionTrainProjectVersionOperator(
        task_id="train_version",
        project_arn=project_arn,
        version_name=plan["version_name"],
        output_bucket="{{ params.bucket }}",
        output_prefix=plan["evaluation_prefix"],
        deferrable=True,
        waiter_delay=10,
        pool=TRAINING_POOL,
        aws_conn_id=aws_conn_id,
    )
    datasets >> training
    return training
