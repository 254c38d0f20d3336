"""The renderer end to end on small images: boxes against projected geometry, occlusion, flat parts, determinism,
backgrounds, skips. One Renderer per configuration, shared by the module (each costs ~0.5 s of shader warm-up)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from include.rendering import gl, labels
from include.rendering import randomizers as rz
from include.rendering.scene import Renderer, RenderSkip, background_image
from include.rendering.types import Box, Catalog
from tests import REPO
from tests.rendering.test_randomizers import primitive_catalog

WIDTH, HEIGHT = 192, 144  # not square: the projection must use the aspect ratio


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return primitive_catalog()


@pytest.fixture(scope="module")
def studio(catalog: Catalog):
    config = rz.RenderConfig(
        width=WIDTH,
        height=HEIGHT,
        lighting=("studio",),
        zoom_range=(1.2, 2.0),
        target_jitter=0.0,  # the whole primary stays in frame: its box is never clipped
        backgrounds=("solid",),
        min_visible_pixels=20,
    )
    with Renderer(catalog, config) as renderer:
        yield renderer


@pytest.fixture(scope="module")
def crowded(catalog: Catalog):
    config = rz.RenderConfig(width=160, height=160, objects_per_image=(3, 4), min_visible_pixels=20)
    with Renderer(catalog, config) as renderer:
        yield renderer


def projected_extent(renderer: Renderer, class_id: int, transform: list, camera_pose: list) -> np.ndarray:
    """(u_min, v_min, u_max, v_max) of a part's mesh vertices in pixels, clipped to the image."""
    mesh = renderer.catalog.part(class_id).mesh
    points = trimesh.transform_points(mesh.vertices, np.asarray(transform))
    config = renderer.config
    uv, _ = labels.project_points(points, np.asarray(camera_pose), config.yfov_deg, config.width, config.height)
    size = [config.width, config.height]
    return np.concatenate([np.clip(uv.min(axis=0), 0, size), np.clip(uv.max(axis=0), 0, size)])


def box_edges(box: Box) -> np.ndarray:
    return np.array([box.left, box.top, box.left + box.width, box.top + box.height], dtype=float)


def test_unoccluded_box_matches_the_projected_vertices(studio: Renderer) -> None:
    for seed in range(9):
        image, boxes, meta = studio.render(seed % 3, seed)
        assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.uint8 and image.flags.writeable
        assert len(boxes) == 1 and boxes[0].class_id == seed % 3 and boxes[0].visible_fraction == 1.0
        obj = meta["objects"][0]
        extent = projected_extent(studio, obj["class_id"], obj["transform"], meta["camera"]["pose"])
        assert np.abs(box_edges(boxes[0]) - extent).max() < 1.0, (seed, box_edges(boxes[0]), extent)


def test_an_occluded_object_gets_a_box_of_its_visible_part(studio: Renderer) -> None:
    """A standing pin behind a block that hides its lower part, seen level from +X."""
    template = studio.draw(2, 0)
    pin = np.eye(4)
    pin[2, 3] = 0.045  # the cylinder is centred on its origin: lift it onto the floor
    block = np.eye(4)
    block[:3, 3] = (0.06, 0.0, 0.015)  # in front of the pin, 0.03 m tall: below the camera's eye height
    material = template.objects[0].material
    draw = dataclasses.replace(
        template,
        objects=(
            rz.ObjectDraw(2, "pin", 0, 0.0, pin, 0.015, material),
            rz.ObjectDraw(0, "block", 0, 0.0, block, 0.047, material),
        ),
        camera=rz.CameraDraw(azimuth_deg=0.0, elevation_deg=0.0, roll_deg=0.0, zoom=1.5, target_offset=(0.0, 0.0)),
    )
    _, boxes, meta = studio.render_draw(draw)
    pin_box, block_box = boxes
    assert (pin_box.class_id, block_box.class_id) == (2, 0)
    pose = meta["camera"]["pose"]
    pin_extent = projected_extent(studio, 2, pin, pose)
    block_extent = projected_extent(studio, 0, block, pose)
    # Left, top and right of the pin are its own; its bottom is where the block's silhouette begins.
    expected = np.array([pin_extent[0], pin_extent[1], pin_extent[2], block_extent[1]])
    assert np.abs(box_edges(pin_box) - expected).max() < 1.0, (box_edges(pin_box), expected)
    assert np.abs(box_edges(block_box) - block_extent).max() < 1.0
    assert pin_box.height < pin_extent[3] - pin_extent[1] - 10
    assert 0.3 < pin_box.visible_fraction < 0.9 and block_box.visible_fraction == 1.0
    record = meta["objects"][0]
    assert record["visible_pixels"] == pin_box.visible_pixels < record["unoccluded_pixels"]
    assert pin_box.visible_fraction == pytest.approx(record["visible_pixels"] / record["unoccluded_pixels"], abs=1e-4)


