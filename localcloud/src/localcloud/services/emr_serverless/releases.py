"""EMR Serverless release labels: what each release bundles on AWS, and how localcloud stands in for it.

On EMR Serverless an application's ``releaseLabel`` fixes its Spark, and Delta Lake comes with the release: a job
enables it with ``--conf spark.jars=/usr/share/aws/delta/lib/...`` plus Delta's SQL extension and catalog, and
reads ``s3://`` through EMRFS. Locally there is one Spark, the pyspark installed beside localcloud, so every
supported release runs on it; Delta and S3A come from Maven through spark-submit's Ivy, with coordinates that
must match that Spark (Spark 4.2 / Scala 2.13 takes ``delta-spark_4.2_2.13``; pyspark 4.2.0 ships Hadoop 3.5.0
client jars, so hadoop-aws is 3.5.0). ``make spark-jars`` fetches them ahead of time.

Versions per release from the EMR Serverless user guide (release-version-7*0.html, "Apache Spark") and the EMR
release guide (Delta-release-history.html). A label not listed here is refused when the application is created,
as AWS refuses one it does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from localcloud.core import AwsError

# The local stand-ins, for the installed pyspark 4.2.0.
LOCAL_DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"
LOCAL_HADOOP_AWS_PACKAGE = "org.apache.hadoop:hadoop-aws:3.5.0"
# What EMR's Delta documentation asks a job to set besides the jars: Delta's SQL extension and catalog.
DELTA_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


@dataclass(frozen=True)
class Release:
    label: str
    spark: str  # the Spark version AWS runs for this release
    delta: str  # the Delta Lake version bundled under /usr/share/aws/delta/lib/
    delta_package: str = LOCAL_DELTA_PACKAGE  # Maven coordinates standing in for the bundled Delta jars
    hadoop_aws_package: str = LOCAL_HADOOP_AWS_PACKAGE  # S3A, standing in for EMRFS


RELEASES: dict[str, Release] = {
    r.label: r
    for r in (
        Release("emr-7.0.0", spark="3.5.0", delta="3.0.0"),
        Release("emr-7.1.0", spark="3.5.0", delta="3.0.0"),
        Release("emr-7.2.0", spark="3.5.1", delta="3.1.0"),
        Release("emr-7.3.0", spark="3.5.1", delta="3.2.0-amzn-0"),
        Release("emr-7.4.0", spark="3.5.2", delta="3.2.0-amzn-1"),
        Release("emr-7.5.0", spark="3.5.2", delta="3.2.1-amzn-0"),
        Release("emr-7.6.0", spark="3.5.3", delta="3.2.1-amzn-1"),
        Release("emr-7.7.0", spark="3.5.3", delta="3.2.1-amzn-2"),
        Release("emr-7.8.0", spark="3.5.4", delta="3.3.0-amzn-0"),
        Release("emr-7.9.0", spark="3.5.5", delta="3.3.0-amzn-1"),
        Release("emr-7.10.0", spark="3.5.5", delta="3.3.0-amzn-2"),
    )
}


# Releases EMR Serverless has (6.6.0 onwards, and the 7.x line) but localcloud has no entry for: answered as
# NotImplemented, never run on a Spark that the release does not have.
AWS_RELEASE = re.compile(r"emr-(?:6\.(?:[6-9]|1[0-5])|7\.\d+)\.\d+")


def release(label: str) -> Release:
    """The release a ``releaseLabel`` names: NotImplemented for a real EMR Serverless release localcloud does not
    stand in for, an AWS-shaped ValidationException for a label that is no release at all."""
    found = RELEASES.get(label)
    if found is None:
        known = ", ".join(RELEASES)
        if AWS_RELEASE.fullmatch(label):
            raise AwsError(
                "NotImplemented",
                f"localcloud's EMR Serverless does not stand in for release {label}; it runs {known}.",
                status=501,
            )
        raise AwsError("ValidationException", f"Release label {label} is not supported. Supported labels: {known}.")
    return found
