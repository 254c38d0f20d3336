"""EMR Serverless's IAM actions and resources per request (Service Authorization Reference,
list_amazonemrserverless.html).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localcloud import iam_targets
from localcloud.iam_targets import Target

PREFIX = "emr-serverless"  # the action prefix
PASSED_TO = "emr-serverless.amazonaws.com"  # the principal that roles handed to this service are passed to


def emr_serverless_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    app, run = params.get("applicationId"), params.get("jobRunId")
    base = iam_targets.service_arn("emr-serverless", region, account, "/applications")
    if operation in ("TagResource", "UntagResource", "ListTagsForResource") and iam_targets.is_arn(
        params.get("resourceArn")
    ):
        resource = str(params["resourceArn"])
    elif operation == "CreateApplication":
        resource = f"{base}/*"  # the id is assigned by the call
    elif app and run:
        resource = f"{base}/{app}/jobruns/{run}"
    elif app:
        # Sessions have no resource type of their own in the reference: they are the application's.
        resource = f"{base}/{app}"
    else:
        resource = "*"  # ListApplications
    context = (
        iam_targets.tag_context(params) if operation in ("CreateApplication", "StartJobRun", "StartSession") else {}
    )
    out = [Target(f"emr-serverless:{operation}", resource, context)]
    if operation in ("CreateApplication", "StartJobRun", "StartSession"):
        tagged = f"{base}/*" if operation == "CreateApplication" else f"{base}/{app}/*"
        out.extend(iam_targets.tag_on_create_targets(f"{PREFIX}:TagResource", operation, params, [tagged]))
    # StartJobRun/StartSession's executionRoleArn: "the user needs iam:PassRole on the job runtime role"
    # (EMR Serverless user guide, job runtime roles).
    out.extend(iam_targets.pass_role_targets(params, account, PASSED_TO))
    return out


targets = emr_serverless_targets
