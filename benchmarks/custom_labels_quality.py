"""Custom Labels quality: F1 of the offline detector on a domain-shifted render set, for a stated training budget.

    python benchmarks/custom_labels_quality.py [--minutes 30] [--images-per-class 150] [--test-images-per-class 30]
                                               [--image-size 320] [--resolution 512] [--threads N] [--pretrained auto]
                                               [--epochs N] [--render JSON] [--seed 0] [--processes N]
                                               [--cache-dir DIR] [--out PATH]

Renders the gearbox catalog twice: a training set with ``--render`` (RenderConfig overrides on top of the defaults,
at ``--resolution`` px) and a test set from ``include.rendering.shift.domain_shift`` of that config, with
``shifted_seed`` (other lighting / backgrounds / materials / camera, never the training images). Both are cached
under ``--cache-dir`` by dataset version, so a rerun only trains. Then it trains the localcloud detector engine
(``localcloud/src/localcloud/engines/detector``, the GPU when there is one) for ``--minutes``, evaluates it on the shifted
set exactly as Rekognition's evaluation summary does (IoU 0.5, per-label best-F1 threshold, micro-averaged), and
prints ONE report: F1 / precision / recall overall and per label, train seconds and epochs, inference ms per image,
the device and the settings, and whether F1 reached the goal (``--goal``, 0.95). The same goes as JSON to ``--out``.

``--epochs auto`` (the default) times a few training steps first and plans the epochs that fit the budget: the
engine's cosine LR schedule spans its planned epochs, so planning far more than fit would stop it at a high rate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from include.rendering.dataset import DatasetSpec, dataset_version, items, render_items, resolve_catalog  # noqa: I001
from include.rendering.randomizers import RenderConfig, background_files
from include.rendering.shift import domain_shift, shifted_seed

CATALOG = "include/cad/gearbox/catalog.yaml"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "custom_labels_quality.json"
DEFAULT_CACHE = REPO / "benchmarks" / "results" / "render-cache"
LABELS_FILE = "labels.json"
# Share of the budget that --epochs auto plans for: the rest covers decoding the images and epoch-to-epoch noise.
PLAN_SHARE = 0.95


# -- rendering (cached) -----------------------------------------------------------------------------------------------


def _backgrounds_digest(render: dict[str, Any]) -> str:
    """The image backgrounds' bytes: the dataset version hashes only the directory's name, not what is in it."""
    if "image" not in render.get("backgrounds", ()):
        return ""
    root = Path(render["background_dir"])
    digest = hashlib.sha256()
    for name in background_files(root):
        digest.update(name.encode())
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:8]


def render_set(spec: DatasetSpec, cache_dir: Path, processes: int | None) -> tuple[Path, list[dict], dict[str, Any]]:
    """(image folder, labelled images, stats) for ``spec``; rendered once per dataset version, then read back."""
    from include.rendering.catalog import load_catalog

    key = f"{spec.name}-{dataset_version(spec)}"
    if backgrounds := _backgrounds_digest(spec.render):
        key += f"-bg{backgrounds}"
    folder = cache_dir / key
    labels_path = folder / LABELS_FILE
    if labels_path.is_file():
        cached = json.loads(labels_path.read_text())
        return folder, cached["images"], {**cached["stats"], "cached": True}
    class_ids = sorted(load_catalog(resolve_catalog(spec.catalog)).class_map)
    work = items(spec, class_ids)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    result = render_items(spec.catalog, spec.render, work, partial, processes=processes, label=spec.name)
    images = [
        {
            "file_name": im.file_name,
            "boxes": [[b.left, b.top, b.left + b.width, b.top + b.height] for b in im.boxes],
            "labels": [b.class_id for b in im.boxes],
        }
        for im in result.images
    ]
    stats = {
        "version": key,
        "images": result.rendered,
        "boxes": sum(len(im["labels"]) for im in images),
        "skipped": result.skipped,
        "seconds": round(result.seconds, 1),
        "item_seeds": sorted(i.seed for i in work),
    }
    (partial / LABELS_FILE).write_text(json.dumps({"spec": spec.to_dict(), "stats": stats, "images": images}))
    shutil.rmtree(folder, ignore_errors=True)
    partial.replace(folder)  # the labels file marks a complete set: an interrupted render is redone, not reused
    return folder, images, {**stats, "cached": False}


def to_samples(folder: Path, images: list[dict]) -> list:
    from localcloud.engines.detector import Sample

    return [Sample(folder / im["file_name"], im["boxes"], im["labels"]) for im in images]


# -- training budget --------------------------------------------------------------------------------------------------


def seconds_per_step(samples: list, image_size: int, batch_size: int, threads: int | None, steps: int = 3) -> float:
    """Wall seconds of one training step (augmentation, forward, backward, update) on this machine's device."""
    import numpy as np
    import torch

    from localcloud.engines.detector.augment import augment
    from localcloud.engines.detector.network import build_model, device, network_input, to_tensor
    from localcloud.engines.detector.samples import load_rgb, rescale_boxes

    on = device()
    if threads:
        torch.set_num_threads(threads)
    model = build_model(5, image_size).to(on).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    batch = []
    for sample in samples[:batch_size]:
        image = load_rgb(sample.image_path)
        boxes = rescale_boxes(sample.boxes, image.size, (image_size, image_size))
        batch.append((network_input(image, image_size), boxes, sample.labels + 1))
    timings = []
    for _ in range(steps + 1):  # the first step pays for allocations and kernel selection
        start = time.perf_counter()
        images, targets = [], []
        for pixels, boxes, labels in batch:
            pixels, boxes, labels = augment(pixels, boxes, labels, rng)
            images.append(to_tensor(pixels).to(on))
            targets.append(
                {"boxes": torch.as_tensor(boxes).reshape(-1, 4).to(on), "labels": torch.as_tensor(labels).to(on)}
            )
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if on.type == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
    return float(np.median(timings[1:]))


