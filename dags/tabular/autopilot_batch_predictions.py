"""Labelled CSV (Asset event or param) -> Autopilot -> candidate -> model -> batch transform on a fixed holdout ->
report -> champion/challenger decision. Also the small producer of that Asset, publish_labelled_data."""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerAutoMLOperator,
    SageMakerModelOperator,
    SageMakerTransformOperator,
)
from airflow.sdk import Param, dag, task

from include.assets import CHURN_LABELLED_DATA
from include.connections import AWS_CONN_ID, s3_client, sagemaker_client

DOC_MD = """
### autopilot_batch_predictions

Trains a tabular model with SageMaker Autopilot and keeps it only if it beats the current champion. Runs whenever
labelled data lands (the `churn_labelled_data` Asset, e.g. from `publish_labelled_data`), or by hand.

1. **prepare_data**: the data is the `dataset_uri` param, else the triggering asset event's `dataset_uri`, else (by
   hand) the generated 21-attribute churn data. The **fixed holdout** of (bucket, prefix, target) lives under
   `s3://<bucket>/<prefix>/registry/<target>/holdout/`: made once from the first dataset (`holdout_fraction`),
   never overwritten, its sha256 recorded. Rows whose features are in it are dropped from every training set.
2. **automl** (`SageMakerAutoMLOperator`, CreateAutoMLJob v1): `target`, `problem_type`, `objective`,
   `max_candidates` and `max_runtime_seconds` params.
3. **candidates**: ListCandidatesForAutoMLJob, ranked by the final objective; **choose** the best or the one named
   by `candidate_name`.
4. **model** (`SageMakerModelOperator`): the candidate's inference containers with `SAGEMAKER_INFERENCE_OUTPUT` set
   from `inference_response_keys`, as the SageMaker SDK's `AutoML.create_model` does.
5. **transform** (`SageMakerTransformOperator`): the holdout, `SplitType=Line`, `ContentType=text/csv`.
6. **evaluate**: F1, accuracy, AUC, confusion matrix and a PR curve PNG against the holdout labels, written to
   `s3://<bucket>/<prefix>/<job>/report/`.
7. **champion**: the champion in `registry/<target>/champion.json`; its recorded score is reused when it is on the
   same holdout (sha256) and metric, else **champion_transform** scores it again.
8. **decide**: promote (rewrite `champion.json`) only if the challenger beats the champion by more than
   `min_improvement` in the objective's direction (lower is better for MSE, RMSE, MAE). The decision (both
   scores, metric, holdout hash, dataset, `first_model` / `promoted` / `kept`, reason) goes to
   `registry/<target>/decisions/<run id>.json` and to XCom.

The AutoML job's name hashes the params that decide it and the training data, so a rerun (or a run that only picks
another candidate or other response keys) reuses the finished job; the model and transform are named per
(candidate, response keys), and a rerun replaces them. A rerun of a run decides the same and replaces its decision.
"""

PUBLISH_DOC_MD = """
### publish_labelled_data

Announces labelled data for `autopilot_batch_predictions`: checks that `dataset_uri` is a CSV with a header (and the
`target` column) and emits a `churn_labelled_data` Asset event with extra `{dataset_uri, rows, sha256}`, which
schedules a retraining. The same event can come from the REST API: `POST /api/v2/assets/events` with
`{"asset_id": <id>, "extra": {"dataset_uri": "s3://..."}}`.
"""


def _transform(task_id: str, config) -> SageMakerTransformOperator:
    # A rerun finds the job of the same name and starts a timestamped one rather than failing.
    return SageMakerTransformOperator(
        task_id=task_id,
        config=config,
        check_interval=5,
        check_if_job_exists=True,
        action_if_job_exists="timestamp",
        aws_conn_id=AWS_CONN_ID,
    )


