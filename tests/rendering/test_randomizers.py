"""Randomizers and RenderConfig: pure functions of a seed, no OpenGL."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from include.rendering import randomizers as rz
from include.rendering.types import Catalog, Part
from tests import REPO


def primitive_catalog() -> Catalog:
    """Three primitive parts in metres, one of them flat; shared by the rendering tests."""
    return Catalog(
        "primitives",
        (
            Part(0, "block", trimesh.creation.box((0.08, 0.05, 0.03))),
            Part(1, "washer", trimesh.creation.annulus(0.02, 0.05, 0.006, sections=48), flat=True),
            Part(2, "pin", trimesh.creation.cylinder(0.015, 0.09, sections=32)),
        ),
    )


@pytest.fixture(scope="module")
def geometry() -> dict[int, rz.PartGeometry]:
    return {p.class_id: rz.part_geometry(p) for p in primitive_catalog().parts}


# -- RenderConfig --------------------------------------------------------------------------------------------------------


def test_config_round_trips_through_json() -> None:
    config = rz.RenderConfig(width=640, height=480, lighting=("studio",), objects_per_image=(1, 4), roll=False)
    data = json.loads(json.dumps(config.to_dict()))
    assert rz.RenderConfig.from_dict(data) == config
    assert data["objects_per_image"] == [1, 4]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"width": 63}, "width"),
        ({"height": 4097}, "height"),
        ({"width": 512.0}, "width"),
        ({"lighting": ("disco",)}, "lighting"),
        ({"lighting": ()}, "lighting"),
        ({"shadow_quality": "ultra"}, "shadow_quality"),
        ({"zoom_range": (2.0, 1.0)}, "zoom_range"),
        ({"zoom_range": (0.0, 1.0)}, "zoom_range"),
        ({"zoom_range": "far"}, "zoom_range"),
        ({"elevation_range_deg": (-95.0, 10.0)}, "elevation_range_deg"),
        ({"objects_per_image": (0, 2)}, "objects_per_image"),
        ({"objects_per_image": (1, 2.5)}, "objects_per_image"),
        ({"backgrounds": ("plaid",)}, "backgrounds"),
        ({"backgrounds": ("image",)}, "background_dir"),
        ({"material_presets": ("gold",)}, "material_presets"),
        ({"min_visible_pixels": 0}, "min_visible_pixels"),
        ({"min_visible_fraction": 1.01}, "min_visible_fraction"),
        ({"flat_min_area_ratio": -0.1}, "flat_min_area_ratio"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"yfov_deg": 5.0}, "yfov_deg"),
        ({"roll": "yes"}, "roll"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(change: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        rz.RenderConfig(**change)


def test_config_from_dict_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="resolution"):
        rz.RenderConfig.from_dict({"resolution": 512})


def test_importing_the_rendering_modules_does_not_load_opengl() -> None:
    code = (
        "import sys, include.rendering.randomizers, include.rendering.labels, include.rendering.scene; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyrender', 'OpenGL')))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- individual randomizers ------------------------------------------------------------------------------------------


def test_streams_are_reproducible_and_independent() -> None:
    assert rz.stream(7, 1, 0).random() == rz.stream(7, 1, 0).random()
    assert rz.stream(7, 1, 0).random() != rz.stream(7, 1, 1).random()
    assert rz.stream(7, 1, 0).random() != rz.stream(8, 1, 0).random()


def test_camera_draws_cover_the_orbit_within_the_configured_ranges() -> None:
    config = rz.RenderConfig(zoom_range=(1.5, 2.0), elevation_range_deg=(20.0, 40.0))
    rng = np.random.default_rng(0)
    draws = [rz.draw_camera(rng, config) for _ in range(300)]
    azimuths = [d.azimuth_deg for d in draws]
    assert min(azimuths) < 30.0 and max(azimuths) > 330.0
    assert all(20.0 <= d.elevation_deg <= 40.0 and 1.5 <= d.zoom <= 2.0 for d in draws)
    assert any(abs(d.roll_deg) > 90.0 for d in draws)
    no_roll = rz.RenderConfig(roll=False)
    assert all(rz.draw_camera(rng, no_roll).roll_deg == 0.0 for _ in range(20))


def test_camera_pose_frames_the_sphere_at_the_zoomed_distance() -> None:
    draw = rz.CameraDraw(azimuth_deg=90.0, elevation_deg=30.0, roll_deg=0.0, zoom=2.0, target_offset=(0.0, 0.0))
    center = np.array([0.1, 0.2, 0.05])
    pose, distance = rz.camera_pose(draw, center, radius=0.1, yfov_deg=40.0, aspect=1.0)
    assert distance == pytest.approx(2.0 * 0.1 / math.sin(math.radians(20.0)))
    assert np.linalg.norm(pose[:3, 3] - center) == pytest.approx(distance)
    assert -pose[:3, 2] @ (center - pose[:3, 3]) / distance == pytest.approx(1.0)  # looks at the centre
    assert pose[2, 3] > center[2] and pose[0, 3] == pytest.approx(center[0])  # above, on the +Y side (azimuth 90)


def test_materials_are_metallic_presets_with_jittered_colour() -> None:
    rng = np.random.default_rng(1)
    draws = [rz.draw_material(rng, tuple(rz.MATERIAL_PRESETS)) for _ in range(200)]
    assert {d.preset for d in draws} == set(rz.MATERIAL_PRESETS)
    steel = [d for d in draws if d.preset == "steel"]
    assert all(d.metallic >= 0.85 for d in steel)
    assert len({d.base_color for d in steel}) == len(steel)  # jittered, never the same twice
    assert all(d.metallic <= 0.15 for d in draws if d.preset == "painted")


def test_lighting_presets() -> None:
    rng = np.random.default_rng(2)
    studio = rz.draw_lighting(rng, ("studio",), shadows=True)
    assert [light.kind for light in studio.lights] == ["directional"] * 4
    assert not any(light.shadows for light in studio.lights)
    azimuths = sorted(light.azimuth_deg % 360.0 for light in studio.lights)
    assert np.allclose(np.diff(azimuths), 90.0)  # a homogeneous ring
    warehouse = rz.draw_lighting(rng, ("warehouse",), shadows=True)
    assert [(light.kind, light.shadows) for light in warehouse.lights] == [("directional", True), ("spot", False)]
    assert warehouse.floor_color is not None
    unshadowed = rz.draw_lighting(rng, ("warehouse",), shadows=False)
    assert not any(light.shadows for light in unshadowed.lights)


def test_background_draws_of_every_kind(tmp_path: Path) -> None:
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")
    files = rz.background_files(tmp_path)
    assert files == ("a.jpg", "b.png")  # sorted, images only
    rng = np.random.default_rng(3)
    kinds = {rz.draw_background(rng, rz.BACKGROUND_KINDS, files).kind for _ in range(50)}
    assert kinds == set(rz.BACKGROUND_KINDS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        rz.background_files(tmp_path / "empty")
    with pytest.raises(ValueError, match="not a directory"):
        rz.background_files(tmp_path / "missing")


# -- geometry, poses, placement -------------------------------------------------------------------------------------


def test_stable_poses_rest_on_the_floor_and_are_drawn_by_probability(geometry: dict) -> None:
    block = geometry[0]
    assert block.pose_probabilities.sum() == pytest.approx(1.0)
    rng = np.random.default_rng(4)
    counts = np.zeros(len(block.pose_probabilities))
    for _ in range(2000):
        index, _, rotation = rz.orient(rng, block, stable=True)
        counts[index] += 1
        transform, _ = rz.rest_on_floor(block, rotation)
        assert rz.world_hull(block, transform)[:, 2].min() == pytest.approx(0.0, abs=1e-12)
    assert np.abs(counts / counts.sum() - block.pose_probabilities).max() < 0.04
    # A block lies on one of its big faces most of the time: then its height is the smallest extent (0.03 m).
    top = max(range(len(counts)), key=counts.__getitem__)
    lying = rz.rest_on_floor(block, block.pose_transforms[top])[0]
    assert rz.world_hull(block, lying)[:, 2].max() == pytest.approx(0.03)


def test_random_orientations_when_the_pose_filter_is_off(geometry: dict) -> None:
    rng = np.random.default_rng(5)
    index, _, rotation = rz.orient(rng, geometry[0], stable=False)
    assert index == -1
    assert np.allclose(rotation[:3, :3] @ rotation[:3, :3].T, np.eye(3))


def test_flat_part_projected_area_peaks_face_on(geometry: dict) -> None:
    washer = geometry[1]
    face_on = rz.projected_area(washer.hull, np.array([0.0, 0.0, 1.0]))
    edge_on = rz.projected_area(washer.hull, np.array([1.0, 0.0, 0.0]))
    assert washer.max_projected_area == pytest.approx(face_on, rel=0.01)
    assert edge_on / washer.max_projected_area < 0.15
    assert geometry[0].max_projected_area == 0.0  # only flat parts pay for the sphere of directions


def test_place_footprints_never_overlap() -> None:
    rng = np.random.default_rng(6)
    for _ in range(200):
        radii = rng.uniform(0.01, 0.1, size=int(rng.integers(2, 9)))
        centers = rz.place_footprints(rng, radii)
        assert np.all(centers[0] == 0.0)
        for i, j in itertools.combinations(range(len(radii)), 2):
            assert np.linalg.norm(centers[i] - centers[j]) >= radii[i] + radii[j]


def test_place_footprints_raises_when_nothing_fits() -> None:
    with pytest.raises(rz.PlacementError, match="could not place object 2"):
        rz.place_footprints(np.random.default_rng(0), [1.0, 1.0], spread=0.0, gap=10.0)


def test_scene_objects_do_not_interpenetrate(geometry: dict) -> None:
    """Mesh-level check (manifold3d booleans: python-fcl is not installed) over several multi-object layouts."""
    catalog = primitive_catalog()
    config = rz.RenderConfig(objects_per_image=(4, 4))
    for seed in range(6):
        draw = rz.draw_scene(seed % 3, seed, 0, geometry, config)
        assert [o.class_id for o in draw.objects][0] == seed % 3 and len(draw.objects) == 4
        meshes = [catalog.part(o.class_id).mesh.copy().apply_transform(o.transform) for o in draw.objects]
        for mesh in meshes:
            assert mesh.bounds[0][2] == pytest.approx(0.0, abs=1e-9)  # resting on the floor
        for a, b in itertools.combinations(meshes, 2):
            overlap = trimesh.boolean.intersection([a, b], engine="manifold")
            assert overlap.is_empty or overlap.volume < 1e-12


def test_draw_scene_is_deterministic_and_json_able(geometry: dict) -> None:
    config = rz.RenderConfig(objects_per_image=(1, 4))
    first = rz.draw_scene(1, 42, 0, geometry, config)
    again = rz.draw_scene(1, 42, 0, geometry, config)
    assert json.dumps(first.to_dict()) == json.dumps(again.to_dict())
    assert first.to_dict() != rz.draw_scene(1, 42, 1, geometry, config).to_dict()
    assert dataclasses.replace(first, attempt=1).attempt == 1


def test_materials_toggle_off_gives_the_plain_material(geometry: dict) -> None:
    draw = rz.draw_scene(0, 1, 0, geometry, rz.RenderConfig(materials=False))
    assert {o.material.preset for o in draw.objects} == {"plain"}
