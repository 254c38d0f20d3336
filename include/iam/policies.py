"""Least-privilege IAM for the DAG families: one role per family, whose policy is generated from what each of its
DAGs calls, on the buckets, prefixes, tables and names its params configure, and nothing else.

A statement is declared per DAG (``DagAccess``), so the coverage test can hold each DAG to its own statements: every
call the DAG makes against localcloud must be allowed by them, and every action they grant must be used. A family's
role policy is the union of its DAGs' statements. Templates (``{bucket}``) are filled from ``Settings``: the DAG
params' defaults for the committed JSON in ``include/iam/generated/``, a test's own names in the tests.

``python -m include.iam.policies`` writes the JSON; ``--check`` fails when the committed files are stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENERATED = Path(__file__).resolve().parent / "generated"
ACCOUNT = "000000000000"  # localcloud's account; pass --account for a real one
REGION = "us-east-1"
WORKER_ROLE = "airflow-worker"  # the role the Airflow workers run as; each family role trusts it


@dataclass(frozen=True)
class Grant:
    """One policy statement. Resources and condition values are templates over the family's settings."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, Mapping[str, Any]] | None = None

    def render(self, values: Mapping[str, str]) -> dict[str, Any]:
        statement: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": sorted(self.actions) if len(self.actions) > 1 else self.actions[0],
            "Resource": [r.format(**values) for r in self.resources]
            if len(self.resources) > 1
            else self.resources[0].format(**values),
        }
        if self.condition:
            statement["Condition"] = _format(self.condition, values)
        return statement


