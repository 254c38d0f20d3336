"""Which IAM permissions a localcloud request needs, for the services beyond S3, DynamoDB, STS and IAM:
Rekognition, Textract, SageMaker (and the A2I runtime, whose actions are ``sagemaker:``), EMR Serverless and
Glue. :func:`localcloud.iam_policy.request_targets` calls :func:`service_targets` lazily, so that this
module may import ``Target`` from ``iam_policy`` without an import cycle.

Sources: the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_<service>.html) for action names and
resource ARN formats, and each service's developer guide for the extra permissions a call needs:

- Nearly every action is named like its operation. The exceptions are the A2I runtime (service
  ``sagemaker-a2i-runtime``, actions ``sagemaker:<Operation>``) and the dependent actions the reference lists
  beside an operation: tagging on create (``sagemaker:AddTags``, ``<prefix>:TagResource``), Rekognition
  CopyProjectVersion (also ``rekognition:CreateProjectVersion``) and CreateDataset from another dataset (also
  ``rekognition:ListDatasetEntries`` on the source).
- ``iam:PassRole`` on every role a request hands to the service, with ``iam:PassedToService`` in the context.
- ``s3:GetObject`` / ``s3:PutObject`` on the S3 objects Textract and Rekognition read or write for the request:
  they do it with the caller's permissions (forward access sessions), so a caller cannot make them read an
  object it could not read itself.

Where the ARN of the resource a call names holds a part the request does not carry (a Rekognition project's
creation timestamp, an id the service has not assigned yet) that part is ``*``. Policies are matched against
that text literally, so a statement naming the resource with a wildcard there (``project/p/*``) or ``*``
allows the call, and one naming the exact timestamp does not: stricter than AWS, never looser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from localcloud.iam_policy import Target, s3_arn

PASS_ROLE = "iam:PassRole"
# The principal each service assumes the roles passed to it as (their trust policies name it).
PASSED_TO = {
    "rekognition": "rekognition.amazonaws.com",
    "textract": "textract.amazonaws.com",
    "sagemaker": "sagemaker.amazonaws.com",
    "sagemaker-a2i-runtime": "sagemaker.amazonaws.com",
    "emr-serverless": "emr-serverless.amazonaws.com",
    "glue": "glue.amazonaws.com",
}
# Action prefix per botocore service name.
PREFIX = {
    "rekognition": "rekognition",
    "textract": "textract",
    "sagemaker": "sagemaker",
    "sagemaker-a2i-runtime": "sagemaker",
    "emr-serverless": "emr-serverless",
    "glue": "glue",
}
_VERB = re.compile(r"^(?:Batch)?[A-Z][a-z]+")
_WORD = re.compile(r"[A-Z][a-z0-9]*(?:V2)?|[A-Z]+(?=[A-Z][a-z]|$)")


def _noun(operation: str) -> str:
    """``CreateTrainingJob`` -> ``TrainingJob``; ``BatchDeleteClusterNodes`` -> ``ClusterNodes``."""
    return _VERB.sub("", operation, count=1)


def _shorter(noun: str) -> Iterator[str]:
    """The noun, then the noun less its last word each time: ``ClusterNodeVolume``, ``ClusterNode``, ..."""
    words = _WORD.findall(noun) or [noun]
    for end in range(len(words), 0, -1):
        yield "".join(words[:end])


def _is_arn(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("arn:")


def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _get(params: Mapping[str, Any], path: str) -> Any:
    """``_get(p, "DatasetSource.GroundTruthManifest.S3Object")``; None where any step is missing."""
    value: Any = params
    for step in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a nested request, depth first."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key), item
            yield from _walk(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item)


# -- permissions every service shares ----------------------------------------------------------------------


def role_arn(role: str, account: str) -> str:
    """A role's ARN from its ARN or (Glue accepts either) its name, which may include a path."""
    return role if _is_arn(role) else f"arn:aws:iam::{account}:role/{role.lstrip('/')}"


def passed_roles(params: Mapping[str, Any], *, names_allowed: bool = False) -> list[str]:
    """The roles a request hands to the service: members named ``...Role`` / ``...RoleArn`` (any case and
    depth: SageMaker's ``RoleArn``, ``ExecutionRoleArn``, ``ExecutionRole``; EMR Serverless's
    ``executionRoleArn``; Glue's ``Role``; a notification channel's ``RoleArn``). Values that are not role
    ARNs are skipped unless the service takes role names (Glue)."""
    found: list[str] = []
    for key, value in _walk(params):
        lowered = key.lower()
        if not (lowered.endswith("role") or lowered.endswith("rolearn")) or not isinstance(value, str) or not value:
            continue
        is_role = (_is_arn(value) and ":role/" in value) or (names_allowed and not _is_arn(value))
        if is_role and value not in found:
            found.append(value)
    return found


