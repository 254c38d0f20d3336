"""Visible-pixel boxes from an instance-id image, and the pinhole projection the tests check them against.

Pixel convention (as in ``Box``): x right, y down, pixel (i, j) covers [i, i + 1) x [j, j + 1); a rasteriser covers
a pixel when its centre (i + 0.5, j + 0.5) is inside the projected surface.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from include.rendering.types import Box


def intrinsics(yfov_deg: float, width: int, height: int) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) in pixels of pyrender's ``PerspectiveCamera(yfov, aspectRatio=width / height)``."""
    f = height / (2.0 * math.tan(math.radians(yfov_deg) / 2.0))
    return f, f, width / 2.0, height / 2.0


def project_points(
    points: np.ndarray, camera_pose: np.ndarray, yfov_deg: float, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """World points (n, 3) to pixel coordinates (n, 2) and camera-frame depths (n,) (positive in front).

    ``camera_pose`` is camera-to-world in the OpenGL convention (the camera looks down -Z with +Y up), so the
    image y axis is flipped: forgetting that is a ~height/2-pixel error.
    """
    fx, fy, cx, cy = intrinsics(yfov_deg, width, height)
    world_to_cam = np.linalg.inv(camera_pose)
    cam = points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    depth = -cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = cx + fx * cam[:, 0] / depth
        v = cy - fy * cam[:, 1] / depth
    return np.stack([u, v], axis=1), depth


def points_box(uv: np.ndarray, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Inclusive pixel box (left, top, right, bottom) of the pixels whose centres the points' extent spans,
    clipped to the image; None when that is empty."""
    (u0, v0), (u1, v1) = uv.min(axis=0), uv.max(axis=0)
    left, top = max(math.ceil(u0 - 0.5), 0), max(math.ceil(v0 - 0.5), 0)
    right, bottom = min(math.floor(u1 - 0.5), width - 1), min(math.floor(v1 - 0.5), height - 1)
    if left > right or top > bottom:
        return None
    return left, top, right, bottom


def boxes_overlap(a: tuple[int, int, int, int] | None, b: tuple[int, int, int, int] | None) -> bool:
    if a is None or b is None:
        return False
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@dataclass(frozen=True)
class InstanceStats:
    """Per instance id 1..n (index 0 is the background): pixel counts and inclusive boxes (-1 where absent)."""

    pixels: np.ndarray  # (n + 1,) int
    boxes: np.ndarray  # (n + 1, 4) int: left, top, right, bottom


def instance_stats(ids: np.ndarray, count: int) -> InstanceStats:
    """Pixel counts and boxes of instances 1..count in an (H, W) id image.

    A row/column reduction per instance: ~10x faster than scattering every non-zero pixel (np.minimum.at).
    """
    pixels = np.bincount(ids.ravel(), minlength=count + 1)[: count + 1]
    boxes = np.full((count + 1, 4), -1, dtype=np.int64)
    for k in np.flatnonzero(pixels[1:]) + 1:
        mask = ids == k
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        boxes[k] = cols[0], rows[0], cols[-1], rows[-1]
    return InstanceStats(pixels=pixels, boxes=boxes)


def visible_boxes(
    stats: InstanceStats,
    class_ids: Sequence[int],
    unoccluded_pixels: Sequence[int],
    min_visible_pixels: int,
    min_visible_fraction: float,
) -> list[Box | None]:
    """A ``Box`` per instance (instance i + 1 is ``class_ids[i]``), or None where it is too small or too hidden.

    ``unoccluded_pixels[i]`` is what instance i + 1 covers when rendered alone; the visible fraction is the share
    of that which survives occlusion by the others.
    """
    result: list[Box | None] = []
    for i, class_id in enumerate(class_ids):
        visible = int(stats.pixels[i + 1])
        fraction = visible / unoccluded_pixels[i] if unoccluded_pixels[i] else 0.0
        if visible < min_visible_pixels or fraction < min_visible_fraction:
            result.append(None)
            continue
        left, top, right, bottom = (int(v) for v in stats.boxes[i + 1])
        result.append(
            Box(
                class_id=int(class_id),
                left=left,
                top=top,
                width=right - left + 1,
                height=bottom - top + 1,
                visible_pixels=visible,
                visible_fraction=round(min(fraction, 1.0), 4),
            )
        )
    return result
