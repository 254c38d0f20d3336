"""digitize_bank_statements.

The bucket's layout is fixed by the DAG (``include/documents/pipeline.py``): documents land under ``acquire/``,
the pipeline's intermediates go to ``work/``, workbooks to ``catalog/``, and A2I writes each loop's output under
``review-output/<flow definition>/``. SageMaker ARNs carry names in lower case (the params' defaults are).
"""

from __future__ import annotations

from include.iam.policies import DagAccess, Family, Grant, register, s3_objects, service_arn, table_arn

DOCUMENTS = register(
    Family(
        name="documents",
        role="airflow-documents",
        description="digitize_bank_statements",
        settings={
            "bucket": "industrial-ml-documents",
            "tracking_table": "document-tracking",
            "flow_definition_name": "statement-review",
            "human_task_ui_name": "statement-review-ui",
            "role_arn": "arn:aws:iam::000000000000:role/a2i-statement-review",
        },
        dags=(
            DagAccess(
                "digitize_bank_statements",
                (
                    # create_bucket (S3CreateBucketOperator): HeadBucket (needs s3:ListBucket), then CreateBucket;
                    # acquire lists acquire/ (HeadBucket carries no s3:prefix, so no prefix condition).
                    Grant("DocumentsBucket", ("s3:CreateBucket", "s3:ListBucket"), ("arn:aws:s3:::{bucket}",)),
                    # convert reads the dropped document.
                    s3_objects("ReadAcquired", ("s3:GetObject",), "bucket", "acquire/"),
                    # convert writes the PDF and page images, get_analysis the blocks, operate/merge_review the
                    # tables; start_analysis heads the PDF, Textract reads it as the caller, operate, review_input,
                    # merge_review and catalog read the tables back.
                    s3_objects("WorkObjects", ("s3:PutObject", "s3:GetObject"), "bucket", "work/"),
                    # catalog writes the workbook.
                    s3_objects("WriteCatalog", ("s3:PutObject",), "bucket", "catalog/"),
                    # merge_review reads the loop's output, which A2I writes under the flow's S3OutputPath.
                    s3_objects(
                        "ReadReviewOutput", ("s3:GetObject",), "bucket", "review-output/{flow_definition_name}/"
                    ),
                    # acquire creates the tracking table if missing (and waits for it), reads and registers items;
                    # every stage and the tracking callbacks update them; status scans the table.
                    Grant(
                        "TrackingTable",
                        (
                            "dynamodb:DescribeTable",
                            "dynamodb:CreateTable",
                            "dynamodb:GetItem",
                            "dynamodb:PutItem",
                            "dynamodb:UpdateItem",
                            "dynamodb:Scan",
                        ),
                        (table_arn("tracking_table"),),
                    ),
                    # start_analysis / get_analysis (and the deferred trigger): Textract's document APIs have no
                    # resource-level permission.
                    Grant(
                        "TextractAnalysis",
                        ("textract:StartDocumentAnalysis", "textract:GetDocumentAnalysis"),
                        ("*",),
                    ),
                    # create_flow_definition (A2ICreateFlowDefinitionOperator): the review UI, created if missing.
                    Grant(
                        "ReviewTaskUi",
                        ("sagemaker:DescribeHumanTaskUi", "sagemaker:CreateHumanTaskUi"),
                        (service_arn("sagemaker", "human-task-ui/{human_task_ui_name}"),),
                    ),
                    # create_flow_definition: the flow definition, created if missing, polled until Active;
                    # human_review starts each loop on it (A2I authorizes StartHumanLoop on the flow definition).
                    Grant(
                        "ReviewFlowDefinition",
                        (
                            "sagemaker:DescribeFlowDefinition",
                            "sagemaker:CreateFlowDefinition",
                            "sagemaker:StartHumanLoop",
                        ),
                        (service_arn("sagemaker", "flow-definition/{flow_definition_name}"),),
                    ),
                    # human_review looks up its loop (a rerun reuses it) and waits on it; merge_review reads it.
                    # Loop names derive from the document ids, so every loop of the account.
                    Grant("HumanLoops", ("sagemaker:DescribeHumanLoop",), (service_arn("sagemaker", "human-loop/*"),)),
                    # create_flow_definition hands A2I its role.
                    Grant(
                        "PassReviewRole",
                        ("iam:PassRole",),
                        ("{role_arn}",),
                        {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                    ),
                ),
            ),
        ),
    )
)