def pass_role_targets(service: str, params: Mapping[str, Any], account: str) -> list[Target]:
    # AWS checks iam:PassRole on the caller whenever a request hands a role to a service; without it any
    # caller allowed e.g. sagemaker:CreateTrainingJob could run code as any role the service may assume.
    roles = passed_roles(params, names_allowed=service == "glue")
    context = {"iam:PassedToService": PASSED_TO[service]}
    return [Target(PASS_ROLE, role_arn(r, account), context) for r in roles]


def _tags(params: Mapping[str, Any]) -> dict[str, str]:
    """The tags a request sets, whichever shape the service uses (SageMaker's list of Key/Value, a map)."""
    raw = params.get("Tags", params.get("tags"))
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return {str(t.get("Key")): str(t.get("Value", "")) for t in raw if isinstance(t, Mapping) and "Key" in t}
    return {}


def tag_context(params: Mapping[str, Any]) -> dict[str, Any]:
    """``aws:RequestTag/<key>`` and ``aws:TagKeys``, which the reference lists for every create-with-tags."""
    tags = _tags(params)
    if not tags:
        return {}
    return {"aws:TagKeys": list(tags), **{f"aws:RequestTag/{k}": v for k, v in tags.items()}}


_TAG_ACTION = {"sagemaker": "sagemaker:AddTags"}


def tag_on_create_targets(
    service: str, operation: str, params: Mapping[str, Any], resources: list[str]
) -> list[Target]:
    # Tagging while creating needs the tagging action too (the reference lists it as a dependent action of
    # each Create*/Start* that takes Tags), so that a role without it cannot set tags that grant access.
    if operation.startswith(("Tag", "AddTags", "Untag")) or not _tags(params):
        return []
    action = _TAG_ACTION.get(PREFIX[service], f"{PREFIX[service]}:TagResource")
    context = tag_context(params)
    return [Target(action, r, context) for r in resources]


def s3_read(s3_object: Any) -> list[Target]:
    """``s3:GetObject`` (``s3:GetObjectVersion`` for a version) on an ``{Bucket, Name[, Version]}`` object."""
    if not isinstance(s3_object, Mapping) or not s3_object.get("Bucket") or not s3_object.get("Name"):
        return []
    action = "s3:GetObjectVersion" if s3_object.get("Version") else "s3:GetObject"
    return [Target(action, s3_arn(str(s3_object["Bucket"]), str(s3_object["Name"])))]


def s3_write(bucket: Any, prefix: Any, default_prefix: str = "") -> list[Target]:
    """``s3:PutObject`` under an output location; the service picks the keys below the prefix."""
    if not bucket:
        return []
    prefix = str(prefix or default_prefix).strip("/")
    return [Target("s3:PutObject", s3_arn(str(bucket), f"{prefix}/*" if prefix else "*"))]


def _s3_objects(params: Mapping[str, Any]) -> list[Target]:
    """Reads of every ``S3Object`` the request names (Document, DocumentLocation, Image, Video, manifests...)."""
    out: list[Target] = []
    for key, value in _walk(params):
        if key == "S3Object":
            out.extend(t for t in s3_read(value) if t not in out)
    return out


