"""IAM actions and resources for Rekognition, Textract, SageMaker, the A2I runtime, EMR Serverless and Glue
requests (each service's localcloud/src/localcloud/services/<svc>/iam.py), and their enforcement on assumed-role
sessions."""

from __future__ import annotations

import datetime
import io
import json
import uuid
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localcloud import iam_mapping
from localcloud.iam_policy import MAPPED_SERVICES, Target, request_targets, required_permissions
from localcloud.iam_targets import passed_roles

ACCOUNT = "000000000000"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/exec"
TRUST_ACCOUNT = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    ],
}
_BOTOCORE = botocore.session.get_session()
# Every service with an iam.py, so that a new one is covered as soon as it has one; S3, DynamoDB, STS and IAM, whose
# actions are not all named like their operations, are tested elsewhere.
SERVICES = tuple(s for s in iam_mapping.mapped_services() if s not in ("s3", "dynamodb", "sts", "iam"))


def _placeholder(shape: Any, name: str = "", depth: int = 0) -> Any:
    """A value for ``shape`` built from its required members only, strings named like what they hold."""
    kind = shape.type_name
    if kind == "structure":
        return {m: _placeholder(shape.members[m], m, depth + 1) for m in shape.required_members} if depth < 10 else {}
    if kind == "list":
        return [_placeholder(shape.member, name, depth + 1)]
    if kind == "map":
        return {"k": _placeholder(shape.value, name, depth + 1)}
    if kind in ("integer", "long"):
        return 1
    if kind in ("float", "double"):
        return 1.0
    if kind == "boolean":
        return False
    if kind == "blob":
        return b"x"
    if kind == "timestamp":
        return datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    if "Role" in name:
        return ROLE
    if name.endswith(("Arn", "ARN")):
        return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:thing/x"
    return "placeholder"


def _operations() -> list[tuple[str, str]]:
    return [(service, op) for service in SERVICES for op in _BOTOCORE.get_service_model(service).operation_names]


@pytest.mark.parametrize(("service", "operation"), _operations())
def test_every_operation_maps(service: str, operation: str) -> None:
    model = _BOTOCORE.get_service_model(service).operation_model(operation)
    params = _placeholder(model.input_shape) if model.input_shape else {}
    targets = request_targets(service, operation, params)
    mapping = iam_mapping.module(service)
    assert targets, "every call needs at least its own action"
    assert targets[0].action == f"{mapping.PREFIX}:{operation}"
    for target in targets:
        prefix = target.action.split(":", 1)[0]
        assert prefix in (mapping.PREFIX, "iam", "s3"), target
        assert target.resource == "*" or target.resource.startswith("arn:aws:"), target
        if target.action == "iam:PassRole":
            assert target.context == {"iam:PassedToService": mapping.PASSED_TO}


def test_services_are_listed_as_mapped() -> None:
    assert set(SERVICES) >= {"rekognition", "textract", "sagemaker", "sagemaker-a2i-runtime", "emr-serverless", "glue"}
    assert set(SERVICES) | {"s3", "dynamodb", "sts", "iam"} <= set(MAPPED_SERVICES)
    assert iam_mapping.module("kinesis") is None


