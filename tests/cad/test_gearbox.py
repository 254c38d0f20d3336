"""The shipped gearbox parts: loadable, solid, distinct, realistically sized, and reproducible from their generator."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.cad import build_gearbox
from include.rendering.catalog import load_catalog
from include.rendering.types import Catalog

CATALOG = build_gearbox.DEFAULT_OUT_DIR / "catalog.yaml"
EXPECTED = {0: "Gear_Housing", 1: "Gear_Ratio", 2: "Bearing_Cover", 3: "Flange", 4: "Worm_Gear"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CATALOG)


def test_catalog_lists_the_five_classes(catalog: Catalog) -> None:
    assert catalog.name == "gearbox"
    assert catalog.class_map == EXPECTED
    assert {p.name for p in catalog.parts if p.flat} == {"Bearing_Cover", "Flange"}


def test_parts_are_single_watertight_solids(catalog: Catalog) -> None:
    for part in catalog.parts:
        mesh = part.mesh
        assert mesh.is_watertight and mesh.is_winding_consistent, part.name
        assert mesh.body_count == 1 and mesh.volume > 0, part.name


def test_parts_are_distinct(catalog: Catalog) -> None:
    # Different topology (through-holes) and different size: no two parts are the same shape at another scale.
    meshes = [p.mesh for p in catalog.parts]
    assert len({m.euler_number for m in meshes}) == len(meshes)
    assert len({round(m.volume, 7) for m in meshes}) == len(meshes)
    assert len({tuple(sorted(m.extents.round(3))) for m in meshes}) == len(meshes)


def test_sizes_are_real_world_metres(catalog: Catalog) -> None:
    for part in catalog.parts:
        extents = sorted(part.mesh.extents)
        assert 0.06 <= extents[-1] <= 0.3, (part.name, extents)
        # Flat means plate-like (thin against its width), not slender like the worm.
        assert (extents[0] / extents[1] < 0.25) == part.flat, (part.name, extents)


def test_files_stay_small() -> None:
    sizes = {p.name: p.stat().st_size for p in build_gearbox.DEFAULT_OUT_DIR.glob("*.glb")}
    assert len(sizes) == 5
    assert max(sizes.values()) < 300_000 and sum(sizes.values()) < 1_500_000, sizes


def test_regenerating_gives_byte_identical_files(tmp_path: Path) -> None:
    written = build_gearbox.build(tmp_path)
    assert len(written) == 6
    for path in written:
        assert path.read_bytes() == (build_gearbox.DEFAULT_OUT_DIR / path.name).read_bytes(), path.name