# -- Rekognition -------------------------------------------------------------------------------------------

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
        return _arn("rekognition", region, account, resource)

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
        source = _get(params, "DatasetSource.DatasetArn")
        if _is_arn(source):  # copying a dataset reads its entries (a dependent action in the reference)
            extra.append(Target("rekognition:ListDatasetEntries", str(source)))
    elif operation == "DistributeDatasetEntries":
        resources = [str(d.get("Arn")) for d in params.get("Datasets") or [] if _is_arn(d.get("Arn"))] or ["*"]
    elif operation in _REKOGNITION_BY_ARN and _is_arn(params.get(_REKOGNITION_BY_ARN[operation])):
        resources = [str(params[_REKOGNITION_BY_ARN[operation]])]
    else:
        # Image and video analysis, face liveness, media analysis jobs and the List/Describe calls without
        # a named resource: the reference lists no resource type for them.
        resources = ["*"]
    context = tag_context(params) if operation.startswith("Create") else {}
    out = [Target(action, r, context) for r in resources]
    if operation == "CopyProjectVersion":
        # Copying creates a project version in the destination project: rekognition:CreateProjectVersion too.
        project = _project_name(params.get("DestinationProjectArn"))
        out.append(
            Target("rekognition:CreateProjectVersion", arn(f"project/{project}/version/{params.get('VersionName')}/*"))
        )
    out.extend(extra)
    out.extend(tag_on_create_targets("rekognition", operation, params, resources))
    out.extend(pass_role_targets("rekognition", params, account))  # stream processors, video SNS channels
    # Rekognition reads images, videos and manifests, and writes training and media-analysis output, as the
    # caller (https://docs.aws.amazon.com/rekognition/latest/dg/images-s3.html; Custom Labels' and
    # StartMediaAnalysisJob's setup pages ask for s3:GetObject/s3:PutObject on the caller).
    out.extend(_s3_objects(params))
    if operation in ("CreateProjectVersion", "CopyProjectVersion", "StartMediaAnalysisJob"):
        out.extend(s3_write(_get(params, "OutputConfig.S3Bucket"), _get(params, "OutputConfig.S3KeyPrefix")))
    elif operation == "CreateFaceLivenessSession":
        output = _get(params, "Settings.OutputConfig") or {}
        out.extend(s3_write(output.get("S3Bucket"), output.get("S3KeyPrefix")))
    return out


# -- Textract ----------------------------------------------------------------------------------------------


def textract_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    def arn(resource: str) -> str:
        return _arn("textract", region, account, resource)

    adapter, version = params.get("AdapterId"), params.get("AdapterVersion")
    if operation == "CreateAdapter":
        resource = arn("/adapters/*")  # the adapter id is assigned by the call
    elif operation in ("GetAdapterVersion", "DeleteAdapterVersion") and adapter and version:
        resource = arn(f"/adapters/{adapter}/versions/{version}")
    elif adapter and operation in ("CreateAdapterVersion", "GetAdapter", "UpdateAdapter", "DeleteAdapter",
                                   "ListAdapterVersions"):  # fmt: skip
        resource = arn(f"/adapters/{adapter}")
    elif operation in ("TagResource", "UntagResource", "ListTagsForResource") and _is_arn(params.get("ResourceARN")):
        resource = str(params["ResourceARN"])
    else:
        # The document APIs (Analyze*, Detect*, Start*, Get*) and ListAdapters support no resource-level
        # permissions: the reference lists no resource type for them.
        resource = "*"
    context = tag_context(params) if operation.startswith("Create") else {}
    out = [Target(f"textract:{operation}", resource, context)]
    out.extend(tag_on_create_targets("textract", operation, params, [resource]))
    out.extend(pass_role_targets("textract", params, account))  # NotificationChannel.RoleArn
    # Textract reads Document.S3Object / DocumentLocation.S3Object / DocumentPages and an adapter's manifest
    # with the caller's permissions ("For Amazon Textract to process a file in an S3 bucket, the user must
    # have permission to access the S3 bucket and file", S3Object in the API reference), and writes
    # OutputConfig's pages (<prefix or textract_output>/<JobId>/...) likewise.
    out.extend(_s3_objects(params))
    output = params.get("OutputConfig")
    if isinstance(output, Mapping):
        default = "" if operation == "CreateAdapterVersion" else "textract_output"
        out.extend(s3_write(output.get("S3Bucket"), output.get("S3Prefix"), default))
    return out


# -- SageMaker ---------------------------------------------------------------------------------------------

