"""SageMaker on localcloud: one backend composed of feature modules that share one SQLite store.

Each feature is a mixin holding its operations and contributing its schema (``a2i`` for flow definitions and
human task UIs). A later feature (AutoML jobs, models, transform jobs) adds its module, its mixin to
:class:`SageMakerBackend` and its schema to ``SCHEMAS``; work it runs off the request threads it starts in
``__init__`` and stops in ``close``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from include.localcloud.core import ensure_dir
from include.localcloud.services.sagemaker import a2i
from include.localcloud.store import SqliteStore

SCHEMAS = (a2i.SCHEMA,)


class SageMakerBackend(a2i.A2IResources):
    def __init__(self, data_dir: Path) -> None:
        self._store = SqliteStore(ensure_dir(Path(data_dir)) / "sagemaker.sqlite", "\n".join(SCHEMAS))
        self.flow_definition_users: list[Callable[[str], str | None]] = []

    def close(self) -> None:
        self._store.close()
