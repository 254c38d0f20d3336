"""Projection and box extraction, on synthetic id images (no OpenGL)."""

from __future__ import annotations

import numpy as np
import pytest

from include.rendering import labels
from include.rendering.randomizers import look_at


def test_projection_puts_the_target_at_the_centre_and_up_at_the_top() -> None:
    pose = look_at(np.array([0.0, -1.0, 0.0]), np.zeros(3))  # looking along +Y, Z up
    points = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.1], [0.1, 0.0, 0.0]])
    uv, depth = labels.project_points(points, pose, yfov_deg=90.0, width=200, height=100)
    assert np.allclose(depth, 1.0)
    assert uv[0] == pytest.approx([100.0, 50.0])
    assert uv[1] == pytest.approx([100.0, 50.0 - 0.1 * 50.0])  # +Z is up: a smaller row (the y-flip)
    assert uv[2] == pytest.approx([100.0 + 0.1 * 50.0, 50.0])  # +X is right; square pixels (fx == fy)


def test_points_box_rounds_to_covered_pixel_centres_and_clips() -> None:
    uv = np.array([[10.4, 20.6], [30.5, 40.49]])
    assert labels.points_box(uv, 64, 64) == (10, 21, 30, 39)
    assert labels.points_box(np.array([[-5.0, -5.0], [100.0, 10.0]]), 64, 64) == (0, 0, 63, 9)
    assert labels.points_box(np.array([[-9.0, 0.0], [-2.0, 5.0]]), 64, 64) is None


def test_boxes_overlap() -> None:
    assert labels.boxes_overlap((0, 0, 10, 10), (10, 10, 20, 20))
    assert not labels.boxes_overlap((0, 0, 10, 10), (11, 0, 20, 10))
    assert not labels.boxes_overlap(None, (0, 0, 1, 1))


def _id_image() -> np.ndarray:
    ids = np.zeros((50, 60), dtype=np.uint8)
    ids[5:15, 10:30] = 1  # 10 x 20 = 200 px
    ids[20:22, 40:45] = 2  # 10 px
    ids[30:40, 0:60] = 3  # 600 px, touching both sides
    return ids


def test_instance_stats_counts_and_inclusive_boxes() -> None:
    stats = labels.instance_stats(_id_image(), 4)
    assert stats.pixels.tolist() == [50 * 60 - 810, 200, 10, 600, 0]
    assert stats.boxes[1].tolist() == [10, 5, 29, 14]
    assert stats.boxes[3].tolist() == [0, 30, 59, 39]
    assert stats.boxes[4].tolist() == [-1, -1, -1, -1]


def test_visible_boxes_apply_both_thresholds() -> None:
    stats = labels.instance_stats(_id_image(), 3)
    boxes = labels.visible_boxes(stats, [7, 8, 9], [400, 10, 600], min_visible_pixels=50, min_visible_fraction=0.6)
    assert boxes[0] is None  # 200 of 400 px visible: below 0.6
    assert boxes[1] is None  # 10 px: below 50
    box = boxes[2]
    assert (box.class_id, box.left, box.top, box.width, box.height) == (9, 0, 30, 60, 10)
    assert (box.visible_pixels, box.visible_fraction) == (600, 1.0)
    relaxed = labels.visible_boxes(stats, [7, 8, 9], [400, 10, 600], 1, 0.5)
    assert relaxed[0].visible_fraction == 0.5 and relaxed[1].width == 5
