"""SageMaker on localcloud: one backend composed of feature modules that share one SQLite store.

Each feature is a mixin holding its operations and contributing its schema (``a2i`` for flow definitions and
human task UIs, ``automl`` for Autopilot jobs, ``models`` and ``transform`` for models and batch transform,
``notebooks`` for notebook instances and their lifecycle configurations).
A later feature adds its module, its mixin to :class:`SageMakerBackend` and its schema to ``SCHEMAS``; work
it runs off the request threads it starts in ``__init__`` and stops in ``close``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from localcloud.core import ensure_dir
from localcloud.services.s3.backend import S3Backend
from localcloud.services.sagemaker import a2i, automl, models, notebooks, signing, transform
from localcloud.store import SqliteStore

SCHEMAS = (a2i.SCHEMA, automl.SCHEMA, models.SCHEMA, transform.SCHEMA, notebooks.SCHEMA)


class SageMakerBackend(
    a2i.A2IResources, automl.AutoMLJobs, models.Models, transform.TransformJobs, notebooks.NotebookInstances
):
    def __init__(self, data_dir: Path, s3: S3Backend) -> None:
        self._store = SqliteStore(ensure_dir(Path(data_dir)) / "sagemaker.sqlite", "\n".join(SCHEMAS))
        self._s3 = s3
        self._jobs_dir = ensure_dir(Path(data_dir) / "sagemaker-jobs")
        # Signs the model artifacts AutoML publishes; batch transform loads no others (see :mod:`signing`).
        self._model_key = signing.load_key(Path(data_dir))
        self.flow_definition_users: list[Callable[[str], str | None]] = []
        self._init_automl()
        self._init_transforms()

    def close(self) -> None:
        self._close_automl()
        self._close_transforms()
        self._store.close()
