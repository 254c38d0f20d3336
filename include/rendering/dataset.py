"""A rendered dataset as a deterministic function of its spec: versioning, shard plans, shard rendering.

Every image's seed and file name derive from (spec, class, index) alone, so the dataset does not depend on how
it was sharded, on which worker a shard ran, or on how many processes rendered it. The dataset version is a
hash of the spec and of the catalog's bytes: the same inputs land under the same prefix, and a rerun
overwrites the same keys.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.metadata
import json
import logging
import multiprocessing
import os
import sys
import time
import types
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from include.rendering.types import RenderedImage

log = logging.getLogger(__name__)

MAX_IMAGES_PER_CLASS = 100_000
MAX_SHARD_SIZE = 10_000


@dataclass(frozen=True)
class DatasetSpec:
    """What to render. ``render`` is a ``RenderConfig`` as a dict, so the spec travels through XCom as JSON."""

    catalog: str
    images_per_class: int
    render: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    name: str = "synthetic"
    creation_date: str = "2026-01-01T00:00:00"
    classes: tuple[str, ...] = ()  # class names to render; empty = every class in the catalog

    def __post_init__(self) -> None:
        if not 1 <= self.images_per_class <= MAX_IMAGES_PER_CLASS:
            raise ValueError(f"images_per_class must be 1..{MAX_IMAGES_PER_CLASS}, got {self.images_per_class}")
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise ValueError(f"dataset name {self.name!r} must be letters, digits, '-' or '_'")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetSpec:
        return cls(**{**data, "classes": tuple(data.get("classes") or ())})


@dataclass(frozen=True)
class Item:
    class_id: int
    index: int
    seed: int

    @property
    def stem(self) -> str:
        return f"c{self.class_id:02d}_{self.index:06d}"

    @property
    def file_name(self) -> str:
        return f"images/{self.stem}.png"


@dataclass(frozen=True)
class Shard:
    index: int
    start: int  # into the dataset's item list
    stop: int


PROJECT_ROOT = Path(__file__).resolve().parents[2]


def resolve_catalog(catalog_path: str | Path) -> Path:
    """Relative catalog paths are relative to the project root, wherever the worker's cwd is."""
    path = Path(catalog_path)
    return path if path.is_absolute() else PROJECT_ROOT / path


def catalog_digest(catalog_path: str | Path) -> str:
    """SHA-256 over the catalog file and every file beside it, so any mesh change makes a new version."""
    root = resolve_catalog(catalog_path).parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# Bump when a change to the randomizers or the renderer changes what the same spec renders: the version must
# then change too, or a rerun would overwrite a published dataset with different images.
RENDER_LOGIC_REVISION = 1


def render_engine() -> str:
    """The rendering stack's identity, part of every dataset version (read from package metadata: no GL import)."""
    versions = [f"{name}=={importlib.metadata.version(name)}" for name in ("pyrender", "trimesh", "PyOpenGL", "numpy")]
    return ";".join([*versions, f"logic={RENDER_LOGIC_REVISION}"])


