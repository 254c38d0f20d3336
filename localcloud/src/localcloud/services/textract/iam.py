"""Textract's IAM actions and resources per request (Service Authorization Reference, list_amazontextract.html)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localcloud import iam_targets
from localcloud.iam_targets import Target

PREFIX = "textract"  # the action prefix
PASSED_TO = "textract.amazonaws.com"  # the principal that roles handed to this service are passed to


def textract_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    def arn(resource: str) -> str:
        return iam_targets.service_arn("textract", region, account, resource)

    adapter, version = params.get("AdapterId"), params.get("AdapterVersion")
    if operation == "CreateAdapter":
        resource = arn("/adapters/*")  # the adapter id is assigned by the call
    elif operation in ("GetAdapterVersion", "DeleteAdapterVersion") and adapter and version:
        resource = arn(f"/adapters/{adapter}/versions/{version}")
    elif adapter and operation in ("CreateAdapterVersion", "GetAdapter", "UpdateAdapter", "DeleteAdapter",
                                   "ListAdapterVersions"):  # fmt: skip
        resource = arn(f"/adapters/{adapter}")
    elif operation in ("TagResource", "UntagResource", "ListTagsForResource") and iam_targets.is_arn(
        params.get("ResourceARN")
    ):
        resource = str(params["ResourceARN"])
    else:
        # The document APIs (Analyze*, Detect*, Start*, Get*) and ListAdapters support no resource-level
        # permissions: the reference lists no resource type for them.
        resource = "*"
    context = iam_targets.tag_context(params) if operation.startswith("Create") else {}
    out = [Target(f"textract:{operation}", resource, context)]
    out.extend(iam_targets.tag_on_create_targets(f"{PREFIX}:TagResource", operation, params, [resource]))
    out.extend(iam_targets.pass_role_targets(params, account, PASSED_TO))  # NotificationChannel.RoleArn
    # Textract reads Document.S3Object / DocumentLocation.S3Object / DocumentPages and an adapter's manifest
    # with the caller's permissions ("For Amazon Textract to process a file in an S3 bucket, the user must
    # have permission to access the S3 bucket and file", S3Object in the API reference), and writes
    # OutputConfig's pages (<prefix or textract_output>/<JobId>/...) likewise.
    out.extend(iam_targets.s3_objects(params))
    output = params.get("OutputConfig")
    if isinstance(output, Mapping):
        default = "" if operation == "CreateAdapterVersion" else "textract_output"
        out.extend(iam_targets.s3_write(output.get("S3Bucket"), output.get("S3Prefix"), default))
    return out


targets = textract_targets
