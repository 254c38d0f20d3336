"""SageMaker's IAM actions and resources per request (Service Authorization Reference, list_amazonsagemaker.html).

Nearly every action is named like its operation; the resource comes from the operation's noun. Tagging on create
needs ``sagemaker:AddTags``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from localcloud import iam_targets
from localcloud.iam_targets import Target

PREFIX = "sagemaker"  # the action prefix
PASSED_TO = "sagemaker.amazonaws.com"  # the principal that roles handed to this service are passed to

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
        if iam_targets.is_arn(value):
            return str(value)
        if member in _SAGEMAKER_ASSIGNED_ID:
            values[member] = "*"
        else:
            values[member] = str(value) if member in _SAGEMAKER_KEEP_CASE else str(value).lower()
    return template.format(**values)


def _sagemaker_resources(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[str]:
    def full(resource: str) -> str:
        return (
            resource
            if iam_targets.is_arn(resource)
            else iam_targets.service_arn("sagemaker", region, account, resource)
        )

    if operation in _SAGEMAKER_OPERATIONS:
        filled = [_fill(t, params) for t in _SAGEMAKER_OPERATIONS[operation]]
        return [full(r) for r in filled if r] or ["*"]
    if operation == "BatchDescribeModelPackage":
        return [str(a) for a in params.get("ModelPackageArnList") or [] if iam_targets.is_arn(a)] or ["*"]
    if operation == "CreateModelPackage" and not params.get("ModelPackageName"):
        # A versioned package: model-package/<group>/<version>, the version assigned by the call.
        group = params.get("ModelPackageGroupName")
        if group:
            return [str(group) if iam_targets.is_arn(group) else full(f"model-package/{str(group).lower()}/*")]
    if operation == "CreateApp" or operation in ("DescribeApp", "DeleteApp"):
        owner = params.get("UserProfileName") or params.get("SpaceName") or "*"
        filled = _fill("app/{DomainId}/{owner}/{AppType}/{AppName}", {**params, "owner": owner})
        return [full(filled)] if filled else ["*"]
    if operation.startswith("List") or operation in ("Search", "GetSearchSuggestions", "QueryLineage"):
        # Listing and searching support no resource-level permission (the reference lists no resource type).
        return ["*"]
    noun = iam_targets.operation_noun(operation)
    for candidate in iam_targets.shorter_nouns(noun):
        template = _SAGEMAKER_TYPES.get(candidate)
        if template is None:
            continue
        optional = frozenset({"Version"}) if candidate == "ImageVersion" else frozenset()
        filled = _fill(template, params, optional)
        if filled:
            return [full(filled)]
        # Named by ARN instead (ArtifactArn, ClusterArn, PipelineArn, ModelPackageArn...).
        by_arn = params.get(f"{candidate}Arn")
        if iam_targets.is_arn(by_arn):
            return [str(by_arn)]
    # Resources known only by an ARN member (DescribeArtifact, DescribeSubscribedWorkteam, the MLflow app and
    # partner app calls...).
    for key in (f"{noun}Arn", "Arn", "ResourceArn"):
        if iam_targets.is_arn(params.get(key)):
            return [str(params[key])]
    for key, value in params.items():
        if key.endswith("Arn") and iam_targets.is_arn(value) and not key.endswith("RoleArn"):
            return [str(value)]
    return ["*"]


def sagemaker_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    resources = _sagemaker_resources(operation, params, region, account)
    context = iam_targets.tag_context(params) if operation.startswith("Create") else {}
    out = [Target(f"sagemaker:{operation}", r, context) for r in resources]
    if operation.startswith("Create"):
        out.extend(iam_targets.tag_on_create_targets("sagemaker:AddTags", operation, params, resources))
    # Every role a request hands SageMaker (RoleArn, ExecutionRoleArn, a domain's ExecutionRole, a tuning
    # job's TrainingJobDefinition.RoleArn...) needs iam:PassRole, documented per Create* in the SageMaker
    # developer guide ("SageMaker Roles: passing roles").
    out.extend(iam_targets.pass_role_targets(params, account, PASSED_TO))
    return out


targets = sagemaker_targets