def backgrounds_digest(render: dict[str, Any]) -> str | None:
    """SHA-256 over the background images a render can draw, so editing a texture makes a new version."""
    from include.rendering.randomizers import background_files, resolve_background_dir

    if "image" not in (render.get("backgrounds") or ()) or not render.get("background_dir"):
        return None
    root = resolve_background_dir(render["background_dir"])
    digest = hashlib.sha256()
    for name in background_files(root):
        digest.update(name.encode())
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def dataset_version(spec: DatasetSpec) -> str:
    inputs = {"spec": spec.to_dict(), "catalog": catalog_digest(spec.catalog), "engine": render_engine()}
    backgrounds = backgrounds_digest(spec.render)
    if backgrounds is not None:  # only then, so versions of renders without image backgrounds stay as they were
        inputs["backgrounds"] = backgrounds
    canonical = json.dumps(inputs, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def item_seed(seed: int, class_id: int, index: int) -> int:
    # A hash, not seed + index: neighbouring datasets (seed 1 vs 2) must not share images.
    digest = hashlib.sha256(f"{seed}:{class_id}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def items(spec: DatasetSpec, class_ids: list[int]) -> list[Item]:
    """Class-interleaved order, so any prefix of the list (and every shard) is roughly class-balanced."""
    return [
        Item(class_id, index, item_seed(spec.seed, class_id, index))
        for index in range(spec.images_per_class)
        for class_id in sorted(class_ids)
    ]


def plan_shards(total: int, shard_size: int) -> list[Shard]:
    if not 1 <= shard_size <= MAX_SHARD_SIZE:
        raise ValueError(f"shard_size must be 1..{MAX_SHARD_SIZE}, got {shard_size}")
    return [Shard(i, start, min(start + shard_size, total)) for i, start in enumerate(range(0, total, shard_size))]


# -- rendering a shard ------------------------------------------------------------------------------------
_worker: dict[str, Any] = {}


def _init_worker(catalog_path: str, render_config: dict[str, Any], out_dir: str, pooled: bool = False) -> None:
    # Runs once per process: one catalog load, one GL context, warmed-up shaders.
    if pooled:
        # One renderer process per core already fills the machine; llvmpipe's own threads would only contend.
        os.environ.setdefault("LP_NUM_THREADS", "1")
    from include.rendering.catalog import load_catalog
    from include.rendering.randomizers import RenderConfig
    from include.rendering.scene import Renderer

    catalog = load_catalog(resolve_catalog(catalog_path))
    _worker["renderer"] = Renderer(catalog, RenderConfig.from_dict(render_config))
    _worker["out_dir"] = Path(out_dir)
    # The renderer's ~140k long-lived objects would otherwise be rescanned by every full collection (~60 ms).
    gc.freeze()


def _render_item(item: Item) -> tuple[Item, RenderedImage | None, str | None, dict[str, float]]:
    from PIL import Image

    from include.rendering.scene import RenderSkip

    renderer = _worker["renderer"]
    t0 = time.perf_counter()
    try:
        rgb, boxes, meta = renderer.render(item.class_id, item.seed)
    except RenderSkip as skip:
        log.info("skipped %s (seed %d): %s", item.stem, item.seed, skip.reason)
        return item, None, skip.category, {"render": time.perf_counter() - t0}
    t1 = time.perf_counter()
    path = _worker["out_dir"] / item.file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    # compress_level=1: PNG encoding otherwise costs as much as the render itself; files stay lossless.
    Image.fromarray(rgb).save(path, format="PNG", compress_level=1)
    image = RenderedImage(item.file_name, rgb.shape[1], rgb.shape[0], list(boxes), {"seed": item.seed, **meta})
    return item, image, None, {"render": t1 - t0, "encode": time.perf_counter() - t1}


@dataclass
class ShardResult:
    images: list[RenderedImage]
    skipped: dict[str, int]  # RenderSkip category -> count
    seconds: float
    stage_seconds: dict[str, float]

    @property
    def rendered(self) -> int:
        return len(self.images)


def _pool_size(requested: int | None, jobs: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(requested or cores, cores, jobs))


def _progress(done: int, total: int, started: float, label: str) -> None:
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else float("inf")
    log.info("%s: %d/%d images, %.2f img/s, ETA %.0f s", label, done, total, rate, eta)


def render_items(
    catalog_path: str,
    render_config: dict[str, Any],
    work: list[Item],
    out_dir: Path,
    *,
    processes: int | None = None,
    label: str = "render",
) -> ShardResult:
    """Render ``work`` into ``out_dir`` with up to ``processes`` renderer processes (default: every core)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    images: list[RenderedImage] = []
    skipped: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    size = _pool_size(processes, len(work))
    init_args = (catalog_path, render_config, str(out_dir))
    log.info("%s: %d images on %d process(es)", label, len(work), size)
    for done, (item, image, reason, timing) in enumerate(_run(size, init_args, work), start=1):
        stages.update(timing)
        if image is None:
            skipped[reason or "unknown"] += 1
            log.warning("%s: skipped %s (seed %d): %s", label, item.stem, item.seed, reason)
        else:
            images.append(image)
        if done % 25 == 0 or done == len(work):
            _progress(done, len(work), started, label)
    images.sort(key=lambda im: im.file_name)
    return ShardResult(images, dict(skipped), time.monotonic() - started, dict(stages))


def _run(size: int, init_args: tuple, work: list[Item]) -> Iterator[tuple]:
    if size == 1:
        # In-process: no pool start-up, and tests and debuggers see everything.
        _init_worker(*init_args)
        try:
            yield from map(_render_item, work)
        finally:
            _worker.clear()
            gc.unfreeze()  # this process lives on (an Airflow task, a test): let its cycles be collected again
        return
    # spawn, not fork: a forked child would inherit the parent's threads and locks (Airflow's task runner).
    # ProcessPoolExecutor, not Pool: a worker that dies in its initializer breaks the pool with an error
    # instead of being respawned forever.
    context = multiprocessing.get_context("spawn")
    with (
        _children_skip_main_module(),
        ProcessPoolExecutor(size, mp_context=context, initializer=_init_worker, initargs=(*init_args, True)) as pool,
    ):
        yield from pool.map(_render_item, work, chunksize=4)


@contextmanager
def _children_skip_main_module() -> Iterator[None]:
    """Keep spawned children from re-importing the parent's ``__main__``.

    Under Airflow that module is the task runner, which initialises Airflow again in every child and fails
    there (a task process has no metadata DB). The children need nothing from it: their work is this module.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def box_counts(images: list[RenderedImage]) -> dict[str, int]:
    """Labelled boxes per class id, the figure a user checks for class balance."""
    counts: Counter[str] = Counter()
    for image in images:
        counts.update(str(box.class_id) for box in image.boxes)
    return dict(sorted(counts.items()))
