"""SageMaker models: CreateModel, DescribeModel, DeleteModel, ListModels.

A model is a record of its containers, as on AWS; it runs only inside the jobs that use it (batch
transform here; localcloud has no endpoints). Like AWS, CreateModel checks that each container's
``ModelDataUrl`` (or ``ModelDataSource`` S3 object) exists, answering ``ValidationException: Could not find
model data at s3://...`` when it does not; the ``Image`` is recorded but never pulled: whatever it names,
localcloud serves the artifact with its AutoML engine, which reads the ``model.tar.gz`` artifacts that
localcloud's AutoML jobs write.

Which container a transform runs (AWS runs them all as an inference pipeline): the last one with model data,
whose artifact is one model of the engine. Its response keys come from ``SAGEMAKER_INFERENCE_OUTPUT`` in the
last container that sets it (the pipeline's output is its last container's), and a transform job's own
``Environment`` overrides the containers'. Unknown names answer ``ValidationException: Could not find model``
as AWS does, which is what the Airflow operators' "does it exist" checks rely on.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from localcloud.core import AwsError, RequestContext
from localcloud.services.s3.backend import S3Backend
from localcloud.services.sagemaker import listing
from localcloud.services.sagemaker.jobs import check_name, now, split_s3_uri, ts
from localcloud.store import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    arn TEXT PRIMARY KEY, region TEXT NOT NULL, name TEXT NOT NULL, created REAL NOT NULL, config TEXT NOT NULL,
    UNIQUE (region, name)
);
"""
_CONFIG_KEYS = (
    "PrimaryContainer",
    "Containers",
    "InferenceExecutionConfig",
    "ExecutionRoleArn",
    "VpcConfig",
    "EnableNetworkIsolation",
)
DEFAULT_OUTPUT = "predicted_label"


def model_arn(ctx: RequestContext, name: str) -> str:
    return f"arn:aws:sagemaker:{ctx.region}:{ctx.account_id}:model/{name.lower()}"


def model_data_url(container: dict[str, Any]) -> str | None:
    """The container's model.tar.gz: ModelDataUrl, or a ModelDataSource naming one compressed S3 object."""
    if container.get("ModelDataUrl"):
        return container["ModelDataUrl"]
    source = (container.get("ModelDataSource") or {}).get("S3DataSource")
    if not source:
        return None
    if source.get("S3DataType") != "S3Object" or source.get("CompressionType") != "Gzip":
        raise AwsError(
            "ValidationException",
            "localcloud reads model data as one gzipped tar (ModelDataUrl, or ModelDataSource.S3DataSource with "
            "S3DataType S3Object and CompressionType Gzip).",
        )
    return source["S3Uri"]


def containers_of(config: dict[str, Any]) -> list[dict[str, Any]]:
    return list(config.get("Containers") or ([config["PrimaryContainer"]] if config.get("PrimaryContainer") else []))


def serving(config: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(artifact URI, environment) of the container a transform runs; see the module docstring."""
    containers = containers_of(config)
    with_data = [c for c in containers if model_data_url(c)]
    environment: dict[str, str] = {}
    for container in containers:
        environment.update(container.get("Environment") or {})
    # The pipeline's response keys are its last container's, even when an earlier one set them too.
    for container in reversed(containers):
        value = (container.get("Environment") or {}).get("SAGEMAKER_INFERENCE_OUTPUT")
        if value:
            environment["SAGEMAKER_INFERENCE_OUTPUT"] = value
            break
    return model_data_url(with_data[-1]), environment


class Models:
    """Mixed into :class:`SageMakerBackend`, which owns ``_store`` and ``_s3``."""

    _store: SqliteStore
    _s3: S3Backend

    def _model_row(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        rows = self._store.query("SELECT * FROM models WHERE region = ? AND name = ?", (ctx.region, name))
        if not rows:
            raise AwsError("ValidationException", f'Could not find model "{model_arn(ctx, name)}".')
        return dict(rows[0])

    def model_config(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        """A model's stored configuration, for the transform jobs that use it."""
        return json.loads(self._model_row(ctx, name)["config"])

    def _check_containers(self, params: dict[str, Any]) -> None:
        if bool(params.get("PrimaryContainer")) == bool(params.get("Containers")):
            raise AwsError("ValidationException", "Specify exactly one of PrimaryContainer and Containers.")
        containers = containers_of(params)
        if len(containers) > 15:
            raise AwsError("ValidationException", "A model can have at most 15 containers.")
        for container in containers:
            if container.get("ModelPackageName"):
                raise AwsError("ValidationException", "localcloud has no model packages; give Image and ModelDataUrl.")
            if not container.get("Image"):
                raise AwsError("ValidationException", "Each container needs an Image.")
            url = model_data_url(container)
            if url is None:
                continue
            bucket, key = split_s3_uri(url, "ModelDataUrl")
            try:
                self._s3.object_file(bucket, key)
            except AwsError as exc:
                raise AwsError("ValidationException", f"Could not find model data at {url}.") from exc
        if not any(model_data_url(c) for c in containers):
            raise AwsError(
                "ValidationException", "localcloud runs models from their model data: give a container a ModelDataUrl."
            )

    def create_model(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ModelName"]
        check_name(name, "modelName", 63)
        self._check_containers(params)
        arn = model_arn(ctx, name)
        config = {k: params[k] for k in _CONFIG_KEYS if params.get(k) is not None}
        try:
            with self._store.transaction() as db:
                db.execute(
                    "INSERT INTO models VALUES (?, ?, ?, ?, ?)", (arn, ctx.region, name, now(), json.dumps(config))
                )
        except sqlite3.IntegrityError as exc:
            raise AwsError("ValidationException", f'Cannot create already existing model "{arn}".') from exc
        return {"ModelArn": arn}

    def describe_model(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._model_row(ctx, params["ModelName"])
        return {
            "ModelName": row["name"],
            "ModelArn": row["arn"],
            "CreationTime": ts(row["created"]),
            **json.loads(row["config"]),
        }

    def delete_model(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._model_row(ctx, params["ModelName"])
        with self._store.transaction() as db:
            db.execute("DELETE FROM models WHERE arn = ?", (row["arn"],))
        return {}

    def list_models(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        contains = (params.get("NameContains") or "").lower()
        rows = [
            dict(r)
            for r in self._store.query("SELECT arn, name, created FROM models WHERE region = ?", (ctx.region,))
            if contains in r["name"].lower()
        ]
        rows = [r for r in rows if listing.in_window(r, params, modified="created")]
        keys = {"Name": lambda r: (r["name"],), "CreationTime": lambda r: (r["created"],)}
        taken, more = listing.page(rows, params, keys, default_sort="CreationTime", default_order="Descending")
        models = [{"ModelName": r["name"], "ModelArn": r["arn"], "CreationTime": ts(r["created"])} for r in taken]
        return {"Models": models, **more}
