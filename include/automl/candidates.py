"""Autopilot candidates: list them ranked, choose one, and turn it into CreateModel / CreateTransformJob configs.

What the provider operators lack. The model config follows the SageMaker Python SDK's ``AutoML.create_model``:
the candidate's inference containers, with ``SAGEMAKER_INFERENCE_OUTPUT`` set to the response keys wanted (each key
must be one the container lists in ``SAGEMAKER_INFERENCE_SUPPORTED``).
"""

from __future__ import annotations

from typing import Any

RESPONSE_KEYS = ("predicted_label", "probability", "labels", "probabilities")


class CandidateError(ValueError):
    """An AWS-shaped refusal: ``code`` is the error code AWS would answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def existing_job_status(sagemaker: Any, job_name: str) -> str | None:
    """The AutoML job's status, or None when there is no such job."""
    from botocore.exceptions import ClientError

    try:
        return sagemaker.describe_auto_ml_job(AutoMLJobName=job_name)["AutoMLJobStatus"]
    except ClientError as err:
        if err.response["Error"]["Code"] in ("ResourceNotFound", "ValidationException"):
            return None
        raise


def drop_model(sagemaker: Any, model_name: str) -> bool:
    """Delete the model of that name if it exists (CreateModel refuses an existing name); True if it did."""
    from botocore.exceptions import ClientError

    try:
        sagemaker.delete_model(ModelName=model_name)
    except ClientError as err:
        if err.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return False
        raise
    return True


MINIMIZED = frozenset({"MSE", "RMSE", "MAE", "LogLoss", "InferenceLatency"})


def _descending(candidate: dict[str, Any]) -> bool:
    """Higher is better unless the candidate's metric says Minimize (or is an error metric)."""
    metric = candidate["FinalAutoMLJobObjectiveMetric"]
    if metric.get("Type"):
        return metric["Type"] == "Maximize"
    return metric.get("MetricName") not in MINIMIZED


def list_candidates(sagemaker: Any, job_name: str) -> list[dict[str, Any]]:
    """Every completed candidate of the job, best first by its final objective (direction from the metric)."""
    candidates: list[dict[str, Any]] = []
    token = None
    while True:
        request: dict[str, Any] = {
            "AutoMLJobName": job_name,
            "SortBy": "FinalObjectiveMetricValue",
            "StatusEquals": "Completed",
            "MaxResults": 100,
        }
        if token:
            request["NextToken"] = token
        page = sagemaker.list_candidates_for_auto_ml_job(**request)
        candidates += page.get("Candidates", [])
        token = page.get("NextToken")
        if not token:
            break
    if not candidates:
        raise CandidateError("ValidationException", f"AutoML job {job_name} has no completed candidates")
    # Sorted here, by the metric's own direction, so the order never depends on a server's sort or tie-breaking.
    sign = -1 if _descending(candidates[0]) else 1
    candidates.sort(key=lambda c: (sign * c["FinalAutoMLJobObjectiveMetric"]["Value"], c["CandidateName"]))
    return candidates


def choose(candidates: list[dict[str, Any]], name: str | None = None) -> dict[str, Any]:
    """The best candidate, or the one called ``name``."""
    if not name:
        return candidates[0]
    for candidate in candidates:
        if candidate["CandidateName"] == name:
            return candidate
    known = ", ".join(c["CandidateName"] for c in candidates[:10])
    raise CandidateError("ResourceNotFound", f"candidate {name!r} is not a completed candidate of this job ({known})")


def model_config(candidate: dict[str, Any], model_name: str, role_arn: str, response_keys: list[str]) -> dict:
    """CreateModel for ``candidate`` answering with ``response_keys`` (in that order)."""
    keys = list(dict.fromkeys(response_keys))
    unknown = [k for k in keys if k not in RESPONSE_KEYS]
    if not keys or unknown:
        raise CandidateError("ValidationException", f"response keys must be some of {RESPONSE_KEYS}, got {keys}")
    containers = []
    for container in candidate["InferenceContainers"]:
        environment = dict(container.get("Environment") or {})
        supported = [k for k in environment.get("SAGEMAKER_INFERENCE_SUPPORTED", "").split(",") if k]
        if supported:
            missing = [k for k in keys if k not in supported]
            if missing:
                raise CandidateError(
                    "ValidationException",
                    f"{candidate['CandidateName']} cannot answer with {missing}: its container supports {supported}",
                )
            environment["SAGEMAKER_INFERENCE_OUTPUT"] = ",".join(keys)
        containers.append(
            {"Image": container["Image"], "ModelDataUrl": container["ModelDataUrl"], "Environment": environment}
        )
    return {"ModelName": model_name, "Containers": containers, "ExecutionRoleArn": role_arn}


def transform_config(job_name: str, model_name: str, input_s3: str, output_s3: str) -> dict:
    """CreateTransformJob: CSV lines in, one answer line per input line out."""
    return {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_s3}},
            "ContentType": "text/csv",
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {"S3OutputPath": output_s3, "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
