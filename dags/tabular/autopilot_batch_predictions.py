"""Churn (or any CSV) -> SageMaker Autopilot -> chosen candidate -> model with response keys -> batch transform -> report."""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerAutoMLOperator,
    SageMakerModelOperator,
    SageMakerTransformOperator,
)
from airflow.sdk import Param, dag, task

AWS_CONN_ID = "aws_default"

DOC_MD = """
### autopilot_batch_predictions

1. **prepare_data**: the training CSV (`dataset_uri`, or the generated 21-attribute churn data) is split into a
   training set (with the target) and a held-out set: features without the target for batch transform, and the
   labels for the evaluation.
2. **automl** (`SageMakerAutoMLOperator`, CreateAutoMLJob v1): `target`, `problem_type`, `objective`,
   `max_candidates` and `max_runtime_seconds` params.
3. **candidates**: ListCandidatesForAutoMLJob, ranked by the final objective; **choose** the best or the one named
   by `candidate_name`.
4. **model** (`SageMakerModelOperator`): the candidate's inference containers with `SAGEMAKER_INFERENCE_OUTPUT` set
   from `inference_response_keys`, as the SageMaker SDK's `AutoML.create_model` does.
5. **transform** (`SageMakerTransformOperator`): `SplitType=Line`, `ContentType=text/csv`, `AssembleWith=Line`.
6. **evaluate**: F1, accuracy, AUC, confusion matrix and a PR curve PNG against the held-out labels, written to
   `s3://<bucket>/<prefix>/<run>/report/`.

The AutoML job's name is a hash of the params that decide it, so a rerun (or a run that only picks another
candidate or other response keys) reuses the finished job; the model and transform are named per (candidate,
response keys), and a rerun replaces them.
"""


@dag(
    dag_id="autopilot_batch_predictions",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    tags=["tabular", "sagemaker", "automl"],
    doc_md=DOC_MD,
    default_args={"owner": "tabular", "retries": 0},
    params={
        "bucket": Param("industrial-ml-tabular", type="string"),
        "prefix": Param("autopilot", type="string"),
        "dataset_uri": Param("", type="string", description="s3:// CSV with a header; empty = generated churn data"),
        "rows": Param(5000, type="integer", minimum=100, description="generated churn rows"),
        "target": Param("Churn?", type="string"),
        "problem_type": Param("auto", enum=["auto", "BinaryClassification", "MulticlassClassification", "Regression"]),
        "objective": Param("F1", enum=["F1", "Accuracy", "AUC", "MSE", "F1macro", "RMSE", "MAE", "R2"]),
        "max_candidates": Param(6, type="integer", minimum=1, maximum=250),
        "max_runtime_seconds": Param(120, type="integer", minimum=10),
        "holdout_fraction": Param(0.2, type="number", minimum=0.05, maximum=0.5),
        "candidate_name": Param("", type="string", description="empty = the best candidate"),
        "inference_response_keys": Param(
            ["predicted_label", "probability", "labels", "probabilities"], type="array", minItems=1
        ),
        "role_arn": Param("arn:aws:iam::000000000000:role/sagemaker-autopilot", type="string"),
        "seed": Param(0, type="integer", minimum=0),
    },
)
def autopilot_batch_predictions():
    create_bucket = S3CreateBucketOperator(
        task_id="create_bucket", bucket_name="{{ params.bucket }}", aws_conn_id=AWS_CONN_ID
    )

    @task(multiple_outputs=True)
    def prepare_data(params=None) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from include.automl.data import prepare

        return prepare(params, S3Hook(aws_conn_id=AWS_CONN_ID).get_conn())

    data = prepare_data()
    automl = SageMakerAutoMLOperator(
        task_id="automl",
        job_name=data["job_name"],
        s3_input=data["train_uri"],
        target_attribute="{{ params.target }}",
        s3_output=data["output_uri"],
        role_arn="{{ params.role_arn }}",
        time_limit="{{ params.max_runtime_seconds }}",
        extras=data["automl_extras"],
        check_interval=5,
        aws_conn_id=AWS_CONN_ID,
    )

    @task.branch
    def automl_needed(data: dict) -> str:
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        from include.automl.candidates import existing_job_status

        # The provider operator always creates: a rerun of this run reuses its finished job instead.
        status = existing_job_status(SageMakerHook(aws_conn_id=AWS_CONN_ID).conn, data["job_name"])
        if status is None:
            return "automl"
        if status == "Completed":
            return "choose_candidate"
        raise ValueError(f"AutoML job {data['job_name']} exists and is {status}; it cannot be reused")

    @task(multiple_outputs=True, trigger_rule="none_failed_min_one_success")
    def choose_candidate(data: dict, params=None) -> dict:
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        from include.automl import candidates
        from include.automl.data import deployment_slug

        sagemaker = SageMakerHook(aws_conn_id=AWS_CONN_ID).conn
        ranked = candidates.list_candidates(sagemaker, data["job_name"])
        chosen = candidates.choose(ranked, params["candidate_name"] or None)
        keys = list(params["inference_response_keys"])
        deployment = f"{data['job_name']}-{deployment_slug(chosen['CandidateName'], keys)}"
        candidates.drop_model(sagemaker, deployment)  # the same deployment from an earlier run: made again below
        bucket, root = params["bucket"], data["root"]
        predictions = f"s3://{bucket}/{root}/predictions/{deployment}/"
        return {
            "candidate": chosen["CandidateName"],
            "rank": [c["CandidateName"] for c in ranked].index(chosen["CandidateName"]) + 1,
            "objective": chosen["FinalAutoMLJobObjectiveMetric"],
            "ranking": [
                {"name": c["CandidateName"], "value": c["FinalAutoMLJobObjectiveMetric"]["Value"]} for c in ranked
            ],
            "model_config": candidates.model_config(chosen, deployment, params["role_arn"], keys),
            "transform_config": candidates.transform_config(
                deployment, deployment, data["holdout_features_uri"], predictions
            ),
            "keys": keys,
            "predictions_uri": predictions,
            "report_prefix": f"{root}/report/{deployment}",
        }

    chosen = choose_candidate(data)
    model = SageMakerModelOperator(task_id="create_model", config=chosen["model_config"], aws_conn_id=AWS_CONN_ID)
    transform = SageMakerTransformOperator(
        task_id="batch_transform",
        config=chosen["transform_config"],
        check_interval=5,
        check_if_job_exists=True,
        action_if_job_exists="timestamp",
        aws_conn_id=AWS_CONN_ID,
    )

    @task
    def evaluate(data: dict, chosen: dict, params=None) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from include.automl.data import write_report

        return write_report(params, data, chosen, S3Hook(aws_conn_id=AWS_CONN_ID).get_conn())

    create_bucket >> data >> automl_needed(data) >> [automl, chosen]
    automl >> chosen >> model >> transform
    transform >> evaluate(data, chosen)


autopilot_batch_predictions()
