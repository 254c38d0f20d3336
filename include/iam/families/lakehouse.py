"""loans_delta_lake, with its warehouse on S3 (``s3://{warehouse_bucket}/{warehouse_prefix}``).

On a file:// warehouse (the local default) the DAG makes no AWS call at all. On S3 its statements depend on the
deployment's engine (``LAKEHOUSE_SPARK_ENGINE``): spark-submit, whose S3A connector reads and writes the warehouse
with the connection's credentials, or EMR Serverless, whose jobs read and write it as their execution role (not this
one). ``ENGINE_GRANTS`` says which statements each engine uses; the DAG's statements are their union.

The warehouse has no S3 default (the ``warehouse`` param defaults to ``LAKEHOUSE_URI``, file:// locally); nor have
the EMR Serverless application and execution role (``LAKEHOUSE_EMR_APPLICATION_ID``, ``LAKEHOUSE_EMR_ROLE_ARN``):
the application id is assigned when the application is created, hence ``*`` until a deployment names it.
"""

from __future__ import annotations

from include.iam.policies import DagAccess, Family, Grant, register, s3_objects, service_arn

_APPLICATION = service_arn("emr-serverless", "/applications/{emr_application_id}")

# Both engines.
SHARED = (
    # prepare_sources: heads the generated inputs under raw/ and uploads the missing ones.
    s3_objects("RawInputs", ("s3:GetObject", "s3:PutObject"), "warehouse_bucket", "{warehouse_prefix}/raw/"),
    # Each step's operator reads the result JSON its job wrote.
    s3_objects("StepResults", ("s3:GetObject",), "warehouse_bucket", "{warehouse_prefix}/_airflow/results/"),
)

# DeltaSparkSubmitOperator: Spark's S3A connector, with the connection's (this role's) session credentials.
SPARK_SUBMIT = (
    # Delta tables, quarantine, reports and result files anywhere in the warehouse.
    s3_objects(
        "SparkWarehouseObjects",
        ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
        "warehouse_bucket",
        "{warehouse_prefix}/",
    ),
    # S3A lists directories (and the Delta log) under the warehouse. Delta looks for a table's root by probing for
    # _delta_log in each parent of a path that is not a table yet, up to the bucket's: outside the warehouse that is
    # a LIST of _delta_log/ at the bucket's root (and of <parent>/_delta_log/ for a deeper warehouse_prefix).
    Grant(
        "SparkWarehouseListing",
        ("s3:ListBucket",),
        ("arn:aws:s3:::{warehouse_bucket}",),
        {"StringLike": {"s3:prefix": ["{warehouse_prefix}/*", "_delta_log/"]}},
    ),
    # ... and a HEAD of that one key (S3A's getFileStatus); Delta tolerates a 403 there, but logs it on every probe.
    Grant("DeltaRootProbe", ("s3:GetObject",), ("arn:aws:s3:::{warehouse_bucket}/_delta_log",)),
)

# DeltaEmrServerlessOperator (EmrServerlessStartJobOperator) and stage_job_code.
EMR_SERVERLESS = (
    # stage_job_code: heads loans_delta-<hash>.py and uploads it when missing.
    s3_objects("StageJobScript", ("s3:GetObject", "s3:PutObject"), "warehouse_bucket", "{warehouse_prefix}/_code/"),
    # Each step checks the application's state, starts it if it is stopped (and waits), then starts its job run.
    Grant(
        "EmrServerlessApplication",
        ("emr-serverless:GetApplication", "emr-serverless:StartApplication", "emr-serverless:StartJobRun"),
        (_APPLICATION,),
    ),
    # ... and waits for the job run.
    Grant("EmrServerlessJobRuns", ("emr-serverless:GetJobRun",), (_APPLICATION + "/jobruns/*",)),
    # StartJobRun hands EMR Serverless the job's execution role.
    Grant(
        "PassJobExecutionRole",
        ("iam:PassRole",),
        ("{emr_role_arn}",),
        {"StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}},
    ),
)

ENGINE_GRANTS = {"spark-submit": SHARED + SPARK_SUBMIT, "emr-serverless": SHARED + EMR_SERVERLESS}

LAKEHOUSE = register(
    Family(
        name="lakehouse",
        role="airflow-lakehouse",
        description="loans_delta_lake (warehouse on S3; spark-submit or EMR Serverless)",
        settings={
            "warehouse_bucket": "industrial-ml-lakehouse",
            "warehouse_prefix": "lake",
            "emr_application_id": "*",
            "emr_role_arn": "arn:aws:iam::000000000000:role/emr-serverless-lakehouse",
        },
        dags=(DagAccess("loans_delta_lake", SHARED + SPARK_SUBMIT + EMR_SERVERLESS),),
    )
)
