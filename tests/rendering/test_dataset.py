"""Dataset planning and shard rendering: determinism, versioning, and clear errors on bad input."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from include.rendering.dataset import (
    DatasetSpec,
    dataset_version,
    item_seed,
    items,
    plan_shards,
    render_items,
)
from include.rendering.pipeline import plan

CATALOG = "include/cad/gearbox/catalog.yaml"
SMALL = {"width": 96, "height": 96, "lighting": ["studio"]}


def _digests(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.png"))}


def test_plan_shards_cover_every_item_once():
    shards = plan_shards(23, 5)
    assert [(s.start, s.stop) for s in shards] == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    with pytest.raises(ValueError, match="shard_size"):
        plan_shards(10, 0)


def test_items_are_class_interleaved_and_seeds_distinct():
    spec = DatasetSpec(catalog=CATALOG, images_per_class=3, seed=1)
    work = items(spec, [0, 1, 2])
    assert [i.class_id for i in work] == [0, 1, 2] * 3
    assert len({i.seed for i in work}) == len(work)
    assert item_seed(1, 0, 0) != item_seed(2, 0, 0)


def test_version_depends_on_params_and_catalog_bytes(tmp_path):
    spec = DatasetSpec(catalog=CATALOG, images_per_class=2, seed=0)
    assert dataset_version(spec) == dataset_version(DatasetSpec.from_dict(spec.to_dict()))
    assert dataset_version(spec) != dataset_version(DatasetSpec(catalog=CATALOG, images_per_class=2, seed=1))
    copy = tmp_path / "gearbox"
    shutil.copytree(Path(CATALOG).parent, copy)
    moved = DatasetSpec(catalog=str(copy / "catalog.yaml"), images_per_class=2, seed=0)
    changed_path = dataset_version(moved)
    with open(copy / "flange.glb", "ab") as handle:
        handle.write(b"\0")
    assert dataset_version(moved) != changed_path


def test_same_items_render_identically_in_one_or_two_processes(tmp_path):
    spec = DatasetSpec(catalog=CATALOG, images_per_class=2, render=SMALL, seed=3)
    work = items(spec, [1, 3])
    one = render_items(spec.catalog, spec.render, work, tmp_path / "one", processes=1)
    two = render_items(spec.catalog, spec.render, work, tmp_path / "two", processes=2)
    assert one.rendered == two.rendered == len(work) - sum(one.skipped.values())
    assert _digests(tmp_path / "one") == _digests(tmp_path / "two")
    assert [im.boxes for im in one.images] == [im.boxes for im in two.images]
    assert set(one.stage_seconds) >= {"render", "encode"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"resolution": 8000}, "width"),
        ({"images_per_class": 0}, "images_per_class"),
        ({"classes": ["Sprocket"]}, "unknown classes"),
        ({"catalog": "include/cad/missing/catalog.yaml"}, "catalog"),
        ({"shard_size": 0}, "shard_size"),
        ({"dataset_name": "bad name!"}, "dataset name"),
    ],
)
def test_plan_rejects_bad_input_before_rendering(override, message):
    params = {"bucket": "b", "catalog": CATALOG, "images_per_class": 2, "resolution": 128, "shard_size": 4}
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        plan({**params, **override})


def test_plan_layout_is_deterministic_and_filters_classes():
    params = {"bucket": "b", "catalog": CATALOG, "images_per_class": 3, "resolution": 128, "shard_size": 4}
    first, second = plan(params), plan(dict(params))
    assert first == second
    assert first["class_map"] == {
        "0": "Gear_Housing",
        "1": "Gear_Ratio",
        "2": "Bearing_Cover",
        "3": "Flange",
        "4": "Worm_Gear",
    }
    assert sum(s["stop"] - s["start"] for s in first["shards"]) == 15
    only = plan({**params, "classes": ["Flange"]})
    assert only["class_ids"] == [3]
    assert only["version"] != first["version"]