@dag(
    dag_id="autopilot_batch_predictions",
    schedule=[CHURN_LABELLED_DATA],
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
        "holdout_fraction": Param(
            0.2, type="number", minimum=0.05, maximum=0.5, description="used once: when the fixed holdout is made"
        ),
        "candidate_name": Param("", type="string", description="empty = the best candidate"),
        "inference_response_keys": Param(
            ["predicted_label", "probability", "labels", "probabilities"], type="array", minItems=1
        ),
        "role_arn": Param("arn:aws:iam::000000000000:role/sagemaker-autopilot", type="string"),
        "seed": Param(0, type="integer", minimum=0),
        "min_improvement": Param(
            0.0, type="number", minimum=0, description="promote only if better than the champion by more than this"
        ),
    },
)
def autopilot_batch_predictions():
    create_bucket = S3CreateBucketOperator(
        task_id="create_bucket", bucket_name="{{ params.bucket }}", aws_conn_id=AWS_CONN_ID
    )

    @task(multiple_outputs=True)
    def prepare_data(params=None, triggering_asset_events=None) -> dict:
        from include.automl.champion import resolve_dataset
        from include.automl.data import prepare

        events = (triggering_asset_events or {}).get(CHURN_LABELLED_DATA) or []
        uri, source = resolve_dataset(params["dataset_uri"], [dict(e.extra or {}) for e in events])
        return prepare({**params, "dataset_uri": uri}, s3_client(), source)

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
        from include.automl.candidates import existing_job_status

        # The provider operator always creates: a rerun of this run reuses its finished job instead.
        status = existing_job_status(sagemaker_client(), data["job_name"])
        if status is None:
            return "automl"
        if status == "Completed":
            return "choose_candidate"
        raise ValueError(f"AutoML job {data['job_name']} exists and is {status}; it cannot be reused")

    @task(multiple_outputs=True, trigger_rule="none_failed_min_one_success")
    def choose_candidate(data: dict, params=None) -> dict:
        from include.automl import candidates
        from include.automl.data import deployment_slug

        sagemaker = sagemaker_client()
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
    transform = _transform("batch_transform", chosen["transform_config"])

    @task
    def evaluate(data: dict, chosen: dict, params=None) -> dict:
        from include.automl.data import write_report

        return write_report(params, data, chosen, s3_client())

    @task(multiple_outputs=True)
    def champion(data: dict, params=None, run_id=None) -> dict:
        from include.automl.champion import plan_champion

        s3, sagemaker = s3_client(), sagemaker_client()
        return plan_champion(params, data, run_id, s3, sagemaker)

    @task.branch
    def champion_scoring(plan: dict) -> list[str]:
        # decide follows either way (it waits for champion_transform when that runs).
        return ["champion_transform", "decide"] if plan["scoring"] == "rescore" else ["decide"]

    plan = champion(data)
    champion_transform = _transform("champion_transform", plan["transform_config"])

    @task(trigger_rule="none_failed_min_one_success")
    def decide(data: dict, chosen: dict, plan: dict, params=None, run_id=None) -> dict:
        from include.automl.champion import record_decision

        return record_decision(params, data, chosen, plan, run_id, s3_client())

    decision = decide(data, chosen, plan)
    create_bucket >> data >> automl_needed(data) >> [automl, chosen]
    automl >> chosen >> model >> transform
    transform >> evaluate(data, chosen) >> decision
    model >> plan >> champion_scoring(plan) >> [champion_transform, decision]
    champion_transform >> decision


autopilot_batch_predictions()


@dag(
    dag_id="publish_labelled_data",
    schedule=None,
    catchup=False,
    tags=["tabular", "assets"],
    doc_md=PUBLISH_DOC_MD,
    default_args={"owner": "tabular", "retries": 0},
    params={
        "dataset_uri": Param("", type="string", description="s3:// CSV with a header, labels included"),
        "target": Param("Churn?", type="string", description="checked to be a column; empty = not checked"),
    },
)
def publish_labelled_data():
    @task(outlets=[CHURN_LABELLED_DATA])
    def publish(params=None, outlet_events=None) -> dict:
        from include.automl.data import describe_dataset

        s3 = s3_client()
        extra = describe_dataset(s3, params["dataset_uri"], params["target"])
        outlet_events[CHURN_LABELLED_DATA].extra = extra
        return extra

    publish()


publish_labelled_data()
