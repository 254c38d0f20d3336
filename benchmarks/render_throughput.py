"""Rendering throughput: labelled images per second, and where the time of one image goes.

    python benchmarks/render_throughput.py [--sizes 512 1024] [--objects 1 4] [--images 16] [--processes N]
                                           [--shadow-quality fast|soft] [--png-level 1] [--catalog PATH]

For every (size, objects per image, lighting preset) it builds a Renderer (shaders compiled and meshes uploaded
before timing starts), renders ``--images`` images in one process, then ``--images`` per process in N processes
(default: every core; each with its own Renderer and LP_NUM_THREADS=1; started together behind a barrier). An
image is the whole per-image path: randomizer draws, scene update, segmentation pass (plus solo passes where objects overlap),
boxes, colour pass, background composite, and a PNG encode of the result. Skipped draws count against the rate.
Like a shard worker should, each run calls ``gc.freeze()`` once its Renderer is built.

Prints ONE table: img/s for 1 and N processes, then the 1-process per-image split in ms (colour and seg exclude
their readback, which has its own column; "other" is draws, scene update, background composite and bookkeeping).
"""

from __future__ import annotations

import argparse
import gc
import io
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from include.rendering.catalog import load_catalog  # noqa: I001 - needs the sys.path line above
from include.rendering.randomizers import RenderConfig

DEFAULT_CATALOG = REPO / "include" / "cad" / "gearbox" / "catalog.yaml"


@dataclass
class Run:
    images: int = 0
    skips: int = 0
    seconds: float = 0.0
    stages: Counter = field(default_factory=Counter)  # seconds per stage, over the run

    def rate(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


def render_run(renderer: Any, count: int, png_level: int) -> Run:
    """Render seeds 0..count-1 (classes round-robin) and PNG-encode each; stage timings from the renderer.

    Every run of a row renders the same images, so 1-process and N-process rates compare the same work.
    """
    from PIL import Image

    from include.rendering.scene import RenderSkip

    classes = sorted(renderer.catalog.class_map)
    # As a shard worker should: freeze what setup allocated, or a full collection over ~140k long-lived objects
    # (trimesh, scipy, pyrender) costs ~60 ms every ~16 images.
    gc.collect()
    gc.freeze()
    renderer.stage_seconds.clear()
    run = Run()
    start = time.monotonic()
    for i in range(count):
        try:
            image, _, _ = renderer.render(classes[i % len(classes)], i)
        except RenderSkip:
            run.skips += 1
            continue
        encode = time.perf_counter()
        Image.fromarray(image).save(io.BytesIO(), format="PNG", compress_level=png_level)
        run.stages["png"] += time.perf_counter() - encode
        run.images += 1
    run.seconds = time.monotonic() - start
    run.stages.update(renderer.stage_seconds)
    gc.unfreeze()
    return run


def _worker(catalog_path: str, config: dict, count: int, png_level: int, barrier: Any) -> Run:
    # Each process must have its own GL context: everything GL is created here, after the spawn. With one
    # process per core, llvmpipe's own rasteriser threads only oversubscribe (export LP_NUM_THREADS to override).
    os.environ.setdefault("LP_NUM_THREADS", "1")
    from include.rendering.scene import Renderer

    with Renderer(load_catalog(catalog_path), RenderConfig.from_dict(config)) as renderer:
        barrier.wait()
        return render_run(renderer, count, png_level)


def parallel_run(catalog_path: str, config: RenderConfig, processes: int, count: int, png_level: int) -> Run:
    """``processes`` renderers started together; the rate is all their images over the wall time of the slowest."""
    context = mp.get_context("spawn")  # a forked GL context is undefined behaviour
    barrier = context.Manager().Barrier(processes)
    args = [(catalog_path, config.to_dict(), count, png_level, barrier)] * processes
    with context.Pool(processes) as pool:
        runs = pool.starmap(_worker, args)
    # The barrier releases every worker at once: the slowest worker's run time is the wall time of the batch.
    return Run(
        images=sum(r.images for r in runs),
        skips=sum(r.skips for r in runs),
        seconds=max(r.seconds for r in runs),
    )


def split_ms(run: Run) -> dict[str, float]:
    """Per-image milliseconds of the 1-process run, by stage; readbacks moved out of the passes that include them."""
    n = max(run.images + run.skips, 1)
    s = run.stages
    colour = s["colour_render"] - s["readback_rgba"]
    seg = s["seg_render"] + s["solo_render"] - s["readback_ids"]
    readback = s["readback_rgba"] + s["readback_ids"]
    named = colour + seg + readback + s["boxes"] + s["png"]
    return {
        "colour": 1000 * colour / n,
        "seg": 1000 * seg / n,
        "readback": 1000 * readback / n,
        "boxes": 1000 * s["boxes"] / n,
        "png": 1000 * s["png"] / n,
        "update": 1000 * s["scene_update"] / n,
        "other": 1000 * (run.seconds - named - s["scene_update"]) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--lighting", nargs="+", default=["studio", "warehouse"])
    parser.add_argument("--images", type=int, default=16, help="images per process per configuration")
    parser.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--shadow-quality", default="fast", choices=["fast", "soft"])
    parser.add_argument("--png-level", type=int, default=1, help="Pillow PNG compress_level (its default is 6)")
    parser.add_argument("--catalog", default=str(DEFAULT_CATALOG))
    args = parser.parse_args()

    from include.rendering.gl import PLATFORM
    from include.rendering.scene import Renderer

    catalog = load_catalog(args.catalog)
    cores = len(os.sched_getaffinity(0))
    print(
        f"# {catalog.name} catalog ({len(catalog.parts)} parts), {PLATFORM}, {cores} cores, {args.images} images per "
        f"process per row, shadows {args.shadow_quality}, PNG compress_level {args.png_level}"
    )
    stage_names = ["colour", "seg", "readback", "boxes", "png", "update", "other"]
    header = f"{'size':>5} {'obj':>3} {'lighting':<9} {'1 proc':>7} {f'{args.processes} proc':>7} {'skips':>5} | ms/img"
    print(header + "".join(f" {name:>8}" for name in stage_names))
    for size in args.sizes:
        for objects in args.objects:
            for lighting in args.lighting:
                config = RenderConfig(
                    width=size,
                    height=size,
                    lighting=(lighting,),
                    objects_per_image=(objects, objects),
                    shadow_quality=args.shadow_quality,
                )
                with Renderer(catalog, config) as renderer:
                    single = render_run(renderer, args.images, args.png_level)
                multi = parallel_run(args.catalog, config, args.processes, args.images, args.png_level)
                split = split_ms(single)
                print(
                    f"{size:>5} {objects:>3} {lighting:<9} {single.rate():>7.1f} {multi.rate():>7.1f} "
                    f"{single.skips + multi.skips:>5} | {1000 / max(single.rate(), 1e-9):>6.1f}"
                    + "".join(f" {split[name]:>8.1f}" for name in stage_names),
                    flush=True,
                )


if __name__ == "__main__":
    main()
