"""Train SSDlite from Samples; writes model.pt (weights + metadata) and metadata.json into out_dir."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision.models.detection.ssd import SSD

from localcloud.engines.detector.augment import augment, drop_degenerate
from localcloud.engines.detector.network import (
    CHECKPOINT,
    METADATA,
    build_model,
    device,
    load_compatible,
    network_input,
    resolve_pretrained,
    to_tensor,
)
from localcloud.engines.detector.samples import Sample, load_rgb, rescale_boxes

FORMAT = "ssdlite320_mobilenet_v3_large/1"
# From-scratch SSD diverges easily in its first steps; a short warm-up and clipped gradients keep it stable.
WARMUP_STEPS = 50
MAX_GRAD_NORM = 10.0


@dataclass(frozen=True)
class TrainConfig:
    image_size: int = 320
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    max_seconds: float | None = None  # stop after this long and keep the best epoch so far
    threads: int | None = None  # torch CPU threads; on a busy machine fewer can be faster
    pretrained: str = "auto"  # "auto" ($DETECTOR_WEIGHTS if set), "none", or a weights file
    augment: bool = True


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    pretrained: str  # what the weights started from, in words (e.g. "none: trained from scratch ...")
    device: str
    epochs_completed: int
    best_epoch: int  # 1-based; 0 when no epoch completed inside max_seconds
    best_loss: float
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False


@dataclass(frozen=True)
class _Prepared:
    """A training image resized once to the network size, with boxes to match and labels shifted past 0."""

    pixels: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _prepare(samples: list[Sample], image_size: int) -> list[_Prepared]:
    """Decode and resize every image up front: epochs then cost only augmentation and the network."""
    prepared = []
    for sample in samples:
        image = load_rgb(sample.image_path)
        boxes = rescale_boxes(sample.boxes, image.size, (image_size, image_size))
        boxes, labels = drop_degenerate(boxes, sample.labels + 1)  # 0 is SSD's background class
        prepared.append(_Prepared(network_input(image, image_size), boxes, labels))
    return prepared


def _batch(
    items: list[_Prepared], rng: np.random.Generator, use_augment: bool, on: torch.device
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    images, targets = [], []
    for item in items:
        if use_augment:
            pixels, boxes, labels = augment(item.pixels, item.boxes, item.labels, rng)
        else:
            pixels, boxes, labels = item.pixels, item.boxes, item.labels
        images.append(to_tensor(pixels).to(on))
        targets.append(
            {
                "boxes": torch.from_numpy(np.asarray(boxes, dtype=np.float32).reshape(-1, 4)).to(on),
                "labels": torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(on),
            }
        )
    return images, targets


def _describe_start(model: SSD, setting: str) -> str:
    path = resolve_pretrained(setting)
    if path is None:
        reason = "pretrained='none'" if setting == "none" else "DETECTOR_WEIGHTS does not name a file"
        return f"none: trained from scratch ({reason})"
    copied, total = load_compatible(model, path)
    return f"{path}: {copied}/{total} tensors"


def _schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay to 5% of the base rate over the planned steps."""
    warmup = min(WARMUP_STEPS, max(1, total_steps // 10))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _save(model_path: Path, state: dict[str, torch.Tensor], metadata: dict) -> None:
    model_path.parent.mkdir(parents=True, exist_ok=True)
    partial = model_path.with_suffix(".partial")
    torch.save({"state_dict": state, "metadata": metadata}, partial)
    partial.replace(model_path)  # a reader never sees half a checkpoint
    (model_path.parent / METADATA).write_text(json.dumps(metadata, indent=2))


def _run_epoch(
    model: SSD,
    items: list[_Prepared],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    rng: np.random.Generator,
    config: TrainConfig,
    on: torch.device,
    deadline: float,
) -> float | None:
    """One pass over the data in random order; the mean loss per image, or None if the deadline cut it short.

    A partial epoch's loss is over a different subset of images, so it cannot compete for "best".
    """
    order = rng.permutation(len(items))
    total = 0.0
    for first in range(0, len(items), config.batch_size):
        if time.monotonic() > deadline:
            return None
        images, targets = _batch([items[i] for i in order[first : first + config.batch_size]], rng, config.augment, on)
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(images)
    return total / len(items)


def train(
    train: list[Sample],
    num_classes: int,
    config: TrainConfig,
    out_dir: Path,
    progress: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train on `train` (class ids 0..num_classes-1) and save the lowest-loss epoch's weights in out_dir."""
    if not train:
        raise ValueError("no training samples")
    bad = [s.image_path for s in train if len(s.labels) and not 0 <= s.labels.min() <= s.labels.max() < num_classes]
    if bad:
        raise ValueError(f"labels outside 0..{num_classes - 1} in {bad[:3]}")
    started = time.monotonic()
    deadline = started + config.max_seconds if config.max_seconds is not None else math.inf
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    on = device()
    with _threads(config.threads):
        model = build_model(num_classes, config.image_size)
        start = _describe_start(model, config.pretrained)
        model.to(on).train()
        items = _prepare(train, config.image_size)
        steps_per_epoch = math.ceil(len(items) / config.batch_size)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
        scheduler = _schedule(optimizer, steps_per_epoch * config.epochs)
        losses: list[float] = []
        best_state, best_loss, best_epoch = None, math.inf, 0
        stopped_early = False
        for epoch in range(1, config.epochs + 1):
            loss = _run_epoch(model, items, optimizer, scheduler, rng, config, on, deadline)
            if loss is None:
                stopped_early = True
                break
            losses.append(loss)
            if loss < best_loss:
                best_loss, best_epoch = loss, epoch
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            if progress:
                progress({"epoch": epoch, "epochs": config.epochs, "loss": loss, "seconds": time.monotonic() - started})
        # With no complete epoch inside the budget the latest weights are all there is.
        state = best_state or {k: v.detach().cpu() for k, v in model.state_dict().items()}
    seconds = time.monotonic() - started
    metadata = {
        "format": FORMAT,
        "num_classes": num_classes,
        "image_size": config.image_size,
        "config": asdict(config),
        "pretrained": start,
        "epochs_completed": len(losses),
        "best_epoch": best_epoch,
        "losses": losses,
        "seconds": seconds,
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
    }
    model_path = Path(out_dir) / CHECKPOINT
    _save(model_path, state, metadata)
    return TrainResult(
        model_path=model_path,
        pretrained=start,
        device=str(on),
        epochs_completed=len(losses),
        best_epoch=best_epoch,
        best_loss=best_loss,
        losses=losses,
        seconds=seconds,
        stopped_early=stopped_early,
    )
