"""The render DAG's steps, free of Airflow: each takes plain data and an S3 client, and returns plain data.

Layout of one dataset version under ``s3://<bucket>/<prefix>/``::

    images/c00_000000.png ...          every image (written by the shard that rendered it)
    shards/size-<n>/00000.jsonl        one Ground Truth manifest per shard of the plan
    debug/size-<n>/shard-00000.png     contact sheet of a shard with its boxes drawn
    manifest.jsonl                     the merged manifest (what Rekognition Custom Labels imports)
    coco.json                          the same labels in COCO form
    dataset.json                       spec, version, counts, skips and timings

Shard manifests live under their shard size, and the merge reads exactly the plan's keys, so a rerun with a
different shard size cannot pick up stale shards and duplicate lines.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from include import s3uri
from include.rendering.dataset import (
    DatasetSpec,
    Shard,
    box_counts,
    dataset_version,
    items,
    plan_shards,
    render_items,
    resolve_catalog,
)

log = logging.getLogger(__name__)
MANIFEST_NAME = "manifest.jsonl"


def _render_overrides(params: dict[str, Any]) -> dict[str, Any]:
    """The DAG's ``render`` object, plus its ``resolution`` shortcut for square images."""
    overrides = dict(params.get("render") or {})
    if params.get("resolution"):
        overrides.setdefault("width", params["resolution"])
        overrides.setdefault("height", params["resolution"])
    return overrides


def plan(params: dict[str, Any]) -> dict[str, Any]:
    """Validate the inputs (catalog, sizes, render config) and lay out the shards. Fails before any rendering."""
    from include.rendering.catalog import load_catalog
    from include.rendering.randomizers import RenderConfig

    spec = DatasetSpec(
        catalog=str(params["catalog"]),
        images_per_class=int(params["images_per_class"]),
        render=RenderConfig.from_dict(_render_overrides(params)).to_dict(),
        seed=int(params.get("seed", 0)),
        name=str(params.get("dataset_name", "synthetic")),
        creation_date=str(params.get("creation_date", DatasetSpec.creation_date)),
        classes=tuple(sorted(set(params.get("classes") or ()))),
    )
    catalog = load_catalog(resolve_catalog(spec.catalog))
    unknown = sorted(set(spec.classes) - set(catalog.class_map.values()))
    if unknown:
        raise ValueError(
            f"unknown classes {unknown}; catalog {catalog.name!r} has {sorted(catalog.class_map.values())}"
        )
    class_ids = sorted(c for c, n in catalog.class_map.items() if not spec.classes or n in spec.classes)
    version = dataset_version(spec)
    total = len(class_ids) * spec.images_per_class
    shard_size = int(params.get("shard_size", 100))
    prefix = f"{params.get('prefix', 'datasets').strip('/')}/{spec.name}/{version}"
    shards = plan_shards(total, shard_size)
    log.info(
        "dataset %s version %s: %d images in %d shard(s) of %d", spec.name, version, total, len(shards), shard_size
    )
    return {
        "spec": spec.to_dict(),
        "version": version,
        "bucket": params["bucket"],
        "prefix": prefix,
        "class_ids": class_ids,
        "class_map": {str(k): v for k, v in sorted(catalog.class_map.items())},
        "shard_size": shard_size,
        "shards": [asdict(s) for s in shards],
    }


def _shard_manifest_key(layout: dict[str, Any], index: int) -> str:
    return f"{layout['prefix']}/shards/size-{layout['shard_size']}/{index:05d}.jsonl"


def _job_name(layout: dict[str, Any]) -> str:
    return f"labeling-job/{layout['spec']['name']}-{layout['version']}"


def _upload_dir(s3: Any, local: Path, bucket: str, prefix: str) -> int:
    count = 0
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(local).as_posix()}")
        count += 1
    return count


