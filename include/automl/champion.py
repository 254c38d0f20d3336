"""Champion/challenger for the Autopilot DAG: a fixed holdout, the champion record and the promotion decision.

Per (bucket, prefix, target), under ``s3://<bucket>/<prefix>/registry/<target slug>/``::

    holdout/features.csv       fixed held-out rows without header or target (what batch transform scores)
    holdout/labels.csv         their targets, one per line
    holdout/holdout.json       header, target, row count, source dataset and the content hash (sha256)
    champion.json              the current champion: model, candidate, job, metric, score, holdout hash, ...
    champion-scores/<holdout hash>/<model>/   a champion's transform output when its recorded score cannot be reused
    decisions/<run id>.json    one decision per DAG run (a rerun replaces its own)

The holdout is written once, from the first dataset, and never overwritten (holdout.json, written last, marks it
complete). Every later dataset loses the rows whose features are in the holdout, so scores stay comparable across
retrainings and the holdout never leaks into training. Only a promotion rewrites champion.json.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import random
import re
from dataclasses import dataclass
from typing import Any

from include import s3uri
from include.s3objects import read_json_or_none, read_or_none

log = logging.getLogger(__name__)

MAXIMIZED = frozenset({"F1", "Accuracy", "AUC", "F1macro", "R2"})
MINIMIZED = frozenset({"MSE", "RMSE", "MAE", "LogLoss"})

FIRST_MODEL, PROMOTED, KEPT = "first_model", "promoted", "kept"


# ------------------------------------------------------------------------------------------------------------------
# Layout
# ------------------------------------------------------------------------------------------------------------------
def target_slug(target: str) -> str:
    """A key-safe, collision-free name for a target column: ``Churn?`` -> ``churn-<6 hex>``."""
    readable = re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-")[:40] or "target"
    return f"{readable}-{hashlib.sha256(target.encode()).hexdigest()[:6]}"


def registry_prefix(prefix: str, target: str) -> str:
    """The key prefix (no bucket, no trailing slash) of the holdout, champion and decisions of one target."""
    return f"{prefix.strip('/')}/registry/{target_slug(target)}"


def decision_key(registry: str, run_id: str) -> str:
    """One decision object per DAG run: a rerun of the run replaces it."""
    return f"{registry}/decisions/{re.sub(r'[^A-Za-z0-9._-]', '_', run_id)}.json"


def champion_key(registry: str) -> str:
    return f"{registry}/champion.json"


# ------------------------------------------------------------------------------------------------------------------
# Fixed holdout
# ------------------------------------------------------------------------------------------------------------------
def csv_text(header: list[str] | None, rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def row_key(features: list[str]) -> str:
    """Hash of a row's features (target excluded, values stripped): relabelled copies of a holdout row match too."""
    return hashlib.sha256(json.dumps([v.strip() for v in features]).encode()).hexdigest()[:32]


def features_of(row: list[str], target_index: int) -> list[str]:
    return [v for i, v in enumerate(row) if i != target_index]