# SageMaker noun -> (ARN resource part, with {Member} placeholders filled from the request). Names are
# lower-cased: SageMaker ARNs carry names in lower case whatever case the request used.
_SAGEMAKER_TYPES: dict[str, str] = {
    "Action": "action/{ActionName}",
    "Algorithm": "algorithm/{AlgorithmName}",
    "AppImageConfig": "app-image-config/{AppImageConfigName}",
    "AutoMLJob": "automl-job/{AutoMLJobName}",
    "AutoMLJobV2": "automl-job/{AutoMLJobName}",
    "Cluster": "cluster/{ClusterName}",
    "ClusterSchedulerConfig": "cluster-scheduler-config/{ClusterSchedulerConfigId}",
    "CodeRepository": "code-repository/{CodeRepositoryName}",
    "CompilationJob": "compilation-job/{CompilationJobName}",
    "ComputeQuota": "compute-quota/{ComputeQuotaId}",
    "Context": "context/{ContextName}",
    "DataQualityJobDefinition": "data-quality-job-definition/{JobDefinitionName}",
    "Device": "device-fleet/{DeviceFleetName}/device/{DeviceName}",
    "DeviceFleet": "device-fleet/{DeviceFleetName}",
    "Devices": "device-fleet/{DeviceFleetName}",
    "Domain": "domain/{DomainId}",
    "EdgeDeploymentPlan": "edge-deployment/{EdgeDeploymentPlanName}",
    "EdgeDeploymentStage": "edge-deployment/{EdgeDeploymentPlanName}",
    "EdgePackagingJob": "edge-packaging-job/{EdgePackagingJobName}",
    "Endpoint": "endpoint/{EndpointName}",
    "EndpointConfig": "endpoint-config/{EndpointConfigName}",
    "Experiment": "experiment/{ExperimentName}",
    "FeatureGroup": "feature-group/{FeatureGroupName}",
    "FeatureMetadata": "feature-group/{FeatureGroupName}",
    "FlowDefinition": "flow-definition/{FlowDefinitionName}",
    "Hub": "hub/{HubName}",
    "HubContent": "hub-content/{HubName}/{HubContentType}/{HubContentName}",
    "HumanTaskUi": "human-task-ui/{HumanTaskUiName}",
    "HyperParameterTuningJob": "hyper-parameter-tuning-job/{HyperParameterTuningJobName}",
    "Image": "image/{ImageName}",
    "ImageVersion": "image-version/{ImageName}/{Version}",
    "InferenceComponent": "inference-component/{InferenceComponentName}",
    "InferenceExperiment": "inference-experiment/{Name}",
    "InferenceRecommendationsJob": "inference-recommendations-job/{JobName}",
    "LabelingJob": "labeling-job/{LabelingJobName}",
    "LineageGroup": "lineage-group/{LineageGroupName}",
    "MlflowTrackingServer": "mlflow-tracking-server/{TrackingServerName}",
    "Model": "model/{ModelName}",
    "ModelBiasJobDefinition": "model-bias-job-definition/{JobDefinitionName}",
    "ModelCard": "model-card/{ModelCardName}",
    "ModelCardExportJob": "model-card/{ModelCardName}/export-job/{ModelCardExportJobName}",
    "ModelExplainabilityJobDefinition": "model-explainability-job-definition/{JobDefinitionName}",
    "ModelPackage": "model-package/{ModelPackageName}",
    "ModelPackageGroup": "model-package-group/{ModelPackageGroupName}",
    "ModelQualityJobDefinition": "model-quality-job-definition/{JobDefinitionName}",
    "MonitoringAlert": "monitoring-schedule/{MonitoringScheduleName}/alert/{MonitoringAlertName}",
    "MonitoringSchedule": "monitoring-schedule/{MonitoringScheduleName}",
    "NotebookInstance": "notebook-instance/{NotebookInstanceName}",
    "NotebookInstanceLifecycleConfig": "notebook-instance-lifecycle-config/{NotebookInstanceLifecycleConfigName}",
    "OptimizationJob": "optimization-job/{OptimizationJobName}",
    "Pipeline": "pipeline/{PipelineName}",
    "ProcessingJob": "processing-job/{ProcessingJobName}",
    "Project": "project/{ProjectName}",
    "Space": "space/{DomainId}/{SpaceName}",
    "StudioLifecycleConfig": "studio-lifecycle-config/{StudioLifecycleConfigName}",
    "TrainingJob": "training-job/{TrainingJobName}",
    "TrainingPlan": "training-plan/{TrainingPlanName}",
    "TransformJob": "transform-job/{TransformJobName}",
    "Trial": "experiment-trial/{TrialName}",
    "TrialComponent": "experiment-trial-component/{TrialComponentName}",
    "UserProfile": "user-profile/{DomainId}/{UserProfileName}",
    "Workforce": "workforce/{WorkforceName}",
    "Workteam": "workteam/{WorkteamName}",
}
# Operations whose noun is not their resource's (or that name several resources).
_SAGEMAKER_OPERATIONS: dict[str, tuple[str, ...]] = {
    "AssociateTrialComponent": ("experiment-trial-component/{TrialComponentName}", "experiment-trial/{TrialName}"),
    "DisassociateTrialComponent": (
        "experiment-trial-component/{TrialComponentName}",
        "experiment-trial/{TrialName}",
    ),
    # Ids SageMaker assigns on create.
    "CreateDomain": ("domain/*",),
    "CreateArtifact": ("artifact/*",),
    "CreateClusterSchedulerConfig": ("cluster-scheduler-config/*",),
    "CreateComputeQuota": ("compute-quota/*",),
    "CreatePresignedDomainUrl": ("user-profile/{DomainId}/{UserProfileName}",),
    "CreatePresignedNotebookInstanceUrl": ("notebook-instance/{NotebookInstanceName}",),
    "CreatePresignedMlflowTrackingServerUrl": ("mlflow-tracking-server/{TrackingServerName}",),
    "GetScalingConfigurationRecommendation": ("inference-recommendations-job/{InferenceRecommendationsJobName}",),
    "ListCandidatesForAutoMLJob": ("automl-job/{AutoMLJobName}",),
    "ListTrainingJobsForHyperParameterTuningJob": ("hyper-parameter-tuning-job/{HyperParameterTuningJobName}",),
    "ListPipelineExecutions": ("pipeline/{PipelineName}",),
    "ListPipelineVersions": ("pipeline/{PipelineName}",),
    "ListImageVersions": ("image/{ImageName}",),
    "ListAliases": ("image/{ImageName}",),
    "ListModelCardVersions": ("model-card/{ModelCardName}",),
    "ListModelCardExportJobs": ("model-card/{ModelCardName}",),
    "ListHubContents": ("hub/{HubName}",),
    "ListHubContentVersions": ("hub-content/{HubName}/{HubContentType}/{HubContentName}",),
    "ListClusterNodes": ("cluster/{ClusterName}",),
    "ListClusterEvents": ("cluster/{ClusterName}",),
    "ListMonitoringAlerts": ("monitoring-schedule/{MonitoringScheduleName}",),
    "ListMonitoringAlertHistory": ("monitoring-schedule/{MonitoringScheduleName}",),
    "ListStageDevices": ("edge-deployment/{EdgeDeploymentPlanName}",),
    "ListInferenceRecommendationsJobSteps": ("inference-recommendations-job/{JobName}",),
    # The pipeline-execution ARN is assigned by SageMaker: these name it by ARN.
    "ListPipelineExecutionSteps": ("{PipelineExecutionArn}",),
    "ListPipelineParametersForExecution": ("{PipelineExecutionArn}",),
    "ListLabelingJobsForWorkteam": ("{WorkteamArn}",),
    "AddAssociation": ("{SourceArn}", "{DestinationArn}"),
    "DeleteAssociation": ("{SourceArn}", "{DestinationArn}"),
    "AddTags": ("{ResourceArn}",),
    "DeleteTags": ("{ResourceArn}",),
    "ListTags": ("{ResourceArn}",),
}
# Members whose value is an ID or ARN-like name that must keep its case.
_SAGEMAKER_KEEP_CASE = {"DomainId", "ClusterSchedulerConfigId", "ComputeQuotaId", "HubContentType", "Version"}
# Names that identify a resource whose ARN uses an id SageMaker assigns (a HyperPod cluster's ARN ends in
# its id, not its name): the name alone cannot build the ARN.
_SAGEMAKER_ASSIGNED_ID = {"ClusterName"}


