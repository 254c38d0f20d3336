"""The generic half of mapping a request to the IAM permissions it needs: :class:`Target`, and helpers that
several services' ``services/<svc>/iam.py`` share (ARNs, roles handed to a service, tags set on create, S3
objects a service reads or writes as the caller). It names no service and imports none.

Sources: the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/) for action names and resource ARN formats.

- ``iam:PassRole`` on every role a request hands to the service, with ``iam:PassedToService`` in the context.
- Tagging on create needs the service's tagging action too (a dependent action in the reference).
- ``s3:GetObject`` / ``s3:PutObject`` on the S3 objects a service reads or writes for the request: Textract and
  Rekognition do it with the caller's permissions (forward access sessions), so a caller cannot make them read an
  object it could not read itself.

Where the ARN of the resource a call names holds a part the request does not carry (a creation timestamp, an id
the service has not assigned yet) that part is ``*``. Policies are matched against that text literally, so a
statement naming the resource with a wildcard there or ``*`` allows the call, and one naming the exact id does
not: stricter than AWS, never looser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

PASS_ROLE = "iam:PassRole"


@dataclass(frozen=True)
class Target:
    """One permission a request needs: an IAM action on a resource, with request-specific condition keys."""

    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)


def s3_arn(bucket: str, key: str | None = None) -> str:
    return f"arn:aws:s3:::{bucket}" if key is None else f"arn:aws:s3:::{bucket}/{key}"


_VERB = re.compile(r"^(?:Batch)?[A-Z][a-z]+")
_WORD = re.compile(r"[A-Z][a-z0-9]*(?:V2)?|[A-Z]+(?=[A-Z][a-z]|$)")


def operation_noun(operation: str) -> str:
    """``CreateTrainingJob`` -> ``TrainingJob``; ``BatchDeleteClusterNodes`` -> ``ClusterNodes``."""
    return _VERB.sub("", operation, count=1)


def shorter_nouns(noun: str) -> Iterator[str]:
    """The noun, then the noun less its last word each time: ``ClusterNodeVolume``, ``ClusterNode``, ..."""
    words = _WORD.findall(noun) or [noun]
    for end in range(len(words), 0, -1):
        yield "".join(words[:end])


def is_arn(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("arn:")


def service_arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def get_path(params: Mapping[str, Any], path: str) -> Any:
    """``get_path(p, "DatasetSource.GroundTruthManifest.S3Object")``; None where any step is missing."""
    value: Any = params
    for step in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a nested request, depth first."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key), item
            yield from walk(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from walk(item)


# -- permissions every service shares ----------------------------------------------------------------------


def role_arn(role: str, account: str) -> str:
    """A role's ARN from its ARN or (Glue accepts either) its name, which may include a path."""
    return role if is_arn(role) else f"arn:aws:iam::{account}:role/{role.lstrip('/')}"


def passed_roles(params: Mapping[str, Any], *, names_allowed: bool = False) -> list[str]:
    """The roles a request hands to the service: members named ``...Role`` / ``...RoleArn`` (any case and
    depth: SageMaker's ``RoleArn``, ``ExecutionRoleArn``, ``ExecutionRole``; EMR Serverless's
    ``executionRoleArn``; Glue's ``Role``; a notification channel's ``RoleArn``). Values that are not role
    ARNs are skipped unless the service takes role names (Glue)."""
    found: list[str] = []
    for key, value in walk(params):
        lowered = key.lower()
        if not (lowered.endswith("role") or lowered.endswith("rolearn")) or not isinstance(value, str) or not value:
            continue
        is_role = (is_arn(value) and ":role/" in value) or (names_allowed and not is_arn(value))
        if is_role and value not in found:
            found.append(value)
    return found


def pass_role_targets(
    params: Mapping[str, Any], account: str, passed_to: str, *, names_allowed: bool = False
) -> list[Target]:
    """``iam:PassRole`` on every role the request hands to the service whose principal is ``passed_to``."""
    # AWS checks iam:PassRole on the caller whenever a request hands a role to a service; without it any
    # caller allowed e.g. sagemaker:CreateTrainingJob could run code as any role the service may assume.
    roles = passed_roles(params, names_allowed=names_allowed)
    context = {"iam:PassedToService": passed_to}
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


def tag_on_create_targets(
    tag_action: str, operation: str, params: Mapping[str, Any], resources: list[str]
) -> list[Target]:
    """``tag_action`` (``<prefix>:TagResource``, SageMaker's ``sagemaker:AddTags``) on what a request creates
    with tags."""
    # Tagging while creating needs the tagging action too (the reference lists it as a dependent action of
    # each Create*/Start* that takes Tags), so that a role without it cannot set tags that grant access.
    if operation.startswith(("Tag", "AddTags", "Untag")) or not _tags(params):
        return []
    context = tag_context(params)
    return [Target(tag_action, r, context) for r in resources]


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


def s3_objects(params: Mapping[str, Any]) -> list[Target]:
    """Reads of every ``S3Object`` the request names (Document, DocumentLocation, Image, Video, manifests...)."""
    out: list[Target] = []
    for key, value in walk(params):
        if key == "S3Object":
            out.extend(t for t in s3_read(value) if t not in out)
    return out
