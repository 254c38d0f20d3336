"""Glue's IAM actions and resources per request (Service Authorization Reference, list_awsglue.html; Glue
developer guide, "Specifying AWS Glue resource ARNs"). Glue takes a role by name or ARN.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from localcloud import iam_targets
from localcloud.iam_targets import Target

PREFIX = "glue"  # the action prefix
PASSED_TO = "glue.amazonaws.com"  # the principal that roles handed to this service are passed to

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
            params.get("ConnectionName") or params.get("Name") or iam_targets.get_path(params, "ConnectionInput.Name")
        ]
        names = [n for n in names if n]
        if noun in ("Connections",) or not names:
            return [*catalog, arn("connection/*")] if operation == "GetConnections" else catalog
        return [*catalog, *(arn(f"connection/{n}") for n in names)]
    if noun in ("Database", "Databases"):
        name = params.get("Name") or iam_targets.get_path(params, "DatabaseInput.Name")
        return [*catalog, arn(f"database/{name or '*'}")]
    database = params.get("DatabaseName")
    if noun.startswith("UserDefinedFunction"):
        function = params.get("FunctionName") or iam_targets.get_path(params, "FunctionInput.FunctionName") or "*"
        db = database or "*"
        return [*catalog, arn(f"database/{db}"), arn(f"userDefinedFunction/{db}/{function}")]
    if database and any(noun.startswith(n) for n in _GLUE_TABLE_NOUNS):
        if operation == "BatchDeleteTable":
            tables = [str(t) for t in params.get("TablesToDelete") or []] or ["*"]
        elif noun == "Tables":
            tables = ["*"]
        else:
            tables = [
                str(
                    params.get("TableName")
                    or params.get("Name")
                    or iam_targets.get_path(params, "TableInput.Name")
                    or "*"
                )
            ]
        return [*catalog, arn(f"database/{database}"), *(arn(f"table/{database}/{t}") for t in tables)]
    if noun in ("Catalog", "Catalogs", "CatalogImportStatus", "DataCatalogEncryptionSettings") or noun == "Tables":
        return catalog
    return None


def _glue_schema(params: Mapping[str, Any], arn: Callable[[str], str]) -> str:
    schema = params.get("SchemaId") or {}
    if iam_targets.is_arn(schema.get("SchemaArn")):
        return str(schema["SchemaArn"])
    registry = (
        schema.get("RegistryName") or iam_targets.get_path(params, "RegistryId.RegistryName") or "default-registry"
    )
    name = schema.get("SchemaName") or params.get("SchemaName") or "*"
    return arn(f"schema/{registry}/{name}")


def glue_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    def arn(resource: str) -> str:
        return iam_targets.service_arn("glue", region, _glue_catalog_account(params, account), resource)

    noun = iam_targets.operation_noun(operation)
    resources: list[str] | None = None
    if operation in _GLUE_TAGS and iam_targets.is_arn(params.get("ResourceArn")):
        resources = [str(params["ResourceArn"])]
    elif noun.startswith("Schema") and noun not in ("Schemas",):
        resources = [_glue_schema(params, arn)]
    elif noun.startswith("Registry") or operation in ("DeleteRegistry", "GetRegistry", "UpdateRegistry"):
        registry = params.get("RegistryName") or iam_targets.get_path(params, "RegistryId.RegistryName")
        registry_arn = iam_targets.get_path(params, "RegistryId.RegistryArn")
        resources = [str(registry_arn) if iam_targets.is_arn(registry_arn) else arn(f"registry/{registry or '*'}")]
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
    context = iam_targets.tag_context(params) if operation.startswith("Create") else {}
    out = [Target(f"glue:{operation}", r, context) for r in resources]
    if operation.startswith("Create"):
        out.extend(iam_targets.tag_on_create_targets(f"{PREFIX}:TagResource", operation, params, resources[-1:]))
    # CreateJob/UpdateJob's Role (a name or an ARN), crawlers', sessions' and data-quality runs' Role,
    # StartBlueprintRun's RoleArn: "iam:PassRole is required to pass a role to AWS Glue" (Glue developer guide).
    out.extend(iam_targets.pass_role_targets(params, account, PASSED_TO, names_allowed=True))
    return out


targets = glue_targets