def _fill(template: str, params: Mapping[str, Any], optional: frozenset[str] = frozenset()) -> str | None:
    """Fill ``{Member}`` placeholders; None when a required member is absent. A member that is itself an ARN
    (many SageMaker ``...Name`` members accept one) is the resource ARN."""
    members = re.findall(r"\{(\w+)\}", template)
    values: dict[str, str] = {}
    for member in members:
        value = params.get(member)
        if value is None or value == "":
            if member in optional:
                values[member] = "*"
                continue
            return None
        if _is_arn(value):
            return str(value)
        if member in _SAGEMAKER_ASSIGNED_ID:
            values[member] = "*"
        else:
            values[member] = str(value) if member in _SAGEMAKER_KEEP_CASE else str(value).lower()
    return template.format(**values)


def _sagemaker_resources(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[str]:
    def full(resource: str) -> str:
        return resource if _is_arn(resource) else _arn("sagemaker", region, account, resource)

    if operation in _SAGEMAKER_OPERATIONS:
        filled = [_fill(t, params) for t in _SAGEMAKER_OPERATIONS[operation]]
        return [full(r) for r in filled if r] or ["*"]
    if operation == "BatchDescribeModelPackage":
        return [str(a) for a in params.get("ModelPackageArnList") or [] if _is_arn(a)] or ["*"]
    if operation == "CreateModelPackage" and not params.get("ModelPackageName"):
        # A versioned package: model-package/<group>/<version>, the version assigned by the call.
        group = params.get("ModelPackageGroupName")
        if group:
            return [str(group) if _is_arn(group) else full(f"model-package/{str(group).lower()}/*")]
    if operation == "CreateApp" or operation in ("DescribeApp", "DeleteApp"):
        owner = params.get("UserProfileName") or params.get("SpaceName") or "*"
        filled = _fill("app/{DomainId}/{owner}/{AppType}/{AppName}", {**params, "owner": owner})
        return [full(filled)] if filled else ["*"]
    if operation.startswith("List") or operation in ("Search", "GetSearchSuggestions", "QueryLineage"):
        # Listing and searching support no resource-level permission (the reference lists no resource type).
        return ["*"]
    noun = _noun(operation)
    for candidate in _shorter(noun):
        template = _SAGEMAKER_TYPES.get(candidate)
        if template is None:
            continue
        optional = frozenset({"Version"}) if candidate == "ImageVersion" else frozenset()
        filled = _fill(template, params, optional)
        if filled:
            return [full(filled)]
        # Named by ARN instead (ArtifactArn, ClusterArn, PipelineArn, ModelPackageArn...).
        by_arn = params.get(f"{candidate}Arn")
        if _is_arn(by_arn):
            return [str(by_arn)]
    # Resources known only by an ARN member (DescribeArtifact, DescribeSubscribedWorkteam, the MLflow app and
    # partner app calls...).
    for key in (f"{noun}Arn", "Arn", "ResourceArn"):
        if _is_arn(params.get(key)):
            return [str(params[key])]
    for key, value in params.items():
        if key.endswith("Arn") and _is_arn(value) and not key.endswith("RoleArn"):
            return [str(value)]
    return ["*"]


def sagemaker_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    resources = _sagemaker_resources(operation, params, region, account)
    context = tag_context(params) if operation.startswith("Create") else {}
    out = [Target(f"sagemaker:{operation}", r, context) for r in resources]
    if operation.startswith("Create"):
        out.extend(tag_on_create_targets("sagemaker", operation, params, resources))
    # Every role a request hands SageMaker (RoleArn, ExecutionRoleArn, a domain's ExecutionRole, a tuning
    # job's TrainingJobDefinition.RoleArn...) needs iam:PassRole, documented per Create* in the SageMaker
    # developer guide ("SageMaker Roles: passing roles").
    out.extend(pass_role_targets("sagemaker", params, account))
    return out


def a2i_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    """The A2I runtime's actions are SageMaker's (``sagemaker:StartHumanLoop``...)."""
    flow = params.get("FlowDefinitionArn")
    if operation in ("StartHumanLoop", "ListHumanLoops") and _is_arn(flow):
        resource = str(flow)  # a human loop is authorized on the flow definition it runs
    elif params.get("HumanLoopName"):
        resource = _arn("sagemaker", region, account, f"human-loop/{str(params['HumanLoopName']).lower()}")
    else:
        resource = "*"
    return [Target(f"sagemaker:{operation}", resource)]


# -- EMR Serverless ----------------------------------------------------------------------------------------


def emr_serverless_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    app, run = params.get("applicationId"), params.get("jobRunId")
    base = _arn("emr-serverless", region, account, "/applications")
    if operation in ("TagResource", "UntagResource", "ListTagsForResource") and _is_arn(params.get("resourceArn")):
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
    context = tag_context(params) if operation in ("CreateApplication", "StartJobRun", "StartSession") else {}
    out = [Target(f"emr-serverless:{operation}", resource, context)]
    if operation in ("CreateApplication", "StartJobRun", "StartSession"):
        tagged = f"{base}/*" if operation == "CreateApplication" else f"{base}/{app}/*"
        out.extend(tag_on_create_targets("emr-serverless", operation, params, [tagged]))
    # StartJobRun/StartSession's executionRoleArn: "the user needs iam:PassRole on the job runtime role"
    # (EMR Serverless user guide, job runtime roles).
    out.extend(pass_role_targets("emr-serverless", params, account))
    return out


# -- Glue --------------------------------------------------------------------------------------------------

_GLUE_TAGS = ("TagResource", "UntagResource", "GetTags")
_GLUE_NAMED: dict[str, tuple[str, tuple[str, ...], str]] = {
    # noun -> (resource type, members naming one, member listing several)
    "Job": ("job", ("JobName", "Name"), "JobNames"),
    "JobRun": ("job", ("JobName",), ""),
    "JobRuns": ("job", ("JobName",), ""),
    "JobBookmark": ("job", ("JobName",), ""),
    "SystemLogsForJobRun": ("job", ("JobName",), ""),
    "Crawler": ("crawler", ("Name", "CrawlerName"), "CrawlerNames"),
    "CrawlerSchedule": ("crawler", ("CrawlerName",), ""),
    "CrawlerMetrics": ("crawler", (), "CrawlerNameList"),
    "Crawls": ("crawler", ("CrawlerName",), ""),
    "Trigger": ("trigger", ("Name",), "TriggerNames"),
    "Workflow": ("workflow", ("Name",), "Names"),
    "WorkflowRun": ("workflow", ("Name",), ""),
    "WorkflowRuns": ("workflow", ("Name",), ""),
    "WorkflowRunProperties": ("workflow", ("Name",), ""),
    "Blueprint": ("blueprint", ("Name", "BlueprintName"), "Names"),
    "BlueprintRun": ("blueprint", ("BlueprintName",), ""),
    "BlueprintRuns": ("blueprint", ("BlueprintName",), ""),
    "DevEndpoint": ("devEndpoint", ("EndpointName",), "DevEndpointNames"),
    "MLTransform": ("mlTransform", ("TransformId",), ""),
    "MLTaskRun": ("mlTransform", ("TransformId",), ""),
    "MLTaskRuns": ("mlTransform", ("TransformId",), ""),
    "ExportLabelsTaskRun": ("mlTransform", ("TransformId",), ""),
    "ImportLabelsTaskRun": ("mlTransform", ("TransformId",), ""),
    "MLEvaluationTaskRun": ("mlTransform", ("TransformId",), ""),
    "MLLabelingSetGenerationTaskRun": ("mlTransform", ("TransformId",), ""),
    "Session": ("session", ("Id", "SessionId"), ""),
    "SessionEndpoint": ("session", ("SessionId",), ""),
    "SystemLogsForSession": ("session", ("Id",), ""),
    "Statement": ("session", ("SessionId",), ""),
    "Statements": ("session", ("SessionId",), ""),
    "DataQualityRuleset": ("dataQualityRuleset", ("Name",), ""),
    "CustomEntityType": ("customEntityType", ("Name",), "Names"),
    "CustomEntityTypes": ("customEntityType", (), "Names"),
    "UsageProfile": ("usageProfile", ("Name",), ""),
    "Registry": ("registry", ("RegistryName",), ""),
    # Batch gets name several; the plain Get*s/List* listings name none and stay "*".
    "Jobs": ("job", (), "JobNames"),
    "Crawlers": ("crawler", (), "CrawlerNames"),
    "Triggers": ("trigger", (), "TriggerNames"),
    "Workflows": ("workflow", (), "Names"),
    "Blueprints": ("blueprint", (), "Names"),
    "DevEndpoints": ("devEndpoint", (), "DevEndpointNames"),
}
# Data Catalog nouns: the call needs the catalog, the database and (where named) the table.
_GLUE_TABLE_NOUNS = ("Table", "Partition", "ColumnStatistics", "Unfiltered", "MaterializedView")


def _glue_catalog_account(params: Mapping[str, Any], account: str) -> str:
    catalog = str(params.get("CatalogId") or params.get("CatalogID") or "")
    head = catalog.split(":", 1)[0]
    return head if re.fullmatch(r"\d{12}", head) else account


def _glue_catalog(operation: str, noun: str, params: Mapping[str, Any], arn: Callable[[str], str]) -> list[str] | None:
    """The catalog/database/table(/function) ARNs of a Data Catalog call; None for other calls. AWS Glue
    authorizes Data Catalog calls on every level they reach (Glue developer guide, "Specifying AWS Glue
    resource ARNs")."""
    catalog = [arn("catalog")]
    if noun in ("Connection", "Connections", "Entity", "Entities", "EntityRecords") or operation == "TestConnection":
        names = params.get("ConnectionNameList") or [
            params.get("ConnectionName") or params.get("Name") or _get(params, "ConnectionInput.Name")
        ]
        names = [n for n in names if n]
        if noun in ("Connections",) or not names:
            return [*catalog, arn("connection/*")] if operation == "GetConnections" else catalog
        return [*catalog, *(arn(f"connection/{n}") for n in names)]
    if noun in ("Database", "Databases"):
        name = params.get("Name") or _get(params, "DatabaseInput.Name")
        return [*catalog, arn(f"database/{name or '*'}")]
    database = params.get("DatabaseName")
    if noun.startswith("UserDefinedFunction"):
        function = params.get("FunctionName") or _get(params, "FunctionInput.FunctionName") or "*"
        db = database or "*"
        return [*catalog, arn(f"database/{db}"), arn(f"userDefinedFunction/{db}/{function}")]
    if database and any(noun.startswith(n) for n in _GLUE_TABLE_NOUNS):
        if operation == "BatchDeleteTable":
            tables = [str(t) for t in params.get("TablesToDelete") or []] or ["*"]
        elif noun == "Tables":
            tables = ["*"]
        else:
            tables = [str(params.get("TableName") or params.get("Name") or _get(params, "TableInput.Name") or "*")]
        return [*catalog, arn(f"database/{database}"), *(arn(f"table/{database}/{t}") for t in tables)]
    if noun in ("Catalog", "Catalogs", "CatalogImportStatus", "DataCatalogEncryptionSettings") or noun == "Tables":
        return catalog
    return None


def _glue_schema(params: Mapping[str, Any], arn: Callable[[str], str]) -> str:
    schema = params.get("SchemaId") or {}
    if _is_arn(schema.get("SchemaArn")):
        return str(schema["SchemaArn"])
    registry = schema.get("RegistryName") or _get(params, "RegistryId.RegistryName") or "default-registry"
    name = schema.get("SchemaName") or params.get("SchemaName") or "*"
    return arn(f"schema/{registry}/{name}")


def glue_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    def arn(resource: str) -> str:
        return _arn("glue", region, _glue_catalog_account(params, account), resource)

    noun = _noun(operation)
    resources: list[str] | None = None
    if operation in _GLUE_TAGS and _is_arn(params.get("ResourceArn")):
        resources = [str(params["ResourceArn"])]
    elif noun.startswith("Schema") and noun not in ("Schemas",):
        resources = [_glue_schema(params, arn)]
    elif noun.startswith("Registry") or operation in ("DeleteRegistry", "GetRegistry", "UpdateRegistry"):
        registry = params.get("RegistryName") or _get(params, "RegistryId.RegistryName")
        registry_arn = _get(params, "RegistryId.RegistryArn")
        resources = [str(registry_arn) if _is_arn(registry_arn) else arn(f"registry/{registry or '*'}")]
    elif noun in _GLUE_NAMED:
        kind, singles, many = _GLUE_NAMED[noun]
        names = list(params.get(many) or []) if many else []
        if not names:
            names = [next((params[m] for m in singles if params.get(m)), None)]
        if kind == "mlTransform" and operation == "CreateMLTransform":
            names = ["*"]  # the transform id is assigned by the call
        if names != [None] or not operation.startswith(("List", "Get")):
            resources = [arn(f"{kind}/{n or '*'}") for n in names]
    else:
        resources = _glue_catalog(operation, noun, params, arn)
    if resources is None:
        # The remaining calls (Get*/List* of everything, classifiers, security configurations, scripts,
        # integrations, the catalog-wide settings...) support no resource-level permission here.
        resources = ["*"]
    context = tag_context(params) if operation.startswith("Create") else {}
    out = [Target(f"glue:{operation}", r, context) for r in resources]
    if operation.startswith("Create"):
        out.extend(tag_on_create_targets("glue", operation, params, resources[-1:]))
    # CreateJob/UpdateJob's Role (a name or an ARN), crawlers', sessions' and data-quality runs' Role,
    # StartBlueprintRun's RoleArn: "iam:PassRole is required to pass a role to AWS Glue" (Glue developer guide).
    out.extend(pass_role_targets("glue", params, account))
    return out


MAPPERS: dict[str, Callable[[str, Mapping[str, Any], str, str], list[Target]]] = {
    "rekognition": rekognition_targets,
    "textract": textract_targets,
    "sagemaker": sagemaker_targets,
    "sagemaker-a2i-runtime": a2i_targets,
    "emr-serverless": emr_serverless_targets,
    "glue": glue_targets,
}
SERVICES = tuple(MAPPERS)


def service_targets(service: str, operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    """The permissions one call to a service in :data:`SERVICES` needs (see the module docstring)."""
    return MAPPERS[service](operation, params, region, account)
