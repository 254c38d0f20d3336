"""autopilot_batch_predictions and publish_labelled_data (dags/tabular/autopilot_batch_predictions.py)."""

from __future__ import annotations

from include.iam.policies import DagAccess, Family, Grant, register, s3_objects, service_arn

# include/automl/data.py names the AutoML job ``ap-<hash>`` (the hash of the job's params and training data); the
# model and transform of a (candidate, response keys) are ``ap-<hash>-<hash>``, the champion's rescoring transform
# ``<model>-h<holdout hash>``, and a transform whose name is taken gets ``-<timestamp>``. ``ap-`` is the fixed part.
NAME = "ap-*"

# prepare_data reads the labelled CSV (the dataset_uri param or the asset event's); publish_labelled_data checks it.
# Where labelled data lands is not a param of either DAG (dataset_uri defaults to ""): data_bucket/data_prefix.
READ_DATASET = s3_objects("ReadLabelledData", ("s3:GetObject",), "data_bucket", "{data_prefix}/")

TABULAR = register(
    Family(
        name="tabular",
        role="airflow-tabular",
        description="autopilot_batch_predictions and publish_labelled_data",
        settings={
            "bucket": "industrial-ml-tabular",
            "prefix": "autopilot",
            "role_arn": "arn:aws:iam::000000000000:role/sagemaker-autopilot",
            "data_bucket": "industrial-ml-tabular",
            "data_prefix": "landing",
        },
        dags=(
            DagAccess(
                "autopilot_batch_predictions",
                (
                    # S3CreateBucketOperator: HeadBucket (needs s3:ListBucket) then CreateBucket.
                    Grant("TabularBucket", ("s3:CreateBucket", "s3:ListBucket"), ("arn:aws:s3:::{bucket}",)),
                    READ_DATASET,
                    # prepare_data (holdout, train.csv), evaluate (holdout labels, transform output, report), champion
                    # (champion.json) and decide (champion.json, decisions/) under the prefix.
                    s3_objects("AutopilotObjects", ("s3:GetObject", "s3:PutObject"), "bucket", "{prefix}/"),
                    # automl_needed describes the job; SageMakerAutoMLOperator creates and polls it; choose_candidate
                    # lists its candidates (ListCandidatesForAutoMLJob is on the job's ARN).
                    Grant(
                        "AutoMLJobs",
                        (
                            "sagemaker:CreateAutoMLJob",
                            "sagemaker:DescribeAutoMLJob",
                            "sagemaker:ListCandidatesForAutoMLJob",
                        ),
                        (service_arn("sagemaker", f"automl-job/{NAME}"),),
                    ),
                    # choose_candidate drops an earlier run's model of the same name; SageMakerModelOperator
                    # creates and describes it; champion checks the champion's model exists (recreating it if gone).
                    Grant(
                        "CandidateModels",
                        ("sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:DeleteModel"),
                        (service_arn("sagemaker", f"model/{NAME}"),),
                    ),
                    # SageMakerTransformOperator (batch_transform, champion_transform): checks the name is free,
                    # creates the job and polls it.
                    Grant(
                        "HoldoutTransforms",
                        ("sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob"),
                        (service_arn("sagemaker", f"transform-job/{NAME}"),),
                    ),
                    # CreateAutoMLJob (RoleArn) and CreateModel (ExecutionRoleArn) pass the execution role.
                    Grant(
                        "PassExecutionRole",
                        ("iam:PassRole",),
                        ("{role_arn}",),
                        {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                    ),
                ),
            ),
            DagAccess("publish_labelled_data", (READ_DATASET,)),
        ),
    )
)
