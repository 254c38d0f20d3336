"""notebook_autostop and tenant_data_extraction."""

from __future__ import annotations

from include.iam.policies import DagAccess, Family, Grant, register, s3_objects, service_arn, table_arn
from include.ops.tenants import provision

# Every tenant's extraction role (provision names them), as a template over the account.
TENANT_ROLES = provision.role_arn("*", "{account}")

OPS = register(
    Family(
        name="ops",
        role="airflow-ops",
        description="notebook_autostop and tenant_data_extraction",
        settings={
            "bucket": "industrial-ml-ops",
            "heartbeat_prefix": "notebooks/heartbeats",
            "report_prefix": "notebooks/autostop",
            "requests_table": "tenant-extraction-requests",
            "artifacts_bucket": "industrial-ml-ops",
        },
        dags=(
            DagAccess(
                "notebook_autostop",
                (
                    # find_idle: ListNotebookInstances has no resource-level permission.
                    Grant("ListNotebooks", ("sagemaker:ListNotebookInstances",), ("*",)),
                    # find_idle reads each instance's tags; SageMakerStopNotebookOperator stops and waits on it.
                    # Any instance may be idle, so the resource is every notebook instance of the account.
                    Grant(
                        "StopIdleNotebooks",
                        (
                            "sagemaker:ListTags",
                            "sagemaker:StopNotebookInstance",
                            "sagemaker:DescribeNotebookInstance",
                        ),
                        (service_arn("sagemaker", "notebook-instance/*"),),
                    ),
                    s3_objects("ReadHeartbeats", ("s3:GetObject",), "bucket", "{heartbeat_prefix}/"),
                    # record_report writes the decisions; find_idle reads the run's earlier report back (a retry keeps it).
                    s3_objects("Reports", ("s3:PutObject", "s3:GetObject"), "bucket", "{report_prefix}/"),
                ),
            ),
            DagAccess(
                "tenant_data_extraction",
                (
                    # find_pending creates the table if missing, scans it; scope/record_status update items.
                    Grant(
                        "ExtractionRequests",
                        (
                            "dynamodb:CreateTable",
                            "dynamodb:DescribeTable",
                            "dynamodb:Scan",
                            "dynamodb:UpdateItem",
                            "dynamodb:GetItem",
                        ),
                        (table_arn("requests_table"),),
                    ),
                    # scope and record_status act as the tenant (with the tenant's external id) to check access.
                    Grant("AssumeTenantRoles", ("sts:AssumeRole",), (TENANT_ROLES,)),
                    # GlueJobOperator: create (with tags) or update the tenant's job (syncing its tags), start it, poll it;
                    # record_status reads the run.
                    Grant(
                        "TenantGlueJobs",
                        (
                            "glue:GetJob",
                            "glue:CreateJob",
                            "glue:TagResource",
                            "glue:GetTags",
                            "glue:UpdateJob",
                            "glue:StartJobRun",
                            "glue:GetJobRun",
                            "glue:GetJobRuns",
                        ),
                        (service_arn("glue", "job/tenant-extract-*"),),
                    ),
                    # Glue runs each job as its tenant's role, which the job definition passes.
                    Grant(
                        "PassTenantRolesToGlue",
                        ("iam:PassRole",),
                        (TENANT_ROLES,),
                        {"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}},
                    ),
                    # GlueJobOperator uploads the local script_location here.
                    s3_objects("UploadJobScript", ("s3:PutObject",), "artifacts_bucket", provision.SCRIPTS_PREFIX),
                ),
            ),
        ),
    )
)
