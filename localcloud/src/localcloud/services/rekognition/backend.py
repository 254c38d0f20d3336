"""Rekognition Custom Labels: projects and their datasets, imported from Ground Truth manifests in S3.

A dataset imports asynchronously, as on AWS: CreateDataset answers at once with CREATE_IN_PROGRESS, a worker
thread reads the manifest and its images from localcloud's S3, and DescribeDataset then reports
CREATE_COMPLETE or CREATE_FAILED. Lines that Rekognition would reject are kept and counted in ErrorEntries
(ListDatasetEntries(HasErrors=True) returns them), never silently dropped. An import interrupted by a restart
runs again when the next server starts, so no dataset stays in progress forever.

Project versions train a real detector (``localcloud/src/localcloud/engines/detector``) in a process of their own,
supervised from a worker thread; the evaluation summary goes to the version's OutputConfig in S3. A version that
was training when the server stopped is marked TRAINING_FAILED with the reason on the next start (its process is
killed): it is never left in progress. Status changes follow AWS, so boto3's Rekognition waiters work.
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcloud.core import AwsError, RequestContext, ensure_dir
from localcloud.services.rekognition import training
from localcloud.services.rekognition.manifest import image_facts, parse_entry, read_manifest
from localcloud.services.s3.backend import S3Backend
from localcloud.store import SqliteStore

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    arn TEXT PRIMARY KEY, region TEXT NOT NULL, name TEXT NOT NULL, created REAL NOT NULL, feature TEXT NOT NULL,
    UNIQUE (region, name)
);
CREATE TABLE IF NOT EXISTS datasets (
    arn TEXT PRIMARY KEY, project_arn TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '', message_code TEXT NOT NULL DEFAULT '', created REAL NOT NULL,
    updated REAL NOT NULL, source TEXT NOT NULL, stats TEXT NOT NULL DEFAULT '{}',
    UNIQUE (project_arn, type)
);
CREATE TABLE IF NOT EXISTS versions (
    arn TEXT PRIMARY KEY, project_arn TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '', created REAL NOT NULL, ended REAL, output TEXT NOT NULL,
    job_dir TEXT NOT NULL, pid INTEGER, f1 REAL, summary_key TEXT, thresholds TEXT NOT NULL DEFAULT '{}',
    min_units INTEGER, UNIQUE (project_arn, name)
);
CREATE TABLE IF NOT EXISTS entries (
    dataset_arn TEXT NOT NULL, position INTEGER NOT NULL, line TEXT NOT NULL, source_ref TEXT NOT NULL,
    labels TEXT NOT NULL, errors TEXT NOT NULL, PRIMARY KEY (dataset_arn, position)
);
"""
MAX_RESULTS = 100
INTERRUPTED = "localcloud {event} while this version was training, so its job was stopped. Train a new version."


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _page(params: dict[str, Any], total: int, limit_cap: int = MAX_RESULTS) -> tuple[int, int]:
    """(offset, limit) from NextToken/MaxResults; tokens are offsets, opaque to clients."""
    try:
        offset = int(params.get("NextToken") or 0)
    except ValueError as exc:
        raise AwsError("InvalidPaginationTokenException", "Invalid pagination token.") from exc
    if not 0 <= offset <= total:
        raise AwsError("InvalidPaginationTokenException", "Invalid pagination token.")
    return offset, min(params.get("MaxResults") or limit_cap, limit_cap)


def _next_token(offset: int, limit: int, total: int) -> dict[str, str]:
    return {"NextToken": str(offset + limit)} if offset + limit < total else {}


