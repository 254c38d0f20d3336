"""FastAPI app behind the webcam page: lists RUNNING Custom Labels versions and runs DetectCustomLabels on frames.

Imports stay light (fastapi only): every Airflow process that loads plugins imports this module, so the AWS hook,
boto3 and Airflow's auth code are imported on first use.
"""

from __future__ import annotations

import html
import os
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

STATIC = Path(__file__).resolve().parent / "static"
CONN_ID_ENV = "WEBCAM_AWS_CONN_ID"
DEFAULT_CONN_ID = "aws_default"
# DetectCustomLabels refuses Image.Bytes over 4 MB; refusing here saves the upload to AWS.
MAX_IMAGE_BYTES = 4 * 1024 * 1024
# Room for multipart boundaries and the few form fields around the image.
MAX_BODY_BYTES = MAX_IMAGE_BYTES + 64 * 1024
CLIENT_TTL_S = 600.0
IMAGE_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}

# AWS error code -> (HTTP status, what the person at the webcam can do about it).
AWS_ERRORS: dict[str, tuple[int, str]] = {
    "ResourceNotReadyException": (409, "Start the model version and wait until it is RUNNING."),
    "ResourceNotFoundException": (404, "Pick another version: this one does not exist (any more)."),
    "InvalidImageFormatException": (415, "Send a JPEG or PNG frame."),
    "ImageTooLargeException": (413, "Send smaller frames (at most 4 MB)."),
    "InvalidParameterException": (400, "Check ProjectVersionArn, MinConfidence and MaxResults."),
    "ValidationException": (400, "Check ProjectVersionArn, MinConfidence and MaxResults."),
    "AccessDeniedException": (403, "The AWS connection lacks rekognition:DetectCustomLabels/Describe* permissions."),
    "UnrecognizedClientException": (403, "The AWS connection's credentials are not valid."),
    "ExpiredTokenException": (403, "The AWS connection's session token has expired."),
    "ThrottlingException": (429, "Slow the frame rate."),
    "ProvisionedThroughputExceededException": (429, "Slow the frame rate or start the version with more units."),
    "LimitExceededException": (429, "Slow the frame rate."),
    "InternalServerError": (502, "Rekognition failed; the next frame may succeed."),
}


def conn_id_param(
    conn_id: Annotated[
        str | None, Query(description=f"Airflow AWS connection id (default: ${CONN_ID_ENV} or aws_default)")
    ] = None,
) -> str:
    """The Airflow connection to call Rekognition through."""
    return conn_id or os.environ.get(CONN_ID_ENV) or DEFAULT_CONN_ID


_bearer = HTTPBearer(auto_error=False)


