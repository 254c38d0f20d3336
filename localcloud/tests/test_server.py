"""The server around the services: health, loopback binding, dispatch, model-driven validation."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest
import rawhttp
from botocore.exceptions import ClientError

from localcloud.core import Credentials
from localcloud.protocols import query, shapes
from localcloud.server import make_server


def test_health_lists_services(localcloud):
    with urllib.request.urlopen(f"{localcloud.endpoint}/_localcloud/health") as resp:
        assert resp.status == 200
        body = json.load(resp)
    assert body["status"] == "ok"
    assert {"s3", "dynamodb", "sts"} <= set(body["services"])


def _serve_refused(*args: str) -> str:
    """Run ``python -m localcloud serve ARGS``, which must exit non-zero; return its stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "localcloud", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    return result.stderr


def test_binds_to_loopback_only(tmp_path):
    with pytest.raises(ValueError, match="loopback"):
        make_server("0.0.0.0", 0, tmp_path, Credentials("a", "b"))
    assert "loopback" in _serve_refused("--host", "0.0.0.0", "--data-dir", str(tmp_path))


def test_server_listens_on_loopback(localcloud):
    assert localcloud.endpoint.startswith("http://127.0.0.1:")


def test_sts_get_caller_identity(localcloud):
    identity = localcloud.client("sts").get_caller_identity()
    assert identity["Account"] == "000000000000"
    assert identity["Arn"] == "arn:aws:iam::000000000000:root"


def test_query_protocol_validates_against_botocore_model(localcloud):
    sts = localcloud.client("sts", parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleSessionName="s")  # RoleArn is required by the model
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    assert "RoleArn" in exc.value.response["Error"]["Message"]


def test_json_protocol_validates_against_botocore_model(localcloud):
    ddb = localcloud.client("dynamodb", parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        ddb.get_item(TableName="t", Key={"id": {"S": 5}})  # S must be a string
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "Key.id.S" in exc.value.response["Error"]["Message"]


def test_rest_xml_validates_against_botocore_model(localcloud, s3):
    s3.create_bucket(Bucket="validation-bucket")
    loose = localcloud.client("s3", parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        loose.delete_objects(Bucket="validation-bucket", Delete={"Quiet": True})  # Objects is required
    assert exc.value.response["Error"]["Code"] in ("InvalidArgument", "MalformedXML")


def test_unimplemented_operation_is_a_clear_501(s3):
    s3.create_bucket(Bucket="not-implemented-bucket")
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket="not-implemented-bucket")
    assert exc.value.response["Error"]["Code"] == "NotImplemented"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_unknown_service_is_refused(localcloud):
    response = rawhttp.send(localcloud.endpoint, "POST", "/", body=b"{}", service="kinesis")
    assert response.status == 400
    assert b"UnknownService" in response.body


def test_keep_alive_survives_errors(localcloud, s3):
    # An error answered before the body was read must not poison the pooled connection.
    for _ in range(3):
        with pytest.raises(ClientError):
            s3.put_object(Bucket="no-such-bucket-keepalive", Key="k", Body=b"x" * 300_000)
        assert s3.list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_query_params_unflatten_lists_maps_and_nesting():
    shape = shapes.service_model("sts").operation_model("AssumeRole").input_shape
    flat = {
        "RoleArn": "arn:aws:iam::000000000000:role/r",
        "RoleSessionName": "s",
        "DurationSeconds": "900",
        "PolicyArns.member.1.arn": "arn:a",
        "PolicyArns.member.2.arn": "arn:b",
        "Tags.member.1.Key": "team",
        "Tags.member.1.Value": "vision",
    }
    params = query.read_params(flat, shape)
    assert params["DurationSeconds"] == 900
    assert params["PolicyArns"] == [{"arn": "arn:a"}, {"arn": "arn:b"}]
    assert params["Tags"] == [{"Key": "team", "Value": "vision"}]


def test_json_shapes_roundtrip_blobs_and_timestamps():
    op = shapes.service_model("dynamodb").operation_model("PutItem")
    decoded = shapes.from_json({"TableName": "t", "Item": {"b": {"B": "aGVsbG8="}}}, op.input_shape)
    assert decoded["Item"]["b"]["B"] == b"hello"
    assert shapes.to_json(decoded, op.input_shape)["Item"]["b"]["B"] == "aGVsbG8="


def test_second_server_on_same_data_dir_is_refused(localcloud):
    assert "in use" in _serve_refused("--port", "0", "--data-dir", str(localcloud.data_dir))
