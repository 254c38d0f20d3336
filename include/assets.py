"""Assets that connect the DAG families. A producer attaches the concrete S3 location in the event's extra."""

from __future__ import annotations

from airflow.sdk import Asset

# Emitted by render_synthetic_dataset; extra = {"manifest": s3 uri, "prefix": ..., "version": ..., "images": n}.
SYNTHETIC_DATASET = Asset(name="synthetic_vision_dataset")
# Emitted by loans_delta_lake; extra = {"table": uri, "version": n, "rows": n, "quarantined": n, "report": uri}.
LOANS_CURATED = Asset(name="loans_delta_curated")
# Emitted by publish_labelled_data (or POST /api/v2/assets/events); schedules autopilot_batch_predictions.
# extra = {"dataset_uri": s3:// CSV with a header and the target column, "rows": n, "sha256": ...}.
CHURN_LABELLED_DATA = Asset(name="churn_labelled_data")