def _sm(resource: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{resource}"


def _pass(role: str = ROLE) -> tuple[str, str]:
    return ("iam:PassRole", role)


PROJECT = f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/cats/1700000000000"
VERSION = f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/cats/version/v1/1700000000001"
APP = f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/00abc"
GLUE = f"arn:aws:glue:{REGION}:{ACCOUNT}"

CASES: list[tuple[str, str, dict[str, Any], list[tuple[str, str]]]] = [
    # SageMaker: lower-cased names, iam:PassRole for each role handed over.
    (
        "sagemaker",
        "CreateAutoMLJobV2",
        {"AutoMLJobName": "Churn-1", "RoleArn": ROLE},
        [("sagemaker:CreateAutoMLJobV2", _sm("automl-job/churn-1")), _pass()],
    ),
    (
        "sagemaker",
        "CreateModel",
        {"ModelName": "M", "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": "i"}},
        [("sagemaker:CreateModel", _sm("model/m")), _pass()],
    ),
    (
        "sagemaker",
        "CreateTransformJob",
        {"TransformJobName": "T", "ModelName": "M"},
        [("sagemaker:CreateTransformJob", _sm("transform-job/t"))],
    ),
    (
        "sagemaker",
        "CreateNotebookInstance",
        {"NotebookInstanceName": "nb", "InstanceType": "ml.t3.medium", "RoleArn": ROLE},
        [("sagemaker:CreateNotebookInstance", _sm("notebook-instance/nb")), _pass()],
    ),
    (
        "sagemaker",
        "UpdateNotebookInstanceLifecycleConfig",
        {"NotebookInstanceLifecycleConfigName": "LC"},
        [("sagemaker:UpdateNotebookInstanceLifecycleConfig", _sm("notebook-instance-lifecycle-config/lc"))],
    ),
    (
        "sagemaker",
        "CreateFlowDefinition",
        {"FlowDefinitionName": "fd", "RoleArn": ROLE, "HumanLoopConfig": {"HumanTaskUiArn": _sm("human-task-ui/u")}},
        [("sagemaker:CreateFlowDefinition", _sm("flow-definition/fd")), _pass()],
    ),
    (
        "sagemaker",
        "CreateTrainingJob",
        {"TrainingJobName": "tj", "RoleArn": ROLE, "Tags": [{"Key": "team", "Value": "ml"}]},
        [
            ("sagemaker:CreateTrainingJob", _sm("training-job/tj")),
            ("sagemaker:AddTags", _sm("training-job/tj")),
            _pass(),
        ],
    ),  # fmt: skip
    (
        "sagemaker",
        "CreateHyperParameterTuningJob",
        {"HyperParameterTuningJobName": "h", "TrainingJobDefinition": {"RoleArn": ROLE}},
        [("sagemaker:CreateHyperParameterTuningJob", _sm("hyper-parameter-tuning-job/h")), _pass()],
    ),
    ("sagemaker", "ListModels", {}, [("sagemaker:ListModels", "*")]),
    (
        "sagemaker",
        "ListCandidatesForAutoMLJob",
        {"AutoMLJobName": "Churn-1"},
        [("sagemaker:ListCandidatesForAutoMLJob", _sm("automl-job/churn-1"))],
    ),
    (
        "sagemaker",
        "AddTags",
        {"ResourceArn": _sm("model/m"), "Tags": []},
        [("sagemaker:AddTags", _sm("model/m"))],
    ),
    (
        "sagemaker",
        "DescribeUserProfile",
        {"DomainId": "d-abc", "UserProfileName": "Ann"},
        [("sagemaker:DescribeUserProfile", _sm("user-profile/d-abc/ann"))],
    ),
    # The A2I runtime: sagemaker: actions, a loop started on its flow definition.
    (
        "sagemaker-a2i-runtime",
        "StartHumanLoop",
        {"HumanLoopName": "loop-1", "FlowDefinitionArn": _sm("flow-definition/fd"), "HumanLoopInput": {}},
        [("sagemaker:StartHumanLoop", _sm("flow-definition/fd"))],
    ),
    (
        "sagemaker-a2i-runtime",
        "DescribeHumanLoop",
        {"HumanLoopName": "loop-1"},
        [("sagemaker:DescribeHumanLoop", _sm("human-loop/loop-1"))],
    ),
    # Textract: no resource-level permission; the caller's own S3 access to the document and the output.
    (
        "textract",
        "DetectDocumentText",
        {"Document": {"S3Object": {"Bucket": "docs", "Name": "in/a.png"}}},
        [("textract:DetectDocumentText", "*"), ("s3:GetObject", "arn:aws:s3:::docs/in/a.png")],
    ),
    (
        "textract",
        "AnalyzeDocument",
        {"Document": {"Bytes": b"x"}, "FeatureTypes": ["TABLES"]},
        [("textract:AnalyzeDocument", "*")],
    ),
    (
        "textract",
        "StartDocumentAnalysis",
        {
            "DocumentLocation": {"S3Object": {"Bucket": "docs", "Name": "a.pdf", "Version": "v1"}},
            "FeatureTypes": ["FORMS"],
            "OutputConfig": {"S3Bucket": "out"},
            "NotificationChannel": {"SNSTopicArn": "arn:aws:sns:us-east-1:0:t", "RoleArn": ROLE},
        },
        [
            ("textract:StartDocumentAnalysis", "*"),
            _pass(),
            ("s3:GetObjectVersion", "arn:aws:s3:::docs/a.pdf"),
            ("s3:PutObject", "arn:aws:s3:::out/textract_output/*"),
        ],
    ),  # fmt: skip
    (
        "textract",
        "GetAdapterVersion",
        {"AdapterId": "ad1", "AdapterVersion": "2"},
        [("textract:GetAdapterVersion", f"arn:aws:textract:{REGION}:{ACCOUNT}:/adapters/ad1/versions/2")],
    ),
    # Rekognition: images read as the caller; unknown creation timestamps are wildcards.
    (
        "rekognition",
        "DetectLabels",
        {"Image": {"S3Object": {"Bucket": "pics", "Name": "cat.jpg"}}},
        [("rekognition:DetectLabels", "*"), ("s3:GetObject", "arn:aws:s3:::pics/cat.jpg")],
    ),
    (
        "rekognition",
        "CompareFaces",
        {
            "SourceImage": {"S3Object": {"Bucket": "pics", "Name": "a.jpg"}},
            "TargetImage": {"S3Object": {"Bucket": "pics", "Name": "b.jpg"}},
        },
        [
            ("rekognition:CompareFaces", "*"),
            ("s3:GetObject", "arn:aws:s3:::pics/a.jpg"),
            ("s3:GetObject", "arn:aws:s3:::pics/b.jpg"),
        ],
    ),  # fmt: skip
    (
        "rekognition",
        "IndexFaces",
        {"CollectionId": "staff", "Image": {"Bytes": b"x"}},
        [("rekognition:IndexFaces", f"arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/staff")],
    ),
    (
        "rekognition",
        "CreateProject",
        {"ProjectName": "cats"},
        [("rekognition:CreateProject", f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/cats/*")],
    ),
    (
        "rekognition",
        "CreateDataset",
        {
            "ProjectArn": PROJECT,
            "DatasetType": "TRAIN",
            "DatasetSource": {"GroundTruthManifest": {"S3Object": {"Bucket": "pics", "Name": "train.manifest"}}},
        },
        [
            ("rekognition:CreateDataset", f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/cats/dataset/train/*"),
            ("s3:GetObject", "arn:aws:s3:::pics/train.manifest"),
        ],
    ),  # fmt: skip
    (
        "rekognition",
        "CreateProjectVersion",
        {"ProjectArn": PROJECT, "VersionName": "v1", "OutputConfig": {"S3Bucket": "out", "S3KeyPrefix": "models/"}},
        [
            ("rekognition:CreateProjectVersion", f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/cats/version/v1/*"),
            ("s3:PutObject", "arn:aws:s3:::out/models/*"),
        ],
    ),  # fmt: skip
    (
        "rekognition",
        "DetectCustomLabels",
        {"ProjectVersionArn": VERSION, "Image": {"S3Object": {"Bucket": "pics", "Name": "x.jpg"}}},
        [("rekognition:DetectCustomLabels", VERSION), ("s3:GetObject", "arn:aws:s3:::pics/x.jpg")],
    ),
    # EMR Serverless.
    (
        "emr-serverless",
        "StartJobRun",
        {"applicationId": "00abc", "clientToken": "t", "executionRoleArn": ROLE},
        [("emr-serverless:StartJobRun", APP), _pass()],
    ),
    (
        "emr-serverless",
        "GetJobRun",
        {"applicationId": "00abc", "jobRunId": "00run"},
        [("emr-serverless:GetJobRun", f"{APP}/jobruns/00run")],
    ),
    ("emr-serverless", "ListApplications", {}, [("emr-serverless:ListApplications", "*")]),
    # Glue: roles by name or ARN; the Data Catalog on every level a call reaches.
    (
        "glue",
        "CreateJob",
        {"Name": "etl", "Role": "GlueRole", "Command": {"Name": "glueetl"}},
        [("glue:CreateJob", f"{GLUE}:job/etl"), ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/GlueRole")],
    ),
    (
        "glue",
        "UpdateJob",
        {"JobName": "etl", "JobUpdate": {"Role": ROLE}},
        [("glue:UpdateJob", f"{GLUE}:job/etl"), _pass()],
    ),
    ("glue", "StartJobRun", {"JobName": "etl"}, [("glue:StartJobRun", f"{GLUE}:job/etl")]),
    (
        "glue",
        "GetTable",
        {"DatabaseName": "sales", "Name": "orders"},
        [
            ("glue:GetTable", f"{GLUE}:catalog"),
            ("glue:GetTable", f"{GLUE}:database/sales"),
            ("glue:GetTable", f"{GLUE}:table/sales/orders"),
        ],
    ),  # fmt: skip
]


@pytest.mark.parametrize(("service", "operation", "params", "expected"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_representative_calls(service: str, operation: str, params: dict, expected: list[tuple[str, str]]) -> None:
    assert required_permissions(service, operation, params) == expected


def test_condition_keys_in_the_targets() -> None:
    targets = request_targets("sagemaker", "CreateModel", {"ModelName": "m", "ExecutionRoleArn": ROLE})
    assert targets[1] == Target("iam:PassRole", ROLE, {"iam:PassedToService": "sagemaker.amazonaws.com"})
    tagged = request_targets("glue", "CreateJob", {"Name": "j", "Role": ROLE, "Tags": {"team": "ml"}})
    assert tagged[0].context == {"aws:TagKeys": ["team"], "aws:RequestTag/team": "ml"}
    assert [t.action for t in tagged] == ["glue:CreateJob", "glue:TagResource", "iam:PassRole"]
    # Role names are only taken for Glue; elsewhere a non-ARN role value is the service's error to give.
    assert passed_roles({"RoleArn": "not-an-arn"}) == []


# -- enforcement on a real localcloud ----------------------------------------------------------------------------


def _png_with_text() -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (420, 100), "white")
    ImageDraw.Draw(image).text((20, 30), "Invoice 12345", fill="black", font=ImageFont.load_default(size=32))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _role(server, policy: dict) -> boto3.Session:
    name = f"map-{uuid.uuid4().hex[:8]}"
    iam = server.client("iam")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    credentials = server.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}", RoleSessionName="mapping"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def _client(server, session: boto3.Session, service: str):
    return session.client(service, endpoint_url=server.endpoint, config=Config(retries={"max_attempts": 1}))


def _denied(call, **kwargs) -> str:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    error = exc.value.response["Error"]
    assert error["Code"] == "AccessDeniedException", error
    return error["Message"]


def test_textract_reads_s3_objects_with_the_callers_permissions(localcloud) -> None:
    pytest.importorskip("rapidocr")
    s3 = localcloud.client("s3")
    allowed, other = f"ocr-in-{uuid.uuid4().hex[:6]}", f"ocr-other-{uuid.uuid4().hex[:6]}"
    for bucket in (allowed, other):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="page.png", Body=_png_with_text())
    # localcloud's Textract serves AnalyzeDocument (not DetectDocumentText): its S3 read is the same.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "textract:AnalyzeDocument", "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{allowed}/*"},
        ],
    }
    textract = _client(localcloud, _role(localcloud, policy), "textract")
    reply = textract.analyze_document(
        Document={"S3Object": {"Bucket": allowed, "Name": "page.png"}}, FeatureTypes=["TABLES"]
    )
    words = " ".join(b["Text"] for b in reply["Blocks"] if b["BlockType"] == "WORD")
    assert "12345" in words
    message = _denied(
        textract.analyze_document, Document={"S3Object": {"Bucket": other, "Name": "page.png"}}, FeatureTypes=["TABLES"]
    )
    assert f"s3:GetObject on resource: arn:aws:s3:::{other}/page.png" in message


def test_sagemaker_create_model_needs_pass_role(localcloud) -> None:
    execution = f"arn:aws:iam::{ACCOUNT}:role/sagemaker-exec"
    model_statement = {"Effect": "Allow", "Action": "sagemaker:CreateModel", "Resource": _sm("model/*")}
    without = _client(localcloud, _role(localcloud, {"Statement": [model_statement]}), "sagemaker")
    bucket = f"models-{uuid.uuid4().hex[:6]}"
    localcloud.client("s3").create_bucket(Bucket=bucket)
    localcloud.client("s3").put_object(Bucket=bucket, Key="model.tar.gz", Body=b"x")  # only checked to exist
    container = {"Image": "local/sklearn:latest", "ModelDataUrl": f"s3://{bucket}/model.tar.gz"}
    message = _denied(without.create_model, ModelName="NoPass", PrimaryContainer=container, ExecutionRoleArn=execution)
    assert f"iam:PassRole on resource: {execution}" in message
    pass_role = {
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": execution,
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    }
    with_pass = _client(localcloud, _role(localcloud, {"Statement": [model_statement, pass_role]}), "sagemaker")
    arn = with_pass.create_model(ModelName="WithPass", PrimaryContainer=container, ExecutionRoleArn=execution)[
        "ModelArn"
    ]
    assert arn == _sm("model/withpass")
    # Passing a role the policy does not name is refused too.
    other = f"arn:aws:iam::{ACCOUNT}:role/someone-else"
    _denied(with_pass.create_model, ModelName="Other", PrimaryContainer=container, ExecutionRoleArn=other)
