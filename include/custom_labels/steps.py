"""The Custom Labels DAGs' steps, free of Airflow: plain data in, plain data out, an S3 client passed in.

Layout under ``s3://<bucket>/custom-labels/<project>/``::

    ledger.json                                every trained version with its scores (see ledger.py)
    versions/<version>/evaluation/...          Rekognition's evaluation output (summary JSON)
    versions/<version>/label_f1.png            per-label F1 chart
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

from botocore.exceptions import ClientError

from include import s3uri
from include.groundtruth import image_labels
from include.s3objects import exists, read_json_or_none

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
SUMMARY_NAME = "dataset.json"
# Rekognition: VersionName matches [a-zA-Z0-9_.\-]{1,255}.
VERSION_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")


class DatasetNotFound(ValueError):
    """No training dataset could be resolved from the params or the triggering Asset events."""


def project_root(project: str) -> str:
    return f"custom-labels/{project}"


def ledger_key(project: str) -> str:
    return f"{project_root(project)}/ledger.json"


def version_root(project: str, version_name: str) -> str:
    return f"{project_root(project)}/versions/{version_name}"


def resolve_training_dataset(params: dict[str, Any], asset_extra: dict[str, Any] | None, s3: Any) -> dict[str, Any]:
    """Which rendered dataset (or user manifest) to train on, by precedence.

    1. ``params.dataset_version``: ``s3://<dataset_bucket>/<dataset_prefix>/<dataset_name>/<version>/``;
    2. ``params.train_manifest``: any Ground Truth manifest in S3;
    3. the Asset event that triggered the run, or the latest one published (``asset_extra``).
    """
    if params.get("dataset_version"):
        root = "/".join(p.strip("/") for p in (params["dataset_prefix"], params["dataset_name"]) if p.strip("/"))
        prefix = s3uri.join(params["dataset_bucket"], root, params["dataset_version"])
        manifest, source = f"{prefix}/{MANIFEST_NAME}", f"dataset_version {params['dataset_version']}"
    elif params.get("train_manifest"):
        manifest, source = params["train_manifest"], "train_manifest param"
        prefix = s3uri.parent(manifest)
    elif asset_extra and asset_extra.get("manifest"):
        manifest, source = asset_extra["manifest"], "synthetic_vision_dataset Asset event"
        prefix = asset_extra.get("prefix") or s3uri.parent(manifest)
    else:
        raise DatasetNotFound(
            "no training dataset: run render_synthetic_dataset (its Asset event triggers this DAG), or trigger with "
            "a dataset_version or a train_manifest"
        )
    bucket, key = s3uri.parse(manifest)
    try:
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except ClientError as err:
        raise DatasetNotFound(f"{manifest} (from the {source}): {err.response['Error']['Code']}") from err
    labels = image_labels(text)
    prefix_bucket, prefix_key = s3uri.parse(prefix)
    summary = read_json_or_none(s3, prefix_bucket, f"{prefix_key}/{SUMMARY_NAME}")
    version = (summary or {}).get("version") or hashlib.sha256(text.encode()).hexdigest()[:16]
    log.info("training dataset %s from the %s: %d images", manifest, source, len(labels))
    return {
        "manifest": manifest,
        "prefix": prefix,
        "version": version,
        "source": source,
        "images": len(labels),
        "labels": sorted({name for names in labels.values() for name in names}),
        "spec": (summary or {}).get("spec"),  # the render spec, when the dataset is one of our renders
    }


def shifted_render_params(train: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Render-pipeline params for the default test set: the training render's spec under a domain shift.

    Same catalog and classes, other seeds (so never a training image), and the lighting, backgrounds and
    materials changed as ``include.rendering.shift.domain_shift`` says.
    """
    from include.rendering.shift import domain_shift, shifted_seed

    spec = train.get("spec")
    if not spec:
        raise ValueError(
            f"{train['manifest']} is not one of our rendered datasets (no {SUMMARY_NAME} beside it), so there is no "
            "render spec to shift: pass test_manifest or test_photos"
        )
    render, shifts = domain_shift(spec.get("render") or {})
    bucket, _ = s3uri.parse(train["prefix"])
    return {
        "bucket": bucket,
        "prefix": params.get("dataset_prefix", "datasets"),
        "dataset_name": f"{spec['name']}-shifted",
        "catalog": spec["catalog"],
        "classes": list(spec.get("classes") or []),
        "images_per_class": int(params["test_images_per_class"]),
        "seed": shifted_seed(int(spec.get("seed", 0))),
        "render": render,
        "creation_date": spec.get("creation_date", "2026-01-01T00:00:00"),
        "shard_size": int(params.get("shard_size", 50)),
        "shifts": shifts,
    }


