"""The Airflow connection ids the DAGs use, and the boto3 clients their tasks build from them.

Every client comes from the Amazon provider's hooks, so the connection decides where calls land (real AWS, or
localcloud through the connection's ``endpoint_url``). The provider is imported inside each function: DAG files
import this module at parse time, and parsing should not pay for boto3 and the provider.
"""

from __future__ import annotations

from typing import Any

AWS_CONN_ID = "aws_default"
SPARK_CONN_ID = "spark_default"


def client(service: str, conn_id: str | None = AWS_CONN_ID, region_name: str | None = None) -> Any:
    """A boto3 client for ``service`` (``"dynamodb"``, ``"glue"``, ...) from the connection ``conn_id``."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=conn_id, client_type=service, region_name=region_name).conn


def s3_client(conn_id: str | None = AWS_CONN_ID, region_name: str | None = None) -> Any:
    """The S3 client of ``conn_id``, as ``S3Hook`` builds it (the hook's S3-specific connection settings apply)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id, region_name=region_name).get_conn()


def dynamodb_client(conn_id: str | None = AWS_CONN_ID) -> Any:
    """A plain DynamoDB client of ``conn_id``.

    Not the provider's ``DynamoDBHook``: that one is a boto3 resource, whose client re-serializes typed attribute
    values.
    """
    return client("dynamodb", conn_id)


def sagemaker_client(conn_id: str | None = AWS_CONN_ID) -> Any:
    """The SageMaker client of ``conn_id``."""
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    return SageMakerHook(aws_conn_id=conn_id).conn
