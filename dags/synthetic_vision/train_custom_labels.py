"""Rendered dataset -> Rekognition Custom Labels version -> evaluation on a held-out set -> gate -> blue/green deploy."""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.sdk import Param, dag, task
from aws_ml.operators.rekognition import (
    RekognitionCreateProjectOperator,
    RekognitionDetectCustomLabelsOperator,
    RekognitionEvaluationGateOperator,
    RekognitionStartProjectVersionOperator,
)

from include.assets import SYNTHETIC_DATASET
from include.connections import AWS_CONN_ID, s3_client
from include.custom_labels.wiring import import_and_train
from include.rendering.airflow_config import render_executor_config, render_pool, render_queue

DOC_MD = """
### train_custom_labels

Trains an Amazon Rekognition Custom Labels model on a rendered dataset, evaluates it on images it never saw,
and deploys it only if it is good enough. Runs whenever `render_synthetic_dataset` publishes a dataset (the
`synthetic_vision_dataset` Asset), or by hand.

1. **training_dataset**: the dataset to train on: `dataset_version` (a render under
   `s3://<dataset_bucket>/<dataset_prefix>/<dataset_name>/<version>/`), or `train_manifest` (any Ground Truth
   manifest), or the Asset event that triggered the run (by hand with neither: the latest published dataset).
2. **test set**, one of:
   - `test_manifest`: your own Ground Truth manifest of labelled images;
   - `test_photos.uri`: labelled real photos in S3 with a Ground Truth manifest, COCO JSON or Pascal VOC XML,
     imported into a manifest;
   - by default, a **domain-shifted render**: the training spec with other seeds, lighting, backgrounds and
     materials, rendered on the GPU queue, so the score says how the model generalises, not how it memorised.
3. **project / datasets / train**: create the project (idempotent), import TRAIN and TEST, train a version
   (deferrable; the `rekognition_training` pool caps concurrent trainings). The version name is a function of
   both datasets, so a rerun reuses the trained version instead of training again.
4. **record**: every version, passed or not, goes into `s3://<bucket>/custom-labels/<project>/ledger.json`
   with its F1, and a per-label F1 chart goes next to its evaluation.
5. **gate**: F1 (and optionally every label's F1) against `min_f1` / `min_label_f1`; below it the run fails,
   or with `gate_soft_fail` the deployment is skipped.
6. **deploy**: start the version (blue/green: the previous version is stopped once the new one serves), run
   DetectCustomLabels on sample test images, and mark the version deployed in the ledger.
"""


