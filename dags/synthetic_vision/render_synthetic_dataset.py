"""CAD catalog -> thousands of labelled renders -> a Ground Truth manifest in S3, published as an Asset."""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.sdk import Param, dag, task

from include.assets import SYNTHETIC_DATASET
from include.connections import AWS_CONN_ID, s3_client
from include.rendering.airflow_config import render_executor_config, render_pool, render_queue

DOC_MD = """
### render_synthetic_dataset

Turns the CAD meshes of a catalog (default: the sample gearbox in `include/cad/gearbox/`) into labelled
object-detection images and a SageMaker Ground Truth manifest that Rekognition Custom Labels imports.

1. **plan**: loads and validates the catalog and the render config, computes the dataset version (a hash of
   the params and of the catalog's bytes) and splits the images into shards.
2. **render_shard** (mapped, `queue="gpu"`, pod template from `RENDER_POD_TEMPLATE` on Kubernetes): renders a
   shard with one renderer per core, uploads its images, shard manifest and a debug contact sheet.
3. **validate**: checks every manifest line against Rekognition's limits and the images in S3.
4. **merge**: merges the shard manifests (refusing duplicates), writes `coco.json` and `dataset.json`.
5. **publish**: emits the `synthetic_vision_dataset` Asset with the manifest's S3 URI in the event extra.

Everything lands under `s3://<bucket>/<prefix>/<dataset_name>/<version>/`. The same params give the same
version and byte-identical manifests; a rerun overwrites the same keys.
"""


@dag(
    dag_id="render_synthetic_dataset",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["synthetic_vision", "rendering", "gpu"],
    doc_md=DOC_MD,
    default_args={"owner": "vision", "retries": 1},
    params={
        "bucket": Param("industrial-ml-datasets", type="string", description="S3 bucket for datasets"),
        "prefix": Param("datasets", type="string", description="key prefix above <dataset_name>/<version>/"),
        "dataset_name": Param("gearbox", type="string", pattern="^[A-Za-z0-9_-]+$"),
        "catalog": Param("include/cad/gearbox/catalog.yaml", type="string", description="catalog YAML"),
        "classes": Param([], type="array", description="class names to render; empty = all"),
        "images_per_class": Param(20, type="integer", minimum=1, maximum=100000),
        "resolution": Param(512, type="integer", minimum=64, maximum=4096, description="square image side, px"),
        "seed": Param(0, type="integer", minimum=0),
        "shard_size": Param(50, type="integer", minimum=1, maximum=10000, description="images per mapped task"),
        "processes": Param(0, type="integer", minimum=0, description="renderer processes per task; 0 = cores"),
        "render": Param({}, type="object", description="RenderConfig overrides: toggles and ranges"),
        "creation_date": Param("2026-01-01T00:00:00", type="string", description="stamped into the manifest"),
    },
)
def render_synthetic_dataset():
    create_bucket = S3CreateBucketOperator(
        task_id="create_bucket", bucket_name="{{ params.bucket }}", aws_conn_id=AWS_CONN_ID
    )

    @task
    def plan(params=None) -> dict:
        from include.rendering.pipeline import plan as plan_dataset

        return plan_dataset(params)

    @task
    def shards(layout: dict) -> list[dict]:
        # Mapping needs a task's whole return value; the layout is shared by every shard instead.
        return layout["shards"]

    @task(queue=render_queue(), pool=render_pool(), executor_config=render_executor_config(), retries=2)
    def render_shard(shard: dict, layout: dict, params=None) -> dict:
        from include.rendering.pipeline import render_shard as render

        s3 = s3_client()
        return render(layout, shard, s3, processes=params["processes"] or None)

    @task
    def validate(layout: dict) -> dict:
        from include.rendering.pipeline import validate_shards

        return validate_shards(layout, s3_client())

    @task
    def merge(layout: dict, shard_stats: list[dict]) -> dict:
        from include.rendering.pipeline import merge as merge_dataset

        return merge_dataset(layout, s3_client(), list(shard_stats))

    @task(outlets=[SYNTHETIC_DATASET])
    def publish(summary: dict, outlet_events=None) -> dict:
        extra = {k: summary[k] for k in ("manifest", "prefix", "version", "images")}
        outlet_events[SYNTHETIC_DATASET].extra = extra
        return extra

    layout = plan()
    stats = render_shard.partial(layout=layout).expand(shard=shards(layout))
    checked = validate(layout)
    summary = merge(layout, stats)
    create_bucket >> layout
    stats >> checked >> summary
    publish(summary)


render_synthetic_dataset()