def render_dataset(render_params: dict[str, Any], s3: Any, processes: int | None = None) -> dict[str, Any]:
    """Plan, render every shard, validate and merge: the render DAG's steps in one task.

    A version whose merged manifest and summary are already in S3 is not rendered again (the version is a hash
    of every input, so the published files are exactly what a new render would give).
    """
    from include.rendering import pipeline

    layout = pipeline.plan({k: v for k, v in render_params.items() if k != "shifts"})
    bucket, prefix = layout["bucket"], layout["prefix"]
    published = read_json_or_none(s3, bucket, f"{prefix}/{SUMMARY_NAME}")
    if published and published.get("version") == layout["version"] and exists(s3, bucket, f"{prefix}/{MANIFEST_NAME}"):
        log.info("dataset %s is already published under s3://%s/%s", layout["version"], bucket, prefix)
        summary = {**published, "reused": True}
    else:
        stats = [pipeline.render_shard(layout, shard, s3, processes=processes) for shard in layout["shards"]]
        pipeline.validate_shards(layout, s3)
        summary = {**pipeline.merge(layout, s3, stats), "reused": False}
    return {
        "manifest": s3uri.join(bucket, prefix, MANIFEST_NAME),
        "prefix": s3uri.join(bucket, prefix),
        "version": layout["version"],
        "images": summary["images"],
        "skipped": summary.get("skipped", {}),
        "reused": summary["reused"],
        "shifts": render_params.get("shifts", []),
    }


def catalog_labels(catalog: str, classes: list[str] | None = None) -> list[str]:
    """The label names a render of ``catalog`` (restricted to ``classes``, if any) can contain."""
    from include.rendering.catalog import load_catalog
    from include.rendering.dataset import resolve_catalog

    names = sorted(load_catalog(resolve_catalog(catalog)).class_map.values())
    return sorted(set(names) & set(classes)) if classes else names


def check_test_manifest(uri: str, s3: Any, train_labels: list[str]) -> dict[str, Any]:
    """A user's test manifest: valid for Rekognition, images present, and only labels the model learns."""
    from include.groundtruth import validate

    bucket, key = s3uri.parse(uri)
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    issues = validate.validate_manifest(text, s3_client=s3)
    if issues:
        shown = "\n".join(str(i) for i in issues[:20])
        raise ValueError(f"{uri}: {len(issues)} issue(s):\n{shown}")
    labels = image_labels(text)
    unknown = sorted({n for names in labels.values() for n in names} - set(train_labels))
    if unknown:
        raise ValueError(f"{uri}: labels {unknown} are not in the training labels {train_labels}")
    return {
        "manifest": uri,
        "prefix": s3uri.parent(uri),
        "version": hashlib.sha256(text.encode()).hexdigest()[:16],
        "images": len(labels),
        "source": "test_manifest param",
    }


def version_name(project: str, train: dict[str, Any], test: dict[str, Any], override: str = "") -> str:
    """One version per (training data, test data): a rerun finds it and trains nothing again."""
    name = override or f"{project}-{train['version'][:10]}-{test['version'][:8]}"
    if not VERSION_NAME.match(name):
        raise ValueError(f"version name {name!r} must match {VERSION_NAME.pattern}")
    return name


def training_plan(project: str, name: str, train: dict[str, Any], test: dict[str, Any]) -> dict[str, Any]:
    """What ``wiring.import_and_train`` needs: the version name, both manifests' bucket/key, the evaluation prefix."""
    train_bucket, train_key = s3uri.parse(train["manifest"])
    test_bucket, test_key = s3uri.parse(test["manifest"])
    return {
        "version_name": name,
        "train_bucket": train_bucket,
        "train_key": train_key,
        "test_bucket": test_bucket,
        "test_key": test_key,
        "evaluation_prefix": f"{version_root(project, name)}/evaluation",
    }