async def airflow_access(
    request: Request,
    conn_id: Annotated[str, Depends(conn_id_param)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """Airflow's own authentication (UI cookie or bearer JWT), then read access to the connection used.

    The API server mounts plugin apps without any auth, so this app asks Airflow's auth manager itself. Using a
    connection's AWS credentials is gated like reading that connection.
    """
    if not request.app.state.auth:
        return conn_id
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails
    from airflow.api_fastapi.core_api.security import get_user

    user = await get_user(request, _oauth_token=None, bearer_credentials=credentials)
    allowed = await run_in_threadpool(
        get_auth_manager().is_authorized_connection,
        method="GET",
        details=ConnectionDetails(conn_id=conn_id),
        user=user,
    )
    if not allowed:
        raise HTTPException(403, {"code": "Forbidden", "message": f"No read access to connection {conn_id!r}."})
    return conn_id


def version_name(version_arn: str) -> str:
    """``arn:...:project/<project>/version/<version>/<created>`` -> ``<version>`` (the ARN itself otherwise)."""
    _, found, rest = version_arn.partition("/version/")
    return rest.split("/", 1)[0] if found else version_arn


def _project_name(project_arn: str) -> str:
    _, found, rest = project_arn.partition(":project/")
    return rest.split("/", 1)[0] if found else project_arn


def _aws_error(exc: Exception) -> HTTPException | None:
    """An AWS/botocore/connection failure as an HTTP error the page can show as is; None for anything else."""
    from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "ClientError")
        status, hint = AWS_ERRORS.get(code, (502, "Rekognition refused the call."))
        return HTTPException(status, {"code": code, "message": error.get("Message") or str(exc), "hint": hint})
    if isinstance(exc, ParamValidationError):
        return HTTPException(400, {"code": "ParamValidationError", "message": str(exc), "hint": ""})
    if isinstance(exc, BotoCoreError):  # no credentials, no region, endpoint unreachable, ...
        hint = "Check the AWS connection (endpoint, region, credentials)."
        return HTTPException(503, {"code": type(exc).__name__, "message": str(exc), "hint": hint})
    if type(exc).__name__ == "AirflowNotFoundException":  # the connection id is not defined anywhere
        hint = f"Define the connection or set ${CONN_ID_ENV}."
        return HTTPException(503, {"code": "ConnectionNotFound", "message": str(exc), "hint": hint})
    return None


def _error(status: int, code: str, message: str, hint: str = "") -> HTTPException:
    return HTTPException(status, {"code": code, "message": message, "hint": hint})


class Clients:
    """One boto3 Rekognition client per Airflow connection id, created on first use (clients are thread-safe).

    A client is rebuilt after ``ttl`` seconds so that an edited connection takes effect without a restart.
    """

    def __init__(self, ttl: float = CLIENT_TTL_S) -> None:
        self.ttl = ttl
        self._clients: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, conn_id: str) -> Any:
        with self._lock:
            created, client = self._clients.get(conn_id, (0.0, None))
            if client is None or time.monotonic() - created > self.ttl:
                from aws_ml.hooks.rekognition import RekognitionHook

                client = RekognitionHook(aws_conn_id=conn_id).conn
                self._clients[conn_id] = (time.monotonic(), client)
            return client


def list_versions(client: Any) -> list[dict[str, Any]]:
    """Every Custom Labels project, each with its RUNNING versions (newest first)."""
    projects = []
    for page in client.get_paginator("describe_projects").paginate():
        for project in page.get("ProjectDescriptions", []):
            # Content-moderation adapters are projects too, but DetectCustomLabels cannot run them.
            if project.get("Feature", "CUSTOM_LABELS") != "CUSTOM_LABELS":
                continue
            arn = project["ProjectArn"]
            running = []
            for versions in client.get_paginator("describe_project_versions").paginate(ProjectArn=arn):
                for version in versions.get("ProjectVersionDescriptions", []):
                    if version.get("Status") == "RUNNING":
                        evaluation = version.get("EvaluationResult") or {}
                        running.append(
                            {
                                "arn": version["ProjectVersionArn"],
                                "name": version_name(version["ProjectVersionArn"]),
                                "status": version["Status"],
                                "f1": evaluation.get("F1Score"),
                            }
                        )
            projects.append({"name": _project_name(arn), "arn": arn, "versions": running})
    return projects


def detect(
    client: Any, image: bytes, version_arn: str, min_confidence: float | None, max_results: int | None
) -> list[dict[str, Any]]:
    """DetectCustomLabels on one frame; boxes stay normalized (0..1 of the frame), clipped to the frame."""
    params: dict[str, Any] = {"ProjectVersionArn": version_arn, "Image": {"Bytes": image}}
    if min_confidence is not None:
        params["MinConfidence"] = min_confidence
    if max_results is not None:
        params["MaxResults"] = max_results
    labels = []
    for found in client.detect_custom_labels(**params).get("CustomLabels", []):
        box = (found.get("Geometry") or {}).get("BoundingBox")
        if box:  # classification models return labels without geometry
            left, top = min(max(box["Left"], 0.0), 1.0), min(max(box["Top"], 0.0), 1.0)
            box = {
                "left": left,
                "top": top,
                "width": min(max(box["Width"], 0.0), 1.0 - left),
                "height": min(max(box["Height"], 0.0), 1.0 - top),
            }
        labels.append({"name": found["Name"], "confidence": found["Confidence"], "box": box or None})
    return labels


