"""Rekognition Custom Labels hook: one client, plus the look-ups that make operators idempotent."""

from __future__ import annotations

from typing import Any

from aws_ml.hooks.base import ServiceHook


def project_name(project_arn: str) -> str:
    """``arn:aws:rekognition:<region>:<account>:project/<name>/<created>`` -> ``<name>``."""
    try:
        return project_arn.split(":project/", 1)[1].split("/", 1)[0]
    except IndexError:
        raise ValueError(f"{project_arn!r} is not a Rekognition project ARN") from None


class RekognitionHook(ServiceHook):
    """Interact with Amazon Rekognition Custom Labels through ``aws_default`` (real AWS or localcloud).

    ``get_waiter`` knows boto3's own Rekognition waiters and ours in ``plugins/aws_ml/waiters/rekognition.json``.
    """

    service = waiters = "rekognition"

    def describe_project(self, name: str) -> dict[str, Any] | None:
        """The project called ``name``, or None."""
        found = self.conn.describe_projects(ProjectNames=[name]).get("ProjectDescriptions", [])
        return found[0] if found else None

    def find_dataset(self, project_arn: str, dataset_type: str) -> dict[str, Any] | None:
        """The project's TRAIN or TEST dataset metadata, or None."""
        project = self.describe_project(project_name(project_arn))
        if project is None:
            return None
        return next((d for d in project.get("Datasets", []) if d["DatasetType"] == dataset_type), None)

    def describe_version(self, project_arn: str, version_name: str) -> dict[str, Any] | None:
        """The project's version called ``version_name``, or None."""
        found = self.conn.describe_project_versions(ProjectArn=project_arn, VersionNames=[version_name])
        return next(iter(found.get("ProjectVersionDescriptions", [])), None)
