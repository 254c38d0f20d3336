"""IAM roles, STS AssumeRole and policy enforcement for requests signed with temporary credentials.

Two tenants, each with a role allowed only its own bucket (and a prefix of a shared one) and its own
DynamoDB table. Requests signed with the local admin credentials are never evaluated.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localcloud import iam_policy
from localcloud.iam_policy import (
    PolicyError,
    Target,
    evaluate,
    parse_policy,
    read_audit_log,
    request_targets,
    required_permissions,
    trust_allows,
)
from localcloud.process import LocalCloudProcess

ACCOUNT = "000000000000"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
SHARED = "tenants-shared"
TRUST_ACCOUNT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"}],
}


def tenant_policy(tenant: str) -> dict:
    """Own bucket in full, own prefix of the shared bucket (listing limited by s3:prefix), own table."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnBucket",
                "Effect": "Allow",
                "Action": ["s3:Get*", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:AbortMultipartUpload"],
                "Resource": [f"arn:aws:s3:::tenant-{tenant}-data", f"arn:aws:s3:::tenant-{tenant}-data/*"],
            },
            {
                "Sid": "SharedPrefixList",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{SHARED}",
                "Condition": {"StringLike": {"s3:prefix": [f"{tenant}/*", f"{tenant}/"]}},
            },
            {
                "Sid": "SharedPrefixObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"arn:aws:s3:::{SHARED}/{tenant}/*",
            },
            {
                "Sid": "OwnTable",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:DescribeTable"],
                "Resource": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/tenant-{tenant}-items",
            },
            {
                "Sid": "NoSecrets",
                "Effect": "Deny",
                "Action": "s3:*",
                "Resource": f"arn:aws:s3:::tenant-{tenant}-data/secret/*",
            },
        ],
    }


def _error(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    return exc.value


def _code(error: ClientError) -> str:
    return error.response["Error"]["Code"]


def _session(server: LocalCloudProcess, credentials: dict) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )


def _client(server: LocalCloudProcess, credentials: dict, service: str, **config):
    return _session(server, credentials).client(
        service, endpoint_url=server.endpoint, config=Config(retries={"max_attempts": 1}, **config)
    )


def _assume(server: LocalCloudProcess, role: str, session: str = "test", **kwargs) -> dict:
    sts = server.client("sts")
    return sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName=session, **kwargs)[
        "Credentials"
    ]


def _make_tenants(server: LocalCloudProcess) -> None:
    iam, s3, ddb = server.client("iam"), server.client("s3"), server.client("dynamodb")
    for tenant in ("a", "b"):
        iam.create_role(RoleName=f"tenant-{tenant}", AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))
        iam.put_role_policy(
            RoleName=f"tenant-{tenant}", PolicyName="data", PolicyDocument=json.dumps(tenant_policy(tenant))
        )
        s3.create_bucket(Bucket=f"tenant-{tenant}-data")
        s3.put_object(Bucket=f"tenant-{tenant}-data", Key="seed.txt", Body=tenant.encode())
        ddb.create_table(
            TableName=f"tenant-{tenant}-items",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


@pytest.fixture(scope="module")
def tenants(localcloud) -> LocalCloudProcess:
    localcloud.client("s3").create_bucket(Bucket=SHARED)
    _make_tenants(localcloud)
    for tenant in ("a", "b"):
        localcloud.client("s3").put_object(Bucket=SHARED, Key=f"{tenant}/seed.txt", Body=tenant.encode())
    return localcloud


@pytest.fixture(scope="module")
def tenant_a(tenants) -> dict:
    return _assume(tenants, "tenant-a", "tenant-a-session")


# -- the policy language, without a server -------------------------------------------------------------


def test_policy_documents_are_validated_like_iam() -> None:
    good = tenant_policy("a")
    assert len(parse_policy(good).statements) == 5
    cases = {
        "{not json": "Syntax errors in policy.",
        json.dumps({"Statement": [{"Effect": "Permit", "Action": "s3:*", "Resource": "*"}]}): "Invalid effect: Permit",
        json.dumps({"Statement": [{"Effect": "Allow", "Resource": "*"}]}): "Missing required field Action",
        json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}): "Missing required field Resource",
        json.dumps(
            {"Statement": [{"Effect": "Allow", "Action": "GetObject", "Resource": "*"}]}
        ): "prefaced by a vendor",
        json.dumps(
            {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "bucket"}]}
        ): "must be in ARN format",
        json.dumps({"Version": "2020-01-01", "Statement": []}): "valid version string",
        json.dumps(
            {
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StrEq": {"a:b": "c"}}}
                ]
            }
        ): "Invalid Condition type",
    }
    for document, message in cases.items():
        with pytest.raises(PolicyError, match=message):
            parse_policy(document)
    with pytest.raises(PolicyError, match="should not specify a principal"):
        parse_policy({**TRUST_ACCOUNT}, "identity")
    with pytest.raises(PolicyError, match="Missing required field Principal"):
        parse_policy(good, "trust")


def test_evaluation_wildcards_explicit_deny_default_deny_and_session_policy() -> None:
    policy = parse_policy(tenant_policy("a"))
    obj = "arn:aws:s3:::tenant-a-data/reports/x.csv"
    assert evaluate([policy], "s3:GetObject", obj).allowed  # s3:Get* matches
    assert evaluate([policy], "S3:getobject", obj).allowed  # action names are case-insensitive
    assert not evaluate([policy], "s3:GetObject", "arn:aws:s3:::tenant-b-data/x").allowed
    assert evaluate([policy], "s3:PutBucketPolicy", "arn:aws:s3:::tenant-a-data").reason == (
        "because no identity-based policy allows the s3:PutBucketPolicy action"
    )
    secret = evaluate([policy], "s3:GetObject", "arn:aws:s3:::tenant-a-data/secret/k")
    assert (secret.allowed, secret.reason) == (False, "with an explicit deny in an identity-based policy")
    # ARNs match field by field: a wildcard in the resource part spans "/", one in the region stays there.
    assert iam_policy.arn_matches("arn:aws:s3:::tenant-*", "arn:aws:s3:::tenant-a-data/x")
    assert not iam_policy.arn_matches("arn:aws:dynamodb:*:111111111111:table/t", "arn:aws:dynamodb:us-east-1:0:table/t")
    assert iam_policy.arn_matches(
        "arn:aws:dynamodb:*:*:table/tenant-a-*", "arn:aws:dynamodb:us-east-1:0:table/tenant-a-x"
    )
    session = parse_policy({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}, "session")
    assert evaluate([policy], "s3:GetObject", obj, session=session).allowed
    narrowed = evaluate([policy], "s3:PutObject", obj, session=session)
    assert narrowed.reason == "because no session policy allows the s3:PutObject action"
    # NotAction: everything but the listed actions.
    not_action = parse_policy({"Statement": [{"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"}]})
    assert evaluate([not_action], "s3:PutObject", obj).allowed
    assert not evaluate([not_action], "s3:DeleteObject", obj).allowed


def test_conditions_s3_prefix_absent_keys_and_policy_variables() -> None:
    policy = parse_policy(tenant_policy("a"))
    bucket = f"arn:aws:s3:::{SHARED}"
    assert evaluate([policy], "s3:ListBucket", bucket, {"s3:prefix": "a/2024/"}).allowed
    assert not evaluate([policy], "s3:ListBucket", bucket, {"s3:prefix": "b/"}).allowed
    assert not evaluate([policy], "s3:ListBucket", bucket, {"s3:prefix": ""}).allowed
    assert not evaluate([policy], "s3:ListBucket", bucket, {}).allowed  # absent key fails StringLike
    cond = iam_policy.Condition("StringNotEquals", "s3:prefix", ("x",))
    assert iam_policy.condition_matches(cond, {})  # ... and satisfies a negated operator
    assert iam_policy.condition_matches(iam_policy.Condition("StringEqualsIfExists", "a:b", ("x",)), {})
    assert iam_policy.condition_matches(iam_policy.Condition("Null", "a:b", ("true",)), {})
    assert iam_policy.condition_matches(
        iam_policy.Condition("NumericLessThan", "s3:max-keys", ("10",)), {"s3:max-keys": "5"}
    )
    per_user = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${aws:userid}/*"}],
        }
    )
    assert evaluate([per_user], "s3:GetObject", "arn:aws:s3:::b/AROA1:s/k", {"aws:userid": "AROA1:s"}).allowed
    assert not evaluate([per_user], "s3:GetObject", "arn:aws:s3:::b/AROA2:s/k", {"aws:userid": "AROA1:s"}).allowed


def test_trust_policy_principals_and_external_id() -> None:
    trust = parse_policy(TRUST_ACCOUNT, "trust")
    assert trust_allows(trust, [ROOT], ACCOUNT, {})
    only_role = parse_policy(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/etl"},
                    "Action": "sts:AssumeRole",
                }
            ]
        },
        "trust",
    )
    assert not trust_allows(only_role, [ROOT], ACCOUNT, {})
    assert trust_allows(
        only_role, ["arn:aws:sts::0:assumed-role/etl/s", f"arn:aws:iam::{ACCOUNT}:role/etl"], ACCOUNT, {}
    )
    external = parse_policy(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": "tenant-a-ext"}},
                }
            ]
        },
        "trust",
    )
    assert not trust_allows(external, [ROOT], ACCOUNT, {})
    assert not trust_allows(external, [ROOT], ACCOUNT, {"sts:ExternalId": "wrong"})
    assert trust_allows(external, [ROOT], ACCOUNT, {"sts:ExternalId": "tenant-a-ext"})


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("GetObject", {"Bucket": "b", "Key": "k/1"}, [("s3:GetObject", "arn:aws:s3:::b/k/1")]),
        ("GetObject", {"Bucket": "b", "Key": "k", "VersionId": "v"}, [("s3:GetObjectVersion", "arn:aws:s3:::b/k")]),
        ("HeadObject", {"Bucket": "b", "Key": "k"}, [("s3:GetObject", "arn:aws:s3:::b/k")]),
        ("PutObject", {"Bucket": "b", "Key": "k"}, [("s3:PutObject", "arn:aws:s3:::b/k")]),
        ("ListObjectsV2", {"Bucket": "b", "Prefix": "p/"}, [("s3:ListBucket", "arn:aws:s3:::b")]),
        ("ListObjects", {"Bucket": "b"}, [("s3:ListBucket", "arn:aws:s3:::b")]),
        ("HeadBucket", {"Bucket": "b"}, [("s3:ListBucket", "arn:aws:s3:::b")]),
        ("ListBuckets", {}, [("s3:ListAllMyBuckets", "*")]),
        ("GetBucketLocation", {"Bucket": "b"}, [("s3:GetBucketLocation", "arn:aws:s3:::b")]),
        ("CreateBucket", {"Bucket": "b"}, [("s3:CreateBucket", "arn:aws:s3:::b")]),
        (
            "CopyObject",
            {"Bucket": "dst", "Key": "d", "CopySource": "src/dir/a%20b.txt"},
            [("s3:GetObject", "arn:aws:s3:::src/dir/a b.txt"), ("s3:PutObject", "arn:aws:s3:::dst/d")],
        ),
        (
            "CopyObject",
            {"Bucket": "dst", "Key": "d", "CopySource": {"Bucket": "src", "Key": "k"}},
            [("s3:GetObject", "arn:aws:s3:::src/k"), ("s3:PutObject", "arn:aws:s3:::dst/d")],
        ),
        (
            "UploadPartCopy",
            {"Bucket": "dst", "Key": "d", "CopySource": "/src/k", "UploadId": "u", "PartNumber": 1},
            [("s3:GetObject", "arn:aws:s3:::src/k"), ("s3:PutObject", "arn:aws:s3:::dst/d")],
        ),
        (
            "DeleteObjects",
            {"Bucket": "b", "Delete": {"Objects": [{"Key": "x"}, {"Key": "y/z"}]}},
            [("s3:DeleteObject", "arn:aws:s3:::b/x"), ("s3:DeleteObject", "arn:aws:s3:::b/y/z")],
        ),
        ("CreateMultipartUpload", {"Bucket": "b", "Key": "k"}, [("s3:PutObject", "arn:aws:s3:::b/k")]),
        (
            "UploadPart",
            {"Bucket": "b", "Key": "k", "UploadId": "u", "PartNumber": 1},
            [("s3:PutObject", "arn:aws:s3:::b/k")],
        ),
        (
            "CompleteMultipartUpload",
            {"Bucket": "b", "Key": "k", "UploadId": "u"},
            [("s3:PutObject", "arn:aws:s3:::b/k")],
        ),
        (
            "AbortMultipartUpload",
            {"Bucket": "b", "Key": "k", "UploadId": "u"},
            [("s3:AbortMultipartUpload", "arn:aws:s3:::b/k")],
        ),
        (
            "ListParts",
            {"Bucket": "b", "Key": "k", "UploadId": "u"},
            [("s3:ListMultipartUploadParts", "arn:aws:s3:::b/k")],
        ),
        ("ListMultipartUploads", {"Bucket": "b"}, [("s3:ListBucketMultipartUploads", "arn:aws:s3:::b")]),
    ],
)
def test_s3_requests_map_to_actions_and_resources(operation, params, expected) -> None:
    assert required_permissions("s3", operation, params) == expected


def test_other_services_map_to_actions_and_resources() -> None:
    table = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/t"
    assert required_permissions("dynamodb", "GetItem", {"TableName": "t"}, region="eu-west-1") == [
        ("dynamodb:GetItem", table)
    ]
    assert required_permissions("dynamodb", "Query", {"TableName": "t", "IndexName": "gsi"}, region="eu-west-1") == [
        ("dynamodb:Query", f"{table}/index/gsi")
    ]
    assert [
        r for _, r in required_permissions("dynamodb", "BatchWriteItem", {"RequestItems": {"t1": [], "t2": []}})
    ] == [
        f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t1",
        f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t2",
    ]
    assert required_permissions("dynamodb", "ListTables", {}) == [("dynamodb:ListTables", "*")]
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    assert required_permissions("sts", "AssumeRole", {"RoleArn": role, "RoleSessionName": "s"}) == [
        ("sts:AssumeRole", role)
    ]
    assert required_permissions("sts", "GetCallerIdentity", {}) == []
    assert required_permissions("iam", "PutRolePolicy", {"RoleName": "r"}) == [("iam:PutRolePolicy", role)]
    listing = request_targets("s3", "ListObjectsV2", {"Bucket": "b", "Prefix": "p/", "Delimiter": "/"})
    assert listing == [Target("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "p/", "s3:delimiter": "/"})]
    with pytest.raises(iam_policy.UnmappedRequest):
        request_targets("kinesis", "PutRecord", {})


# -- IAM --------------------------------------------------------------------------------------------------


def test_iam_roles_inline_policies_tags_and_errors(localcloud) -> None:
    iam = localcloud.client("iam")
    name = f"role-{uuid.uuid4().hex[:8]}"
    created = iam.create_role(
        RoleName=name,
        Path="/etl/",
        AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT),
        Description="test",
        Tags=[{"Key": "team", "Value": "ml"}],
    )["Role"]
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/etl/{name}"
    assert created["RoleId"].startswith("AROA") and len(created["RoleId"]) == 21
    assert created["AssumeRolePolicyDocument"] == TRUST_ACCOUNT  # botocore decodes IAM's url-encoded JSON
    assert _code(
        _error(iam.create_role, RoleName=name.upper(), AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))
    ) == ("EntityAlreadyExists")
    got = iam.get_role(RoleName=name)["Role"]
    assert (got["Description"], got["MaxSessionDuration"], got["Tags"]) == (
        "test",
        3600,
        [{"Key": "team", "Value": "ml"}],
    )
    assert name in [r["RoleName"] for r in iam.list_roles(PathPrefix="/etl/")["Roles"]]
    assert name not in [r["RoleName"] for r in iam.list_roles(PathPrefix="/other/")["Roles"]]

    policy = tenant_policy("a")
    iam.put_role_policy(RoleName=name, PolicyName="p1", PolicyDocument=json.dumps(policy))
    assert iam.get_role_policy(RoleName=name, PolicyName="p1")["PolicyDocument"] == policy
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["p1"]
    bad = json.dumps({"Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]})
    assert (
        _code(_error(iam.put_role_policy, RoleName=name, PolicyName="p2", PolicyDocument=bad))
        == "MalformedPolicyDocument"
    )
    assert (
        _code(_error(iam.put_role_policy, RoleName=name, PolicyName="p2", PolicyDocument="{"))
        == "MalformedPolicyDocument"
    )
    error = _error(iam.delete_role, RoleName=name)
    assert (_code(error), error.response["ResponseMetadata"]["HTTPStatusCode"]) == ("DeleteConflict", 409)

    iam.tag_role(RoleName=name, Tags=[{"Key": "env", "Value": "dev"}])
    iam.untag_role(RoleName=name, TagKeys=["team"])
    assert iam.list_role_tags(RoleName=name)["Tags"] == [{"Key": "env", "Value": "dev"}]

    iam.delete_role_policy(RoleName=name, PolicyName="p1")
    assert _code(_error(iam.get_role_policy, RoleName=name, PolicyName="p1")) == "NoSuchEntity"
    assert _code(_error(iam.delete_role_policy, RoleName=name, PolicyName="p1")) == "NoSuchEntity"
    iam.delete_role(RoleName=name)
    error = _error(iam.get_role, RoleName=name)
    assert (_code(error), error.response["ResponseMetadata"]["HTTPStatusCode"]) == ("NoSuchEntity", 404)
    assert _code(_error(iam.delete_role, RoleName=name)) == "NoSuchEntity"
    trust_with_resource = {
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole", "Resource": "*"}]
    }
    assert _code(_error(iam.create_role, RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_with_resource))) == (
        "MalformedPolicyDocument"
    )


# -- STS and enforcement ----------------------------------------------------------------------------------


def test_assumed_role_identity_and_credentials_shape(tenants, tenant_a) -> None:
    assert tenant_a["AccessKeyId"].startswith("ASIA") and len(tenant_a["AccessKeyId"]) == 20
    assert len(tenant_a["SecretAccessKey"]) == 40 and tenant_a["SessionToken"]
    identity = _client(tenants, tenant_a, "sts").get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-a/tenant-a-session"
    assert identity["UserId"].startswith("AROA") and identity["UserId"].endswith(":tenant-a-session")
    assert identity["Account"] == ACCOUNT
    assert tenants.client("sts").get_caller_identity()["Arn"] == ROOT  # the admin credentials are unchanged


def test_tenant_reads_and_writes_its_own_bucket_only(tenants, tenant_a) -> None:
    s3 = _client(tenants, tenant_a, "s3")
    s3.put_object(Bucket="tenant-a-data", Key="reports/r.csv", Body=b"a,b\n")
    assert s3.get_object(Bucket="tenant-a-data", Key="reports/r.csv")["Body"].read() == b"a,b\n"
    assert s3.head_object(Bucket="tenant-a-data", Key="reports/r.csv")["ContentLength"] == 4
    assert "reports/r.csv" in [o["Key"] for o in s3.list_objects_v2(Bucket="tenant-a-data")["Contents"]]
    s3.head_bucket(Bucket="tenant-a-data")
    s3.get_bucket_location(Bucket="tenant-a-data")

    arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-a/tenant-a-session"
    error = _error(s3.get_object, Bucket="tenant-b-data", Key="seed.txt")
    assert (_code(error), error.response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert error.response["Error"]["Message"] == (
        f'User: {arn} is not authorized to perform: s3:GetObject on resource: "arn:aws:s3:::tenant-b-data/seed.txt" '
        "because no identity-based policy allows the s3:GetObject action"
    )
    assert _code(_error(s3.put_object, Bucket="tenant-b-data", Key="x", Body=b"x")) == "AccessDenied"
    error = _error(s3.list_objects_v2, Bucket="tenant-b-data")
    assert 's3:ListBucket on resource: "arn:aws:s3:::tenant-b-data"' in error.response["Error"]["Message"]
    assert _code(_error(s3.head_object, Bucket="tenant-b-data", Key="seed.txt")) == "403"  # HEAD: no body
    assert _code(_error(s3.list_buckets)) == "AccessDenied"  # s3:ListAllMyBuckets is not granted
    # Nothing was written to the other tenant's bucket.
    assert [o["Key"] for o in tenants.client("s3").list_objects_v2(Bucket="tenant-b-data")["Contents"]] == ["seed.txt"]


def test_copy_delete_objects_and_multipart_need_every_permission(tenants, tenant_a) -> None:
    s3 = _client(tenants, tenant_a, "s3")
    s3.copy_object(Bucket="tenant-a-data", Key="copy.txt", CopySource={"Bucket": "tenant-a-data", "Key": "seed.txt"})
    error = _error(s3.copy_object, Bucket="tenant-a-data", Key="stolen", CopySource="tenant-b-data/seed.txt")
    assert 's3:GetObject on resource: "arn:aws:s3:::tenant-b-data/seed.txt"' in error.response["Error"]["Message"]
    assert _code(_error(s3.delete_objects, Bucket="tenant-b-data", Delete={"Objects": [{"Key": "seed.txt"}]})) == (
        "AccessDenied"
    )
    s3.delete_objects(Bucket="tenant-a-data", Delete={"Objects": [{"Key": "copy.txt"}]})

    upload = s3.create_multipart_upload(Bucket="tenant-a-data", Key="big.bin")["UploadId"]
    etag = s3.upload_part(Bucket="tenant-a-data", Key="big.bin", UploadId=upload, PartNumber=1, Body=b"p")["ETag"]
    s3.complete_multipart_upload(
        Bucket="tenant-a-data",
        Key="big.bin",
        UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]},
    )
    assert _code(_error(s3.create_multipart_upload, Bucket="tenant-b-data", Key="big.bin")) == "AccessDenied"
    assert _code(_error(s3.list_multipart_uploads, Bucket="tenant-a-data")) == "AccessDenied"  # not granted


def test_shared_bucket_prefix_condition(tenants, tenant_a) -> None:
    s3 = _client(tenants, tenant_a, "s3")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=SHARED, Prefix="a/")["Contents"]] == ["a/seed.txt"]
    assert _code(_error(s3.list_objects_v2, Bucket=SHARED, Prefix="b/")) == "AccessDenied"
    assert _code(_error(s3.list_objects_v2, Bucket=SHARED)) == "AccessDenied"
    s3.put_object(Bucket=SHARED, Key="a/out.txt", Body=b"x")
    assert _code(_error(s3.get_object, Bucket=SHARED, Key="b/seed.txt")) == "AccessDenied"


def test_explicit_deny_beats_allow(tenants, tenant_a) -> None:
    tenants.client("s3").put_object(Bucket="tenant-a-data", Key="secret/k", Body=b"s")
    s3 = _client(tenants, tenant_a, "s3")
    error = _error(s3.get_object, Bucket="tenant-a-data", Key="secret/k")
    assert error.response["Error"]["Message"].endswith("with an explicit deny in an identity-based policy")
    assert _code(_error(s3.put_object, Bucket="tenant-a-data", Key="secret/other", Body=b"x")) == "AccessDenied"


def test_dynamodb_tables_not_granted_are_denied(tenants, tenant_a) -> None:
    ddb = _client(tenants, tenant_a, "dynamodb")
    ddb.put_item(TableName="tenant-a-items", Item={"pk": {"S": "1"}})
    assert ddb.get_item(TableName="tenant-a-items", Key={"pk": {"S": "1"}})["Item"] == {"pk": {"S": "1"}}
    error = _error(ddb.get_item, TableName="tenant-b-items", Key={"pk": {"S": "1"}})
    assert (_code(error), error.response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDeniedException", 400)
    assert error.response["Error"]["Message"].endswith(
        f"dynamodb:GetItem on resource: arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/tenant-b-items "
        "because no identity-based policy allows the dynamodb:GetItem action"
    )
    assert _code(_error(ddb.delete_item, TableName="tenant-a-items", Key={"pk": {"S": "1"}})) == "AccessDeniedException"
    assert _code(_error(ddb.list_tables)) == "AccessDeniedException"


def test_other_services_are_evaluated_too(tenants, tenant_a) -> None:
    # Textract and the other ML services are mapped (localcloud/src/localcloud/services/<svc>/iam.py): not granted, denied.
    error = _error(_client(tenants, tenant_a, "textract").get_document_analysis, JobId="x" * 64)
    assert _code(error) == "AccessDeniedException"
    assert error.response["Error"]["Message"].endswith(
        "textract:GetDocumentAnalysis on resource: * because no identity-based policy allows the "
        "textract:GetDocumentAnalysis action"
    )


def test_session_policy_narrows_the_role(tenants) -> None:
    only_get = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    sts = tenants.client("sts")
    response = sts.assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/tenant-a", RoleSessionName="narrow", Policy=json.dumps(only_get)
    )
    assert 0 < response["PackedPolicySize"] <= 100
    s3 = _client(tenants, response["Credentials"], "s3")
    assert s3.get_object(Bucket="tenant-a-data", Key="seed.txt")["Body"].read() == b"a"
    error = _error(s3.put_object, Bucket="tenant-a-data", Key="n.txt", Body=b"x")
    assert error.response["Error"]["Message"].endswith("because no session policy allows the s3:PutObject action")
    # The session policy cannot widen the role either.
    assert _code(_error(s3.get_object, Bucket="tenant-b-data", Key="seed.txt")) == "AccessDenied"
    bad = json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*"}]})
    assert _code(
        _error(sts.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/tenant-a", RoleSessionName="x1", Policy=bad)
    ) == ("MalformedPolicyDocument")


def test_policy_changes_apply_to_existing_sessions(tenants) -> None:
    iam = tenants.client("iam")
    name = f"grow-{uuid.uuid4().hex[:8]}"
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))
    s3 = _client(tenants, _assume(tenants, name), "s3")
    assert _code(_error(s3.get_object, Bucket="tenant-a-data", Key="seed.txt")) == "AccessDenied"
    grant = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::tenant-a-data/*"}]}
    iam.put_role_policy(RoleName=name, PolicyName="g", PolicyDocument=json.dumps(grant))
    assert s3.get_object(Bucket="tenant-a-data", Key="seed.txt")["Body"].read() == b"a"


def test_trust_policy_refusals_external_id_and_durations(tenants) -> None:
    iam, sts = tenants.client("iam"), tenants.client("sts")
    name = f"ext-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ROOT},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "ext-123"}},
            }
        ],
    }
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=7200)
    arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    error = _error(sts.assume_role, RoleArn=arn, RoleSessionName="s1")
    assert (_code(error), error.response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert error.response["Error"]["Message"] == (
        f"User: {ROOT} is not authorized to perform: sts:AssumeRole on resource: {arn}"
    )
    assert _code(_error(sts.assume_role, RoleArn=arn, RoleSessionName="s1", ExternalId="wrong")) == "AccessDenied"
    assert sts.assume_role(RoleArn=arn, RoleSessionName="s1", ExternalId="ext-123", DurationSeconds=7200)
    error = _error(sts.assume_role, RoleArn=arn, RoleSessionName="s1", ExternalId="ext-123", DurationSeconds=7201)
    assert "MaxSessionDuration" in error.response["Error"]["Message"]
    # A role that does not exist is refused exactly like one that does not trust the caller.
    missing = f"arn:aws:iam::{ACCOUNT}:role/no-such-role"
    assert _code(_error(sts.assume_role, RoleArn=missing, RoleSessionName="s1")) == "AccessDenied"
    # Only the role named as principal may assume it: the account root may not.
    other = f"only-{uuid.uuid4().hex[:8]}"
    iam.create_role(
        RoleName=other,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/tenant-b"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            }
        ),
    )
    other_arn = f"arn:aws:iam::{ACCOUNT}:role/{other}"
    assert _code(_error(sts.assume_role, RoleArn=other_arn, RoleSessionName="s1")) == "AccessDenied"
    # tenant-b may, once its own policy allows sts:AssumeRole (role chaining, at most an hour).
    tenant_b = _client(tenants, _assume(tenants, "tenant-b"), "sts")
    assert _code(_error(tenant_b.assume_role, RoleArn=other_arn, RoleSessionName="chain")) == "AccessDenied"
    iam.put_role_policy(
        RoleName="tenant-b",
        PolicyName="chain",
        PolicyDocument=json.dumps(
            {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": other_arn}]}
        ),
    )
    try:
        chained = tenant_b.assume_role(RoleArn=other_arn, RoleSessionName="chain")
        assert chained["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{other}/chain"
        error = _error(tenant_b.assume_role, RoleArn=other_arn, RoleSessionName="chain", DurationSeconds=3601)
        assert "role chaining" in error.response["Error"]["Message"]
    finally:
        iam.delete_role_policy(RoleName="tenant-b", PolicyName="chain")


def test_wrong_and_unknown_tokens_are_rejected_like_aws(tenants, tenant_a) -> None:
    wrong = {**tenant_a, "SessionToken": tenant_a["SessionToken"][:-4] + "AAAA"}
    assert (
        _code(_error(_client(tenants, wrong, "s3").get_object, Bucket="tenant-a-data", Key="seed.txt"))
        == "InvalidToken"
    )
    assert _code(_error(_client(tenants, wrong, "sts").get_caller_identity)) == "InvalidClientTokenId"
    assert _code(_error(_client(tenants, wrong, "dynamodb").list_tables)) == "UnrecognizedClientException"
    unknown = {**tenant_a, "AccessKeyId": "ASIA" + "Q" * 16}
    assert _code(_error(_client(tenants, unknown, "s3").list_buckets)) == "InvalidAccessKeyId"
    assert _code(_error(_client(tenants, unknown, "sts").get_caller_identity)) == "InvalidClientTokenId"
    no_token = {**tenant_a, "SessionToken": None}
    assert _code(_error(_client(tenants, no_token, "sts").get_caller_identity)) == "InvalidClientTokenId"
    wrong_secret = {**tenant_a, "SecretAccessKey": "x" * 40}
    assert _code(_error(_client(tenants, wrong_secret, "sts").get_caller_identity)) == "SignatureDoesNotMatch"


def test_presigned_urls_carry_the_session_token(tenants, tenant_a) -> None:
    # boto3's default S3 presigning (SigV2 query auth here) and SigV4 both put the token in the URL.
    for s3 in (_client(tenants, tenant_a, "s3"), _client(tenants, tenant_a, "s3", signature_version="s3v4")):
        url = s3.generate_presigned_url("get_object", Params={"Bucket": "tenant-a-data", "Key": "seed.txt"})
        assert "security-token" in url.lower()
        with urllib.request.urlopen(url) as response:
            assert response.read() == b"a"
        denied = s3.generate_presigned_url("get_object", Params={"Bucket": "tenant-b-data", "Key": "seed.txt"})
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(denied)
        assert exc.value.code == 403 and b"AccessDenied" in exc.value.read()


def test_boto3_assume_role_then_new_session_flow(tenants) -> None:
    sts = tenants.client("sts")
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/tenant-b", RoleSessionName="boto3-flow")[
        "Credentials"
    ]
    session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )
    bucket = session.resource("s3", endpoint_url=tenants.endpoint).Bucket("tenant-b-data")
    assert "seed.txt" in [o.key for o in bucket.objects.all()]
    assert (
        session.client("sts", endpoint_url=tenants.endpoint)
        .get_caller_identity()["Arn"]
        .endswith("assumed-role/tenant-b/boto3-flow")
    )


def test_botocore_assume_role_profile_flow(tenants, tmp_path, monkeypatch) -> None:
    # A profile with role_arn + source_profile: botocore calls AssumeRole itself and refreshes as needed.
    config = tmp_path / "config"
    config.write_text(
        "[profile base]\n"
        f"aws_access_key_id = {tenants.access_key}\naws_secret_access_key = {tenants.secret_key}\n"
        "[profile tenant-a]\n"
        f"role_arn = arn:aws:iam::{ACCOUNT}:role/tenant-a\nrole_session_name = profile-flow\n"
        f"source_profile = base\nregion = us-east-1\nendpoint_url = {tenants.endpoint}\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    session = boto3.Session(profile_name="tenant-a")
    assert session.client("sts").get_caller_identity()["Arn"].endswith("assumed-role/tenant-a/profile-flow")
    assert _code(_error(session.client("s3").get_object, Bucket="tenant-b-data", Key="seed.txt")) == "AccessDenied"


def test_airflow_connection_with_role_arn_assumes_the_role(tenants, monkeypatch) -> None:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    conn = {
        "conn_type": "aws",
        "login": tenants.access_key,
        "password": tenants.secret_key,
        "extra": {
            "endpoint_url": tenants.endpoint,
            "region_name": "us-east-1",
            "role_arn": f"arn:aws:iam::{ACCOUNT}:role/tenant-a",
            "assume_role_kwargs": {"RoleSessionName": "airflow-tenant-a"},
            # The provider calls AssumeRole on STS's own endpoint, never the global endpoint_url.
            "service_config": {"sts": {"endpoint_url": tenants.endpoint}},
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_TENANT_A", json.dumps(conn))
    hook = AwsBaseHook(aws_conn_id="tenant_a", client_type="s3")
    s3 = hook.get_conn()
    assert s3.get_object(Bucket="tenant-a-data", Key="seed.txt")["Body"].read() == b"a"
    assert _code(_error(s3.get_object, Bucket="tenant-b-data", Key="seed.txt")) == "AccessDenied"
    sts = AwsBaseHook(aws_conn_id="tenant_a", client_type="sts").get_conn()
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-a/airflow-tenant-a"


def test_expired_credentials_are_rejected(tmp_path) -> None:
    # LOCALCLOUD_STS_MAX_SESSION_SECONDS is a localcloud-only hook: sessions live 15 s instead of 15 min+. Not
    # less: on a loaded 2-core machine making three clients and the first call took more than 3 s in CI.
    server = LocalCloudProcess(tmp_path / "data", env={"LOCALCLOUD_STS_MAX_SESSION_SECONDS": "15"}).start()
    try:
        server.client("iam").create_role(RoleName="short", AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))
        credentials = _assume(server, "short")
        sts, s3, ddb = (_client(server, credentials, s) for s in ("sts", "s3", "dynamodb"))
        assert sts.get_caller_identity()["Arn"].endswith("assumed-role/short/test")
        # Expiration is reported to the second and never later than the real expiry.
        time.sleep(max(0.0, credentials["Expiration"].timestamp() + 1.05 - time.time()))
        error = _error(sts.get_caller_identity)
        assert (_code(error), error.response["ResponseMetadata"]["HTTPStatusCode"]) == ("ExpiredToken", 403)
        assert _code(_error(s3.list_objects_v2, Bucket="any")) == "ExpiredToken"
        assert _code(_error(ddb.list_tables)) == "ExpiredTokenException"
    finally:
        server.stop()


def test_audit_log_records_every_decision(tmp_path) -> None:
    log = tmp_path / "audit.jsonl"
    server = LocalCloudProcess(tmp_path / "data", env={"LOCALCLOUD_IAM_AUDIT_LOG": str(log)}).start()
    try:
        _make_tenants(server)
        tenant = _client(server, _assume(server, "tenant-a", "audited"), "s3")
        tenant.get_object(Bucket="tenant-a-data", Key="seed.txt")
        _error(tenant.get_object, Bucket="tenant-b-data", Key="seed.txt")
        tenant.copy_object(Bucket="tenant-a-data", Key="c.txt", CopySource="tenant-a-data/seed.txt")
    finally:
        server.stop()
    records = read_audit_log(log)
    principal = f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-a/audited"
    evaluated = [(r["action"], r["resource"], r["decision"]) for r in records if r["principal"] == principal]
    assert evaluated == [
        ("s3:GetObject", "arn:aws:s3:::tenant-a-data/seed.txt", "Allow"),
        ("s3:GetObject", "arn:aws:s3:::tenant-b-data/seed.txt", "Deny"),
        ("s3:GetObject", "arn:aws:s3:::tenant-a-data/seed.txt", "Allow"),
        ("s3:PutObject", "arn:aws:s3:::tenant-a-data/c.txt", "Allow"),
    ]
    denied = next(r for r in records if r["decision"] == "Deny")
    assert denied["reason"] == "because no identity-based policy allows the s3:GetObject action"
    assert denied["operation"] == "GetObject" and denied["evaluated"] is True
    # Admin requests are not evaluated but recorded, to show which permissions a DAG's calls need.
    admin = [r for r in records if r["principal"] == ROOT]
    assert {"iam:CreateRole", "s3:CreateBucket", "dynamodb:CreateTable", "sts:AssumeRole"} <= {
        r["action"] for r in admin
    }
    assert all(r["decision"] == "Allow" and r["evaluated"] is False for r in admin)


def test_access_is_decided_before_unhonoured_settings_are_refused(tenants, tenant_a) -> None:
    # As on AWS, a caller not allowed the write is told AccessDenied, whatever it sets; an allowed caller is told
    # that localcloud does not implement the setting.
    s3 = _client(tenants, tenant_a, "s3")
    assert _code(_error(s3.put_object, Bucket="tenant-b-data", Key="t", Body=b"x", Tagging="a=b")) == "AccessDenied"
    error = _error(s3.put_object, Bucket="tenant-a-data", Key="t", Body=b"x", Tagging="a=b")
    assert (_code(error), error.response["ResponseMetadata"]["HTTPStatusCode"]) == ("NotImplemented", 501)
