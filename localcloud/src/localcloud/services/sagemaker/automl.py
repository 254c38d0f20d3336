"""SageMaker Autopilot for tabular data: CreateAutoMLJob (v1) and CreateAutoMLJobV2 (TabularJobConfig),
DescribeAutoMLJob / DescribeAutoMLJobV2, ListAutoMLJobs, ListCandidatesForAutoMLJob, StopAutoMLJob.

The training is real: localcloud's AutoML engine (``localcloud/src/localcloud/engines/automl``) searches XGBoost,
linear and MLP candidates as Autopilot's HPO mode does, in a process of the job's own (:mod:`runner`).

- Input: every object under the S3Prefix (or listed in the ManifestFile) is read as CSV with a header row;
  the objects are concatenated, each after the first having to repeat the first one's header (a folder
  marker or empty object is skipped). ``CompressionType`` Gzip is read too. A ``validation`` channel
  (ChannelType) is used as the validation set; without one, ``DataSplitConfig.ValidationFraction`` (0.2)
  of the training rows are held out. The data is checked as Autopilot checks it (500 rows at least, the
  target present, two classes at least, ...); what fails makes the job Failed with a ``ClientError:``
  FailureReason.
- Statuses: ``InProgress`` with the secondary status ``Starting``, then the engine's ``AnalyzingData``,
  ``FeatureEngineering``, ``ModelTuning``, ``GeneratingExplainabilityReport``; then ``Completed`` with
  ``MaxCandidatesReached``, ``MaxAutoMLJobRuntimeReached`` or ``Completed``, or ``Failed``/``Failed``
  with a FailureReason, or after StopAutoMLJob ``Stopping`` then ``Stopped``/``Stopped``, keeping the
  candidates trained so far (the engine stops between candidates; a job whose candidate is still training
  ``STOP_GRACE_SECONDS`` after the stop is killed, and then keeps none). GenerateCandidateDefinitionsOnly analyses the data and ends
  ``Completed``/``CandidateDefinitionsGenerated`` with the notebooks in ``AutoMLJobArtifacts``.
- Output, under ``<S3OutputPath>/<job>/``: each candidate's model as ``tuning/<candidate>/output/model.tar.gz``
  (the engine's model directory, which batch transform loads, signed by the server with its data dir's key:
  see :mod:`signing`; ``InferenceContainers[].ModelDataUrl`` names it), the best candidate's explainability report under ``documentation/explainability/output/<candidate>/``
  and the two notebooks under ``sagemaker-automl-candidates/notebooks/``. A container's ``Image`` is the
  name of the image AWS would use (:data:`IMAGE`); localcloud never pulls it and serves the model with its
  own engine whatever image a model names. ``Environment`` carries ``SAGEMAKER_INFERENCE_OUTPUT``
  (``predicted_label``) and ``SAGEMAKER_INFERENCE_SUPPORTED`` as AWS's containers do.
- Budgets: ``MaxCandidates`` (default 250) and ``MaxAutoMLJobRuntimeInSeconds`` are passed to the engine,
  the runtime capped by ``LOCALCLOUD_AUTOML_MAX_RUNTIME_SECONDS`` (default 900; AWS's default is 30 days)
  as ``ResolvedAttributes.CompletionCriteria`` shows. ``MaxRuntimePerTrainingJobInSeconds`` bounds each
  candidate. A job still running :func:`runtime_grace` past its runtime is killed and fails.
- Restarts: a job that was in progress when localcloud stopped (or crashed) is Failed on the next start with
  a reason saying so (the engine keeps no checkpoint to resume from); one that was Stopping is Stopped.
- ``LOCALCLOUD_SAGEMAKER_AUTOML_WORKERS`` (default 1) jobs train at once; the others wait ``Starting``.
- Refused with ValidationException: ModelDeployConfig that asks for an endpoint (localcloud has none),
  Mode ENSEMBLING (AUTO runs HPO here), SampleWeightAttributeName, FeatureSpecificationS3Uri,
  AlgorithmsConfig, AugmentedManifestFile and non-CSV content types, and problem types other than tabular.
  Accepted and ignored: RoleArn's permissions, KMS keys, VPC and security settings, Tags.
- ListCandidatesForAutoMLJob sorts by CreationTime by default, Ascending by default; FinalObjectiveMetricValue
  sorts the metric's raw value (Descending puts the best first for a Maximize objective). MaxResults
  defaults to 10, as on AWS. Failed candidates are listed with CandidateStatus Failed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from localcloud.core import AwsError, RequestContext, ensure_dir
from localcloud.services.s3.backend import S3Backend
from localcloud.services.sagemaker import jobs, listing, signing
from localcloud.services.sagemaker.runner import STOP
from localcloud.store import SqliteStore

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS automl_jobs (
    arn TEXT PRIMARY KEY, region TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
    created REAL NOT NULL, modified REAL NOT NULL, ended REAL, status TEXT NOT NULL, secondary TEXT NOT NULL,
    failure_reason TEXT, config TEXT NOT NULL, resolved TEXT, best TEXT, artifacts TEXT, job_dir TEXT NOT NULL,
    pid INTEGER, UNIQUE (region, name)
);
CREATE TABLE IF NOT EXISTS automl_candidates (
    job_arn TEXT NOT NULL, name TEXT NOT NULL, created REAL NOT NULL, ended REAL, status TEXT NOT NULL,
    value REAL, description TEXT NOT NULL, PRIMARY KEY (job_arn, name)
);
"""
# The image Autopilot's HPO candidates name (AWS's us-east-1 registry); never pulled by localcloud.
IMAGE = "683313688378.dkr.ecr.{region}.amazonaws.com/sagemaker-sklearn-automl:2.5-1-cpu-py3"
CLASSIFICATION_KEYS = "predicted_label,probability,labels,probabilities"
BINARY, MULTICLASS, REGRESSION = "BinaryClassification", "MulticlassClassification", "Regression"
OBJECTIVES = {
    BINARY: ("F1", "Accuracy", "AUC", "BalancedAccuracy", "Precision", "Recall"),
    MULTICLASS: ("Accuracy", "BalancedAccuracy", "F1macro", "PrecisionMacro", "RecallMacro"),
    REGRESSION: ("MSE", "RMSE", "MAE", "R2"),
}
DEFAULT_OBJECTIVE = {BINARY: "F1", MULTICLASS: "Accuracy", REGRESSION: "MSE"}
MINIMIZE = frozenset({"MSE", "RMSE", "MAE"})
# MetricName's enum; other metrics (LogLoss) are named by StandardMetricName alone.
METRIC_ENUM = frozenset(m for names in OBJECTIVES.values() for m in names)
# Secondary statuses a running job shows; the terminal ones are set with the job's end.
RUNNING_SECONDARY = frozenset(
    {"AnalyzingData", "FeatureEngineering", "ModelTuning", "GeneratingExplainabilityReport", "TrainingModels"}
)
ENDINGS = frozenset({"Completed", "MaxCandidatesReached", "MaxAutoMLJobRuntimeReached", "Stopped"})
DEFAULT_MAX_CANDIDATES = 250
STOP_GRACE_SECONDS = 30.0