def test_objects_are_opaque_over_the_background(studio: Renderer) -> None:
    draw = studio.draw(0, 5)
    black = dataclasses.replace(draw, background=rz.BackgroundDraw("solid", ((0, 0, 0),)))
    white = dataclasses.replace(draw, background=rz.BackgroundDraw("solid", ((255, 255, 255),)))
    (on_black, boxes, _), (on_white, _, _) = studio.render_draw(black), studio.render_draw(white)
    same = np.all(on_black == on_white, axis=2)
    if gl.PLATFORM == "osmesa":  # no multisampling: coverage is all or nothing
        assert same.sum() == boxes[0].visible_pixels
    else:
        assert 0.9 * boxes[0].visible_pixels <= same.sum() <= boxes[0].visible_pixels


@pytest.mark.parametrize("kind", ["solid", "gradient", "noise"])
def test_generated_backgrounds_fill_the_empty_pixels(studio: Renderer, kind: str) -> None:
    rng = np.random.default_rng(11)
    background = rz.draw_background(rng, (kind,), ())
    draw = dataclasses.replace(studio.draw(1, 6), background=background)
    image, boxes, _ = studio.render_draw(draw)
    expected = np.asarray(background_image(background, WIDTH, HEIGHT))
    box = boxes[0]
    outside = np.ones((HEIGHT, WIDTH), dtype=bool)
    outside[box.top : box.top + box.height, box.left : box.left + box.width] = False
    assert np.array_equal(image[outside], expected[outside])
    if kind != "solid":
        assert len(np.unique(expected.reshape(-1, 3), axis=0)) > 20


def test_image_backgrounds_come_from_the_folder(tmp_path: Path, catalog: Catalog) -> None:
    colours = {"a.png": (200, 30, 40), "b.png": (20, 180, 60), "sub/c.png": (10, 20, 230)}
    for name, colour in colours.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new("RGB", (300, 200), colour).save(tmp_path / name)
    config = rz.RenderConfig(
        width=96,
        height=96,
        lighting=("studio",),
        backgrounds=("image",),
        background_dir=str(tmp_path),
        min_visible_pixels=10,
    )
    seen = set()
    with Renderer(catalog, config) as renderer:
        for seed in range(8):
            image, _, meta = renderer.render(0, seed)
            assert tuple(image[0, 0]) == colours[meta["background"]["file"]]
            seen.add(meta["background"]["file"])
    assert len(seen) >= 2


def test_flat_parts_are_never_seen_edge_on(catalog: Catalog) -> None:
    config = rz.RenderConfig(
        width=96,
        height=96,
        lighting=("studio",),
        elevation_range_deg=(0.0, 40.0),  # many views from low down: the rule has work to do
        flat_min_area_ratio=0.4,
        min_visible_pixels=10,
    )
    washer = 1
    rejected_edge_on = accepted = 0
    with Renderer(catalog, config) as renderer:
        for seed in range(16):
            try:
                _, _, meta = renderer.render(washer, seed)
            except RenderSkip as skip:
                rejected_edge_on += sum("edge-on" in reason for reason in skip.attempts)
                continue
            accepted += 1
            rejected_edge_on += sum("edge-on" in reason for reason in meta["rejected_attempts"])
            obj = meta["objects"][0]
            eye = np.asarray(meta["camera"]["pose"])[:3, 3]
            ratio = rz.view_area_ratio(renderer.geometry[washer], np.asarray(obj["transform"]), eye)
            assert ratio >= 0.4 and obj["view_area_ratio"] == pytest.approx(ratio, abs=1e-4)
        assert accepted >= 8 and rejected_edge_on >= 3

        lying_flat = np.eye(4)
        lying_flat[2, 3] = 0.003
        draw = renderer.draw(washer, 0)
        edge_on = dataclasses.replace(
            draw,
            objects=(dataclasses.replace(draw.objects[0], transform=lying_flat),),
            camera=dataclasses.replace(draw.camera, elevation_deg=0.0),
        )
        with pytest.raises(RenderSkip, match="edge-on view of flat part 'washer'") as info:
            renderer.render_draw(edge_on)
        assert info.value.category == "edge_on"


