"""SageMaker's awsJson 1.1 wire format, plus a web route that serves human task UI templates as text."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote

from localcloud.protocols.base import Request, Response
from localcloud.protocols.json_rpc import JsonProtocol
from localcloud.protocols.shapes import service_model
from localcloud.services.sagemaker.a2i import UI_TEMPLATE_ROUTE
from localcloud.services.sagemaker.backend import SageMakerBackend

# AutoML and batch transform read their data from localcloud's S3 and write their output back to it.
REQUIRES = ("s3",)


class SageMakerProtocol(JsonProtocol):
    backend: SageMakerBackend

    @property
    def web_routes(self) -> dict:
        return {UI_TEMPLATE_ROUTE: self.ui_template}

    def ui_template(self, request: Request) -> Response:
        """``UiTemplate.Url``: the template as stored, served as text so that a browser never runs it here."""
        region, _, name = unquote(request.raw_path[len(UI_TEMPLATE_ROUTE) :]).partition("/")
        content = self.backend.human_task_ui_content(region, name) if request.method in ("GET", "HEAD") else None
        if content is None:
            return Response(404, {"Content-Type": "text/plain; charset=utf-8"}, b"No such human task UI.\n")
        headers = {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
        return Response(200, headers, content.encode())


def create(data_dir: Path, peers: Mapping[str, object]) -> SageMakerProtocol:
    return SageMakerProtocol(service_model("sagemaker"), SageMakerBackend(data_dir, peers["s3"].backend))
