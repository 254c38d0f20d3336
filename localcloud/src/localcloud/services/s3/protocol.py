"""S3's wire quirks on top of the generic rest-xml protocol."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.model import OperationModel

from localcloud.core import AwsError, RequestContext
from localcloud.protocols.base import Request, Response
from localcloud.protocols.rest_xml import RestXmlProtocol
from localcloud.protocols.shapes import service_model
from localcloud.services.s3.backend import S3Backend


class S3Protocol(RestXmlProtocol):
    # Every path names a bucket or an object, so S3 answers what no other service claims.
    catch_all = True
    # Objects may be larger than memory: the body streams, its signed SHA-256 checked as it is read.
    streams_body = True
    # botocore still presigns S3 URLs with Signature Version 2 unless told otherwise.
    presigned_v2 = True

    root_names = {
        "ListObjectsV2": "ListBucketResult",
        "ListObjects": "ListBucketResult",
        "ListBuckets": "ListAllMyBucketsResult",
        "CreateMultipartUpload": "InitiateMultipartUploadResult",
        "CompleteMultipartUpload": "CompleteMultipartUploadResult",
        "DeleteObjects": "DeleteResult",
        "ListParts": "ListPartsResult",
        "ListMultipartUploads": "ListMultipartUploadsResult",
    }

    def path_parts(self, request: Request) -> list[str]:
        # Virtual-hosted style (bucket.localhost:4566) carries the bucket in the Host header.
        host = request.host.split(":", 1)[0]
        if host.endswith(".localhost"):
            bucket = host[: -len(".localhost")]
            request = Request(
                request.method, f"/{bucket}{request.raw_path}", request.query, request.headers, request.body
            )
        return super().path_parts(request)

    def write_output(self, operation: OperationModel, result: dict[str, Any], request: Request) -> Response:
        if operation.name == "GetBucketLocation":
            # botocore reads the region from the root element's text, not from a child element.
            region = result.get("LocationConstraint") or ""
            body = f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="{self.namespace}">{region}'
            return Response(200, {"Content-Type": "application/xml"}, (body + "</LocationConstraint>").encode())
        response = super().write_output(operation, result, request)
        if result.get("ContentRange") and operation.name in ("GetObject", "HeadObject"):
            response.status = 206
        return response

    def error(self, ctx: RequestContext, request: Request, error: AwsError) -> Response:
        response = super().error(ctx, request, error)
        if error.status == 304:  # Not Modified carries no body
            response.body = b""
        return response


def create(data_dir: Path, peers: Mapping[str, object]) -> S3Protocol:
    return S3Protocol(service_model("s3"), S3Backend(data_dir))