def holdout_sha(header: list[str], features_text: str, labels_text: str) -> str:
    """Content hash of a holdout: header, features and labels exactly as stored."""
    digest = hashlib.sha256()
    for part in (json.dumps(header), features_text, labels_text):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def split_holdout(rows: list[list[str]], fraction: float, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """(holdout, rest): a seeded shuffle, then the first ``fraction`` of the rows (at least one) held out."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    cut = max(1, int(len(rows) * fraction))
    return [rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]


def exclude_holdout(rows: list[list[str]], holdout_keys: set[str], target_index: int) -> tuple[list[list[str]], int]:
    """(rows whose features are not in the holdout, how many were dropped)."""
    kept = [r for r in rows if row_key(features_of(r, target_index)) not in holdout_keys]
    return kept, len(rows) - len(kept)


def align_columns(header: list[str], rows: list[list[str]], holdout_header: list[str]) -> list[list[str]]:
    """The rows in the holdout's column order; a dataset with other columns cannot be scored on that holdout."""
    if header == holdout_header:
        return rows
    if sorted(header) != sorted(holdout_header) or len(set(header)) != len(header):
        raise ValueError(
            f"ValidationException: the data's columns {header} are not the fixed holdout's {holdout_header}; "
            "use another prefix for a differently shaped dataset"
        )
    index = [header.index(c) for c in holdout_header]
    return [[r[i] for i in index] for r in rows]


def put_json(s3: Any, bucket: str, key: str, value: dict[str, Any]) -> None:
    body = json.dumps(value, indent=1, sort_keys=True, default=str).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def ensure_holdout(
    s3: Any,
    bucket: str,
    registry: str,
    header: list[str],
    rows: list[list[str]],
    target: str,
    fraction: float,
    seed: int,
    source: str,
) -> dict[str, Any]:
    """The fixed holdout of ``registry``, created from ``rows`` if there is none yet (never overwritten).

    Returns its record (``header``, ``target``, ``rows``, ``sha256``, ``source``, ``created_from``) plus ``keys``
    (the row keys of its features), ``created`` and the URIs. An existing holdout whose files no longer match the
    recorded hash fails the run: its scores would not be comparable any more.
    """
    meta_key = f"{registry}/holdout/holdout.json"
    features_key, labels_key = f"{registry}/holdout/features.csv", f"{registry}/holdout/labels.csv"
    meta = read_json_or_none(s3, bucket, meta_key)
    created = meta is None
    if meta is None:
        index = header.index(target)
        held, _ = split_holdout(rows, fraction, seed)
        features_text = csv_text(None, [features_of(r, index) for r in held])
        labels_text = "\n".join(r[index] for r in held)
        meta = {
            "header": header,
            "target": target,
            "rows": len(held),
            "sha256": holdout_sha(header, features_text, labels_text),
            "created_from": source,
            "fraction": fraction,
            "seed": seed,
        }
        s3.put_object(Bucket=bucket, Key=features_key, Body=features_text.encode())
        s3.put_object(Bucket=bucket, Key=labels_key, Body=labels_text.encode())
        put_json(s3, bucket, meta_key, meta)  # last: the holdout exists once this does
        log.info("fixed holdout created: %d rows of %s, sha256 %s", len(held), source, meta["sha256"])
    else:
        features_text = (read_or_none(s3, bucket, features_key) or b"").decode()
        labels_text = (read_or_none(s3, bucket, labels_key) or b"").decode()
        actual = holdout_sha(meta["header"], features_text, labels_text)
        if actual != meta["sha256"]:
            raise ValueError(
                f"ValidationException: s3://{bucket}/{registry}/holdout/ changed since it was recorded "
                f"(sha256 {actual} != {meta['sha256']}); scores on it would not be comparable"
            )
    keys = {row_key(r) for r in csv.reader(io.StringIO(features_text)) if r}
    return {
        **meta,
        "keys": keys,
        "created": created,
        "features_uri": s3uri.join(bucket, features_key),
        "labels_key": labels_key,
    }


# ------------------------------------------------------------------------------------------------------------------
# Scores and the decision
# ------------------------------------------------------------------------------------------------------------------
def higher_is_better(metric: str) -> bool:
    """Autopilot's objectives: F1, Accuracy, AUC, F1macro, R2 are maximized; MSE, RMSE, MAE (losses) minimized."""
    if metric in MAXIMIZED:
        return True
    if metric in MINIMIZED:
        return False
    raise ValueError(f"ValidationException: unknown objective metric {metric!r}")


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def score(metric: str, labels: list[str], rows: list[dict[str, Any]]) -> float | None:
    """The objective ``metric`` of transform output ``rows`` against ``labels`` (None when it cannot be computed,
    e.g. AUC without probabilities or with one class in the labels)."""
    from include.automl.evaluate import _default_positive, evaluate

    if len(labels) != len(rows):
        raise ValueError(f"{len(rows)} predictions for {len(labels)} labels: the output lost or added rows")
    if metric in ("MSE", "RMSE", "MAE", "R2"):
        import numpy as np

        y = np.asarray([float(v) for v in labels])
        p = np.asarray([float(r["predicted_label"]) for r in rows])
        if metric == "MAE":
            return float(np.mean(np.abs(y - p)))
        mse = float(np.mean((y - p) ** 2))
        if metric == "MSE":
            return mse
        if metric == "RMSE":
            return math.sqrt(mse)
        variance = float(np.var(y))
        return None if variance == 0 else 1.0 - mse / variance
    positive = _default_positive(sorted({str(v) for v in labels}))
    report = evaluate(labels, rows, positive=positive)
    value = {"F1": report.get("f1"), "Accuracy": report["accuracy"], "AUC": report.get("auc")}.get(
        metric, report["f1_macro"] if metric == "F1macro" else None
    )
    return _number(value)


def baseline(record: dict[str, Any] | None, run_id: str) -> dict[str, Any] | None:
    """The champion this run competes against: the one before this run's own promotion, so a rerun of a run that
    promoted compares against the same champion as its first try (and decides the same)."""
    if record and record.get("promoted_by_run") == run_id:
        return record.get("previous")
    return record


def champion_scoring(champion: dict[str, Any] | None, holdout: str, metric: str) -> str:
    """How to get the champion's score on holdout ``holdout`` (its sha256) in ``metric``: ``none`` (no champion),
    ``recorded`` (its recorded score is on this very holdout and metric) or ``rescore`` (run its transform again)."""
    if not champion:
        return "none"
    if (
        champion.get("holdout_sha") == holdout
        and champion.get("metric") == metric
        and champion.get("score") is not None
    ):
        return "recorded"
    return "rescore"


@dataclass(frozen=True)
class Decision:
    decision: str  # first_model | promoted | kept
    promoted: bool
    reason: str
    improvement: float | None  # in the metric's good direction: > 0 means the challenger is better


def decide(
    metric: str,
    challenger: float | None,
    champion: float | None,
    *,
    has_champion: bool,
    min_improvement: float = 0.0,
) -> Decision:
    """Promote only if the challenger beats the champion by more than ``min_improvement`` in the metric's direction
    (lower is better for losses); equal scores keep the champion."""
    up = higher_is_better(metric)
    challenger, champion = _number(challenger), _number(champion)
    if not has_champion:
        return Decision(FIRST_MODEL, True, "no champion yet: the first model becomes the champion", None)
    if challenger is None:
        return Decision(KEPT, False, f"the challenger has no {metric} on the holdout", None)
    if champion is None:
        return Decision(PROMOTED, True, f"the champion has no {metric} on the holdout", None)
    improvement = (challenger - champion) if up else (champion - challenger)
    direction = "higher" if up else "lower"
    compared = f"challenger {metric} {challenger:.6g} vs champion {champion:.6g} ({direction} is better)"
    # Float noise (0.8 - 0.7 > 0.1) never decides: a margin within 1e-9 of the threshold is not "more than" it.
    if improvement > min_improvement and not math.isclose(improvement, min_improvement, rel_tol=1e-9, abs_tol=1e-12):
        return Decision(PROMOTED, True, f"{compared}: better by {improvement:.6g} > {min_improvement:g}", improvement)
    if math.isclose(improvement, 0.0, abs_tol=1e-12):
        improvement = 0.0
    if improvement > 0:
        why = f"better by only {improvement:.6g}, not more than min_improvement {min_improvement:g}"
    elif improvement == 0:
        why = "no better"
    else:
        why = f"worse by {-improvement:.6g}"
    return Decision(KEPT, False, f"{compared}: {why}", improvement)


def resolve_dataset(param_uri: str, event_extras: list[dict[str, Any]]) -> tuple[str, str]:
    """(dataset URI, where it came from): the ``dataset_uri`` param wins, then the latest triggering asset event's
    ``dataset_uri``, else "" (the generated churn data, as a manual run without one always had)."""
    if param_uri:
        return param_uri, "param"
    if event_extras:
        uri = (event_extras[-1] or {}).get("dataset_uri") or ""
        if not s3uri.is_s3(uri):
            raise ValueError(
                f"ValidationException: the triggering asset event's extra has no s3:// dataset_uri: {event_extras[-1]}"
            )
        if len(event_extras) > 1:
            log.info("%d asset events since the last run: training on the latest, %s", len(event_extras), uri)
        return uri, "asset_event"
    return "", "generated"


# ------------------------------------------------------------------------------------------------------------------
# The DAG's champion steps (S3 and SageMaker clients passed in)
# ------------------------------------------------------------------------------------------------------------------
def plan_champion(params: dict[str, Any], data: dict[str, Any], run_id: str, s3: Any, sagemaker: Any) -> dict[str, Any]:
    """The champion this run competes against and how to score it; for ``rescore``, the transform config (its model
    made again from the record if it is gone)."""
    from include.automl.candidates import transform_config

    bucket = params["bucket"]
    record = read_json_or_none(s3, bucket, champion_key(data["registry"]))
    current = baseline(record, run_id)
    how = champion_scoring(current, data["holdout_sha256"], params["objective"])
    plan: dict[str, Any] = {"champion": current, "scoring": how, "transform_config": None, "predictions_uri": ""}
    if how == "rescore":
        model = current["model_name"]
        if not _model_exists(sagemaker, model):
            log.info("champion model %s is gone: creating it again from its record", model)
            sagemaker.create_model(**current["model_config"])
        predictions = f"s3://{bucket}/{data['registry']}/champion-scores/{data['holdout_sha256'][:16]}/{model}/"
        job = f"{model[:50]}-h{data['holdout_sha256'][:8]}"
        plan["transform_config"] = transform_config(job, model, data["holdout_features_uri"], predictions)
        plan["predictions_uri"] = predictions
    log.info("champion: %s, score %s", (current or {}).get("model_name", "none"), how)
    return plan


def _model_exists(sagemaker: Any, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        sagemaker.describe_model(ModelName=name)
    except ClientError as err:
        if err.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return False
        raise
    return True


def _predictions(s3: Any, uri: str, keys: list[str]) -> list[dict[str, Any]]:
    from include.automl.evaluate import parse_output

    bucket, prefix = s3uri.parse(uri)
    text = s3.get_object(Bucket=bucket, Key=f"{prefix}features.csv.out")["Body"].read().decode()
    return parse_output(text, keys)


def record_decision(
    params: dict[str, Any],
    data: dict[str, Any],
    chosen: dict[str, Any],
    plan: dict[str, Any],
    run_id: str,
    s3: Any,
) -> dict[str, Any]:
    """Score challenger and champion on the fixed holdout, decide, promote (rewrite champion.json) if the challenger
    is better, and write the run's decision; returns the decision."""
    bucket, registry, metric = params["bucket"], data["registry"], params["objective"]
    labels = s3.get_object(Bucket=bucket, Key=data["holdout_labels_key"])["Body"].read().decode().splitlines()
    challenger_score = score(metric, labels, _predictions(s3, chosen["predictions_uri"], chosen["keys"]))
    current = plan["champion"]
    champion_score, source = None, plan["scoring"]
    if source == "recorded":
        champion_score = current["score"]
    elif source == "rescore":
        rows = _predictions(s3, plan["predictions_uri"], current["response_keys"])
        champion_score, source = score(metric, labels, rows), "rescored"
    model_name = chosen["model_config"]["ModelName"]
    verdict = decide(
        metric,
        challenger_score,
        champion_score,
        has_champion=current is not None,
        min_improvement=float(params.get("min_improvement") or 0.0),
    )
    reason = verdict.reason
    if current and current["model_name"] == model_name:
        reason += " (the challenger is the champion's own model)"
    challenger = {
        "model_name": model_name,
        "candidate": chosen["candidate"],
        "job_name": data["job_name"],
        "metric": metric,
        "score": challenger_score,
        "holdout_sha": data["holdout_sha256"],
        "response_keys": list(chosen["keys"]),
        "model_config": chosen["model_config"],
        "dataset_uri": data["dataset_uri"],
        "data_sha256": data["data_sha256"],
    }
    if verdict.promoted:
        previous = {k: v for k, v in current.items() if k != "previous"} if current else None
        put_json(s3, bucket, champion_key(registry), {**challenger, "promoted_by_run": run_id, "previous": previous})
    champion_after = model_name if verdict.promoted else current["model_name"]
    key = decision_key(registry, run_id)
    decision = {
        "run_id": run_id,
        "decision": verdict.decision,
        "promoted": verdict.promoted,
        "reason": reason,
        "improvement": verdict.improvement,
        "metric": metric,
        "higher_is_better": higher_is_better(metric),
        "min_improvement": float(params.get("min_improvement") or 0.0),
        "challenger": {k: challenger[k] for k in ("model_name", "candidate", "job_name", "score")},
        "champion": None
        if current is None
        else {
            "model_name": current["model_name"],
            "candidate": current.get("candidate"),
            "job_name": current.get("job_name"),
            "score": champion_score,
            "score_source": source,
        },
        "champion_after": champion_after,
        "holdout_sha256": data["holdout_sha256"],
        "holdout_uri": data["holdout_features_uri"].rsplit("/", 1)[0] + "/",
        "holdout_rows": data["holdout_rows"],
        "dataset_uri": data["dataset_uri"],
        "dataset_source": data["dataset_source"],
        "data_sha256": data["data_sha256"],
        "train_rows": data["train_rows"],
        "excluded_rows": data["excluded_rows"],
        "champion_record": s3uri.join(bucket, champion_key(registry)),
        "decision_record": s3uri.join(bucket, key),
    }
    put_json(s3, bucket, key, decision)
    log.info("%s: %s", verdict.decision, reason)
    return decision
