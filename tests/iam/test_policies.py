"""The generated IAM documents: committed and current, valid IAM, one family per DAG, and an S3 endpoint policy that
lets the project's buckets through and nothing else."""

from __future__ import annotations

import json

import pytest

from include.iam import policies, roles
from localcloud.iam_policy import evaluate, parse_policy
from tests.iam import coverage


@pytest.fixture(scope="module")
def documents() -> dict[str, dict]:
    return policies.documents()


def test_committed_files_are_current(tmp_path):
    # The JSON in include/iam/generated/ is what `python -m include.iam.policies` writes today.
    assert policies.main(["--check"]) == 0, "run: python -m include.iam.policies"
    assert policies.main(["--out", str(tmp_path)]) == 0
    assert policies.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "vpc-endpoint-s3.json").write_text("{}")
    assert policies.main(["--check", "--out", str(tmp_path)]) == 1


def test_every_dag_belongs_to_exactly_one_family():
    from airflow.dag_processing.dagbag import DagBag

    from tests import REPO

    dag_ids = set(DagBag(dag_folder=str(REPO / "dags")).dag_ids)
    owners: dict[str, list[str]] = {}
    roles.family("ops")  # loads the families
    for family in policies.FAMILIES.values():
        for dag in family.dags:
            owners.setdefault(dag.dag_id, []).append(family.name)
    assert {d: f for d, f in owners.items() if len(f) > 1} == {}
    # Every DAG calls AWS, so every DAG has its statements.
    assert sorted(dag_ids - set(owners)) == [], "DAGs without a least-privilege policy"
    assert set(owners) <= dag_ids, "policies for DAGs that do not exist"


def test_generated_policies_are_valid_and_narrow(documents):
    for name, document in documents.items():
        if name.endswith(".policy.json"):
            parsed = parse_policy(document, "identity")
            for statement in parsed.statements:
                assert statement.effect == "Allow", name
                assert not any("*" in a for a in statement.actions), f"{name}: wildcard action in {statement.sid}"
                assert statement.not_actions is None and statement.not_resources is None, name
            sids = [s.sid for s in parsed.statements]
            assert len(sids) == len(set(sids)), f"{name}: duplicate Sids"
        elif name.endswith(".trust.json"):
            trust = parse_policy(document, "trust")
            principals = [p for s in trust.statements for p in s.principals.get("AWS", ())]
            assert principals == [f"arn:aws:iam::{policies.ACCOUNT}:role/{policies.WORKER_ROLE}"], name


def test_a_family_role_trusts_only_the_workers_role(documents):
    trust = documents["roles/airflow-ops.trust.json"]
    from localcloud.iam_policy import trust_allows

    parsed = parse_policy(trust, "trust")
    worker = f"arn:aws:iam::{policies.ACCOUNT}:role/{policies.WORKER_ROLE}"
    assert trust_allows(parsed, [worker], policies.ACCOUNT, {})
    assert not trust_allows(parsed, [f"arn:aws:iam::{policies.ACCOUNT}:role/someone-else"], policies.ACCOUNT, {})
    assert not trust_allows(parsed, [f"arn:aws:iam::{policies.ACCOUNT}:root"], policies.ACCOUNT, {})


def _endpoint_allows(document: dict, action: str, resource: str, account: str) -> bool:
    # An endpoint policy is a resource policy (Principal "*"); with the principal matched, its statements are
    # evaluated like an identity policy's, with the caller's account in the context.
    statements = []
    for statement in document["Statement"]:
        assert statement["Principal"] == "*"
        statements.append({k: v for k, v in statement.items() if k != "Principal"})
    policy = parse_policy({"Version": "2012-10-17", "Statement": statements}, "identity")
    return evaluate([policy], action, resource, {"aws:PrincipalAccount": account}).allowed


def test_vpc_endpoint_policy_lets_project_buckets_through_and_nothing_else(documents):
    endpoint = documents["vpc-endpoint-s3.json"]
    account = policies.ACCOUNT
    for family in policies.FAMILIES.values():
        for bucket in policies.family_buckets(family):
            assert _endpoint_allows(endpoint, "s3:GetObject", f"arn:aws:s3:::{bucket}/any/key", account), bucket
            assert _endpoint_allows(endpoint, "s3:ListBucket", f"arn:aws:s3:::{bucket}", account), bucket
    assert _endpoint_allows(endpoint, "s3:PutObject", "arn:aws:s3:::tenant-acme-exports/extractions/r/x", account)
    # Data cannot leave through the endpoint to anyone else's bucket, nor be read by another account's principals.
    assert not _endpoint_allows(endpoint, "s3:PutObject", "arn:aws:s3:::attacker-bucket/loot", account)
    assert not _endpoint_allows(endpoint, "s3:GetObject", "arn:aws:s3:::industrial-ml-ops/x", "111122223333")
    # Image layers from ECR's own bucket still come through.
    layer = f"arn:aws:s3:::prod-{policies.REGION}-starport-layer-bucket/sha256/abc"
    assert _endpoint_allows(endpoint, "s3:GetObject", layer, "999999999999")


def test_coverage_check_flags_denials_gaps_and_unused_grants():
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject", "s3:DeleteObject"],
             "Resource": "arn:aws:s3:::b/p/*"},
            {"Sid": "All", "Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
            {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"},
        ],
    }  # fmt: skip
    records = [
        {"principal": "p", "evaluated": True, "operation": "GetObject", "action": "s3:GetObject",
         "resource": "arn:aws:s3:::b/p/k", "decision": "Allow", "context": {}},
        {"principal": "p", "evaluated": True, "operation": "PutObject", "action": "s3:PutObject",
         "resource": "arn:aws:s3:::b/p/k", "decision": "Deny", "context": {}},
        {"principal": "p", "evaluated": True, "operation": "ListObjectsV2", "action": "s3:ListBucket",
         "resource": "arn:aws:s3:::b", "decision": "Allow", "context": {"s3:prefix": "p/"}},
    ]  # fmt: skip
    result = coverage.check(records, policy)
    assert not result.ok
    assert [r["action"] for r in result.denied] == ["s3:PutObject"]
    assert [r["action"] for r in result.uncovered] == ["s3:PutObject"]
    assert result.unused == ["Read: s3:DeleteObject"]
    assert "All: wildcard action sqs:*" in result.too_wide
    assert any(w.startswith("List: Resource * also matches s3:ListBucket") for w in result.too_wide)
    assert "denied" in result.explain() and json.dumps(result.unused)
    # The same records against exactly what they need: clean.
    exact = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Rw", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": "arn:aws:s3:::b/p/*"},
            {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
             "Condition": {"StringLike": {"s3:prefix": "p/*"}}},
        ],
    }  # fmt: skip
    allowed = [{**r, "decision": "Allow"} for r in records]
    assert coverage.check(allowed, exact).ok
    assert not coverage.check([], exact).ok  # no calls at all proves nothing


def test_the_lakehouse_engines_share_out_its_statements():
    # Each engine's test holds the role to its share; together the shares are the DAG's statements, so each
    # statement is used by one of them.
    from include.iam.families.lakehouse import ENGINE_GRANTS

    (dag,) = roles.family("lakehouse").dags
    shares = [{g.sid for g in grants} for grants in ENGINE_GRANTS.values()]
    assert set().union(*shares) == {g.sid for g in dag.grants}
    with pytest.raises(KeyError, match="no statements"):
        policies.dag_policy(roles.family("lakehouse"), "loans_delta_lake", sids={"Nope"})
