"""The Autopilot DAG's data steps: split the training CSV, name the run's jobs, and write the evaluation report.

Layout under ``s3://<bucket>/<prefix>/<job slug>/`` (the slug hashes the params that decide the AutoML job)::

    train/train.csv            header + rows, target included (what Autopilot reads)
    holdout/features.csv       held-out rows without header or target (what batch transform scores)
    holdout/labels.csv         their targets, one per line
    output/                    Autopilot's output (candidates' model artifacts)
    predictions/<deployment>/features.csv.out     per (candidate, response keys)
    report/<deployment>/evaluation.json, pr_curve.png
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import random
from typing import Any

log = logging.getLogger(__name__)


# What decides the AutoML job: the same values reuse the same job, in any run (choosing another candidate or other
# response keys needs no new job).
JOB_PARAMS = (
    "dataset_uri",
    "rows",
    "target",
    "problem_type",
    "objective",
    "max_candidates",
    "max_runtime_seconds",
    "holdout_fraction",
    "seed",
)


def _digest(value: Any, length: int = 10) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]


def job_slug(params: dict[str, Any]) -> str:
    """AutoML job names are at most 32 characters of [a-zA-Z0-9-]: a hash of the inputs that decide the job."""
    return _digest({k: params.get(k) for k in JOB_PARAMS})


def deployment_slug(candidate: str, keys: list[str]) -> str:
    """Model and transform names per (candidate, response keys)."""
    return _digest([candidate, list(keys)], 6)


def _csv_text(header: list[str] | None, rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _source_rows(params: dict[str, Any], s3: Any) -> tuple[list[str], list[list[str]]]:
    if params.get("dataset_uri"):
        bucket, key = params["dataset_uri"].removeprefix("s3://").split("/", 1)
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        reader = list(csv.reader(io.StringIO(text)))
        if not reader:
            raise ValueError(f"ValidationException: {params['dataset_uri']} is empty")
        return reader[0], [r for r in reader[1:] if r]
    from include.datagen.churn import generate

    records = generate(rows=int(params["rows"]), seed=int(params["seed"]))
    header = list(records[0])
    return header, [[str(r[c]) for c in header] for r in records]


def prepare(params: dict[str, Any], s3: Any) -> dict[str, Any]:
    """Split and upload the data; return every name and URI the run uses."""
    header, rows = _source_rows(params, s3)
    target = params["target"]
    if target not in header:
        raise ValueError(f"ValidationException: target column {target!r} is not in the data's columns {header}")
    bad = [n for n, r in enumerate(rows, start=2) if len(r) != len(header)]
    if bad:
        raise ValueError(f"ValidationException: rows {bad[:10]} do not have the header's {len(header)} columns")
    index = header.index(target)
    order = list(range(len(rows)))
    random.Random(int(params["seed"])).shuffle(order)
    cut = max(1, int(len(rows) * float(params["holdout_fraction"])))
    holdout, train = [rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]

    bucket, slug = params["bucket"], job_slug(params)
    root = f"{params['prefix'].strip('/')}/{slug}"
    s3.put_object(Bucket=bucket, Key=f"{root}/train/train.csv", Body=_csv_text(header, train).encode())
    features = [[v for i, v in enumerate(r) if i != index] for r in holdout]
    s3.put_object(Bucket=bucket, Key=f"{root}/holdout/features.csv", Body=_csv_text(None, features).encode())
    s3.put_object(Bucket=bucket, Key=f"{root}/holdout/labels.csv", Body="\n".join(r[index] for r in holdout).encode())
    completion = {"MaxCandidates": int(params["max_candidates"])}
    completion["MaxAutoMLJobRuntimeInSeconds"] = int(params["max_runtime_seconds"])
    extras: dict[str, Any] = {
        "AutoMLJobObjective": {"MetricName": params["objective"]},
        "AutoMLJobConfig": {"CompletionCriteria": completion},
    }
    if params["problem_type"] != "auto":
        extras["ProblemType"] = params["problem_type"]
    log.info("%d training rows, %d held out, under s3://%s/%s", len(train), len(holdout), bucket, root)
    return {
        "job_name": f"ap-{slug}",
        "root": root,
        "train_uri": f"s3://{bucket}/{root}/train/",
        "output_uri": f"s3://{bucket}/{root}/output/",
        "holdout_features_uri": f"s3://{bucket}/{root}/holdout/features.csv",
        "holdout_labels_key": f"{root}/holdout/labels.csv",
        "automl_extras": extras,
        "train_rows": len(train),
        "holdout_rows": len(holdout),
    }


def write_report(params: dict[str, Any], data: dict[str, Any], chosen: dict[str, Any], s3: Any) -> dict[str, Any]:
    """Score the transform output against the held-out labels; report JSON and PR curve PNG to S3."""
    from include.automl.evaluate import evaluate, parse_output, pr_curve_png

    bucket = params["bucket"]
    labels = s3.get_object(Bucket=bucket, Key=data["holdout_labels_key"])["Body"].read().decode().splitlines()
    out_bucket, out_prefix = chosen["predictions_uri"].removeprefix("s3://").split("/", 1)
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
        "predictions": f"s3://{out_bucket}/{out_key}",
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
