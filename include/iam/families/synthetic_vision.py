"""render_synthetic_dataset, train_custom_labels and augmentation_study.

Settings and the DAG params they stand for (defaults are the params' defaults):

- ``dataset_bucket`` / ``dataset_prefix`` / ``dataset_name``: render_synthetic_dataset's ``bucket`` / ``prefix`` /
  ``dataset_name``, and train_custom_labels' ``dataset_bucket`` / ``dataset_prefix`` / ``dataset_name`` (what it
  trains on: the renders of that dataset); augmentation_study's ``dataset_prefix`` too.
- ``models_bucket`` / ``project_name``: train_custom_labels' ``bucket`` and ``project_name``.
- ``photos_bucket`` / ``photos_prefix``: where train_custom_labels may import labelled real photos from
  (``test_photos.uri``, whose default is empty: no photos). The role reads photos only from
  ``s3://<photos_bucket>/<photos_prefix>/``.
- ``study_bucket`` / ``study_name``: augmentation_study's ``bucket`` and ``study_name``; each variant's dataset,
  project and evaluation output is named ``<study_name>-<variant>``.

Rekognition ARNs end in a creation timestamp the caller does not know, so a project is granted as
``project/<name>/*``: the project, its datasets and its versions.
"""

from __future__ import annotations

from include.iam.policies import DagAccess, Family, Grant, register, s3_list, s3_objects, service_arn


def _project(name: str) -> str:
    return service_arn("rekognition", f"project/{name}/*")


# Project look-ups by name (RekognitionCreateProjectOperator, RekognitionCreateDatasetOperator's dataset look-up):
# DescribeProjects has no resource-level permission.
DESCRIBE_PROJECTS = Grant("DescribeProjects", ("rekognition:DescribeProjects",), ("*",))

# A project's life in both training DAGs: create it, replace its datasets, train, describe, deploy and retire versions.
PROJECT_LIFECYCLE = (
    "rekognition:CreateProject",
    "rekognition:CreateDataset",
    "rekognition:DeleteDataset",
    "rekognition:DescribeDataset",
    "rekognition:CreateProjectVersion",
    "rekognition:DescribeProjectVersions",
    "rekognition:StartProjectVersion",
    "rekognition:StopProjectVersion",
)

SYNTHETIC_VISION = register(
    Family(
        name="synthetic_vision",
        role="airflow-synthetic-vision",
        description="render_synthetic_dataset, train_custom_labels and augmentation_study",
        settings={
            "dataset_bucket": "industrial-ml-datasets",
            "dataset_prefix": "datasets",
            "dataset_name": "gearbox",
            "models_bucket": "industrial-ml-datasets",
            "project_name": "gearbox-parts",
            "photos_bucket": "industrial-ml-datasets",
            "photos_prefix": "photos",
            "study_bucket": "industrial-ml-datasets",
            "study_name": "gearbox-study",
        },
        dags=(
            DagAccess(
                "render_synthetic_dataset",
                (
                    # S3CreateBucketOperator: HeadBucket (needs s3:ListBucket), then CreateBucket when missing.
                    Grant("RenderBucket", ("s3:CreateBucket", "s3:ListBucket"), ("arn:aws:s3:::{dataset_bucket}",)),
                    # render_shard uploads images, shard manifests and contact sheets; validate reads the shard
                    # manifests and heads/reads the images; merge reads the shards, writes manifest/coco/dataset.
                    s3_objects(
                        "RenderDataset",
                        ("s3:PutObject", "s3:GetObject"),
                        "dataset_bucket",
                        "{dataset_prefix}/{dataset_name}/",
                    ),
                ),
            ),
            DagAccess(
                "train_custom_labels",
                (
                    # S3CreateBucketOperator on params.bucket: HeadBucket (s3:ListBucket), CreateBucket when missing.
                    Grant("ModelsBucket", ("s3:CreateBucket", "s3:ListBucket"), ("arn:aws:s3:::{models_bucket}",)),
                    # training_dataset reads the render's manifest.jsonl and dataset.json; create_train_dataset's
                    # CreateDataset reads the manifest as the caller.
                    s3_objects(
                        "ReadTrainingDataset", ("s3:GetObject",), "dataset_bucket", "{dataset_prefix}/{dataset_name}/"
                    ),
                    # render_shifted_test_set renders, validates and merges the domain-shifted test set (or finds it
                    # published); create_test_dataset, smoke_sample and smoke_check's DetectCustomLabels read it.
                    s3_objects(
                        "ShiftedTestSet",
                        ("s3:PutObject", "s3:GetObject"),
                        "dataset_bucket",
                        "{dataset_prefix}/{dataset_name}-shifted/",
                    ),
                    # import_test_photos lists the photos' prefix and reads the labels and the image headers.
                    s3_list("ListTestPhotos", "photos_bucket", ("{photos_prefix}/",)),
                    s3_objects("ReadTestPhotos", ("s3:GetObject",), "photos_bucket", "{photos_prefix}/"),
                    # Under custom-labels/<project>/: import_test_photos writes the test manifest (create_test_dataset
                    # reads it); train_version's CreateProjectVersion writes the evaluation as the caller; record and
                    # gate read the evaluation summary; record writes the chart; record and mark_deployed update the
                    # ledger.
                    s3_objects(
                        "ModelArtifacts",
                        ("s3:PutObject", "s3:GetObject"),
                        "models_bucket",
                        "custom-labels/{project_name}/",
                    ),
                    DESCRIBE_PROJECTS,
                    # create_project; create_{train,test}_dataset replace the project's datasets and wait on them;
                    # train_version trains (deferrable waiter), record/gate describe the version; start_version
                    # starts it, waits, and stops the previously serving version; smoke_check detects with it.
                    Grant(
                        "TrainProject",
                        (*PROJECT_LIFECYCLE, "rekognition:DetectCustomLabels"),
                        (_project("{project_name}"),),
                    ),
                ),
            ),
            DagAccess(
                "augmentation_study",
                (
                    # S3CreateBucketOperator: HeadBucket (s3:ListBucket), CreateBucket when missing.
                    Grant("StudyBucket", ("s3:CreateBucket", "s3:ListBucket"), ("arn:aws:s3:::{study_bucket}",)),
                    # shared_test_set (<study>-shifted) and render_variant (<study>-<variant>) render, validate and
                    # merge their datasets or find them published; create_{train,test}_dataset read the manifests.
                    s3_objects(
                        "StudyDatasets",
                        ("s3:PutObject", "s3:GetObject"),
                        "study_bucket",
                        "{dataset_prefix}/{study_name}-",
                    ),
                    # train_version's CreateProjectVersion writes each variant's evaluation as the caller under
                    # custom-labels/<study>-<variant>/; score reads its summary.
                    s3_objects(
                        "StudyEvaluations",
                        ("s3:PutObject", "s3:GetObject"),
                        "study_bucket",
                        "custom-labels/{study_name}-",
                    ),
                    # rank writes ranking.csv, ranking.png and results.json.
                    s3_objects(
                        "StudyRanking", ("s3:PutObject",), "study_bucket", "custom-labels/studies/{study_name}/"
                    ),
                    DESCRIBE_PROJECTS,
                    # Per variant: create_project, create_{train,test}_dataset (replace and wait), train_version
                    # (deferrable waiter), score describes the version; promote_best starts the best version and
                    # waits; stop_other_variants stops the study's other running versions.
                    Grant(
                        "StudyProjects",
                        PROJECT_LIFECYCLE,
                        (_project("{study_name}-*"),),
                    ),
                ),
            ),
        ),
    )
)
