# syntax=docker/dockerfile:1
# Airflow image for this project (same files as the local Makefile flow):
#   docker build -t industrial-ml-airflow .                        # scheduler / api-server / CPU workers
#   docker build -t industrial-ml-airflow:gpu --target gpu-worker .  # workers that render (queue="gpu")
#   docker build -t localcloud --target localcloud .                # the offline AWS endpoint, for compose or CI
# In prod nothing here points at localcloud: aws_default comes from the deployment (env var, secrets backend or
# the IAM role of the pod/instance).

ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11

FROM ${AIRFLOW_IMAGE} AS base

# apt packages, Astro convention: packages.txt, one per line, `#` comments.
USER root
COPY packages.txt /tmp/packages.txt
RUN set -eux; \
    pkgs="$(sed -e 's/#.*//' /tmp/packages.txt | xargs)"; \
    if [ -n "$pkgs" ]; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs; \
      apt-get clean; rm -rf /var/lib/apt/lists/*; \
    fi; \
    rm /tmp/packages.txt

# Python deps, pinned by the same constraints.txt the Makefile uses (a pip freeze of the dev venv). Airflow itself is
# pinned to the image's version in requirements.txt, so pip keeps it.
USER airflow
COPY --chown=airflow:root requirements.txt requirements-nodeps.txt constraints.txt /tmp/pip/
RUN pip install --no-cache-dir -r /tmp/pip/requirements.txt -c /tmp/pip/constraints.txt \
 && pip install --no-cache-dir --no-deps -r /tmp/pip/requirements-nodeps.txt -c /tmp/pip/constraints.txt

COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root include/ /opt/airflow/include/
# DAGs import `include.<pkg>` (as they do locally with PYTHONPATH=repo root). localcloud/ is not copied: the
# Airflow image talks to real AWS and carries no emulator, torch or OCR engine.
ENV PYTHONPATH=/opt/airflow


# Rendering workers: pyrender offscreen through EGL (NVIDIA GPU when present, Mesa llvmpipe otherwise).
# Route rendering tasks here with `queue="gpu"` on the task (CeleryExecutor: run these workers with
# `airflow celery worker --queues gpu`), or with a pod override/pod_template_file for the KubernetesExecutor.
FROM base AS gpu-worker
USER root
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 libglvnd0; \
    apt-get clean; rm -rf /var/lib/apt/lists/*
USER airflow
# PYOPENGL_PLATFORM must be set before pyrender is imported; the NVIDIA runtime needs `graphics` for EGL.
ENV PYOPENGL_PLATFORM=egl \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics


# localcloud, the AWS-compatible endpoint with its engines (torch, rapidocr, scikit-learn/xgboost; Spark for EMR
# Serverless runs), for teams that want the offline cloud in docker compose or CI. It shares nothing with the Airflow
# image but the constraints file.
FROM python:3.11-slim-bookworm AS localcloud
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-17-jre-headless libgl1 libglib2.0-0; \
    apt-get clean; rm -rf /var/lib/apt/lists/*
COPY constraints.txt /tmp/constraints.txt
COPY localcloud/ /opt/localcloud/
RUN pip install --no-cache-dir '/opt/localcloud[emr,glue]' -c /tmp/constraints.txt && rm -rf /opt/localcloud/tests
RUN useradd --create-home localcloud && mkdir /data && chown localcloud /data
USER localcloud
VOLUME /data
# The server binds loopback only (it holds local-only credentials and serves unsigned review pages), so nothing is
# exposed: run the Airflow containers in this one's network namespace (compose: network_mode: "service:localcloud")
# and point aws_default's endpoint_url at http://127.0.0.1:4566.
ENTRYPOINT ["localcloud", "serve", "--data-dir", "/data"]


# Default target (last stage): the plain image.
FROM base AS airflow
