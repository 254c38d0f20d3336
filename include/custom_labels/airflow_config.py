"""Airflow placement of Custom Labels training (imported by DAG files at parse time: keep it light)."""

from __future__ import annotations

# Deferred trainings hold their slot (the pool is created with --include-deferred by `make migrate`), so the
# pool's size is the number of trainings running at once, on AWS or in localcloud.
TRAINING_POOL = "rekognition_training"
