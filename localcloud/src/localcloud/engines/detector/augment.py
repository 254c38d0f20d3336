"""Training-time augmentation on images already resized to the network's square input (numpy and PIL).

Every transform moves the boxes with the pixels, so labels stay consistent.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from localcloud.engines.detector.samples import box_areas, clip_boxes

# A cropped box keeps its label only if this share of it survives; slivers of objects teach the wrong shape.
MIN_VISIBLE = 0.4
# Boxes thinner than this (pixels) have no usable regression target: SSD's encoding takes log(width).
MIN_SIDE = 1.0


def drop_degenerate(boxes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = ((boxes[:, 2] - boxes[:, 0]) >= MIN_SIDE) & ((boxes[:, 3] - boxes[:, 1]) >= MIN_SIDE)
    return boxes[keep], labels[keep]


def random_crop(
    image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator, attempts: int = 5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop a random window (60-100% of the side, aspect 3:4 to 4:3) and zoom it back to full size.

    Gives up (returns the input) when no attempt keeps at least one object, so labelled images stay labelled.
    """
    height, width = image.shape[:2]
    for _ in range(attempts):
        scale, aspect = rng.uniform(0.6, 1.0), rng.uniform(0.75, 4 / 3)
        crop_w = min(width, round(width * scale * np.sqrt(aspect)))
        crop_h = min(height, round(height * scale / np.sqrt(aspect)))
        x0, y0 = int(rng.integers(0, width - crop_w + 1)), int(rng.integers(0, height - crop_h + 1))
        shifted = clip_boxes(boxes - np.array([x0, y0, x0, y0], dtype=np.float32), (crop_w, crop_h))
        visible = box_areas(shifted) >= MIN_VISIBLE * np.maximum(box_areas(boxes), 1e-6)
        if len(boxes) and not visible.any():
            continue
        window = Image.fromarray(image[y0 : y0 + crop_h, x0 : x0 + crop_w]).resize((width, height), Image.BILINEAR)
        factors = np.array([width / crop_w, height / crop_h] * 2, dtype=np.float32)
        return np.asarray(window), shifted[visible] * factors, labels[visible]
    return image, boxes, labels


def horizontal_flip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    width = image.shape[1]
    flipped = boxes.copy()
    flipped[:, [0, 2]] = width - boxes[:, [2, 0]]
    return np.ascontiguousarray(image[:, ::-1]), flipped


def colour_jitter(image: np.ndarray, rng: np.random.Generator, strength: float = 0.25) -> np.ndarray:
    """Random brightness, contrast and saturation; returns float32 in [0, 1]."""
    pixels = image.astype(np.float32) / 255.0
    pixels *= rng.uniform(1 - strength, 1 + strength)
    grey = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    pixels = grey.mean() + (pixels - grey.mean()) * rng.uniform(1 - strength, 1 + strength)
    grey = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    pixels = grey[..., None] + (pixels - grey[..., None]) * rng.uniform(1 - strength, 1 + strength)
    return np.clip(pixels, 0.0, 1.0)


def augment(
    image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop (half the time), flip (half the time) and colour-jitter one HxWx3 uint8 image and its boxes."""
    if rng.random() < 0.5:
        image, boxes, labels = random_crop(image, boxes, labels, rng)
    if rng.random() < 0.5:
        image, boxes = horizontal_flip(image, boxes)
    boxes, labels = drop_degenerate(boxes, labels)
    return colour_jitter(image, rng), boxes, labels