def runtime_grace(runtime: float) -> float:
    """Seconds past MaxAutoMLJobRuntimeInSeconds before a job is killed (the engine stops itself in time)."""
    return max(60.0, 0.5 * runtime)


def _settings() -> tuple[int, int]:
    return (
        max(int(os.environ.get("LOCALCLOUD_SAGEMAKER_AUTOML_WORKERS", "1")), 1),
        max(int(os.environ.get("LOCALCLOUD_AUTOML_MAX_RUNTIME_SECONDS", "900")), 1),
    )


def _invalid(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def _present(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v not in (None, {}, [])}


def _objective_type(metric: str) -> str:
    return "Minimize" if metric in MINIMIZE else "Maximize"


# -- requests to one canonical configuration ---------------------------------------------------------
def _from_v1(params: dict[str, Any]) -> dict[str, Any]:
    channels = params["InputDataConfig"]
    targets = {c["TargetAttributeName"] for c in channels}
    if len(targets) != 1:
        raise _invalid("Every InputDataConfig channel must name the same TargetAttributeName.")
    job_config = params.get("AutoMLJobConfig") or {}
    generation = job_config.get("CandidateGenerationConfig") or {}
    weights = {c.get("SampleWeightAttributeName") for c in channels} - {None}
    return {
        "channels": [
            _present({k: c.get(k) for k in ("ChannelType", "ContentType", "CompressionType", "DataSource")})
            for c in channels
        ],
        "target": targets.pop(),
        "sample_weight": weights.pop() if weights else None,
        "problem_type": params.get("ProblemType"),
        "criteria": job_config.get("CompletionCriteria"),
        "mode": job_config.get("Mode"),
        "data_split": job_config.get("DataSplitConfig"),
        "security": job_config.get("SecurityConfig"),
        "feature_specification": generation.get("FeatureSpecificationS3Uri"),
        "algorithms": generation.get("AlgorithmsConfig"),
        "definitions_only": bool(params.get("GenerateCandidateDefinitionsOnly")),
        **_common(params),
    }


def _from_v2(params: dict[str, Any]) -> dict[str, Any]:
    problem = params["AutoMLProblemTypeConfig"]
    kinds = [k for k, v in problem.items() if v is not None]
    if kinds != ["TabularJobConfig"]:
        raise _invalid(f"localcloud's AutoML runs TabularJobConfig problems only; got {', '.join(kinds) or 'none'}.")
    tabular = problem["TabularJobConfig"]
    return {
        "channels": [
            _present({k: c.get(k) for k in ("ChannelType", "ContentType", "CompressionType", "DataSource")})
            for c in params["AutoMLJobInputDataConfig"]
        ],
        "target": tabular["TargetAttributeName"],
        "sample_weight": tabular.get("SampleWeightAttributeName"),
        "problem_type": tabular.get("ProblemType"),
        "criteria": tabular.get("CompletionCriteria"),
        "mode": tabular.get("Mode"),
        "data_split": params.get("DataSplitConfig"),
        "security": params.get("SecurityConfig"),
        "feature_specification": tabular.get("FeatureSpecificationS3Uri"),
        "algorithms": (tabular.get("CandidateGenerationConfig") or {}).get("AlgorithmsConfig"),
        "definitions_only": bool(tabular.get("GenerateCandidateDefinitionsOnly")),
        **_common(params),
    }


def _common(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "output": params["OutputDataConfig"],
        "role": params["RoleArn"],
        "objective": params.get("AutoMLJobObjective"),
        "deploy": params.get("ModelDeployConfig"),
        "tags": params.get("Tags"),
    }


def _check(config: dict[str, Any]) -> None:
    """What localcloud refuses at once, as AWS refuses a malformed request (data problems fail the job later)."""
    channels = config["channels"]
    kinds = [c.get("ChannelType") or "training" for c in channels]
    if kinds.count("training") != 1 or len(channels) > 2:
        raise _invalid("Give one training channel and at most one validation channel.")
    if "validation" in kinds and config["data_split"]:
        raise _invalid("DataSplitConfig cannot be given together with a validation channel.")
    for channel in channels:
        source = channel["DataSource"]["S3DataSource"]
        if source["S3DataType"] not in ("S3Prefix", "ManifestFile"):
            raise _invalid(f"localcloud's AutoML reads S3Prefix and ManifestFile data, not {source['S3DataType']}.")
        jobs.split_s3_uri(source["S3Uri"], "S3Uri")
        content = (channel.get("ContentType") or "text/csv").split(";")[0].strip().lower()
        if content != "text/csv":
            raise _invalid(f"localcloud's AutoML reads CSV (text/csv;header=present), not {channel['ContentType']}.")
    jobs.split_s3_uri(config["output"]["S3OutputPath"], "OutputDataConfig.S3OutputPath")
    deploy = config["deploy"] or {}
    if deploy.get("EndpointName") or deploy.get("AutoGenerateEndpointName"):
        raise _invalid("localcloud has no SageMaker endpoints to deploy to; leave ModelDeployConfig out.")
    if config["mode"] == "ENSEMBLING":
        raise _invalid("localcloud's AutoML runs Mode HYPERPARAMETER_TUNING (or AUTO, which runs it); not ENSEMBLING.")
    for key, what in (
        ("sample_weight", "SampleWeightAttributeName"),
        ("feature_specification", "FeatureSpecificationS3Uri"),
        ("algorithms", "AlgorithmsConfig (it searches xgboost, linear-learner and mlp)"),
    ):
        if config[key]:
            raise _invalid(f"localcloud's AutoML does not support {what}.")
    metric = (config["objective"] or {}).get("MetricName")
    problem = config["problem_type"]
    if metric and problem and metric not in OBJECTIVES[problem]:
        raise _invalid(
            f"The objective metric {metric} is not supported for problem type {problem}; use one of "
            f"{', '.join(OBJECTIVES[problem])}."
        )
    if metric and not any(metric in allowed for allowed in OBJECTIVES.values()):
        raise _invalid(f"The objective metric {metric} is not one of tabular Autopilot's.")


class AutoMLJobs:
    """Mixed into :class:`SageMakerBackend`, which owns ``_store``, ``_s3`` and ``_jobs_dir``."""

    _store: SqliteStore
    _s3: S3Backend
    _jobs_dir: Path
    _model_key: bytes

    # -- lifecycle -----------------------------------------------------------------------------------
    def _init_automl(self) -> None:
        workers, self._automl_runtime_cap = _settings()
        self._automl_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sagemaker-automl")
        self._automl_closing = threading.Event()
        for row in self._store.query("SELECT * FROM automl_jobs WHERE status IN ('InProgress', 'Stopping')"):
            jobs.end_orphans(row["pid"], Path(row["job_dir"]))  # left by a server that died without closing
            if row["status"] == "Stopping":
                self._end_automl(row["arn"], "Stopped", "Stopped", None)
            else:
                self._end_automl(row["arn"], "Failed", "Failed", _interrupted("restarted"))

    def _close_automl(self) -> None:
        self._automl_closing.set()
        for row in self._store.query("SELECT * FROM automl_jobs WHERE status IN ('InProgress', 'Stopping')"):
            # Its supervising thread sees the closing flag and leaves the job's final state to this loop.
            jobs.kill(row["pid"], Path(row["job_dir"]))
            if row["status"] == "Stopping":
                self._end_automl(row["arn"], "Stopped", "Stopped", None)
            else:
                self._end_automl(row["arn"], "Failed", "Failed", _interrupted("stopped"))
        self._automl_pool.shutdown(wait=True, cancel_futures=True)

    # -- state ---------------------------------------------------------------------------------------
    def _automl_row(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        rows = self._store.query("SELECT * FROM automl_jobs WHERE region = ? AND name = ?", (ctx.region, name))
        if not rows:
            raise AwsError("ResourceNotFound", f"Could not find AutoML job with name {name}.")
        return dict(rows[0])

    def _set_automl(self, arn: str, **columns: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._store.transaction() as db:
            db.execute(f"UPDATE automl_jobs SET {assignments} WHERE arn = ?", (*columns.values(), arn))

    def _end_automl(self, arn: str, status: str, secondary: str, reason: str | None) -> bool:
        """Record how a job ended unless it already has; whether this call did."""
        reason = jobs.failure_reason(reason)
        stamp = jobs.now()
        with self._store.transaction() as db:
            cursor = db.execute(
                "UPDATE automl_jobs SET status = ?, secondary = ?, failure_reason = ?, ended = ?, modified = ?, "
                "pid = NULL WHERE arn = ? AND status IN ('InProgress', 'Stopping')",
                (status, secondary, reason, stamp, stamp, arn),
            )
            ended = cursor.rowcount > 0
            (job_dir,) = db.execute("SELECT job_dir FROM automl_jobs WHERE arn = ?", (arn,)).fetchone()
        if ended:
            jobs.tidy(Path(job_dir))
        return ended

    # -- create --------------------------------------------------------------------------------------
    def create_auto_ml_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._create_automl(ctx, params["AutoMLJobName"], 1, _from_v1(params))

    def create_auto_ml_job_v2(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._create_automl(ctx, params["AutoMLJobName"], 2, _from_v2(params))

    def _create_automl(self, ctx: RequestContext, name: str, version: int, config: dict[str, Any]) -> dict[str, Any]:
        jobs.check_name(name, "autoMLJobName", 32)
        _check(config)
        arn = f"arn:aws:sagemaker:{ctx.region}:{ctx.account_id}:automl-job/{name.lower()}"
        if self._store.query("SELECT 1 FROM automl_jobs WHERE region = ? AND name = ?", (ctx.region, name)):
            raise AwsError(
                "ResourceInUse",
                f"Job name must be unique within an AWS account and region, and a job with this name already exists "
                f"({arn})",
            )
        criteria = config["criteria"] or {}
        runtime = min(
            criteria.get("MaxAutoMLJobRuntimeInSeconds") or self._automl_runtime_cap, self._automl_runtime_cap
        )
        resolved_criteria = _present(
            {
                "MaxCandidates": criteria.get("MaxCandidates") or DEFAULT_MAX_CANDIDATES,
                "MaxRuntimePerTrainingJobInSeconds": criteria.get("MaxRuntimePerTrainingJobInSeconds"),
                "MaxAutoMLJobRuntimeInSeconds": runtime,
            }
        )
        stamp = jobs.now()
        job_dir = ensure_dir(self._jobs_dir / f"automl-{name}-{int(stamp * 1000)}")
        spec: dict[str, Any] = {
            "kind": "automl",
            "definitions_only": config["definitions_only"],
            "engine": {
                "job_name": name,
                "target": config["target"],
                "problem_type": config["problem_type"] or "auto",
                "objective": (config["objective"] or {}).get("MetricName"),
                "max_candidates": resolved_criteria["MaxCandidates"],
                "max_runtime_seconds": runtime,
                "max_runtime_per_candidate_seconds": criteria.get("MaxRuntimePerTrainingJobInSeconds"),
                # The same job name trains the same candidates: the search's draws follow the seed.
                # Kept below a million: the engine derives each model's seed as seed * 1000 + index, which
                # scikit-learn wants below 2**32.
                "seed": int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % 1_000_000,
                "validation_fraction": (config["data_split"] or {}).get("ValidationFraction"),
            },
            "inputs": {},
            "gzip": {},
        }
        try:
            for channel in config["channels"]:
                kind = channel.get("ChannelType") or "training"
                source = channel["DataSource"]["S3DataSource"]
                found = jobs.resolve_inputs(self._s3, ctx.region, source["S3DataType"], source["S3Uri"])
                spec["inputs"][kind] = jobs.freeze_inputs(self._s3, found, job_dir / "input" / kind)
                spec["gzip"][kind] = channel.get("CompressionType") == "Gzip"
        except jobs.InputError as exc:
            spec["input_error"] = f"ClientError: {exc}"
        jobs.write_json(job_dir / jobs.SPEC, spec)
        resolved = None
        if config["problem_type"]:
            metric = (config["objective"] or {}).get("MetricName") or DEFAULT_OBJECTIVE[config["problem_type"]]
            resolved = {"ProblemType": config["problem_type"], "MetricName": metric}
        try:
            with self._store.transaction() as db:
                db.execute(
                    "INSERT INTO automl_jobs (arn, region, name, version, created, modified, status, secondary, config,"
                    " resolved, job_dir) VALUES (?, ?, ?, ?, ?, ?, 'InProgress', 'Starting', ?, ?, ?)",
                    (
                        arn,
                        ctx.region,
                        name,
                        version,
                        stamp,
                        stamp,
                        json.dumps({**config, "resolved_criteria": resolved_criteria}),
                        json.dumps(resolved) if resolved else None,
                        str(job_dir),
                    ),
                )
        except sqlite3.IntegrityError as exc:  # an identical request won the race
            shutil.rmtree(job_dir, ignore_errors=True)
            raise AwsError("ResourceInUse", f"An AutoML job named {name} already exists ({arn})") from exc
        self._automl_pool.submit(self._run_automl, arn)
        return {"AutoMLJobArn": arn}

    # -- describe and list ---------------------------------------------------------------------------
    def _candidate_rows(self, arn: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self._store.query("SELECT * FROM automl_candidates WHERE job_arn = ?", (arn,))]

    @staticmethod
    def _candidate(row: dict[str, Any]) -> dict[str, Any]:
        stamp = jobs.ts(row["ended"] or row["created"])
        return {
            **json.loads(row["description"]),
            "CandidateStatus": row["status"],
            "CreationTime": jobs.ts(row["created"]),
            "EndTime": jobs.ts(row["ended"]),
            "LastModifiedTime": stamp,
        }

    def _best(self, row: dict[str, Any]) -> dict[str, Any] | None:
        if not row["best"]:
            return None
        rows = self._store.query(
            "SELECT * FROM automl_candidates WHERE job_arn = ? AND name = ?", (row["arn"], row["best"])
        )
        return self._candidate(dict(rows[0])) if rows else None

    def _describe_common(self, row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        config = json.loads(row["config"])
        resolved = json.loads(row["resolved"]) if row["resolved"] else None
        out = {
            "AutoMLJobName": row["name"],
            "AutoMLJobArn": row["arn"],
            "OutputDataConfig": config["output"],
            "RoleArn": config["role"],
            "AutoMLJobObjective": config["objective"],
            "CreationTime": jobs.ts(row["created"]),
            "EndTime": jobs.ts(row["ended"]),
            "LastModifiedTime": jobs.ts(row["modified"]),
            "FailureReason": row["failure_reason"],
            "BestCandidate": self._best(row),
            "AutoMLJobStatus": row["status"],
            "AutoMLJobSecondaryStatus": row["secondary"],
            "AutoMLJobArtifacts": json.loads(row["artifacts"]) if row["artifacts"] else None,
            "ModelDeployConfig": config["deploy"],
        }
        return out, {"config": config, "resolved": resolved}

    def describe_auto_ml_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._automl_row(ctx, params["AutoMLJobName"])
        out, extra = self._describe_common(row)
        config, resolved = extra["config"], extra["resolved"]
        generation = _present(
            {"FeatureSpecificationS3Uri": config["feature_specification"], "AlgorithmsConfig": config["algorithms"]}
        )
        job_config = _present(
            {
                "CompletionCriteria": config["criteria"],
                "SecurityConfig": config["security"],
                "CandidateGenerationConfig": generation,
                "DataSplitConfig": config["data_split"],
                "Mode": config["mode"],
            }
        )
        out.update(
            {
                "InputDataConfig": [
                    {**c, "TargetAttributeName": config["target"], "SampleWeightAttributeName": config["sample_weight"]}
                    for c in config["channels"]
                ],
                "ProblemType": config["problem_type"],
                "AutoMLJobConfig": job_config or None,
                "GenerateCandidateDefinitionsOnly": config["definitions_only"],
            }
        )
        if resolved:
            out["ResolvedAttributes"] = {
                "AutoMLJobObjective": {"MetricName": resolved["MetricName"]},
                "ProblemType": resolved["ProblemType"],
                "CompletionCriteria": config["resolved_criteria"],
            }
        return out

    def describe_auto_ml_job_v2(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._automl_row(ctx, params["AutoMLJobName"])
        out, extra = self._describe_common(row)
        config, resolved = extra["config"], extra["resolved"]
        tabular = _present(
            {
                "CandidateGenerationConfig": _present({"AlgorithmsConfig": config["algorithms"]}),
                "CompletionCriteria": config["criteria"],
                "FeatureSpecificationS3Uri": config["feature_specification"],
                "Mode": config["mode"],
                "GenerateCandidateDefinitionsOnly": config["definitions_only"] or None,
                "ProblemType": config["problem_type"],
                "TargetAttributeName": config["target"],
                "SampleWeightAttributeName": config["sample_weight"],
            }
        )
        out.update(
            {
                "AutoMLJobInputDataConfig": config["channels"],
                "AutoMLProblemTypeConfig": {"TabularJobConfig": tabular},
                "AutoMLProblemTypeConfigName": "Tabular",
                "DataSplitConfig": config["data_split"],
                "SecurityConfig": config["security"],
            }
        )
        if resolved:
            out["ResolvedAttributes"] = {
                "AutoMLJobObjective": {"MetricName": resolved["MetricName"]},
                "CompletionCriteria": config["resolved_criteria"],
                "AutoMLProblemTypeResolvedAttributes": {
                    "TabularResolvedAttributes": {"ProblemType": resolved["ProblemType"]}
                },
            }
        return out

    def list_auto_ml_jobs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rows = [dict(r) for r in self._store.query("SELECT * FROM automl_jobs WHERE region = ?", (ctx.region,))]
        taken, more = listing.job_page(rows, params, default_sort="Name")
        summaries = [
            {
                "AutoMLJobName": r["name"],
                "AutoMLJobArn": r["arn"],
                "AutoMLJobStatus": r["status"],
                "AutoMLJobSecondaryStatus": r["secondary"],
                "CreationTime": jobs.ts(r["created"]),
                "EndTime": jobs.ts(r["ended"]),
                "LastModifiedTime": jobs.ts(r["modified"]),
                "FailureReason": r["failure_reason"],
            }
            for r in taken
        ]
        return {"AutoMLJobSummaries": summaries, **more}

    def list_candidates_for_auto_ml_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._automl_row(ctx, params["AutoMLJobName"])
        rows = [
            r
            for r in self._candidate_rows(row["arn"])
            if params.get("StatusEquals") in (None, r["status"])
            and params.get("CandidateNameEquals") in (None, r["name"])
        ]
        keys = {
            "CreationTime": lambda r: (r["created"],),
            "Status": lambda r: (r["status"],),
            # Candidates without a value (failed ones) sort below every value.
            "FinalObjectiveMetricValue": lambda r: (0, 0.0) if r["value"] is None else (1, r["value"]),
        }
        taken, more = listing.page(
            rows, params, keys, default_sort="CreationTime", default_order="Ascending", max_results=300
        )
        return {"Candidates": [self._candidate(r) for r in taken], **more}

    def stop_auto_ml_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = self._automl_row(ctx, params["AutoMLJobName"])
        if row["status"] == "Stopping":
            return {}
        if row["status"] != "InProgress":
            raise _invalid(f"The AutoML job {row['name']} is {row['status']}; only a job in progress can be stopped.")
        self._set_automl(row["arn"], status="Stopping", secondary="Stopping", modified=jobs.now())
        # The engine stops between candidates, keeping those it trained (see the runner).
        (Path(row["job_dir"]) / STOP).touch()
        return {}

    # -- the job -------------------------------------------------------------------------------------
    def _on_progress(self, arn: str, progress: dict[str, Any]) -> None:
        secondary = progress.get("secondary")
        info = progress.get("info") or {}
        columns: dict[str, Any] = {}
        if secondary in RUNNING_SECONDARY:
            columns["secondary"] = secondary
        if isinstance(info, dict) and info.get("problem_type") and isinstance(info.get("objective"), dict):
            # AWS resolves the problem type and objective once the data is analysed, before tuning.
            columns["resolved"] = json.dumps(
                {"ProblemType": info["problem_type"], "MetricName": info["objective"]["MetricName"]}
            )
        if not columns:
            return
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._store.transaction() as db:
            db.execute(
                f"UPDATE automl_jobs SET {assignments}, modified = ? WHERE arn = ? AND status = 'InProgress'",
                (*columns.values(), jobs.now(), arn),
            )

    def _run_automl(self, arn: str) -> None:
        """Supervise one job's process and publish what it made."""
        rows = self._store.query("SELECT * FROM automl_jobs WHERE arn = ?", (arn,))
        if not rows or self._automl_closing.is_set():
            return
        row = dict(rows[0])
        if row["status"] == "Stopping":
            self._end_automl(arn, "Stopped", "Stopped", None)
            return
        if row["status"] != "InProgress":
            return
        job_dir = Path(row["job_dir"])
        try:
            spec = jobs.read_json(job_dir / jobs.SPEC)
            problem = spec.get("input_error") or jobs.output_problem(
                self._s3, row["region"], json.loads(row["config"])["output"]["S3OutputPath"]
            )
            if problem:
                self._end_automl(arn, "Failed", "Failed", problem)
                return
            runtime = spec["engine"]["max_runtime_seconds"]
            proc = jobs.start(job_dir)
            self._set_automl(arn, pid=proc.pid)
            stop_by: list[float] = []

            def stop_overdue() -> bool:
                # A stop is obeyed between candidates; one candidate may not hold it up for long.
                if not (job_dir / STOP).exists():
                    return False
                if not stop_by:
                    stop_by.append(time.monotonic() + STOP_GRACE_SECONDS)
                return time.monotonic() > stop_by[0]

            ended = jobs.wait(
                proc,
                job_dir,
                on_progress=lambda progress: self._on_progress(arn, progress),
                deadline=time.monotonic() + runtime + runtime_grace(runtime),
                kill_when=stop_overdue,
            )
            if self._automl_closing.is_set():
                return
            result = jobs.read_json(job_dir / jobs.RESULT)
            stopping = self._store.query("SELECT status FROM automl_jobs WHERE arn = ?", (arn,))[0]["status"]
            if result is None:
                if stopping == "Stopping":
                    self._end_automl(arn, "Stopped", "Stopped", None)
                elif ended == "deadline":
                    self._end_automl(
                        arn,
                        "Failed",
                        "Failed",
                        f"The job ran {runtime_grace(runtime):.0f} s past MaxAutoMLJobRuntimeInSeconds ({runtime} s) "
                        "and was stopped before it finished.",
                    )
                else:
                    self._end_automl(
                        arn,
                        "Failed",
                        "Failed",
                        f"AlgorithmError: The job ended without a result (exit {proc.returncode}).",
                    )
                return
            if result["status"] != "ok":
                self._end_automl(arn, "Failed", "Failed", result["reason"])
                return
            self._publish_automl(row, result, stopping == "Stopping")
        except AwsError as exc:  # S3 refused an upload (the output bucket went away meanwhile, say)
            self._end_automl(
                arn, "Failed", "Failed", f"ClientError: Could not write the job's output: {exc.code}: {exc.message}"
            )
        except Exception as exc:  # never leave a job in progress
            log.exception("AutoML job %s failed", arn)
            self._end_automl(arn, "Failed", "Failed", f"InternalServerError: {exc}")

    def _publish_automl(self, row: dict[str, Any], outcome: dict[str, Any], stopped: bool) -> None:
        """Upload the candidates' artifacts, record them and end the job."""
        arn, region = row["arn"], row["region"]
        config = json.loads(row["config"])
        base = jobs.join_s3(config["output"]["S3OutputPath"], row["name"])
        result = outcome["result"]
        artifacts = {}
        for key, path in (outcome.get("notebooks") or {}).items():
            uri = jobs.join_s3(base, "sagemaker-automl-candidates", "notebooks", Path(path).name)
            jobs.upload(self._s3, region, uri, Path(path))
            artifacts[key] = uri
        resolved = {"ProblemType": result["problem_type"], "MetricName": result["objective"]["MetricName"]}
        if outcome.get("definitions_only"):
            self._set_automl(arn, resolved=json.dumps(resolved), artifacts=json.dumps(artifacts))
            self._end_automl(arn, "Completed", "CandidateDefinitionsGenerated", None)
            return

        objective = result["objective"]
        explain_uri = None
        if result.get("explainability_report") and result.get("best"):
            explain_uri = jobs.join_s3(base, "documentation", "explainability", "output", result["best"])
            path = Path(result["explainability_report"])
            jobs.upload(self._s3, region, jobs.join_s3(explain_uri, path.name), path)
        ended = {e["name"]: e["at"] for e in outcome.get("events") or []}
        started = outcome.get("started") or row["created"]
        keys = CLASSIFICATION_KEYS if result["problem_type"] != REGRESSION else "predicted_label"
        records = []
        for candidate in result.get("candidates") or []:
            name = candidate["CandidateName"]
            uri = jobs.join_s3(base, "tuning", name, "output", "model.tar.gz")
            artifact = Path(outcome["artifacts"][name])
            # Signed by the server, not the job: the key never leaves this process (see :mod:`signing`).
            signing.sign_artifact(artifact, artifact, self._model_key)
            jobs.upload(self._s3, region, uri, artifact)
            end = ended.get(name, started)
            description = {
                "CandidateName": name,
                "FinalAutoMLJobObjectiveMetric": {
                    "Type": objective["Type"],
                    "MetricName": objective["MetricName"],
                    "Value": candidate["ObjectiveValue"],
                    "StandardMetricName": objective["MetricName"],
                },
                "ObjectiveStatus": "Succeeded",
                "CandidateSteps": _steps(row, name),
                "InferenceContainers": [
                    {
                        "Image": IMAGE.format(region=region),
                        "ModelDataUrl": uri,
                        "Environment": {
                            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
                            "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label",
                            "SAGEMAKER_INFERENCE_SUPPORTED": keys,
                            "SAGEMAKER_PROGRAM": "sagemaker_serve",
                            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                        },
                    }
                ],
                "CandidateProperties": {
                    "CandidateMetrics": [
                        _present(
                            {
                                "MetricName": metric if metric in METRIC_ENUM else None,
                                "StandardMetricName": metric,
                                "Value": value,
                                "Set": "Validation",
                            }
                        )
                        for metric, value in sorted((candidate.get("Metrics") or {}).items())
                        if isinstance(value, int | float)
                    ],
                    **(
                        {"CandidateArtifactLocations": {"Explainability": explain_uri}}
                        if explain_uri and name == result["best"]
                        else {}
                    ),
                },
            }
            seconds = float(candidate.get("TrainingSeconds") or 0.0)
            records.append((arn, name, end - seconds, end, "Completed", candidate["ObjectiveValue"], description))
        for failed in result.get("failed_candidates") or []:
            name = failed["CandidateName"]
            end = ended.get(name, started)
            description = {
                "CandidateName": name,
                "ObjectiveStatus": "Failed",
                "CandidateSteps": _steps(row, name),
                "FailureReason": failed.get("FailureReason"),
            }
            records.append((arn, name, end, end, "Failed", None, description))
        with self._store.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO automl_candidates VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*r[:6], json.dumps(r[6])) for r in records],
            )
            db.execute(
                "UPDATE automl_jobs SET resolved = ?, best = ?, artifacts = ? WHERE arn = ?",
                (json.dumps(resolved), result.get("best"), json.dumps(artifacts), arn),
            )
        engine_end = result.get("secondary_status")
        if stopped or engine_end == "Stopped":
            self._end_automl(arn, "Stopped", "Stopped", None)
        else:
            self._end_automl(arn, "Completed", engine_end if engine_end in ENDINGS else "Completed", None)


def _steps(row: dict[str, Any], candidate: str) -> list[dict[str, str]]:
    """The candidate's training job, as Autopilot names each candidate after the training job that made it."""
    account_region = row["arn"].split(":automl-job/")[0]
    return [
        {
            "CandidateStepType": "AWS::SageMaker::TrainingJob",
            "CandidateStepArn": f"{account_region}:training-job/{candidate.lower()}",
            "CandidateStepName": candidate,
        }
    ]


def _interrupted(event: str) -> str:
    return (
        f"InternalServerError: localcloud {event} while this job was in progress, which ended it (the engine keeps "
        "no checkpoint to resume from). Create the job again under a new name."
    )
