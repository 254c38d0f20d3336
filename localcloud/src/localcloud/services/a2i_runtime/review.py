"""The reviewer page: localcloud's stand-in for A2I's worker portal, at ``/_localcloud/review/`` on the server's
own port.

It is a local tool with no login: the server binds loopback only, refuses a non-loopback ``Host`` and takes
writes only as same-origin JSON (see :mod:`localcloud.server`). Whoever can reach the port could call
the AWS API with the local credentials anyway. The reviewer names themself on the page; that name becomes the
answer's ``reviewer`` and the worker identity in ``output.json``.

JSON API (what the page uses; tests use it to act as a reviewer):

- ``GET  api/loops?status=InProgress`` (``status=`` for all): loop summaries, oldest first.
- ``GET  api/loops/<region>/<name>``: the loop, its parsed input, ``problems`` (how the input departs from
  :mod:`.contract`; empty when it follows it), its tasks and each page image's URL.
- ``GET  api/loops/<region>/<name>/pages/<n>``: page ``n``'s image, streamed from localcloud's S3 files.
  Only images the loop's input names are served: the page is no general S3 reader.
- ``POST api/loops/<region>/<name>/accept`` ``{"reviewer": str}``: take a task (A2I's "start working").
- ``POST api/loops/<region>/<name>/answer`` ``{"answer": answerContent}``: submit; answers the loop summary.

Errors come back as ``{"error": message}`` with a 4xx/5xx status.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from localcloud.core import AwsError, RequestContext
from localcloud.protocols.base import Request, Response
from localcloud.services.a2i_runtime import contract
from localcloud.services.a2i_runtime.backend import A2IRuntimeBackend, ReviewError
from localcloud.services.s3.backend import S3Backend

PREFIX = "/_localcloud/review/"
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {
    "review.js": "text/javascript; charset=utf-8",
    "review.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
MAX_ANSWER_BYTES = 16 * 1024 * 1024
# The page ships its own script and style and loads nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_LOOP = re.compile(r"^api/loops/([a-z0-9-]+)/([a-z0-9-]+)(?:/(accept|answer|pages/(\d+)))?$")


def _json(status: int, value: Any) -> Response:
    headers = {"Content-Type": "application/json", "Cache-Control": "no-store", **SECURITY_HEADERS}
    return Response(status, headers, json.dumps(value).encode())


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


class ReviewSite:
    def __init__(self, backend: A2IRuntimeBackend, s3: S3Backend) -> None:
        self.backend = backend
        self.s3 = s3

    def handle(self, request: Request) -> Response:
        if not request.raw_path.startswith(PREFIX):
            return Response(308, {"Location": PREFIX, "Content-Length": "0"})
        path = unquote(request.raw_path[len(PREFIX) :])
        try:
            if request.method in ("GET", "HEAD"):
                return self._get(path, request)
            if request.method == "POST":
                return self._post(path, request)
            return _error(405, f"{request.method} is not allowed here.")
        except ReviewError as exc:
            return _error(exc.status, exc.message)

    def _get(self, path: str, request: Request) -> Response:
        if path in ("", "index.html"):
            return self._static("index.html", "text/html; charset=utf-8")
        if path.startswith("static/") and path[len("static/") :] in STATIC_FILES:
            name = path[len("static/") :]
            return self._static(name, STATIC_FILES[name])
        if path == "api/loops":
            status = request.query_values("status")
            return _json(200, {"loops": self.backend.loops(status[0] if status else "InProgress")})
        match = _LOOP.match(path)
        if match and match.group(3) is None:
            return _json(200, self._loop(match.group(1), match.group(2)))
        if match and match.group(4):
            return self._image(match.group(1), match.group(2), int(match.group(4)))
        return _error(404, f"Nothing at {PREFIX}{path}.")

    def _post(self, path: str, request: Request) -> Response:
        match = _LOOP.match(path)
        if not match or match.group(3) not in ("accept", "answer"):
            return _error(404, f"Nothing to post to at {PREFIX}{path}.")
        length = int(request.headers.get("content-length") or 0)
        if length > MAX_ANSWER_BYTES:
            return _error(413, "The request is too large.")
        try:
            body = json.loads(request.read_body() or b"{}")
        except ValueError:
            return _error(400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.")
        region, name = match.group(1), match.group(2)
        if match.group(3) == "accept":
            return _json(200, self.backend.accept(region, name, body.get("reviewer")))
        return _json(200, self.backend.submit(region, name, body.get("answer")))

    def _loop(self, region: str, name: str) -> dict[str, Any]:
        loop = self.backend.loop(region, name)
        base = f"{PREFIX}api/loops/{quote(region)}/{quote(name)}"
        document = loop["input"].get("document") if isinstance(loop["input"].get("document"), dict) else {}
        pages = document.get("pages") if isinstance(document.get("pages"), list) else []
        loop["pages"] = [
            {"page": p["page"], "url": f"{base}/pages/{p['page']}", "width": p.get("width"), "height": p.get("height")}
            for p in pages
            if isinstance(p, dict) and isinstance(p.get("page"), int)
        ]
        loop["bands"] = {"near": contract.NEAR_BAND}
        loop["tableTypes"] = list(contract.TABLE_TYPES)
        return loop

    def _image(self, region: str, name: str, page: int) -> Response:
        bucket, key = self.backend.page_image(region, name, page)
        try:
            found = self.s3.get_object(RequestContext(region=region), {"Bucket": bucket, "Key": key})
        except AwsError as exc:
            return _error(404, f"s3://{bucket}/{key}: {exc.code}: {exc.message}")
        headers = {
            "Content-Type": found["ContentType"],
            "Content-Length": str(found["ContentLength"]),
            "Cache-Control": "private, max-age=60",
            **SECURITY_HEADERS,
        }
        return Response(200, headers, found["Body"], length=found["ContentLength"])

    @staticmethod
    def _static(name: str, content_type: str) -> Response:
        headers = {"Content-Type": content_type, "Cache-Control": "no-cache", **SECURITY_HEADERS}
        return Response(200, headers, (STATIC_DIR / name).read_bytes())
