"""localcloud_smoke."""

from __future__ import annotations

from include.iam.policies import DagAccess, Family, Grant, register, s3_objects, table_arn

FOUNDATION = register(
    Family(
        name="foundation",
        role="airflow-foundation",
        description="localcloud_smoke: one bucket, one table",
        settings={"bucket": "industrial-ml-demo", "table": "industrial-ml-runs"},
        dags=(
            DagAccess(
                "localcloud_smoke",
                (
                    # S3CreateBucketOperator: HeadBucket (needs s3:ListBucket) then CreateBucket.
                    Grant("SmokeBucket", ("s3:CreateBucket", "s3:ListBucket"), ("arn:aws:s3:::{bucket}",)),
                    # LocalFilesystemToS3Operator writes, S3KeySensor heads the manifest.
                    s3_objects("SmokeManifests", ("s3:PutObject", "s3:GetObject"), "bucket", "smoke/"),
                    Grant(
                        "RunsTable",
                        ("dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:PutItem", "dynamodb:GetItem"),
                        (table_arn("table"),),
                    ),
                ),
            ),
        ),
    )
)
