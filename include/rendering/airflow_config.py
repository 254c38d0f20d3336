"""Where render tasks run. Read from the environment at parse time: no database or network access."""

from __future__ import annotations

import os
from typing import Any


def render_queue() -> str:
    """Celery queue of the GPU workers (``airflow celery worker --queues gpu``). LocalExecutor ignores it."""
    return os.environ.get("RENDER_QUEUE", "gpu")


RENDER_POOL_DEFAULT = "gpu_render"


def render_pool() -> str:
    """Airflow pool capping concurrent render tasks: one slot per GPU worker (each task uses every core).

    ``make up`` creates it with one slot; on a cluster size it to the number of GPU workers.
    """
    return os.environ.get("RENDER_POOL", RENDER_POOL_DEFAULT)


def render_executor_config() -> dict[str, Any]:
    """KubernetesExecutor override for render pods: a pod template requesting a GPU, when one is configured.

    ``RENDER_POD_TEMPLATE`` names a pod template file (see ``include/k8s/gpu-render-pod.yaml``); unset, render
    tasks use the deployment's default pod, which is what Celery and local executors want.
    """
    template = os.environ.get("RENDER_POD_TEMPLATE")
    return {"pod_template_file": template} if template else {}