class RekognitionBackend:
    def __init__(self, data_dir: Path, s3: S3Backend) -> None:
        self._store = SqliteStore(ensure_dir(Path(data_dir)) / "rekognition.sqlite", SCHEMA)
        self._s3 = s3
        # Imports run off the request threads, like every long job in localcloud.
        self._jobs = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rekognition-import")
        for (arn,) in self._store.query("SELECT arn FROM datasets WHERE status = 'CREATE_IN_PROGRESS'"):
            log.info("resuming the import of %s, interrupted by a restart", arn)
            self._jobs.submit(self._import, arn)
        self._jobs_dir = ensure_dir(Path(data_dir) / "rekognition-jobs")
        self._detectors: dict[str, Any] = {}
        self._recover_versions()

    def close(self) -> None:
        for arn, pid in self._store.query("SELECT arn, pid FROM versions WHERE status = 'TRAINING_IN_PROGRESS'"):
            # Say why before the process dies, so its supervising thread finds a final state and leaves it be.
            self._set_version(arn, "TRAINING_FAILED", INTERRUPTED.format(event="stopped"), ended=time.time())
            training.kill(pid)
        self._jobs.shutdown(wait=True, cancel_futures=True)
        self._store.close()

    # -- projects ----------------------------------------------------------------------------------
    def _project(self, arn: str) -> dict[str, Any]:
        rows = self._store.query("SELECT * FROM projects WHERE arn = ?", (arn,))
        if not rows:
            raise AwsError("ResourceNotFoundException", f"The project {arn} does not exist.")
        return dict(rows[0])

    def create_project(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, now = params["ProjectName"], time.time()
        arn = f"arn:aws:rekognition:{ctx.region}:{ctx.account_id}:project/{name}/{int(now * 1000)}"
        with self._store.transaction() as db:
            if db.execute("SELECT 1 FROM projects WHERE region = ? AND name = ?", (ctx.region, name)).fetchone():
                raise AwsError("ResourceInUseException", f"A project named {name} already exists.")
            feature = params.get("Feature") or "CUSTOM_LABELS"
            db.execute("INSERT INTO projects VALUES (?, ?, ?, ?, ?)", (arn, ctx.region, name, now, feature))
        return {"ProjectArn": arn}

    def describe_projects(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rows = self._store.query("SELECT * FROM projects WHERE region = ? ORDER BY created DESC", (ctx.region,))
        names, features = params.get("ProjectNames"), params.get("Features")
        rows = [r for r in rows if (not names or r["name"] in names) and (not features or r["feature"] in features)]
        offset, limit = _page(params, len(rows))
        descriptions = []
        for row in rows[offset : offset + limit]:
            datasets = self._store.query("SELECT * FROM datasets WHERE project_arn = ? ORDER BY type", (row["arn"],))
            descriptions.append(
                {
                    "ProjectArn": row["arn"],
                    "CreationTimestamp": _ts(row["created"]),
                    "Status": "CREATED",
                    "Feature": row["feature"],
                    "Datasets": [
                        {
                            "CreationTimestamp": _ts(d["created"]),
                            "DatasetType": d["type"],
                            "DatasetArn": d["arn"],
                            "Status": d["status"],
                            "StatusMessage": d["message"] or None,
                            "StatusMessageCode": d["message_code"] or None,
                        }
                        for d in datasets
                    ],
                }
            )
        return {"ProjectDescriptions": descriptions, **_next_token(offset, limit, len(rows))}

    def delete_project(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["ProjectArn"]
        self._project(arn)
        with self._store.transaction() as db:
            if db.execute("SELECT 1 FROM versions WHERE project_arn = ?", (arn,)).fetchone():
                raise AwsError("ResourceInUseException", "Delete the project's models before the project.")
            if db.execute(
                "SELECT 1 FROM datasets WHERE project_arn = ? AND status = 'CREATE_IN_PROGRESS'", (arn,)
            ).fetchone():
                raise AwsError("ResourceInUseException", "The project has a dataset that is still being created.")
            for (dataset,) in db.execute("SELECT arn FROM datasets WHERE project_arn = ?", (arn,)).fetchall():
                db.execute("DELETE FROM entries WHERE dataset_arn = ?", (dataset,))
            db.execute("DELETE FROM datasets WHERE project_arn = ?", (arn,))
            db.execute("DELETE FROM projects WHERE arn = ?", (arn,))
        return {"Status": "DELETING"}

    # -- datasets ----------------------------------------------------------------------------------
    def _dataset(self, arn: str) -> dict[str, Any]:
        rows = self._store.query("SELECT * FROM datasets WHERE arn = ?", (arn,))
        if not rows:
            raise AwsError("ResourceNotFoundException", f"The dataset {arn} does not exist.")
        return dict(rows[0])

    def create_dataset(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        project = self._project(params["ProjectArn"])
        source = params.get("DatasetSource") or {}
        if source.get("DatasetArn"):
            raise AwsError("InvalidParameterException", "localcloud creates datasets from manifests only.")
        s3_object = (source.get("GroundTruthManifest") or {}).get("S3Object")
        if not s3_object or not s3_object.get("Bucket") or not s3_object.get("Name"):
            raise AwsError("InvalidParameterException", "DatasetSource needs GroundTruthManifest.S3Object.")
        self._s3.readable_object_file(s3_object["Bucket"], s3_object["Name"])
        kind, now = params["DatasetType"], time.time()
        arn = f"{project['arn'].rsplit('/', 1)[0]}/dataset/{kind.lower()}/{int(now * 1000)}"
        with self._store.transaction() as db:
            if db.execute(
                "SELECT 1 FROM datasets WHERE project_arn = ? AND type = ?", (project["arn"], kind)
            ).fetchone():
                raise AwsError("ResourceAlreadyExistsException", f"The project already has a {kind} dataset.")
            db.execute(
                "INSERT INTO datasets (arn, project_arn, type, status, created, updated, source) "
                "VALUES (?, ?, ?, 'CREATE_IN_PROGRESS', ?, ?, ?)",
                (arn, project["arn"], kind, now, now, json.dumps(s3_object)),
            )
        self._jobs.submit(self._import, arn)
        return {"DatasetArn": arn}

    def _import(self, arn: str) -> None:
        """Read, check and store every manifest line; then mark the dataset complete or failed."""
        try:
            dataset = self._dataset(arn)
            status, code, message, stats = self._read_manifest(arn, json.loads(dataset["source"]))
        except AwsError:
            return  # the dataset was deleted meanwhile
        except Exception as exc:  # a bug of ours must still leave the dataset in a final state
            log.exception("import of %s failed", arn)
            status, code, message, stats = "CREATE_FAILED", "SERVICE_ERROR", f"Internal error: {exc}", {}
        with self._store.transaction() as db:
            db.execute(
                "UPDATE datasets SET status = ?, message_code = ?, message = ?, stats = ?, updated = ? WHERE arn = ?",
                (status, code, message, json.dumps(stats), time.time(), arn),
            )

    def _probe(self, bucket: str, key: str) -> Any:
        try:
            return image_facts(self._s3.object_file(bucket, key))
        except AwsError as exc:
            return f"s3://{bucket}/{key}: {exc.code}"

    def _read_manifest(self, arn: str, s3_object: dict[str, str]) -> tuple[str, str, str, dict[str, int]]:
        try:
            text = self._s3.object_file(s3_object["Bucket"], s3_object["Name"]).read_text(encoding="utf-8")
        except (AwsError, UnicodeDecodeError) as exc:
            return "CREATE_FAILED", "CLIENT_ERROR", f"The manifest file could not be read: {exc}", {}
        manifest = read_manifest(text, probe=self._probe)
        rows = [
            (arn, e.number, e.raw, e.source_ref, json.dumps(e.labels), json.dumps(e.problems)) for e in manifest.entries
        ]
        names = {label for e in manifest.entries for label in e.labels}
        stats = {
            "TotalEntries": len(rows),
            "ErrorEntries": sum(bool(e.problems) for e in manifest.entries),
            "LabeledEntries": sum(bool(e.labels) for e in manifest.entries),
            "TotalLabels": len(names),
        }
        if manifest.problems or stats["TotalEntries"] == stats["ErrorEntries"]:
            reason = "; ".join(manifest.problems) or "the manifest file has no valid JSON line"
            return "CREATE_FAILED", "CLIENT_ERROR", f"The manifest file is invalid: {reason}", stats
        with self._store.transaction() as db:
            db.execute("DELETE FROM entries WHERE dataset_arn = ?", (arn,))
            db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?)", rows)
        return "CREATE_COMPLETE", "SUCCESS", "The dataset was successfully created from the manifest file.", stats

    def describe_dataset(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        dataset = self._dataset(params["DatasetArn"])
        return {
            "DatasetDescription": {
                "CreationTimestamp": _ts(dataset["created"]),
                "LastUpdatedTimestamp": _ts(dataset["updated"]),
                "Status": dataset["status"],
                "StatusMessage": dataset["message"] or None,
                "StatusMessageCode": dataset["message_code"] or None,
                "DatasetStats": json.loads(dataset["stats"]) or None,
            }
        }

    def delete_dataset(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        dataset = self._dataset(params["DatasetArn"])
        if dataset["status"] == "CREATE_IN_PROGRESS":
            raise AwsError("ResourceInUseException", "The dataset is still being created.")
        with self._store.transaction() as db:
            db.execute("DELETE FROM entries WHERE dataset_arn = ?", (dataset["arn"],))
            db.execute("DELETE FROM datasets WHERE arn = ?", (dataset["arn"],))
        return {}

    def _ready(self, arn: str) -> dict[str, Any]:
        dataset = self._dataset(arn)
        if dataset["status"] == "CREATE_IN_PROGRESS":
            raise AwsError("ResourceNotReadyException", "The dataset is still being created.")
        return dataset

    def list_dataset_entries(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        dataset = self._ready(params["DatasetArn"])
        rows = self._store.query("SELECT * FROM entries WHERE dataset_arn = ? ORDER BY position", (dataset["arn"],))
        wanted = set(params.get("ContainsLabels") or [])
        selected = []
        for row in rows:
            names, problems = json.loads(row["labels"]), json.loads(row["errors"])
            if params.get("HasErrors") is not None and bool(problems) != params["HasErrors"]:
                continue
            if params.get("Labeled") is not None and bool(names) != params["Labeled"]:
                continue
            if params.get("SourceRefContains") and params["SourceRefContains"] not in row["source_ref"]:
                continue
            if wanted and not wanted & set(names):
                continue
            selected.append(row["line"])
        offset, limit = _page(params, len(selected))
        return {"DatasetEntries": selected[offset : offset + limit], **_next_token(offset, limit, len(selected))}

    def list_dataset_labels(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        dataset = self._ready(params["DatasetArn"])
        entries, boxes = Counter(), Counter()
        for (labels,) in self._store.query("SELECT labels FROM entries WHERE dataset_arn = ?", (dataset["arn"],)):
            names = json.loads(labels)
            boxes.update(names)
            entries.update(set(names))
        ordered = sorted(entries)
        offset, limit = _page(params, len(ordered))
        return {
            "DatasetLabelDescriptions": [
                {"LabelName": name, "LabelStats": {"EntryCount": entries[name], "BoundingBoxCount": boxes[name]}}
                for name in ordered[offset : offset + limit]
            ],
            **_next_token(offset, limit, len(ordered)),
        }

    # -- project versions (models) -----------------------------------------------------------------
    def _recover_versions(self) -> None:
        for row in self._store.query(
            "SELECT arn, pid, status FROM versions WHERE status IN ('TRAINING_IN_PROGRESS', 'STARTING', 'STOPPING')"
        ):
            if row["status"] == "TRAINING_IN_PROGRESS":
                training.kill(row["pid"])
                self._set_version(
                    row["arn"], "TRAINING_FAILED", INTERRUPTED.format(event="restarted"), ended=time.time()
                )
            else:  # a model loads lazily on the first DetectCustomLabels, so STARTING can finish now
                self._set_version(row["arn"], "RUNNING" if row["status"] == "STARTING" else "STOPPED")

    def _set_version(self, arn: str, status: str, message: str = "", **columns: Any) -> None:
        assignments = "".join(f", {name} = ?" for name in columns)
        with self._store.transaction() as db:
            db.execute(
                f"UPDATE versions SET status = ?, message = ?{assignments} WHERE arn = ?",
                (status, message, *columns.values(), arn),
            )

    def _version(self, arn: str) -> dict[str, Any]:
        rows = self._store.query("SELECT * FROM versions WHERE arn = ?", (arn,))
        if not rows:
            raise AwsError("ResourceNotFoundException", f"The project version {arn} does not exist.")
        return dict(rows[0])

    def _complete_dataset(self, project_arn: str, kind: str) -> dict[str, Any]:
        rows = self._store.query("SELECT * FROM datasets WHERE project_arn = ? AND type = ?", (project_arn, kind))
        if not rows or rows[0]["status"] != "CREATE_COMPLETE":
            raise AwsError("InvalidParameterException", f"The project needs a {kind} dataset in CREATE_COMPLETE.")
        return dict(rows[0])

    def _valid_lines(self, dataset_arn: str) -> list[str]:
        rows = self._store.query(
            "SELECT line FROM entries WHERE dataset_arn = ? AND errors = '[]' ORDER BY position", (dataset_arn,)
        )
        return [row["line"] for row in rows]

    def create_project_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        project = self._project(params["ProjectArn"])
        if params.get("TrainingData") or params.get("TestingData"):
            raise AwsError("InvalidParameterException", "localcloud trains from the project's TRAIN and TEST datasets.")
        train_lines = self._valid_lines(self._complete_dataset(project["arn"], "TRAIN")["arn"])
        test_lines = self._valid_lines(self._complete_dataset(project["arn"], "TEST")["arn"])
        labels = sorted({name for raw in train_lines for name in parse_entry(raw).labels})
        if not labels:
            raise AwsError("InvalidParameterException", "The TRAIN dataset has no labelled boxes.")
        names = {name: i for i, name in enumerate(labels)}
        unknown = {n for raw in test_lines for n in parse_entry(raw).labels} - set(names)
        if unknown:
            raise AwsError("InvalidParameterException", f"TEST labels missing from TRAIN: {sorted(unknown)}")
        version, now = params["VersionName"], time.time()
        if self._store.query("SELECT 1 FROM versions WHERE project_arn = ? AND name = ?", (project["arn"], version)):
            raise AwsError("ResourceInUseException", f"The version {version} already exists.")
        arn = f"{project['arn'].rsplit('/', 1)[0]}/version/{version}/{int(now * 1000)}"
        job_dir = self._jobs_dir / f"{project['name']}-{version}-{int(now * 1000)}"
        image_file = self._s3.object_file
        training.write_spec(
            job_dir,
            training.samples(train_lines, image_file, names),
            training.samples(test_lines, image_file, names),
            labels,
        )
        try:
            with self._store.transaction() as db:
                db.execute(
                    "INSERT INTO versions (arn, project_arn, name, status, created, output, job_dir) "
                    "VALUES (?, ?, ?, 'TRAINING_IN_PROGRESS', ?, ?, ?)",
                    (arn, project["arn"], version, now, json.dumps(params["OutputConfig"]), str(job_dir)),
                )
        except sqlite3.IntegrityError as exc:  # UNIQUE (project_arn, name): an identical request won the race
            raise AwsError("ResourceInUseException", f"The version {version} already exists.") from exc
        self._jobs.submit(self._train, arn, job_dir, ctx.region)
        return {"ProjectVersionArn": arn}

    def _train(self, arn: str, job_dir: Path, region: str) -> None:
        try:
            process = training.start(job_dir)
            self._set_version(arn, "TRAINING_IN_PROGRESS", pid=process.pid)
            process.wait()
            if self._version(arn)["status"] != "TRAINING_IN_PROGRESS":
                return  # deleted or recovered meanwhile
            outcome = training.result(job_dir)
            if outcome["status"] != "ok":
                self._set_version(arn, "TRAINING_FAILED", outcome["reason"], ended=time.time())
                return
            self._publish(arn, outcome["summary"], region)
        except AwsError as exc:
            self._set_version(arn, "TRAINING_FAILED", exc.message, ended=time.time())
        except Exception as exc:  # never leave a version in progress
            log.exception("training %s failed", arn)
            self._set_version(arn, "TRAINING_FAILED", f"Internal error: {exc}", ended=time.time())

    def _publish(self, arn: str, summary: dict[str, Any], region: str) -> None:
        version = self._version(arn)
        output = json.loads(version["output"])
        prefix = (output.get("S3KeyPrefix") or "").strip("/")
        key = "/".join(filter(None, [prefix, f"EvaluationResultSummary-{version['name']}.json"]))
        body = json.dumps(summary, indent=1, sort_keys=True).encode()
        self._s3.put_object(RequestContext(region=region), {"Bucket": output["S3Bucket"], "Key": key, "Body": body})
        thresholds = {r["Label"]: r["Metrics"]["Threshold"] for r in summary["LabelEvaluationResults"]}
        self._set_version(
            arn,
            "TRAINING_COMPLETED",
            "The model is ready to run.",
            ended=time.time(),
            f1=summary["EvaluationResult"]["F1Score"],
            summary_key=key,
            thresholds=json.dumps(thresholds),
        )

    def describe_project_versions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        project = self._project(params["ProjectArn"])
        rows = self._store.query(
            "SELECT * FROM versions WHERE project_arn = ? ORDER BY created DESC", (project["arn"],)
        )
        wanted = params.get("VersionNames")
        rows = [r for r in rows if not wanted or r["name"] in wanted]
        offset, limit = _page(params, len(rows))
        return {
            "ProjectVersionDescriptions": [self._describe_version(dict(r)) for r in rows[offset : offset + limit]],
            **_next_token(offset, limit, len(rows)),
        }

    def _describe_version(self, row: dict[str, Any]) -> dict[str, Any]:
        output = json.loads(row["output"])
        described: dict[str, Any] = {
            "ProjectVersionArn": row["arn"],
            "CreationTimestamp": _ts(row["created"]),
            "Status": row["status"],
            "StatusMessage": row["message"] or None,
            "OutputConfig": output,
            "MinInferenceUnits": row["min_units"],
        }
        if row["ended"]:
            described["TrainingEndTimestamp"] = _ts(row["ended"])
            described["BillableTrainingTimeInSeconds"] = int(row["ended"] - row["created"])
        if row["f1"] is not None:
            described["EvaluationResult"] = {
                "F1Score": row["f1"],
                "Summary": {"S3Object": {"Bucket": output["S3Bucket"], "Name": row["summary_key"]}},
            }
        return described

    def start_project_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        version = self._version(params["ProjectVersionArn"])
        if version["status"] not in ("TRAINING_COMPLETED", "STOPPED"):
            raise AwsError("ResourceInUseException", f"The version is {version['status']}; it cannot start.")
        self._set_version(version["arn"], "STARTING", min_units=params["MinInferenceUnits"])
        self._jobs.submit(self._load, version["arn"])
        return {"Status": "STARTING"}

    def _load(self, arn: str) -> None:
        try:
            self._detector(arn)
            self._set_version(arn, "RUNNING", "The model is running.")
        except Exception as exc:
            log.exception("loading %s failed", arn)
            self._set_version(arn, "FAILED", f"The model could not be loaded: {exc}")

    def _detector(self, arn: str) -> tuple[Any, dict[int, str]]:
        """The loaded model and its class id -> label name map, cached while the version runs."""
        if arn not in self._detectors:
            from localcloud.engines.detector import load
            from localcloud.engines.detector.job import MODEL, SPEC

            job_dir = Path(self._version(arn)["job_dir"])
            names = {int(k): v for k, v in json.loads((job_dir / SPEC).read_text())["class_names"].items()}
            self._detectors[arn] = (load(job_dir / MODEL), names)
        return self._detectors[arn]

    def stop_project_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        version = self._version(params["ProjectVersionArn"])
        if version["status"] not in ("RUNNING", "STARTING"):
            raise AwsError("ResourceInUseException", f"The version is {version['status']}; it is not running.")
        self._set_version(version["arn"], "STOPPING")
        self._detectors.pop(version["arn"], None)
        self._set_version(version["arn"], "STOPPED", "The model is stopped.")
        return {"Status": "STOPPING"}

    def delete_project_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        version = self._version(params["ProjectVersionArn"])
        if version["status"] in ("RUNNING", "STARTING", "TRAINING_IN_PROGRESS"):
            raise AwsError("ResourceInUseException", f"The version is {version['status']}; stop it first.")
        with self._store.transaction() as db:
            db.execute("DELETE FROM versions WHERE arn = ?", (version["arn"],))
        return {"Status": "DELETING"}

    def detect_custom_labels(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        from PIL import Image, UnidentifiedImageError

        version = self._version(params["ProjectVersionArn"])
        if version["status"] != "RUNNING":
            raise AwsError("ResourceNotReadyException", f"The project version is {version['status']}, not RUNNING.")
        source = params["Image"]
        try:
            if source.get("Bytes") is not None:
                image = Image.open(io.BytesIO(source["Bytes"]))
            else:
                s3_object = source.get("S3Object") or {}
                image = Image.open(self._s3.object_file(s3_object.get("Bucket", ""), s3_object.get("Name", "")))
            image = image.convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise AwsError("InvalidImageFormatException", "Request has unsupported image format.") from exc
        except AwsError as exc:
            raise AwsError("InvalidS3ObjectException", f"Unable to get object from S3: {exc.code}") from exc
        thresholds = json.loads(version["thresholds"])
        detector, names = self._detector(version["arn"])
        floor = params.get("MinConfidence")
        found = []
        for detection in detector.predict(image):
            name = names.get(detection.label, str(detection.label))
            confidence = detection.confidence * 100
            # Without MinConfidence, Custom Labels applies each label's own threshold from training.
            if confidence < (floor if floor is not None else thresholds.get(name, 0.5) * 100):
                continue
            x0, y0, x1, y1 = detection.box
            found.append(
                {
                    "Name": name,
                    "Confidence": confidence,
                    "Geometry": {
                        "BoundingBox": {
                            "Left": x0 / image.width,
                            "Top": y0 / image.height,
                            "Width": (x1 - x0) / image.width,
                            "Height": (y1 - y0) / image.height,
                        }
                    },
                }
            )
        return {"CustomLabels": found[: params.get("MaxResults")] if params.get("MaxResults") else found}