def render_shard(layout: dict[str, Any], shard: dict[str, Any], s3: Any, processes: int | None = None) -> dict:
    """Render one shard, then upload its images, manifest and debug overlay. Reruns overwrite the same keys."""
    from include import groundtruth
    from include.rendering import overlay

    spec = DatasetSpec.from_dict(layout["spec"])
    piece = Shard(**shard)
    work = items(spec, layout["class_ids"])[piece.start : piece.stop]
    class_map = {int(k): v for k, v in layout["class_map"].items()}
    bucket, prefix = layout["bucket"], layout["prefix"]
    with tempfile.TemporaryDirectory(prefix=f"shard-{piece.index:05d}-") as tmp:
        out = Path(tmp) / "dataset"
        result = render_items(spec.catalog, spec.render, work, out, processes=processes, label=f"shard {piece.index}")
        lines = [
            groundtruth.manifest_line(
                image,
                s3uri.join(bucket, prefix, image.file_name),
                class_map,
                job_name=_job_name(layout),
                creation_date=spec.creation_date,
            )
            for image in result.images
        ]
        manifest = Path(tmp) / "manifest.jsonl"
        groundtruth.write_manifest(manifest, lines)
        sheet = Path(tmp) / "overlay.png"
        if result.images:
            overlay.draw_overlay(result.images, out, class_map, sheet)
        uploaded = _upload_dir(s3, out, bucket, prefix)
        s3.upload_file(str(manifest), bucket, _shard_manifest_key(layout, piece.index))
        if result.images:
            s3.upload_file(
                str(sheet), bucket, f"{prefix}/debug/size-{layout['shard_size']}/shard-{piece.index:05d}.png"
            )
    rate = result.rendered / result.seconds if result.seconds else 0.0
    log.info(
        "shard %d: %d rendered, %d skipped, %.2f img/s",
        piece.index,
        result.rendered,
        sum(result.skipped.values()),
        rate,
    )
    return {
        "shard": piece.index,
        "planned": len(work),
        "rendered": result.rendered,
        "uploaded": uploaded,
        "skipped": result.skipped,
        "seconds": round(result.seconds, 3),
        "images_per_second": round(rate, 3),
        "stage_seconds": {k: round(v, 3) for k, v in result.stage_seconds.items()},
        "boxes": box_counts(result.images),
    }


def _download_text(s3: Any, bucket: str, key: str) -> str:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")


def validate_shards(layout: dict[str, Any], s3: Any) -> dict[str, Any]:
    """Check every shard manifest line against Rekognition's limits and the images actually in S3."""
    from include.groundtruth import validate

    issues: list[str] = []
    lines = 0
    for shard in layout["shards"]:
        key = _shard_manifest_key(layout, shard["index"])
        text = _download_text(s3, layout["bucket"], key)
        if not text.strip():
            continue  # every render of this shard was skipped; the merge's count reconciliation accounts for it
        lines += sum(1 for line in text.splitlines() if line.strip())
        issues += [f"{key}: {issue}" for issue in validate.validate_manifest(text, s3_client=s3)]
    if issues:
        shown = "\n".join(issues[:50])
        raise ValueError(f"{len(issues)} manifest issue(s) in dataset {layout['version']}:\n{shown}")
    return {"lines": lines, "shards": len(layout["shards"])}


def merge(layout: dict[str, Any], s3: Any, shard_stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the shard manifests (refusing duplicate images), export COCO, and publish ``manifest.jsonl``."""
    from include import groundtruth
    from include.rendering import coco

    bucket, prefix = layout["bucket"], layout["prefix"]
    class_map = {int(k): v for k, v in layout["class_map"].items()}
    with tempfile.TemporaryDirectory(prefix="merge-") as tmp:
        paths = []
        for shard in layout["shards"]:
            path = Path(tmp) / f"{shard['index']:05d}.jsonl"
            path.write_text(_download_text(s3, bucket, _shard_manifest_key(layout, shard["index"])))
            paths.append(path)
        merged = Path(tmp) / MANIFEST_NAME
        groundtruth.merge_manifests(paths, merged)
        images = groundtruth.read_manifest(merged, base_uri=s3uri.join(bucket, prefix))
        coco_path = Path(tmp) / "coco.json"
        coco_path.write_text(json.dumps(coco.to_coco(images, class_map), sort_keys=True, indent=1) + "\n")
        skipped: dict[str, int] = {}
        for stats in shard_stats:
            for reason, count in stats.get("skipped", {}).items():
                skipped[reason] = skipped.get(reason, 0) + count
        summary = {
            "version": layout["version"],
            "spec": layout["spec"],
            "class_map": layout["class_map"],
            "images": len(images),
            "planned": sum(s["planned"] for s in shard_stats),
            "skipped": skipped,
            "boxes": box_counts(images),
            "render_seconds": round(sum(s["seconds"] for s in shard_stats), 3),
        }
        if summary["images"] + sum(skipped.values()) != summary["planned"]:
            raise ValueError(f"counts do not reconcile: {summary}")
        (Path(tmp) / "dataset.json").write_text(json.dumps(summary, sort_keys=True, indent=1) + "\n")
        for name in (MANIFEST_NAME, "coco.json", "dataset.json"):
            s3.upload_file(str(Path(tmp) / name), bucket, f"{prefix}/{name}")
    return {**summary, "manifest": s3uri.join(bucket, prefix, MANIFEST_NAME), "prefix": s3uri.join(bucket, prefix)}
