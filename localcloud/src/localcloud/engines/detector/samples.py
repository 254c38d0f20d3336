"""Plain data types and box geometry shared by training, inference and evaluation (numpy and PIL only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Sample:
    """One labelled image: boxes are (x0, y0, x1, y1) in the image's own pixels, labels are our class ids."""

    image_path: Path
    boxes: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        # Normalise once so every consumer can rely on the dtypes and shapes.
        object.__setattr__(self, "boxes", np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4))
        object.__setattr__(self, "labels", np.asarray(self.labels, dtype=np.int64).reshape(-1))
        if len(self.boxes) != len(self.labels):
            raise ValueError(f"{self.image_path}: {len(self.boxes)} boxes but {len(self.labels)} labels")


@dataclass(frozen=True)
class Detection:
    """One predicted object; box in the original image's pixels."""

    label: int
    confidence: float
    box: Box


def to_rgb(image: Image.Image | np.ndarray) -> Image.Image:
    """Accept PIL images and HxW / HxWx3 / HxWx4 uint8 arrays alike; the network wants 3-channel RGB."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    return image.convert("RGB")


def load_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return to_rgb(image)


def scale_factors(from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """Per-coordinate factors (x, y, x, y) that map boxes from one (width, height) to another."""
    sx = to_size[0] / from_size[0]
    sy = to_size[1] / from_size[1]
    return np.array([sx, sy, sx, sy], dtype=np.float32)


def rescale_boxes(boxes: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """Map (x0, y0, x1, y1) boxes between image sizes, clipped to the target image."""
    scaled = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * scale_factors(from_size, to_size)
    return clip_boxes(scaled, to_size)


def clip_boxes(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    return np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)


def box_areas(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in `a` against every box in `b`: shape (len(a), len(b))."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    union = box_areas(a)[:, None] + box_areas(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