def test_crowded_scenes_keep_objects_apart_and_label_what_is_visible(crowded: Renderer) -> None:
    presets = set()
    for seed in range(6):
        image, boxes, meta = crowded.render(seed % 3, seed)
        presets.add(meta["lighting"]["preset"])
        objects = meta["objects"]
        assert 3 <= len(objects) <= 4 and boxes[0].class_id == seed % 3
        for a, b in itertools.combinations(objects, 2):
            gap = np.linalg.norm(np.subtract(a["transform"], b["transform"])[:2, 3])
            assert gap >= a["footprint_radius"] + b["footprint_radius"]
        labelled = [o for o in objects if o["labelled"]]
        assert [b.class_id for b in boxes] == [o["class_id"] for o in labelled]
        for box, obj in zip(boxes, labelled, strict=True):
            assert box.visible_pixels >= crowded.config.min_visible_pixels
            assert crowded.config.min_visible_fraction <= box.visible_fraction <= 1.0
            assert box.left >= 0 and box.left + box.width <= image.shape[1]
            assert box.top >= 0 and box.top + box.height <= image.shape[0]
            assert obj["visible_pixels"] == box.visible_pixels
    assert presets == {"studio", "warehouse"}


def test_shared_alone_passes_count_like_one_pass_per_object(crowded: Renderer) -> None:
    """White-box: the renderer groups non-overlapping objects into one "alone" pass; redo them one by one."""
    checked = 0
    for seed in range(20, 26):
        _, _, meta = crowded.render(0, seed)
        for i, (node, record) in enumerate(zip(crowded._object_nodes, meta["objects"], strict=True)):
            if record["visible_pixels"] < crowded.config.min_visible_pixels:
                continue  # never measured: dropped on its visible pixels alone
            alone = int(np.count_nonzero(crowded._offscreen.ids(crowded._scene, {node: i + 1})))
            assert record["unoccluded_pixels"] == alone
            checked += 1
    assert checked >= 10


def _fingerprint(result: tuple) -> tuple:
    image, boxes, _ = result
    return hashlib.sha256(image.tobytes()).hexdigest(), boxes


def test_same_seed_same_bytes_whatever_came_before(crowded: Renderer, catalog: Catalog) -> None:
    first = _fingerprint(crowded.render(1, 77))
    crowded.render(2, 78)
    assert _fingerprint(crowded.render(1, 77)) == first
    assert _fingerprint(crowded.render(1, 79))[0] != first[0]
    with Renderer(catalog, crowded.config) as fresh:
        assert _fingerprint(fresh.render(1, 77)) == first


def test_soft_shadows_change_pixels_not_boxes(catalog: Catalog) -> None:
    config = rz.RenderConfig(width=96, height=96, lighting=("warehouse",), min_visible_pixels=10)
    with Renderer(catalog, dataclasses.replace(config, shadow_quality="soft")) as soft:
        soft_image, soft_boxes, _ = soft.render(0, 3)
    with Renderer(catalog, config) as fast:
        fast_image, fast_boxes, _ = fast.render(0, 3)
    assert soft_boxes == fast_boxes
    assert not np.array_equal(soft_image, fast_image)


def test_impossible_views_raise_render_skip_after_every_attempt(catalog: Catalog) -> None:
    tiny = rz.RenderConfig(width=64, height=64, lighting=("studio",), zoom_range=(300.0, 300.0), max_attempts=3)
    with Renderer(catalog, tiny) as renderer, pytest.raises(RenderSkip, match="no acceptable view in 3") as info:
        renderer.render(0, 1)
    assert info.value.category == "not_visible"
    assert len(info.value.attempts) == 3 and all("barely visible" in r for r in info.value.attempts)


def test_unknown_class_is_an_error_not_a_skip(studio: Renderer) -> None:
    with pytest.raises(KeyError, match="class_id 99"):
        studio.render(99, 0)


@pytest.mark.parametrize(("platform", "expected"), [(None, "osmesa"), ("egl", "egl")])
def test_gl_picks_osmesa_unless_told_and_patches_numpy(platform: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"}
    env["PYTHONPATH"] = str(REPO)
    if platform:
        env["PYOPENGL_PLATFORM"] = platform
    code = "import numpy as np; from include.rendering import gl; print(gl.PLATFORM, np.infty == np.inf)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [expected, "True"]
