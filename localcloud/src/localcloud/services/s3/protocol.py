"""S3's wire quirks on top of the generic rest-xml protocol."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.model import OperationModel

from localcloud.core import AwsError, RequestContext, not_implemented_setting
from localcloud.protocols.base import Request, Response
from localcloud.protocols.rest_xml import RestXmlProtocol
from localcloud.protocols.shapes import service_model
from localcloud.services.s3.backend import S3Backend

# The object writes whose settings localcloud checks before it stores anything.
_OBJECT_WRITES = frozenset(
    {"PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload"}
)

# Members of those writes that change what AWS stores or how it guards it, and that localcloud does not do:
# accepting them would store a plain, untagged, unlocked object while the caller believes otherwise (an SSE-C
# object readable without its key). Each is refused with NotImplemented naming its header.
_UNHONOURED = frozenset(
    {
        # SSE-C, on the object written and on a copy's source.
        "SSECustomerAlgorithm",
        "SSECustomerKey",
        "SSECustomerKeyMD5",
        "CopySourceSSECustomerAlgorithm",
        "CopySourceSSECustomerKey",
        "CopySourceSSECustomerKeyMD5",
        # SSE-KMS and DSSE-KMS, and SSE-S3 too: AWS answers every write with `ServerSideEncryption: AES256`
        # and reports it on reads; localcloud stores plain files and reports no encryption, so even AES256
        # would be a setting accepted and then not reflected.
        "ServerSideEncryption",
        "SSEKMSKeyId",
        "SSEKMSEncryptionContext",
        "BucketKeyEnabled",
        # Grants name canonical user IDs or groups, which localcloud does not have: it cannot tell the bucket
        # owner's full-control grant AWS accepts from the others AWS refuses, so it refuses them all.
        "GrantFullControl",
        "GrantRead",
        "GrantReadACP",
        "GrantWriteACP",
        # Object tags. (TaggingDirective alone is honoured: localcloud objects never carry tags, so COPY copies
        # none and REPLACE without x-amz-tagging sets none, as AWS would.)
        "Tagging",
        # Object Lock.
        "ObjectLockMode",
        "ObjectLockRetainUntilDate",
        "ObjectLockLegalHoldStatus",
        "ObjectLockEventHold",
        "ObjectLockEventHoldDurationDays",
        "ObjectLockEventHoldDurationYears",
    }
)

# The only canned ACL a bucket with Object Ownership "bucket owner enforced" (AWS's default for new buckets since
# April 2023, and the only mode localcloud has: one account owns everything) accepts; it changes nothing there.
_OWNER_ENFORCED_ACL = "bucket-owner-full-control"


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

    def refuse_unhonoured(self, operation: OperationModel, params: dict[str, Any]) -> None:
        if operation.name not in _OBJECT_WRITES:
            return
        members = operation.input_shape.members
        acl = params.get("ACL")
        if acl is not None and acl != _OWNER_ENFORCED_ACL:
            # What AWS answers on a bucket whose ACLs are disabled ("bucket owner enforced"), "private" included:
            # a DAG that sends a canned ACL fails here as it would on a default AWS bucket.
            raise AwsError("AccessControlListNotSupported", "The bucket does not allow ACLs")
        for name, member in members.items():
            if name in _UNHONOURED and params.get(name) is not None:
                header = member.serialization.get("name", name)
                raise not_implemented_setting("s3", operation.name, f"the {header} header ({name})")

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