def sample_images(manifest_uri: str, s3: Any, count: int) -> dict[str, Any]:
    """``count`` images spread evenly over a manifest, with the labels boxed in each (for the smoke check)."""
    bucket, key = s3uri.parse(manifest_uri)
    labels = image_labels(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8"))
    refs = sorted(labels)
    if not refs:
        raise ValueError(f"{manifest_uri} has no images")
    step = max(1, len(refs) // max(1, count))
    chosen = refs[::step][:count]
    return {"images": chosen, "expected_labels": {ref: labels[ref] for ref in chosen}}


def evaluation(description: dict[str, Any], s3: Any) -> dict[str, Any]:
    """Scores of a trained version from DescribeProjectVersions and its evaluation summary file."""
    # The gate operator's provider (plugins/, on sys.path under Airflow): imported here, so this module is not tied to it.
    from aws_ml.evaluation import label_f1

    result = description.get("EvaluationResult")
    if not result:
        raise ValueError(f"{description['ProjectVersionArn']} has no evaluation result ({description['Status']})")
    location = result["Summary"]["S3Object"]
    summary = json.loads(s3.get_object(Bucket=location["Bucket"], Key=location["Name"])["Body"].read())
    aggregated = summary.get("AggregatedEvaluationResults", {})
    return {
        "f1": result["F1Score"],
        "precision": aggregated.get("Precision"),
        "recall": aggregated.get("Recall"),
        "labels": label_f1(summary),
        "thresholds": {r["Label"]: r["Metrics"].get("Threshold") for r in summary.get("LabelEvaluationResults", [])},
        "summary": s3uri.join(location["Bucket"], location["Name"]),
        "training_seconds": description.get("BillableTrainingTimeInSeconds"),
    }


def record_version(
    params: dict[str, Any],
    description: dict[str, Any],
    train: dict[str, Any],
    test: dict[str, Any],
    s3: Any,
    run_id: str,
) -> dict[str, Any]:
    """Put a trained (or failed) version in the project's S3 ledger, with a per-label F1 chart beside it."""
    from aws_ml.evaluation import gate_decision

    from include.custom_labels import charts, ledger

    project, bucket = params["project_name"], params["bucket"]
    name = description["ProjectVersionArn"].rsplit("/version/", 1)[-1].split("/", 1)[0]
    entry: dict[str, Any] = {
        "version_name": name,
        "version_arn": description["ProjectVersionArn"],
        "project_arn": description["ProjectVersionArn"].split("/version/", 1)[0],
        "status": description["Status"],
        "status_message": description.get("StatusMessage"),
        "train": {k: train.get(k) for k in ("manifest", "version", "images", "source")},
        "test": {k: test.get(k) for k in ("manifest", "version", "images", "source", "shifts")},
        "dag_run_id": run_id,
        "trained_at": _iso(description.get("TrainingEndTimestamp")),
    }
    if description["Status"] == "TRAINING_COMPLETED" or description.get("EvaluationResult"):
        scores = evaluation(description, s3)
        # The gate operator's own verdict (aws_ml.evaluation), so the ledger never disagrees with the gate task.
        decision = gate_decision(scores["f1"], scores["labels"], params["min_f1"], params.get("min_label_f1"))
        chart_key = f"{version_root(project, name)}/label_f1.png"
        png = charts.label_f1_chart(
            scores["labels"], title=f"{name}: F1 {scores['f1']:.3f}", threshold=decision["min_f1"]
        )
        s3.put_object(Bucket=bucket, Key=chart_key, Body=png, ContentType="image/png")
        entry |= {
            "f1": scores["f1"],
            "precision": scores["precision"],
            "recall": scores["recall"],
            "label_f1": scores["labels"],
            "thresholds": scores["thresholds"],
            "evaluation_summary": scores["summary"],
            "chart": s3uri.join(bucket, chart_key),
            "gate": decision,
        }
    ledger.record(s3, bucket, ledger_key(project), entry)
    log.info("ledger s3://%s/%s: %s", bucket, ledger_key(project), {k: entry.get(k) for k in ("version_name", "f1")})
    return entry


def mark_deployed(params: dict[str, Any], name: str, smoke: dict[str, Any], s3: Any) -> dict[str, Any]:
    """Flag ``name`` as the serving version in the ledger (and no other), with its smoke-check hit rate."""
    from include.custom_labels import ledger

    book = ledger.mark_deployed(s3, params["bucket"], ledger_key(params["project_name"]), name)
    return {"deployed": name, "smoke_hit_rate": smoke.get("hit_rate"), "versions": len(book["versions"])}


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


def score_variant(
    plan: dict[str, Any], project_arn: str, description: dict[str, Any] | None, s3: Any
) -> dict[str, Any]:
    """One study variant's row: its toggles and scores, or the reason it has none (training failed)."""
    row: dict[str, Any] = {
        "variant": plan["variant"],
        "toggles": plan["toggles"],
        "project_arn": project_arn,
        "version_name": plan["version_name"],
        "dataset": plan["dataset"]["manifest"],
        "images": plan["dataset"]["images"],
    }
    if description is None:
        return row | {"status": "NOT_TRAINED", "f1": None}
    row |= {"version_arn": description["ProjectVersionArn"], "status": description["Status"]}
    if not description.get("EvaluationResult"):
        return row | {"f1": None, "status_message": description.get("StatusMessage")}
    scores = evaluation(description, s3)
    return row | {
        "f1": scores["f1"],
        "precision": scores["precision"],
        "recall": scores["recall"],
        "label_f1": scores["labels"],
        "evaluation_summary": scores["summary"],
    }


def stop_versions_except(rekognition: Any, rows: list[dict[str, Any]], keep_arn: str) -> list[str]:
    """Stop every running version of the study's projects but ``keep_arn``; returns the ones stopped."""
    stopped = []
    for project_arn in sorted({r["project_arn"] for r in rows if r.get("project_arn")}):
        pages = rekognition.get_paginator("describe_project_versions").paginate(ProjectArn=project_arn)
        for page in pages:
            for version in page["ProjectVersionDescriptions"]:
                arn = version["ProjectVersionArn"]
                if arn != keep_arn and version["Status"] in ("RUNNING", "STARTING"):
                    rekognition.stop_project_version(ProjectVersionArn=arn)
                    stopped.append(arn)
    log.info("stopped %d version(s) of the study's other variants", len(stopped))
    return stopped


def import_test_photos(params: dict[str, Any], train: dict[str, Any], s3: Any) -> dict[str, Any]:
    """A user's labelled real photos (Ground Truth, COCO or Pascal VOC in S3) as the test manifest.

    The manifest lands under ``custom-labels/<project>/test-photos/<hash of the source>/``; labels outside the
    training label set are rejected (listed in the summary), since a model cannot be scored on labels it never saw.
    """
    from include.custom_labels.imports import import_labels

    photos = params["test_photos"]
    source = photos["uri"] if photos["uri"].endswith("/") else f"{photos['uri']}/"
    digest = hashlib.sha256(json.dumps(photos, sort_keys=True).encode()).hexdigest()[:16]
    destination = s3uri.join(
        params["bucket"], project_root(params["project_name"]), "test-photos", digest, MANIFEST_NAME
    )
    summary = import_labels(
        s3,
        source,
        destination,
        job_name=f"test-photos-{digest}",
        creation_date="2026-01-01T00:00:00",
        format=photos.get("format") or "auto",
        class_names=train["labels"],
        label_map=photos.get("label_map") or None,
        max_rejected_fraction=float(photos.get("max_rejected_fraction", 0.1)),
    )
    log.info("imported %d of %d photo entries from %s", summary["imported"], summary["entries"], source)
    for rejected in summary["rejected"]:
        log.warning("rejected %s: %s", rejected["entry"], rejected["reason"])
    return {
        "manifest": destination,
        "prefix": s3uri.parent(destination),
        "version": summary["manifest_sha256"][:16],  # the import hashed what it wrote: no second read
        "images": summary["imported"],
        "rejected": len(summary["rejected"]),
        "format": summary["format"],
        "source": f"test_photos {source}",
    }


def publish_ranking(params: dict[str, Any], rows: list[dict[str, Any]], s3: Any) -> dict[str, Any]:
    """Write the study's ranked table (CSV) and chart (PNG) to S3; return them and the best variant."""
    from include.custom_labels import charts
    from include.custom_labels.study import rank

    ranked = rank(rows)
    root = f"custom-labels/studies/{params['study_name']}"
    bucket = params["bucket"]
    s3.put_object(
        Bucket=bucket, Key=f"{root}/ranking.csv", Body=charts.ranking_csv(ranked).encode(), ContentType="text/csv"
    )
    png = charts.ranking_chart(ranked, title=f"{params['study_name']}: variants ranked by F1 on the shared test set")
    s3.put_object(Bucket=bucket, Key=f"{root}/ranking.png", Body=png, ContentType="image/png")
    s3.put_object(
        Bucket=bucket,
        Key=f"{root}/results.json",
        Body=json.dumps(ranked, sort_keys=True, indent=1, default=str).encode(),
        ContentType="application/json",
    )
    best = ranked[0]
    log.info("best variant %s: F1 %s", best["variant"], best.get("f1"))
    return {
        "ranking_csv": s3uri.join(bucket, root, "ranking.csv"),
        "ranking_png": s3uri.join(bucket, root, "ranking.png"),
        "best": best,
        "best_project_arn": best["project_arn"],
        "best_version_name": best["version_name"],
    }
