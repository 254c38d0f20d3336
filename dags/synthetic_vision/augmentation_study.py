"""A matrix of randomizer toggles -> render and train one Custom Labels version per variant -> rank -> promote."""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.sdk import Param, dag, task, task_group
from aws_ml.operators.rekognition import (
    RekognitionCreateProjectOperator,
    RekognitionStartProjectVersionOperator,
)

from include.connections import AWS_CONN_ID, s3_client
from include.custom_labels.wiring import import_and_train
from include.rendering.airflow_config import render_executor_config, render_pool, render_queue

DOC_MD = """
### augmentation_study

Which augmentations make a model that generalises? The seed's team ran 15 manual iterations over combinations
to reach F1 0.98; this DAG runs the whole matrix.

- **matrix**: toggle -> values, e.g. `{"materials": [true, false], "backgrounds": [true, false]}` (toggles:
  zoom, rotation, materials, lighting, pose_filter, multi_object, backgrounds); every combination is a variant.
- Per variant (a mapped task group): render its dataset (GPU queue), create its project
  `<study_name>-<variant>`, import TRAIN and the shared TEST set, train one version (the
  `rekognition_training` pool caps how many train at once), and read its scores.
- The test set is the same for every variant: `test_manifest`, or by default a domain-shifted render of the
  all-on configuration.
- **rank**: `s3://<bucket>/custom-labels/studies/<study_name>/ranking.csv` and `ranking.png` (F1 per variant and
  per label).
- **promote**: the best variant's version is started, and any version of the study's other projects is stopped.
"""


@dag(
    dag_id="augmentation_study",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    tags=["synthetic_vision", "rekognition", "study"],
    doc_md=DOC_MD,
    default_args={"owner": "vision", "retries": 0},
    params={
        "bucket": Param("industrial-ml-datasets", type="string"),
        "study_name": Param("gearbox-study", type="string", pattern="^[a-z0-9-]{1,40}$"),
        "matrix": Param(
            {"materials": [True, False], "backgrounds": [True, False]},
            type="object",
            description="toggle -> list of values; every combination is a variant",
        ),
        "base_render": Param({}, type="object", description="RenderConfig overrides shared by every variant"),
        "catalog": Param("include/cad/gearbox/catalog.yaml", type="string"),
        "classes": Param([], type="array"),
        "images_per_class": Param(40, type="integer", minimum=1, maximum=100000),
        "resolution": Param(512, type="integer", minimum=64, maximum=4096),
        "seed": Param(0, type="integer", minimum=0),
        "dataset_prefix": Param("datasets", type="string"),
        "shard_size": Param(50, type="integer", minimum=1, maximum=10000),
        "processes": Param(0, type="integer", minimum=0),
        "test_manifest": Param("", type="string", description="shared test set; empty = domain-shifted render"),
        "test_images_per_class": Param(10, type="integer", minimum=1, maximum=10000),
        "promote": Param(True, type="boolean"),
        "min_inference_units": Param(1, type="integer", minimum=1),
    },
)
def augmentation_study():
    create_bucket = S3CreateBucketOperator(
        task_id="create_bucket", bucket_name="{{ params.bucket }}", aws_conn_id=AWS_CONN_ID
    )

    @task
    def plan_variants(params=None) -> list[dict]:
        from include.custom_labels.study import plan_variants as plan

        return plan(params)

    @task(queue=render_queue(), pool=render_pool(), executor_config=render_executor_config())
    def shared_test_set(params=None) -> dict:
        from include.custom_labels import steps, study

        s3 = s3_client()
        reference = study.base_dataset(params)
        if params["test_manifest"]:
            labels = steps.catalog_labels(params["catalog"], params["classes"])
            return steps.check_test_manifest(params["test_manifest"], s3, labels)
        render = steps.shifted_render_params(reference, params)
        return steps.render_dataset(render, s3, params["processes"] or None)

    @task_group
    def variant(spec: dict, test: dict):
        @task(queue=render_queue(), pool=render_pool(), executor_config=render_executor_config(), multiple_outputs=True)
        def render_variant(spec: dict, test: dict, params=None) -> dict:
            from include.custom_labels import steps

            rendered = steps.render_dataset(spec["render_params"], s3_client(), params["processes"] or None)
            name = steps.version_name(spec["variant"], rendered, test)
            plan = steps.training_plan(spec["project_name"], name, rendered, test)
            return {**spec, "dataset": rendered, "project_name": spec["project_name"], **plan}

        rendered = render_variant(spec, test)
        project = RekognitionCreateProjectOperator(
            task_id="create_project", project_name=rendered["project_name"], aws_conn_id=AWS_CONN_ID
        )
        training = import_and_train(project.output, rendered, AWS_CONN_ID)

        @task(trigger_rule="all_done")
        def score(plan: dict, project_arn: str) -> dict:
            from aws_ml.hooks.rekognition import RekognitionHook

            from include.custom_labels import steps

            return steps.score_variant(
                plan,
                project_arn,
                RekognitionHook(aws_conn_id=AWS_CONN_ID).describe_version(project_arn, plan["version_name"]),
                s3_client(),
            )

        result = score(rendered, project.output)
        training >> result
        return result

    @task(multiple_outputs=True)
    def rank(results: list[dict], params=None) -> dict:
        from include.custom_labels import steps

        return steps.publish_ranking(params, list(results), s3_client())

    @task.short_circuit
    def promote_wanted(best: dict, params=None) -> bool:
        return bool(params["promote"]) and best.get("f1") is not None

    variants = plan_variants()
    test = shared_test_set()
    create_bucket >> [variants, test]
    results = variant.partial(test=test).expand(spec=variants)
    ranking = rank(results)
    start = RekognitionStartProjectVersionOperator(
        task_id="promote_best",
        project_arn=ranking["best_project_arn"],
        version_name=ranking["best_version_name"],
        min_inference_units="{{ params.min_inference_units }}",
        waiter_delay=5,
        aws_conn_id=AWS_CONN_ID,
    )

    @task
    def stop_other_variants(promoted_arn: str, results: list[dict]) -> list[str]:
        from aws_ml.hooks.rekognition import RekognitionHook

        from include.custom_labels import steps

        return steps.stop_versions_except(RekognitionHook(aws_conn_id=AWS_CONN_ID).conn, list(results), promoted_arn)

    promote_wanted(ranking["best"]) >> start
    stop_other_variants(start.output, results)


augmentation_study()