@dag(
    dag_id="train_custom_labels",
    schedule=[SYNTHETIC_DATASET],
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    tags=["synthetic_vision", "rekognition", "training"],
    doc_md=DOC_MD,
    default_args={"owner": "vision", "retries": 0},
    params={
        "bucket": Param("industrial-ml-datasets", type="string", description="bucket for models, ledger, reports"),
        "project_name": Param("gearbox-parts", type="string", pattern="^[A-Za-z0-9_.-]{1,255}$"),
        "dataset_version": Param("", type="string", description="train on this render version; empty = Asset"),
        "dataset_bucket": Param("industrial-ml-datasets", type="string"),
        "dataset_prefix": Param("datasets", type="string"),
        "dataset_name": Param("gearbox", type="string"),
        "train_manifest": Param("", type="string", description="s3:// URI of any Ground Truth manifest to train on"),
        "test_manifest": Param("", type="string", description="s3:// URI of a labelled test manifest"),
        "test_photos": Param(
            {"uri": "", "format": "auto", "label_map": {}},
            type="object",
            description="labelled real photos to test on: uri (s3://bucket/prefix/), format, label_map",
        ),
        "test_images_per_class": Param(10, type="integer", minimum=1, maximum=10000),
        "shard_size": Param(50, type="integer", minimum=1, maximum=10000),
        "processes": Param(0, type="integer", minimum=0, description="renderer processes; 0 = cores"),
        "version_name": Param("", type="string", description="override the derived version name"),
        "min_f1": Param(0.8, type="number", minimum=0, maximum=1),
        "min_label_f1": Param(None, type=["null", "number"], minimum=0, maximum=1),
        "gate_soft_fail": Param(False, type="boolean", description="below the gate: skip deployment, not fail"),
        "deploy": Param(True, type="boolean"),
        "min_inference_units": Param(1, type="integer", minimum=1),
        "smoke_images": Param(5, type="integer", minimum=1, maximum=100),
        "smoke_min_confidence": Param(50.0, type="number", minimum=0, maximum=100),
        "smoke_min_hit_rate": Param(0.0, type="number", minimum=0, maximum=1),
    },
)
def train_custom_labels():
    create_bucket = S3CreateBucketOperator(
        task_id="create_bucket", bucket_name="{{ params.bucket }}", aws_conn_id=AWS_CONN_ID
    )

    @task(inlets=[SYNTHETIC_DATASET])
    def training_dataset(params=None, triggering_asset_events=None, inlet_events=None) -> dict:
        from include.custom_labels import steps

        extra = None
        if not params["dataset_version"] and not params["train_manifest"]:
            events = (triggering_asset_events or {}).get(SYNTHETIC_DATASET) or []
            if events:
                extra = dict(events[-1].extra or {})
            else:  # triggered by hand: the latest published dataset
                try:
                    extra = dict(inlet_events[SYNTHETIC_DATASET][-1].extra or {})
                except IndexError:
                    extra = None
        return steps.resolve_training_dataset(params, extra, s3_client())

    @task.branch
    def choose_test_set(params=None) -> str:
        if params["test_manifest"]:
            return "use_test_manifest"
        if (params["test_photos"] or {}).get("uri"):
            return "import_test_photos"
        return "render_shifted_test_set"

    @task
    def use_test_manifest(train: dict, params=None) -> dict:
        from include.custom_labels import steps

        s3 = s3_client()
        return steps.check_test_manifest(params["test_manifest"], s3, train["labels"])

    @task
    def import_test_photos(train: dict, params=None) -> dict:
        from include.custom_labels import steps

        s3 = s3_client()
        return steps.import_test_photos(params, train, s3)

    @task(queue=render_queue(), pool=render_pool(), executor_config=render_executor_config())
    def render_shifted_test_set(train: dict, params=None) -> dict:
        from include.custom_labels import steps

        s3 = s3_client()
        return steps.render_dataset(steps.shifted_render_params(train, params), s3, params["processes"] or None)

    @task(trigger_rule="none_failed_min_one_success")
    def test_set(ti=None) -> dict:
        found = ti.xcom_pull(task_ids=["use_test_manifest", "import_test_photos", "render_shifted_test_set"])
        chosen = [x for x in (found or []) if x]
        if len(chosen) != 1:
            raise ValueError(f"expected exactly one test set, got {chosen}")
        return chosen[0]

    @task(multiple_outputs=True)
    def plan_version(train: dict, test: dict, params=None) -> dict:
        from include.custom_labels import steps

        name = steps.version_name(params["project_name"], train, test, params["version_name"])
        return steps.training_plan(params["project_name"], name, train, test)

    project = RekognitionCreateProjectOperator(
        task_id="create_project", project_name="{{ params.project_name }}", aws_conn_id=AWS_CONN_ID
    )

    train = training_dataset()
    branch = choose_test_set()
    candidates = [use_test_manifest(train), import_test_photos(train), render_shifted_test_set(train)]
    test = test_set()
    branch >> candidates
    candidates >> test
    plan = plan_version(train, test)
    create_bucket >> train >> branch

    training = import_and_train(project.output, plan, AWS_CONN_ID)

    @task(trigger_rule="all_done")
    def record(project_arn: str, plan: dict, train: dict, test: dict, params=None, dag_run=None) -> dict:
        from aws_ml.hooks.rekognition import RekognitionHook

        from include.custom_labels import steps

        version = RekognitionHook(aws_conn_id=AWS_CONN_ID).describe_version(project_arn, plan["version_name"])
        if version is None:
            raise ValueError(f"no version {plan['version_name']} to record: training never started")
        s3 = s3_client()
        return steps.record_version(params, version, train, test, s3, run_id=dag_run.run_id)

    gate = RekognitionEvaluationGateOperator(
        task_id="gate",
        project_arn=project.output,
        version_name=plan["version_name"],
        min_f1="{{ params.min_f1 }}",
        min_label_f1="{{ params.min_label_f1 }}",
        soft_fail="{{ params.gate_soft_fail }}",
        aws_conn_id=AWS_CONN_ID,
    )
    recorded = record(project.output, plan, train, test)
    training >> recorded >> gate
    training >> gate

    @task.short_circuit
    def deploy_wanted(params=None) -> bool:
        return bool(params["deploy"])

    start = RekognitionStartProjectVersionOperator(
        task_id="start_version",
        project_arn=project.output,
        version_name=plan["version_name"],
        min_inference_units="{{ params.min_inference_units }}",
        waiter_delay=5,
        aws_conn_id=AWS_CONN_ID,
    )

    @task(multiple_outputs=True)
    def smoke_sample(test: dict, params=None) -> dict:
        from include.custom_labels import steps

        return steps.sample_images(test["manifest"], s3_client(), params["smoke_images"])

    sample = smoke_sample(test)
    smoke = RekognitionDetectCustomLabelsOperator(
        task_id="smoke_check",
        project_version_arn=start.output,
        images=sample["images"],
        expected_labels=sample["expected_labels"],
        min_confidence="{{ params.smoke_min_confidence }}",
        min_hit_rate="{{ params.smoke_min_hit_rate }}",
        aws_conn_id=AWS_CONN_ID,
    )

    @task
    def mark_deployed(plan: dict, smoke: dict, params=None) -> dict:
        from include.custom_labels import steps

        s3 = s3_client()
        return steps.mark_deployed(params, plan["version_name"], smoke, s3)

    gate >> deploy_wanted() >> start >> smoke
    mark_deployed(plan, smoke.output)


train_custom_labels()
