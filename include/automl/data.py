"""The Autopilot DAG's data steps: split the training CSV, name the run's jobs, and write the evaluation report.

Layout under ``s3://<bucket>/<prefix>/<job slug>/`` (the slug hashes the params that decide the AutoML job and the
training data itself)::

    train/train.csv            header + rows, target included (what Autopilot reads): the dataset minus the rows
                               whose features are in the fixed holdout
    output/                    Autopilot's output (candidates' model artifacts)
    predictions/<deployment>/features.csv.out     per (candidate, response keys)
    report/<deployment>/evaluation.json, pr_curve.png

The held-out rows are the fixed holdout of (bucket, prefix, target) under ``<prefix>/registry/<target slug>/holdout/``
(see ``include.automl.champion``): written from the first dataset, never overwritten.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from typing import Any

from include import s3uri
from include.automl import champion

log = logging.getLogger(__name__)


# What decides the AutoML job, with the training data's hash: the same values and data reuse the same job, in any
# run (choosing another candidate or other response keys needs no new job; new data at the same URI makes a new one).
JOB_PARAMS = (
    "target",
    "problem_type",
    "objective",
    "max_candidates",
    "max_runtime_seconds",
)


def _digest(value: Any, length: int = 10) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]


def job_slug(params: dict[str, Any], train_sha: str = "") -> str:
    """AutoML job names are at most 32 characters of [a-zA-Z0-9-]: a hash of the inputs that decide the job."""
    return _digest({**{k: params.get(k) for k in JOB_PARAMS}, "train_sha256": train_sha})


def deployment_slug(candidate: str, keys: list[str]) -> str:
    """Model and transform names per (candidate, response keys)."""
    return _digest([candidate, list(keys)], 6)


def _source_rows(params: dict[str, Any], s3: Any) -> tuple[list[str], list[list[str]]]:
    if params.get("dataset_uri"):
        bucket, key = s3uri.parse(params["dataset_uri"])
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        reader = list(csv.reader(io.StringIO(text)))
        if not reader:
            raise ValueError(f"ValidationException: {params['dataset_uri']} is empty")
        return reader[0], [r for r in reader[1:] if r]
    from include.datagen.churn import generate

    records = generate(rows=int(params["rows"]), seed=int(params["seed"]))
    header = list(records[0])
    return header, [[str(r[c]) for c in header] for r in records]


def prepare(params: dict[str, Any], s3: Any, dataset_source: str = "") -> dict[str, Any]:
    """Drop the fixed holdout's rows from the data (creating the holdout from the first dataset), upload the
    training set, and return every name and URI the run uses."""
    header, rows = _source_rows(params, s3)
    target = params["target"]
    if target not in header:
        raise ValueError(f"ValidationException: target column {target!r} is not in the data's columns {header}")
    bad = [n for n, r in enumerate(rows, start=2) if len(r) != len(header)]
    if bad:
        raise ValueError(f"ValidationException: rows {bad[:10]} do not have the header's {len(header)} columns")
    source = params.get("dataset_uri") or f"generated churn rows={params['rows']} seed={params['seed']}"
    data_sha = hashlib.sha256(champion.csv_text(header, rows).encode()).hexdigest()

    bucket = params["bucket"]
    registry = champion.registry_prefix(params["prefix"], target)
    holdout = champion.ensure_holdout(
        s3, bucket, registry, header, rows, target, float(params["holdout_fraction"]), int(params["seed"]), source
    )
    header, rows = holdout["header"], champion.align_columns(header, rows, holdout["header"])
    train, excluded = champion.exclude_holdout(rows, holdout["keys"], header.index(target))
    if not train:
        raise ValueError(f"ValidationException: every row of {source} is in the fixed holdout; nothing to train on")
    train_text = champion.csv_text(header, train)
    slug = job_slug(params, hashlib.sha256(train_text.encode()).hexdigest())
    root = f"{params['prefix'].strip('/')}/{slug}"
    s3.put_object(Bucket=bucket, Key=f"{root}/train/train.csv", Body=train_text.encode())
    completion = {"MaxCandidates": int(params["max_candidates"])}
    completion["MaxAutoMLJobRuntimeInSeconds"] = int(params["max_runtime_seconds"])
    extras: dict[str, Any] = {
        "AutoMLJobObjective": {"MetricName": params["objective"]},
        "AutoMLJobConfig": {"CompletionCriteria": completion},
    }
    if params["problem_type"] != "auto":
        extras["ProblemType"] = params["problem_type"]
    log.info(
        "%d training rows (%d dropped: in the fixed holdout), %d held out (sha256 %s), under s3://%s/%s",
        len(train),
        excluded,
        holdout["rows"],
        holdout["sha256"],
        bucket,
        root,
    )
    return {
        "job_name": f"ap-{slug}",
        "root": root,
        "registry": registry,
        "dataset_uri": params.get("dataset_uri") or "",
        "dataset_source": dataset_source or ("param" if params.get("dataset_uri") else "generated"),
        "data_sha256": data_sha,
        "train_uri": f"s3://{bucket}/{root}/train/",
        "output_uri": f"s3://{bucket}/{root}/output/",
        "holdout_features_uri": holdout["features_uri"],
        "holdout_labels_key": holdout["labels_key"],
        "holdout_sha256": holdout["sha256"],
        "holdout_created": holdout["created"],
        "automl_extras": extras,
        "train_rows": len(train),
        "excluded_rows": excluded,
        "holdout_rows": holdout["rows"],
    }


def describe_dataset(s3: Any, dataset_uri: str, target: str = "") -> dict[str, Any]:
    """The extra of a labelled-data asset event: the CSV's URI, row count and sha256 (checked to be a CSV with a
    header, and with the ``target`` column when one is given)."""
    try:
        s3uri.parse(dataset_uri)
    except ValueError:
        raise ValueError(f"ValidationException: dataset_uri must be s3://bucket/key.csv, got {dataset_uri!r}") from None
    header, rows = _source_rows({"dataset_uri": dataset_uri}, s3)
    if target and target not in header:
        raise ValueError(f"ValidationException: target column {target!r} is not in {dataset_uri}'s columns {header}")
    return {
        "dataset_uri": dataset_uri,
        "rows": len(rows),
        "sha256": hashlib.sha256(champion.csv_text(header, rows).encode()).hexdigest(),
    }


def write_report(params: dict[str, Any], data: dict[str, Any], chosen: dict[str, Any], s3: Any) -> dict[str, Any]:
    """Score the transform output against the held-out labels; report JSON and PR curve PNG to S3."""
    from include.automl.evaluate import evaluate, parse_output, pr_curve_png

    bucket = params["bucket"]
    labels = s3.get_object(Bucket=bucket, Key=data["holdout_labels_key"])["Body"].read().decode().splitlines()
    out_bucket, out_prefix = s3uri.parse(chosen["predictions_uri"])
    out_key = f"{out_prefix}features.csv.out"
    text = s3.get_object(Bucket=out_bucket, Key=out_key)["Body"].read().decode()
    rows = parse_output(text, chosen["keys"])
    if "predicted_label" not in chosen["keys"]:
        raise ValueError("the evaluation needs predicted_label among the inference response keys")
    report = evaluate(labels, rows)
    report |= {
        "candidate": chosen["candidate"],
        "candidate_rank": chosen["rank"],
        "candidate_objective": chosen["objective"],
        "ranking": chosen["ranking"],
        "job_name": data["job_name"],
        "predictions": s3uri.join(out_bucket, out_key),
    }
    prefix = chosen["report_prefix"]
    png = pr_curve_png(report, f"{chosen['candidate']} on {len(labels)} held-out rows")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/pr_curve.png", Body=png, ContentType="image/png")
    summary = {k: v for k, v in report.items() if k != "pr_curve"}
    body = json.dumps(report, indent=1, sort_keys=True, default=str).encode()
    s3.put_object(Bucket=bucket, Key=f"{prefix}/evaluation.json", Body=body, ContentType="application/json")
    summary["report"] = f"s3://{bucket}/{prefix}/evaluation.json"
    summary["pr_curve_png"] = f"s3://{bucket}/{prefix}/pr_curve.png"
    log.info(
        "%s (rank %d): F1 %s, accuracy %.3f, AUC %s",
        chosen["candidate"],
        chosen["rank"],
        report.get("f1"),
        report["accuracy"],
        report.get("auc"),
    )
    return summary