def _number(params: dict[str, str], name: str, kind: type, low: float, high: float) -> Any:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise _error(400, "InvalidParameter", f"{name} must be a number, not {raw!r}.") from None
    if not low <= value <= high:
        raise _error(400, "InvalidParameter", f"{name} must be between {low:g} and {high:g}.")
    return value


async def _read_frame(request: Request) -> tuple[bytes, dict[str, str]]:
    """The frame from a raw JPEG/PNG body or a multipart ``image`` file, plus any form fields."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise _error(413, "ImageTooLarge", f"The frame is over {MAX_IMAGE_BYTES} bytes.", "Send smaller frames.")
    fields: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("image") or form.get("file")
        if upload is None or isinstance(upload, str):
            raise _error(400, "MissingImage", "The multipart body has no 'image' file.")
        image = await upload.read(MAX_IMAGE_BYTES + 1)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
    else:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_IMAGE_BYTES:
                raise _error(
                    413, "ImageTooLarge", f"The frame is over {MAX_IMAGE_BYTES} bytes.", "Send smaller frames."
                )
            chunks.append(chunk)
        image = b"".join(chunks)
    if len(image) > MAX_IMAGE_BYTES:
        raise _error(413, "ImageTooLarge", f"The frame is over {MAX_IMAGE_BYTES} bytes.", "Send smaller frames.")
    if not image:
        raise _error(400, "MissingImage", "The request has no image.", "POST a JPEG or PNG frame.")
    if not any(image.startswith(signature) for signature in IMAGE_SIGNATURES):
        raise _error(415, "InvalidImageFormat", "The frame is neither JPEG nor PNG.", "Send a JPEG or PNG frame.")
    return image, fields


def _page(request: Request) -> HTMLResponse:
    # Mounted under Airflow, root_path holds the mount prefix: the page's API calls stay inside this app.
    base = request.scope.get("root_path", "").rstrip("/") + "/"
    page = (STATIC / "index.html").read_text().replace("{{BASE}}", html.escape(base, quote=True))
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


def create_app(*, auth: bool = True) -> FastAPI:
    """The webcam app. ``auth=False`` only for tests and standalone runs without an Airflow API server."""
    app = FastAPI(title="Custom Labels webcam", description=__doc__)
    clients = Clients()
    app.state.auth = auth

    app.get("/", response_class=HTMLResponse, include_in_schema=False)(_page)

    @app.get("/static/webcam.js", include_in_schema=False)
    def script() -> FileResponse:
        return FileResponse(STATIC / "webcam.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    @app.get("/api/versions")
    async def versions(conn_id: Annotated[str, Depends(airflow_access)]) -> dict[str, Any]:
        """Custom Labels projects and their RUNNING versions."""
        try:
            client = await run_in_threadpool(clients.get, conn_id)
            projects = await run_in_threadpool(list_versions, client)
        except Exception as exc:
            if (error := _aws_error(exc)) is None:
                raise
            raise error from exc
        return {"conn_id": conn_id, "projects": projects}

    @app.post("/api/detect")
    async def detect_frame(request: Request, conn_id: Annotated[str, Depends(airflow_access)]) -> dict[str, Any]:
        """DetectCustomLabels on a JPEG/PNG frame: raw body (query parameters) or multipart ``image`` (+ fields).

        Parameters: ``ProjectVersionArn`` (required), ``MinConfidence`` (0-100), ``MaxResults``.
        """
        image, fields = await _read_frame(request)
        params = {**request.query_params, **fields}
        version_arn = params.get("ProjectVersionArn", "").strip()
        if not version_arn:
            raise _error(400, "MissingParameter", "ProjectVersionArn is required.", "Pick a RUNNING version.")
        min_confidence = _number(params, "MinConfidence", float, 0, 100)
        max_results = _number(params, "MaxResults", int, 1, 1000)
        started = time.perf_counter()
        try:
            client = await run_in_threadpool(clients.get, conn_id)
            labels = await run_in_threadpool(detect, client, image, version_arn, min_confidence, max_results)
        except Exception as exc:
            if (error := _aws_error(exc)) is None:
                raise
            raise error from exc
        return {
            "version_arn": version_arn,
            "labels": labels,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    return app


app = create_app()
