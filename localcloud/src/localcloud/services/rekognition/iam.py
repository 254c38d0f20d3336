"""Rekognition's IAM actions and resources per request (Service Authorization Reference, list_amazonrekognition.html).

Dependent actions the reference lists: CopyProjectVersion also needs ``rekognition:CreateProjectVersion``, and
CreateDataset from another dataset ``rekognition:ListDatasetEntries`` on the source. A project's ARN ends in its
creation time, which a request cannot know: that part is ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from localcloud import iam_targets
from localcloud.iam_targets import Target

PREFIX = "rekognition"  # the action prefix
PASSED_TO = "rekognition.amazonaws.com"  # the principal that roles handed to this service are passed to

_REKOGNITION_COLLECTION = {
    "AssociateFaces", "CreateCollection", "CreateUser", "DeleteCollection", "DeleteFaces", "DeleteUser",
    "DescribeCollection", "DisassociateFaces", "IndexFaces", "ListFaces", "ListUsers", "SearchFaces",
    "SearchFacesByImage", "SearchUsers", "SearchUsersByImage", "StartFaceSearch",
}  # fmt: skip
_REKOGNITION_STREAM = {
    "CreateStreamProcessor", "DeleteStreamProcessor", "DescribeStreamProcessor", "StartStreamProcessor",
    "StopStreamProcessor", "UpdateStreamProcessor",
}  # fmt: skip
_REKOGNITION_BY_ARN = {
    "DeleteProject": "ProjectArn", "DescribeProjectVersions": "ProjectArn", "PutProjectPolicy": "ProjectArn",
    "DeleteProjectPolicy": "ProjectArn", "ListProjectPolicies": "ProjectArn",
    "DeleteProjectVersion": "ProjectVersionArn", "StartProjectVersion": "ProjectVersionArn",
    "StopProjectVersion": "ProjectVersionArn", "DetectCustomLabels": "ProjectVersionArn",
    "DeleteDataset": "DatasetArn", "DescribeDataset": "DatasetArn", "ListDatasetEntries": "DatasetArn",
    "ListDatasetLabels": "DatasetArn", "UpdateDatasetEntries": "DatasetArn",
    "CopyProjectVersion": "SourceProjectVersionArn", "DetectModerationLabels": "ProjectVersion",
    "TagResource": "ResourceArn", "UntagResource": "ResourceArn", "ListTagsForResource": "ResourceArn",
}  # fmt: skip


def _project_name(project_arn: Any) -> str:
    """``arn:...:project/<name>/<ms>`` -> name; ``*`` when the request's ARN is not one."""
    match = re.search(r":project/([^/]+)", str(project_arn or ""))
    return match.group(1) if match else "*"


def rekognition_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    def arn(resource: str) -> str:
        return iam_targets.service_arn("rekognition", region, account, resource)

    action = f"rekognition:{operation}"
    extra: list[Target] = []
    if operation in _REKOGNITION_COLLECTION:
        resources = [arn(f"collection/{params.get('CollectionId', '*')}")]
    elif operation in _REKOGNITION_STREAM:
        resources = [arn(f"streamprocessor/{params.get('Name', '*')}")]
    elif operation == "CreateProject":
        # A project's ARN ends in its creation time in ms, which the request cannot know.
        resources = [arn(f"project/{params.get('ProjectName', '*')}/*")]
    elif operation == "CreateProjectVersion":
        project = _project_name(params.get("ProjectArn"))
        resources = [arn(f"project/{project}/version/{params.get('VersionName', '*')}/*")]
    elif operation == "CreateDataset":
        project = _project_name(params.get("ProjectArn"))
        resources = [arn(f"project/{project}/dataset/{str(params.get('DatasetType', '*')).lower()}/*")]
        source = iam_targets.get_path(params, "DatasetSource.DatasetArn")
        if iam_targets.is_arn(source):  # copying a dataset reads its entries (a dependent action in the reference)
            extra.append(Target("rekognition:ListDatasetEntries", str(source)))
    elif operation == "DistributeDatasetEntries":
        resources = [str(d.get("Arn")) for d in params.get("Datasets") or [] if iam_targets.is_arn(d.get("Arn"))] or [
            "*"
        ]
    elif operation in _REKOGNITION_BY_ARN and iam_targets.is_arn(params.get(_REKOGNITION_BY_ARN[operation])):
        resources = [str(params[_REKOGNITION_BY_ARN[operation]])]
    else:
        # Image and video analysis, face liveness, media analysis jobs and the List/Describe calls without
        # a named resource: the reference lists no resource type for them.
        resources = ["*"]
    context = iam_targets.tag_context(params) if operation.startswith("Create") else {}
    out = [Target(action, r, context) for r in resources]
    if operation == "CopyProjectVersion":
        # Copying creates a project version in the destination project: rekognition:CreateProjectVersion too.
        project = _project_name(params.get("DestinationProjectArn"))
        out.append(
            Target("rekognition:CreateProjectVersion", arn(f"project/{project}/version/{params.get('VersionName')}/*"))
        )
    out.extend(extra)
    out.extend(iam_targets.tag_on_create_targets(f"{PREFIX}:TagResource", operation, params, resources))
    out.extend(iam_targets.pass_role_targets(params, account, PASSED_TO))  # stream processors, video SNS channels
    # Rekognition reads images, videos and manifests, and writes training and media-analysis output, as the
    # caller (https://docs.aws.amazon.com/rekognition/latest/dg/images-s3.html; Custom Labels' and
    # StartMediaAnalysisJob's setup pages ask for s3:GetObject/s3:PutObject on the caller).
    out.extend(iam_targets.s3_objects(params))
    if operation in ("CreateProjectVersion", "CopyProjectVersion", "StartMediaAnalysisJob"):
        out.extend(
            iam_targets.s3_write(
                iam_targets.get_path(params, "OutputConfig.S3Bucket"),
                iam_targets.get_path(params, "OutputConfig.S3KeyPrefix"),
            )
        )
    elif operation == "CreateFaceLivenessSession":
        output = iam_targets.get_path(params, "Settings.OutputConfig") or {}
        out.extend(iam_targets.s3_write(output.get("S3Bucket"), output.get("S3KeyPrefix")))
    return out


targets = rekognition_targets
