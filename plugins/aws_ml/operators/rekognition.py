"""Rekognition Custom Labels operators, shaped like the Amazon provider's (AwsBaseOperator, template fields)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.amazon.aws.utils.waiter_with_logging import wait
from airflow.providers.common.compat.sdk import AirflowException, AirflowSkipException
from botocore.exceptions import ClientError

from aws_ml.evaluation import gate_decision, label_f1
from aws_ml.hooks.rekognition import RekognitionHook
from aws_ml.triggers.rekognition import RekognitionProjectVersionRunningTrigger, RekognitionTrainingCompleteTrigger


class RekognitionCreateProjectOperator(AwsBaseOperator[RekognitionHook]):
    """Create a Custom Labels project, or return the existing one of that name. Returns the project ARN."""

    aws_hook_class = RekognitionHook
    template_fields: Sequence[str] = aws_template_fields("project_name")

    def __init__(self, *, project_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project_name = project_name

    def execute(self, context: Any) -> str:
        existing = self.hook.describe_project(self.project_name)
        if existing:
            self.log.info("Project %s already exists: %s", self.project_name, existing["ProjectArn"])
            return existing["ProjectArn"]
        try:
            arn = self.hook.conn.create_project(ProjectName=self.project_name)["ProjectArn"]
        except ClientError as err:  # created by a concurrent run between our look-up and the create
            if err.response["Error"]["Code"] != "ResourceInUseException":
                raise
            arn = self.hook.describe_project(self.project_name)["ProjectArn"]
        self.log.info("Created project %s", arn)
        return arn


class RekognitionCreateDatasetOperator(AwsBaseOperator[RekognitionHook]):
    """Create a project's TRAIN or TEST dataset from a Ground Truth manifest in S3 and wait until it is ready.

    With ``replace`` (the default) an existing dataset of that type is deleted first, so a rerun or a new dataset
    version always imports ``manifest``; without it an existing, complete dataset is kept. A manifest Rekognition
    refuses fails the task with Rekognition's status message. Returns the dataset ARN.
    """

    aws_hook_class = RekognitionHook
    template_fields: Sequence[str] = aws_template_fields(
        "project_arn", "dataset_type", "manifest_bucket", "manifest_key"
    )

    def __init__(
        self,
        *,
        project_arn: str,
        dataset_type: str,
        manifest_bucket: str,
        manifest_key: str,
        replace: bool = True,
        wait_for_completion: bool = True,
        waiter_delay: int = 5,
        waiter_max_attempts: int = 120,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project_arn = project_arn
        self.dataset_type = dataset_type
        self.manifest_bucket = manifest_bucket
        self.manifest_key = manifest_key
        self.replace = replace
        self.wait_for_completion = wait_for_completion
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts

    def execute(self, context: Any) -> str:
        if self.dataset_type not in ("TRAIN", "TEST"):
            raise ValueError(f"dataset_type must be TRAIN or TEST, not {self.dataset_type!r}")
        existing = self.hook.find_dataset(self.project_arn, self.dataset_type)
        if existing and not self.replace and existing["Status"] != "CREATE_FAILED":
            self.log.info("Keeping the existing %s dataset %s", self.dataset_type, existing["DatasetArn"])
            arn = existing["DatasetArn"]
        else:
            if existing:
                self.log.info("Replacing the %s dataset %s", self.dataset_type, existing["DatasetArn"])
                if existing["Status"] == "CREATE_IN_PROGRESS":
                    self._settle(existing["DatasetArn"])  # an import in progress cannot be deleted
                self.hook.conn.delete_dataset(DatasetArn=existing["DatasetArn"])
            source = {"GroundTruthManifest": {"S3Object": {"Bucket": self.manifest_bucket, "Name": self.manifest_key}}}
            arn = self.hook.conn.create_dataset(
                ProjectArn=self.project_arn, DatasetType=self.dataset_type, DatasetSource=source
            )["DatasetArn"]
            self.log.info(
                "Creating %s dataset %s from s3://%s/%s",
                self.dataset_type,
                arn,
                self.manifest_bucket,
                self.manifest_key,
            )
        if self.wait_for_completion:
            self._wait(arn)
            stats = self.hook.conn.describe_dataset(DatasetArn=arn)["DatasetDescription"].get("DatasetStats", {})
            self.log.info("Dataset %s is ready: %s", arn, stats)
        return arn

    def _wait(self, arn: str) -> None:
        wait(
            waiter=self.hook.get_waiter("dataset_create_complete"),
            waiter_delay=self.waiter_delay,
            waiter_max_attempts=self.waiter_max_attempts,
            args={"DatasetArn": arn},
            failure_message=f"Dataset {arn} was not created",
            status_message="Dataset status",
            status_args=["DatasetDescription.Status", "DatasetDescription.StatusMessage"],
        )

    def _settle(self, arn: str) -> None:
        """Wait for an import to end either way: a failed old import is about to be replaced anyway."""
        try:
            self._wait(arn)
        except AirflowException:
            status = self.hook.conn.describe_dataset(DatasetArn=arn)["DatasetDescription"]["Status"]
            if status != "CREATE_FAILED":
                raise


class _ProjectVersionOperator(AwsBaseOperator[RekognitionHook]):
    aws_hook_class = RekognitionHook
    template_fields: Sequence[str] = aws_template_fields("project_arn", "version_name")

    def __init__(
        self,
        *,
        project_arn: str,
        version_name: str,
        wait_for_completion: bool = True,
        deferrable: bool = False,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 360,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project_arn = project_arn
        self.version_name = version_name
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts

    def _wait(self, waiter_name: str, trigger_class: type) -> None:
        if self.deferrable:
            self.defer(
                trigger=trigger_class(
                    project_arn=self.project_arn,
                    version_name=self.version_name,
                    waiter_delay=self.waiter_delay,
                    waiter_max_attempts=self.waiter_max_attempts,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                ),
                method_name="execute_complete",
            )
        try:
            wait(
                waiter=self.hook.get_waiter(waiter_name),
                waiter_delay=self.waiter_delay,
                waiter_max_attempts=self.waiter_max_attempts,
                args={"ProjectArn": self.project_arn, "VersionNames": [self.version_name]},
                failure_message=f"Project version {self.version_name} failed",
                status_message=f"Project version {self.version_name}",
                status_args=["ProjectVersionDescriptions[0].Status", "ProjectVersionDescriptions[0].StatusMessage"],
            )
        except AirflowException as err:
            version = self.hook.describe_version(self.project_arn, self.version_name) or {}
            raise AirflowException(f"{err}: {version.get('Status')}: {version.get('StatusMessage')}") from err

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> str:
        if not event or event.get("status") != "success":
            version = self.hook.describe_version(self.project_arn, self.version_name) or {}
            raise AirflowException(f"Project version {self.version_name}: {event}; {version.get('StatusMessage')}")
        return self.hook.describe_version(self.project_arn, self.version_name)["ProjectVersionArn"]


class RekognitionTrainProjectVersionOperator(_ProjectVersionOperator):
    """Train a model version from the project's TRAIN and TEST datasets; a rerun reuses the same version.

    The evaluation summary lands under ``s3://<output_bucket>/<output_prefix>``. A version that failed training
    fails the task with Rekognition's status message (train under a new ``version_name`` to retry). Returns the
    project version ARN.
    """

    template_fields: Sequence[str] = aws_template_fields(
        "project_arn", "version_name", "output_bucket", "output_prefix"
    )

    def __init__(self, *, output_bucket: str, output_prefix: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("waiter_delay", 30)
        super().__init__(**kwargs)
        self.output_bucket = output_bucket
        self.output_prefix = output_prefix

    def execute(self, context: Any) -> str:
        version = self.hook.describe_version(self.project_arn, self.version_name)
        if version is None:
            output = {"S3Bucket": self.output_bucket, "S3KeyPrefix": self.output_prefix}
            arn = self.hook.conn.create_project_version(
                ProjectArn=self.project_arn, VersionName=self.version_name, OutputConfig=output
            )["ProjectVersionArn"]
            self.log.info("Training %s", arn)
        else:
            arn = version["ProjectVersionArn"]
            self.log.info("Version %s exists (%s); not training it again", arn, version["Status"])
            if version["Status"] == "TRAINING_FAILED":
                raise AirflowException(f"{arn} failed training: {version.get('StatusMessage')}")
            if version["Status"] != "TRAINING_IN_PROGRESS":
                # Trained already, and maybe started or stopped since: the training waiter would never match.
                return arn
        if self.wait_for_completion:
            self._wait("project_version_training_completed", RekognitionTrainingCompleteTrigger)
        return arn


class RekognitionStartProjectVersionOperator(_ProjectVersionOperator):
    """Start a version (blue/green): wait until it is RUNNING, then stop every other running version of the project.

    Returns the started version's ARN.
    """

    template_fields: Sequence[str] = aws_template_fields("project_arn", "version_name", "min_inference_units")

    def __init__(self, *, min_inference_units: int = 1, stop_others: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("waiter_delay", 10)
        super().__init__(**kwargs)
        self.min_inference_units = min_inference_units
        self.stop_others = stop_others

    def execute(self, context: Any) -> str:
        version = self.hook.describe_version(self.project_arn, self.version_name)
        if version is None:
            raise AirflowException(f"No version {self.version_name} in {self.project_arn}")
        if version["Status"] not in ("RUNNING", "STARTING"):
            self.hook.conn.start_project_version(
                ProjectVersionArn=version["ProjectVersionArn"], MinInferenceUnits=int(self.min_inference_units)
            )
        self._wait("project_version_running", RekognitionProjectVersionRunningTrigger)
        return self._stop_others(version["ProjectVersionArn"])

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> str:
        return self._stop_others(super().execute_complete(context, event))

    def _stop_others(self, arn: str) -> str:
        if self.stop_others:
            for other in self.hook.conn.describe_project_versions(ProjectArn=self.project_arn)[
                "ProjectVersionDescriptions"
            ]:
                if other["ProjectVersionArn"] != arn and other["Status"] in ("RUNNING", "STARTING"):
                    self.log.info("Stopping the previous version %s", other["ProjectVersionArn"])
                    self.hook.conn.stop_project_version(ProjectVersionArn=other["ProjectVersionArn"])
        return arn


class RekognitionEvaluationGateOperator(AwsBaseOperator[RekognitionHook]):
    """Pass a trained version only if its F1 (and, optionally, every label's F1) reaches the thresholds.

    Reads ``EvaluationResult.F1Score`` and the per-label summary file from S3. Below threshold the task fails,
    or with ``soft_fail`` is skipped so that downstream deployment short-circuits. Returns the scores.
    """

    aws_hook_class = RekognitionHook
    template_fields: Sequence[str] = aws_template_fields(
        "project_arn", "version_name", "min_f1", "min_label_f1", "soft_fail"
    )

    def __init__(
        self,
        *,
        project_arn: str,
        version_name: str,
        min_f1: float,
        min_label_f1: float | None = None,
        soft_fail: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project_arn = project_arn
        self.version_name = version_name
        self.min_f1 = min_f1
        self.min_label_f1 = min_label_f1
        self.soft_fail = soft_fail

    def execute(self, context: Any) -> dict[str, Any]:
        version = self.hook.describe_version(self.project_arn, self.version_name)
        if not version or "EvaluationResult" not in version:
            raise AirflowException(f"Version {self.version_name} has no evaluation result")
        location = version["EvaluationResult"]["Summary"]["S3Object"]
        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        summary = json.loads(s3.get_object(Bucket=location["Bucket"], Key=location["Name"])["Body"].read())

        # Thresholds and soft_fail may arrive rendered from params, as text when the DAG renders no native objects.
        soft_fail = self.soft_fail is True or str(self.soft_fail).lower() in ("true", "1")
        scores = {"f1": version["EvaluationResult"]["F1Score"], "labels": label_f1(summary)}
        decision = gate_decision(scores["f1"], scores["labels"], self.min_f1, self.min_label_f1)
        if not decision["passed"]:
            message = f"Version {self.version_name} below the gate: " + "; ".join(decision["failures"])
            if soft_fail:
                raise AirflowSkipException(message)
            raise AirflowException(message)
        self.log.info("Version %s passes the gate: %s", self.version_name, scores)
        return scores


class RekognitionDetectCustomLabelsOperator(AwsBaseOperator[RekognitionHook]):
    """Smoke-check a serving version: DetectCustomLabels on sample images in S3.

    ``images`` are ``s3://bucket/key`` URIs. With ``expected_labels`` (URI -> label names, e.g. from a test
    manifest) each image counts as a hit when its most confident label is one of its expected labels, and the
    task fails below ``min_hit_rate``. A version that is not RUNNING fails with Rekognition's own error. Returns
    the detections per image and the hit rate.
    """

    aws_hook_class = RekognitionHook
    template_fields: Sequence[str] = aws_template_fields(
        "project_version_arn", "images", "expected_labels", "min_confidence", "min_hit_rate"
    )

    def __init__(
        self,
        *,
        project_version_arn: str,
        images: Sequence[str],
        min_confidence: float = 50.0,
        max_results: int | None = None,
        expected_labels: dict[str, Sequence[str]] | None = None,
        min_hit_rate: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project_version_arn = project_version_arn
        self.images = images
        self.min_confidence = min_confidence
        self.max_results = max_results
        self.expected_labels = expected_labels
        self.min_hit_rate = min_hit_rate

    def execute(self, context: Any) -> dict[str, Any]:
        if not self.images:
            raise AirflowException("No sample images to smoke-check")
        results = []
        for uri in self.images:
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            if not uri.startswith("s3://") or not bucket or not key:
                raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
            request: dict[str, Any] = {
                "ProjectVersionArn": self.project_version_arn,
                "Image": {"S3Object": {"Bucket": bucket, "Name": key}},
                "MinConfidence": float(self.min_confidence),
            }
            if self.max_results:
                request["MaxResults"] = int(self.max_results)
            try:
                labels = self.hook.conn.detect_custom_labels(**request)["CustomLabels"]
            except ClientError as err:
                error = err.response["Error"]
                raise AirflowException(f"DetectCustomLabels on {uri}: {error['Code']}: {error.get('Message')}") from err
            results.append(
                {
                    "image": uri,
                    "labels": [
                        {
                            "name": label["Name"],
                            "confidence": round(label["Confidence"], 3),
                            "box": label.get("Geometry", {}).get("BoundingBox"),
                        }
                        for label in labels
                    ],
                }
            )
        summary: dict[str, Any] = {"images": len(results), "detections": results}
        if self.expected_labels is not None:
            hits = sum(
                1
                for r in results
                if r["labels"]
                and max(r["labels"], key=lambda x: x["confidence"])["name"]
                in set(self.expected_labels.get(r["image"], ()))
            )
            summary["hit_rate"] = round(hits / len(results), 4)
            self.log.info("Top label matches the expected labels on %d of %d images", hits, len(results))
            if summary["hit_rate"] < float(self.min_hit_rate):
                raise AirflowException(
                    f"Smoke check: hit rate {summary['hit_rate']:.3f} < {self.min_hit_rate} on {len(results)} images"
                )
        for r in results:  # the five most confident: a low MinConfidence can return hundreds
            top = sorted(r["labels"], key=lambda x: -x["confidence"])[:5]
            self.log.info(
                "%s: %d label(s), top %s", r["image"], len(r["labels"]), [(x["name"], x["confidence"]) for x in top]
            )
        return summary
