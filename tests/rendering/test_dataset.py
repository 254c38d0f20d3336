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


def test_version_changes_with_the_rendering_engine(monkeypatch):
    from include.rendering import dataset

    spec = DatasetSpec(catalog=CATALOG, images_per_class=2)
    before = dataset_version(spec)
    monkeypatch.setattr(dataset, "RENDER_LOGIC_REVISION", dataset.RENDER_LOGIC_REVISION + 1)
    assert dataset_version(spec) != before


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


CHILD_GUARD = """
import multiprocessing, sys
if multiprocessing.parent_process() is not None:
    raise SystemExit("a child imported the parent's __main__")  # what Airflow's task runner would do, and fail
sys.path.insert(0, {repo!r})
from pathlib import Path
from include.rendering.dataset import DatasetSpec, items, render_items
spec = DatasetSpec(catalog={catalog!r}, images_per_class=2, render={render!r}, seed=5)
result = render_items(spec.catalog, spec.render, items(spec, [0]), Path({out!r}), processes=2)
print("rendered", result.rendered)
"""


def test_pool_children_do_not_import_the_parents_main_module(tmp_path):
    import subprocess
    import sys

    from tests import REPO

    script = tmp_path / "runner.py"
    script.write_text(CHILD_GUARD.format(repo=str(REPO), catalog=CATALOG, render=SMALL, out=str(tmp_path / "out")))
    proc = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rendered 2" in proc.stdout


def test_a_broken_worker_fails_the_shard_instead_of_hanging(tmp_path):
    from concurrent.futures.process import BrokenProcessPool

    from include.rendering.catalog import CatalogError

    spec = DatasetSpec(catalog="include/cad/nowhere/catalog.yaml", images_per_class=2, render=SMALL)
    work = items(spec, [0, 1])
    with pytest.raises((BrokenProcessPool, CatalogError, FileNotFoundError)):
        render_items(spec.catalog, spec.render, work, tmp_path, processes=2)