def _format(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**values)
    if isinstance(value, Mapping):
        return {k: _format(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_format(v, values) for v in value]
    return value


@dataclass(frozen=True)
class DagAccess:
    dag_id: str
    grants: tuple[Grant, ...]


@dataclass(frozen=True)
class Family:
    name: str
    role: str
    settings: Mapping[str, str]  # template name -> default (the DAG params' defaults)
    dags: tuple[DagAccess, ...]
    description: str = ""


def s3_objects(sid: str, actions: Iterable[str], bucket: str, prefix: str) -> Grant:
    return Grant(sid, tuple(actions), (f"arn:aws:s3:::{{{bucket}}}/{prefix}*",))


def s3_list(sid: str, bucket: str, prefixes: Iterable[str]) -> Grant:
    # ListBucket is granted on the bucket and narrowed to the prefixes the DAG lists, through s3:prefix.
    return Grant(
        sid,
        ("s3:ListBucket",),
        (f"arn:aws:s3:::{{{bucket}}}",),
        {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
    )


def service_arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{{region}}:{{account}}:{resource}"


def table_arn(name: str) -> str:
    return service_arn("dynamodb", f"table/{{{name}}}")


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


def values_for(family: Family, overrides: Mapping[str, str] | None = None, **base: str) -> dict[str, str]:
    values = {"account": ACCOUNT, "region": REGION, **family.settings, **base, **(overrides or {})}
    unknown = set(overrides or {}) - set(family.settings) - {"account", "region"}
    if unknown:
        raise KeyError(f"{family.name} has no settings {sorted(unknown)}; it has {sorted(family.settings)}")
    return values


def dag_policy(
    family: Family,
    dag_id: str,
    overrides: Mapping[str, str] | None = None,
    sids: Iterable[str] | None = None,
    **base: str,
) -> dict:
    """The statements of one DAG (only those named by ``sids``, when a run takes one of several paths), as a
    policy document."""
    (dag,) = [d for d in family.dags if d.dag_id == dag_id]
    grants = dag.grants
    if sids is not None:
        wanted = set(sids)
        unknown = wanted - {g.sid for g in grants}
        if unknown:
            raise KeyError(f"{dag_id} has no statements {sorted(unknown)}")
        grants = tuple(g for g in grants if g.sid in wanted)
    values = values_for(family, overrides, **base)
    return {"Version": "2012-10-17", "Statement": [g.render(values) for g in grants]}


def family_policy(family: Family, overrides: Mapping[str, str] | None = None, **base: str) -> dict:
    """The family role's policy: its DAGs' statements, each once (a statement two DAGs share keeps one Sid)."""
    values = values_for(family, overrides, **base)
    statements: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    for dag in family.dags:
        for grant in dag.grants:
            rendered = grant.render(values)
            key = json.dumps({k: v for k, v in rendered.items() if k != "Sid"}, sort_keys=True)
            if key in seen:
                continue
            if any(s["Sid"] == rendered["Sid"] for s in statements):
                raise ValueError(f"{family.name}: Sid {rendered['Sid']} is declared twice with different content")
            seen[key] = rendered
            statements.append(rendered)
    return {"Version": "2012-10-17", "Statement": statements}


def trust_policy(family: Family, account: str = ACCOUNT, worker_arn: str | None = None) -> dict:
    """Only the Airflow workers' role (``worker_arn``, default ``role/airflow-worker``) may assume a family role."""
    worker = worker_arn or f"arn:aws:iam::{account}:role/{WORKER_ROLE}"
    statement = {"Sid": "AirflowWorkers", "Effect": "Allow", "Principal": {"AWS": worker}, "Action": "sts:AssumeRole"}
    return {"Version": "2012-10-17", "Statement": [statement]}


def family_buckets(family: Family, overrides: Mapping[str, str] | None = None) -> set[str]:
    values = values_for(family, overrides)
    return {v for k, v in values.items() if k.endswith("bucket")}


def vpc_endpoint_policy(account: str = ACCOUNT, region: str = REGION) -> dict:
    """The S3 gateway endpoint of the workers' private subnets: this account's principals, on the project's buckets
    only (plus the AWS-owned buckets ECR image layers come from), so nothing in the VPC can reach another S3."""
    from include.ops.tenants import provision

    buckets = sorted({b for f in FAMILIES.values() for b in family_buckets(f)} | {provision.bucket_name("*")})
    resources = [f"arn:aws:s3:::{b}" for b in buckets] + [f"arn:aws:s3:::{b}/*" for b in buckets]
    # The S3 actions the roles behind it hold (families and tenants), plus aborting a failed multipart upload.
    documents = [family_policy(f, account=account, region=region) for f in FAMILIES.values()]
    documents.append(provision.permissions_policy("*", "*"))
    actions = {"s3:AbortMultipartUpload"}
    for document in documents:
        for statement in document["Statement"]:
            granted = statement["Action"]
            actions.update(a for a in ([granted] if isinstance(granted, str) else granted) if a.startswith("s3:"))
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ProjectBucketsFromThisAccount",
                "Effect": "Allow",
                "Principal": "*",
                "Action": sorted(actions),
                "Resource": resources,
                "Condition": {"StringEquals": {"aws:PrincipalAccount": account}},
            },
            {
                "Sid": "EcrImageLayers",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::prod-{region}-starport-layer-bucket/*",
            },
        ],
    }


def documents(account: str = ACCOUNT, region: str = REGION, worker_role: str = WORKER_ROLE) -> dict[str, dict]:
    """Every generated file, by its path under ``generated/``."""
    from include.iam import families  # noqa: F401  (registers the families)

    out: dict[str, dict] = {}
    for family in FAMILIES.values():
        base = {"account": account, "region": region}
        out[f"roles/{family.role}.policy.json"] = family_policy(family, **base)
        out[f"roles/{family.role}.trust.json"] = trust_policy(
            family, account, f"arn:aws:iam::{account}:role/{worker_role}"
        )
    out["vpc-endpoint-s3.json"] = vpc_endpoint_policy(account, region)
    return out


def _text(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed files differ from the generated")
    parser.add_argument("--account", default=ACCOUNT)
    parser.add_argument("--region", default=REGION)
    parser.add_argument("--out", type=Path, default=GENERATED)
    args = parser.parse_args(argv)
    # Run as ``python -m``, this file is __main__; the families register in the importable module, so ask it.
    from include.iam import policies

    docs = policies.documents(args.account, args.region)
    stale = []
    for name, document in docs.items():
        path = args.out / name
        if args.check:
            if not path.is_file() or path.read_text() != _text(document):
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_text(document))
    if stale:
        print(f"stale IAM files (run python -m include.iam.policies): {stale}", file=sys.stderr)
        return 1
    print(f"{len(docs)} IAM documents {'checked' if args.check else 'written'} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