def plan_epochs(train_count: int, batch_size: int, step_seconds: float, budget_seconds: float) -> int:
    steps = math.ceil(train_count / batch_size)
    return max(1, int(PLAN_SHARE * budget_seconds / (steps * step_seconds)))


# -- report -----------------------------------------------------------------------------------------------------------


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU: {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores"


def print_report(report: dict[str, Any]) -> None:
    s, t, q = report["settings"], report["training"], report["quality"]
    print(f"# custom_labels_quality: gearbox, {report['device']}, torch threads {s['threads'] or 'default'}")
    print(
        f"# budget {s['minutes']} min, {s['images_per_class']} train / {s['test_images_per_class']} test images per "
        f"class, render {s['resolution']} px, network {s['image_size']} px, batch {s['batch_size']}, lr {s['lr']}, "
        f"pretrained {s['pretrained']!r}, seed {s['seed']} (test seed {s['test_seed']})"
    )
    for name in ("train", "test"):
        r = report["render"][name]
        skipped = sum(r["skipped"].values())
        source = "cached" if r["cached"] else f"rendered in {r['seconds']} s"
        print(f"# {name} set {r['version']}: {r['images']} images, {r['boxes']} boxes, {skipped} skipped, {source}")
    print("# domain shift: " + "; ".join(report["shift"]))
    print(
        f"# training: {t['seconds']:.0f} s, {t['epochs_completed']}/{t['epochs_planned']} epochs "
        f"(best {t['best_epoch']}, loss {t['best_loss']:.3f}{', stopped by the budget' if t['stopped_early'] else ''}), "
        f"start: {t['pretrained']}"
    )
    print(f"{'label':<14} {'F1':>6} {'prec':>6} {'recall':>6} {'thresh':>6} {'boxes':>6}")
    for row in q["labels"]:
        print(
            f"{row['label']:<14} {row['f1']:>6.3f} {row['precision']:>6.3f} {row['recall']:>6.3f} "
            f"{row['threshold']:>6.3f} {row['boxes']:>6}"
        )
    print(f"{'overall':<14} {q['f1']:>6.3f} {q['precision']:>6.3f} {q['recall']:>6.3f} {'':>6} {q['boxes']:>6}")
    print(f"inference: {report['inference_ms_per_image']:.1f} ms/image ({q['images']} test images)")
    verdict = "MET" if report["goal_met"] else "NOT met"
    print(f"goal F1 >= {report['goal']}: {verdict} (F1 {q['f1']:.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget (wall clock, excl. rendering)")
    parser.add_argument("--images-per-class", type=int, default=150)
    parser.add_argument("--test-images-per-class", type=int, default=30)
    parser.add_argument("--image-size", type=int, default=320, help="network input (square)")
    parser.add_argument("--resolution", type=int, default=512, help="rendered image size (square)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--pretrained", default="auto", help='"auto" ($DETECTOR_WEIGHTS), "none" or a weights file')
    parser.add_argument("--epochs", default="auto", help='"auto": as many as fit the budget, or a number')
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--render", default="{}", help="training RenderConfig overrides, as JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--processes", type=int, default=None, help="renderer processes (default: every core)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--goal", type=float, default=0.95)
    args = parser.parse_args(argv)

    import torch

    from include.rendering.catalog import load_catalog
    from localcloud.engines.detector import TrainConfig, evaluate_predictions, load, train
    from localcloud.engines.detector.samples import load_rgb

    train_render = RenderConfig.from_dict(
        {"width": args.resolution, "height": args.resolution, **json.loads(args.render)}
    ).to_dict()
    test_render, shift = domain_shift(train_render)
    test_seed = shifted_seed(args.seed)
    train_spec = DatasetSpec(CATALOG, args.images_per_class, train_render, args.seed, name="cl-train")
    test_spec = DatasetSpec(CATALOG, args.test_images_per_class, test_render, test_seed, name="cl-shifted-test")
    train_dir, train_images, train_stats = render_set(train_spec, args.cache_dir, args.processes)
    test_dir, test_images, test_stats = render_set(test_spec, args.cache_dir, args.processes)
    overlap = set(train_stats.pop("item_seeds")) & set(test_stats.pop("item_seeds"))
    if overlap:
        raise SystemExit(f"{len(overlap)} test item seeds are training item seeds: the test set is not held out")
    train_samples, test_samples = to_samples(train_dir, train_images), to_samples(test_dir, test_images)
    class_names = load_catalog(resolve_catalog(CATALOG)).class_map

    budget = args.minutes * 60.0
    if args.epochs == "auto":
        step = seconds_per_step(train_samples, args.image_size, args.batch_size, args.threads)
        epochs = plan_epochs(len(train_samples), args.batch_size, step, budget)
    else:
        step, epochs = None, int(args.epochs)
    config = TrainConfig(
        image_size=args.image_size,
        epochs=epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        max_seconds=budget,
        threads=args.threads,
        pretrained=args.pretrained,
    )
    with tempfile.TemporaryDirectory(prefix="cl-quality-") as tmp:
        trained = train(train_samples, len(class_names), config, Path(tmp) / "model")
        detector = load(Path(tmp) / "model")
    if args.threads:
        torch.set_num_threads(args.threads)
    pictures = [load_rgb(s.image_path) for s in test_samples]
    detector.predict(pictures[0])  # warm-up: the first call pays for allocations (and CUDA kernel selection)
    started = time.perf_counter()
    predictions = [detector.predict(picture) for picture in pictures]
    inference_ms = 1000.0 * (time.perf_counter() - started) / len(pictures)
    summary = evaluate_predictions(predictions, test_samples, class_names)

    aggregate = summary["AggregatedEvaluationResults"]
    labels = [
        {
            "label": r["Label"],
            "f1": r["Metrics"]["F1Score"],
            "precision": r["Metrics"]["Precision"],
            "recall": r["Metrics"]["Recall"],
            "threshold": r["Metrics"]["Threshold"],
            "boxes": r["NumberOfTestingBoxes"],
        }
        for r in summary["LabelEvaluationResults"]
    ]
    report = {
        "device": device_name(),
        "settings": {
            **{k: v for k, v in vars(args).items() if k not in ("cache_dir", "out", "render", "goal")},
            "test_seed": test_seed,
            "train_render": train_render,
            "test_render": test_render,
            "seconds_per_step": step,
        },
        "shift": shift,
        "render": {"train": train_stats, "test": test_stats},
        "training": {
            **{k: v for k, v in asdict(trained).items() if k != "model_path"},
            "epochs_planned": epochs,
        },
        "quality": {
            "f1": aggregate["F1Score"],
            "precision": aggregate["Precision"],
            "recall": aggregate["Recall"],
            "images": len(test_samples),
            "boxes": sum(r["boxes"] for r in labels),
            "labels": labels,
        },
        "inference_ms_per_image": inference_ms,
        "goal": args.goal,
        "goal_met": aggregate["F1Score"] >= args.goal,
        "evaluation_summary": summary,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str))
    print(f"# written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
