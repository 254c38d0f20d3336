"""Catalog loading: units, formats, centring, and one clear CatalogError per way a catalog can be wrong."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
import yaml

from include.rendering.catalog import (
    CatalogError,
    class_map_from_yaml,
    class_map_to_yaml,
    load_catalog,
    load_mesh,
    resolve_class,
)

BOX_MM = (100.0, 50.0, 20.0)


def _box(extents: tuple[float, float, float] = BOX_MM, offset: tuple[float, float, float] = (0, 0, 0)):
    box = trimesh.creation.box(extents=extents)
    box.apply_translation(offset)
    return box


def _catalog(tmp_path: Path, parts: list[dict[str, Any]], **top: Any) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"name": "test", **top, "parts": parts}, sort_keys=False))
    return path


def _part(file: str, class_id: int = 0, name: str = "Box", **extra: Any) -> dict[str, Any]:
    return {"class_id": class_id, "name": name, "file": file, **extra}


def _one_part(tmp_path: Path, mesh: trimesh.Trimesh, file: str = "part.stl", **extra: Any) -> Path:
    mesh.export(tmp_path / file)
    return _catalog(tmp_path, [_part(file, **extra)], units="mm")


# ---------------------------------------------------------------------------------------------------------------
# Happy paths
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["stl", "obj", "ply", "glb", "gltf"])
def test_every_format_gives_the_same_box_in_metres(tmp_path: Path, suffix: str) -> None:
    catalog = load_catalog(_one_part(tmp_path, _box(), f"box.{suffix}"))
    mesh = catalog.parts[0].mesh
    np.testing.assert_allclose(mesh.extents, [0.1, 0.05, 0.02], rtol=1e-6)
    assert mesh.is_watertight and mesh.volume == pytest.approx(1e-4, rel=1e-6)


def test_part_fields_and_source(tmp_path: Path) -> None:
    _box().export(tmp_path / "a.stl")
    _box((10, 10, 10)).export(tmp_path / "b.stl")
    path = _catalog(tmp_path, [_part("a.stl", 3, "Plate", flat=True), _part("b.stl", 7, "Cube")], units="mm")
    catalog = load_catalog(path)
    assert catalog.name == "test"
    assert catalog.class_map == {3: "Plate", 7: "Cube"}
    assert [p.flat for p in catalog.parts] == [True, False]
    assert catalog.parts[0].source == str(tmp_path / "a.stl")


def test_meshes_are_centred_on_their_bounding_box(tmp_path: Path) -> None:
    mesh = load_catalog(_one_part(tmp_path, _box(offset=(500, -300, 40)))).parts[0].mesh
    np.testing.assert_allclose(mesh.bounds.mean(axis=0), 0, atol=1e-12)


@pytest.mark.parametrize(("units", "metres"), [("m", 1.0), ("cm", 0.01), ("mm", 0.001), ("in", 0.0254), ("ft", 0.3048)])
def test_units_convert_to_metres(tmp_path: Path, units: str, metres: float) -> None:
    _box((2, 3, 4)).export(tmp_path / "b.stl")
    mesh = load_catalog(_catalog(tmp_path, [_part("b.stl")], units=units)).parts[0].mesh
    np.testing.assert_allclose(mesh.extents, np.array([2, 3, 4]) * metres, rtol=1e-9)


def test_per_part_units_override_the_catalog_default(tmp_path: Path) -> None:
    _box((10, 10, 10)).export(tmp_path / "b.stl")
    path = _catalog(tmp_path, [_part("b.stl", 0, "MM"), _part("b.stl", 1, "IN", units="in")], units="mm")
    extents = [p.mesh.extents.max() for p in load_catalog(path).parts]
    assert extents == pytest.approx([0.01, 0.254])


def test_auto_scale_sets_every_largest_extent(tmp_path: Path) -> None:
    _box((3, 1, 1)).export(tmp_path / "small.stl")
    _box((400, 100, 50)).export(tmp_path / "big.stl")
    path = _catalog(tmp_path, [_part("small.stl", 0, "S"), _part("big.stl", 1, "B")], auto_scale=0.15)
    parts = load_catalog(path).parts
    assert [p.mesh.extents.max() for p in parts] == pytest.approx([0.15, 0.15])
    np.testing.assert_allclose(parts[1].mesh.extents, [0.15, 0.0375, 0.01875])


def test_inside_out_mesh_is_turned_right_way_out(tmp_path: Path) -> None:
    box = _box()
    box.invert()
    mesh = load_catalog(_one_part(tmp_path, box, "inverted.ply")).parts[0].mesh
    assert mesh.volume > 0


def test_repair_closes_a_small_hole(tmp_path: Path) -> None:
    open_box = _box()
    open_box.update_faces(np.arange(1, len(open_box.faces)))  # one triangle missing
    mesh = load_catalog(_one_part(tmp_path, open_box, "open.stl", repair=True)).parts[0].mesh
    assert mesh.is_watertight and mesh.volume == pytest.approx(1e-4)


# ---------------------------------------------------------------------------------------------------------------
# Class lookup and class maps
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def two_part_catalog(tmp_path: Path):
    _box().export(tmp_path / "b.stl")
    return load_catalog(_catalog(tmp_path, [_part("b.stl", 0, "Gear"), _part("b.stl", 4, "Flange")]))


def test_resolve_class_by_id_or_name(two_part_catalog) -> None:
    assert resolve_class(two_part_catalog, 4).name == "Flange"
    assert resolve_class(two_part_catalog, "Gear").class_id == 0


@pytest.mark.parametrize("query", [2, "flange", "4", True, 1.0])
def test_resolve_class_rejects_unknown_classes(two_part_catalog, query: Any) -> None:
    with pytest.raises(CatalogError, match=r"0=Gear|class_id \(int\)"):
        resolve_class(two_part_catalog, query)


def test_class_map_yaml_round_trip() -> None:
    class_map = {4: "Worm_Gear", 0: "Gear_Housing", 2: "Bearing Cover"}
    assert class_map_from_yaml(class_map_to_yaml(class_map)) == dict(sorted(class_map.items()))


@pytest.mark.parametrize("text", ["[a, b]", "{-1: x}", "{0: ' padded'}", "{0: [1]}", "{0: a, 1: a}", "{0: [unclosed"])
def test_class_map_from_yaml_rejects_bad_maps(text: str) -> None:
    with pytest.raises(CatalogError, match="class map"):
        class_map_from_yaml(text)


# ---------------------------------------------------------------------------------------------------------------
# Errors: catalog structure
# ---------------------------------------------------------------------------------------------------------------


def _write_yaml(tmp_path: Path, data: Any) -> Path:
    _box().export(tmp_path / "b.stl")
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("parts", "top", "message"),
    [
        ([_part("b.stl", 0, "A"), _part("b.stl", 0, "B")], {}, r"duplicate class_id \[0\]"),
        ([_part("b.stl", 0, "A"), _part("b.stl", 1, "A")], {}, r"duplicate name \['A'\]"),
        ([_part("b.stl", -1)], {}, "non-negative integer"),
        ([_part("b.stl", "0")], {}, "non-negative integer"),
        ([_part("b.stl", True)], {}, "non-negative integer"),
        ([_part("b.stl", 1.5)], {}, "non-negative integer"),
        ([_part("b.stl", name="")], {}, "1-256 characters"),
        ([_part("b.stl", name="x" * 257)], {}, "1-256 characters"),
        ([_part("b.stl", name=7)], {}, "1-256 characters"),
        ([_part("b.stl", name=" Gear")], {}, "leading or trailing whitespace"),
        ([_part("b.stl", name="Gear\n")], {}, "leading or trailing whitespace"),
        ([{"class_id": 0, "name": "A"}], {}, "missing 'file'"),
        ([_part("b.stl", clas_id=1)], {}, r"unknown keys \['clas_id'\]"),
        ([_part("b.stl", flat="yes please")], {}, "flat must be true or false"),
        ([_part("b.stl", repair=1)], {}, "repair must be true or false"),
        ([_part("b.stl", units="furlong")], {}, "unknown unit 'furlong'"),
        ([_part("b.stl")], {"units": "inch"}, "unknown unit 'inch'"),
        ([_part("b.stl")], {"unit": "mm"}, r"unknown keys \['unit'\]"),
        ([], {}, "non-empty list"),
        (["b.stl"], {}, "must be a mapping"),
        ([_part("b.stl")], {"auto_scale": 0.2, "units": "mm"}, "mutually exclusive"),
        ([_part("b.stl", units="mm")], {"auto_scale": 0.2}, "mutually exclusive"),
        ([_part("b.stl")], {"auto_scale": -1}, "positive number of metres"),
        ([_part("b.stl")], {"auto_scale": "big"}, "positive number of metres"),
        ([_part("b.stl")], {"name": ""}, "non-empty string"),
    ],
)
def test_catalog_structure_errors(tmp_path: Path, parts: list, top: dict, message: str) -> None:
    path = _write_yaml(tmp_path, {"name": "test", **top, "parts": parts})
    with pytest.raises(CatalogError, match=message) as caught:
        load_catalog(path)
    assert str(path) in str(caught.value)


def test_missing_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="catalog file not found"):
        load_catalog(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "message"), [("parts: [unclosed", "invalid YAML"), ("- a\n- b\n", "expected a mapping")]
)
def test_unparseable_catalog(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


# ---------------------------------------------------------------------------------------------------------------
# Errors: meshes
# ---------------------------------------------------------------------------------------------------------------


def _mesh_error(tmp_path: Path, file: str, content: bytes | trimesh.Trimesh, **extra: Any) -> str:
    if isinstance(content, bytes):
        (tmp_path / file).write_bytes(content)
    else:
        content.export(tmp_path / file)
    with pytest.raises(CatalogError) as caught:
        load_catalog(_catalog(tmp_path, [_part(file, **extra)]))
    message = str(caught.value)
    assert str(tmp_path / file) in message
    return message


def test_missing_mesh_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"gone\.stl: mesh file not found"):
        load_catalog(_catalog(tmp_path, [_part("gone.stl")]))


def test_unknown_extension(tmp_path: Path) -> None:
    assert "unsupported file type '.fbx'" in _mesh_error(tmp_path, "part.fbx", b"Kaydara FBX Binary")


def test_corrupt_stl(tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 3
    assert "no triangles" in _mesh_error(tmp_path, "corrupt.stl", garbage)


def test_corrupt_glb(tmp_path: Path) -> None:
    assert "cannot read GLB file" in _mesh_error(tmp_path, "corrupt.glb", b"glTF but not really")


def test_empty_obj(tmp_path: Path) -> None:
    assert "no triangles" in _mesh_error(tmp_path, "empty.obj", b"# exported by nothing\n")


def test_open_mesh_is_rejected_with_a_hint(tmp_path: Path) -> None:
    open_box = _box()
    open_box.update_faces(np.arange(2, len(open_box.faces)))  # a whole side missing
    message = _mesh_error(tmp_path, "open.stl", open_box)
    assert "not watertight" in message and "repair: true" in message


def _box_with_a_flipped_triangle() -> trimesh.Trimesh:
    box = _box()
    faces = box.faces.copy()
    faces[0] = faces[0][::-1]
    return trimesh.Trimesh(vertices=box.vertices, faces=faces, process=False)


def test_inconsistent_winding_is_rejected_with_a_hint(tmp_path: Path) -> None:
    message = _mesh_error(tmp_path, "flipped.ply", _box_with_a_flipped_triangle())
    assert "inconsistent triangle winding" in message and "repair: true" in message


def test_repair_fixes_inconsistent_winding(tmp_path: Path) -> None:
    mesh = load_catalog(_one_part(tmp_path, _box_with_a_flipped_triangle(), "flipped.ply", repair=True)).parts[0].mesh
    assert mesh.is_winding_consistent and mesh.volume == pytest.approx(1e-4)


def test_open_mesh_beyond_repair(tmp_path: Path) -> None:
    sheet = trimesh.Trimesh(vertices=_box().vertices, faces=_box().faces[:6])  # three sides of a box
    assert "not watertight" in _mesh_error(tmp_path, "shell.ply", sheet, repair=True)


def test_all_triangles_degenerate(tmp_path: Path) -> None:
    collinear = trimesh.Trimesh(vertices=[[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3]], faces=[[0, 1, 2], [1, 2, 3]])
    assert "every triangle has zero area" in _mesh_error(tmp_path, "line.ply", collinear)


def test_zero_extent(tmp_path: Path) -> None:
    square = trimesh.Trimesh(vertices=[[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], faces=[[0, 1, 2], [0, 2, 3]])
    assert "zero extent" in _mesh_error(tmp_path, "square.ply", square)


def test_zero_volume_closed_sheet(tmp_path: Path) -> None:
    # Two double-sided triangles in different planes: closed, consistently wound, and enclosing nothing.
    vertices = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 0, 2]]
    faces = [[0, 1, 2], [0, 2, 1], [3, 4, 5], [3, 5, 4]]
    sheet = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    assert "zero volume" in _mesh_error(tmp_path, "sheet.ply", sheet)


def test_load_mesh_rejects_unknown_units(tmp_path: Path) -> None:
    _box().export(tmp_path / "b.stl")
    with pytest.raises(CatalogError, match="unknown unit 'yards'"):
        load_mesh(tmp_path / "b.stl", units="yards")


# ---------------------------------------------------------------------------------------------------------------
# STEP (optional cascadio)
# ---------------------------------------------------------------------------------------------------------------


def _step_box(size: tuple[float, float, float]) -> str:
    """A minimal AP214 STEP file of an axis-aligned box in millimetres: a planar B-rep and its product wrapper."""
    entities: list[str] = []

    def add(text: str) -> str:
        entities.append(text)
        return f"#{len(entities)}"

    def point(p) -> str:
        return add("CARTESIAN_POINT('',({:.6f},{:.6f},{:.6f}))".format(*p))

    def direction(d) -> str:
        return add("DIRECTION('',({:.1f},{:.1f},{:.1f}))".format(*d))

    def refs(items: list[str]) -> str:
        return "(" + ",".join(items) + ")"

    corners = {c: np.array(c) * size for c in itertools.product((0, 1), repeat=3)}
    vertices = {c: add(f"VERTEX_POINT('',{point(p)})") for c, p in corners.items()}
    edges: dict[tuple, str] = {}

    def oriented_edge(a: tuple, b: tuple) -> str:
        start, end = min(a, b), max(a, b)
        if (start, end) not in edges:
            vector = add(f"VECTOR('',{direction(np.subtract(end, start))},1.)")
            line = add(f"LINE('',{point(corners[start])},{vector})")
            edges[start, end] = add(f"EDGE_CURVE('',{vertices[start]},{vertices[end]},{line},.T.)")
        return add(f"ORIENTED_EDGE('',*,*,{edges[start, end]},{'.T.' if start == a else '.F.'})")

    faces = []
    for axis, side in itertools.product(range(3), (0, 1)):
        u, v = (axis + 1) % 3, (axis + 2) % 3
        loop = []
        for du, dv in ((0, 0), (1, 0), (1, 1), (0, 1)):  # counter-clockwise seen from +axis
            corner = [0, 0, 0]
            corner[axis], corner[u], corner[v] = side, du, dv
            loop.append(tuple(corner))
        if not side:
            loop.reverse()
        edge_loop = add(f"EDGE_LOOP('',{refs([oriented_edge(a, b) for a, b in itertools.pairwise(loop + loop[:1])])})")
        bound = add(f"FACE_OUTER_BOUND('',{edge_loop},.T.)")
        normal = np.eye(3)[axis] * (1 if side else -1)
        placement = add(
            f"AXIS2_PLACEMENT_3D('',{point(corners[loop[0]])},{direction(normal)},{direction(np.eye(3)[u])})"
        )
        plane = add(f"PLANE('',{placement})")
        faces.append(add(f"ADVANCED_FACE('',({bound}),{plane},.T.)"))
    shell = add(f"CLOSED_SHELL('',{refs(faces)})")
    solid = add(f"MANIFOLD_SOLID_BREP('box',{shell})")
    origin = add(f"AXIS2_PLACEMENT_3D('',{point((0, 0, 0))},{direction((0, 0, 1))},{direction((1, 0, 0))})")
    length = add("( LENGTH_UNIT() NAMED_UNIT(*) SI_UNIT(.MILLI.,.METRE.) )")
    angle = add("( NAMED_UNIT(*) PLANE_ANGLE_UNIT() SI_UNIT($,.RADIAN.) )")
    solid_angle = add("( NAMED_UNIT(*) SI_UNIT($,.STERADIAN.) SOLID_ANGLE_UNIT() )")
    accuracy = add(f"UNCERTAINTY_MEASURE_WITH_UNIT(LENGTH_MEASURE(1.E-07),{length},'distance_accuracy_value','')")
    context = add(
        f"( GEOMETRIC_REPRESENTATION_CONTEXT(3) GLOBAL_UNCERTAINTY_ASSIGNED_CONTEXT(({accuracy})) "
        f"GLOBAL_UNIT_ASSIGNED_CONTEXT(({length},{angle},{solid_angle})) REPRESENTATION_CONTEXT('',''))"
    )
    representation = add(f"ADVANCED_BREP_SHAPE_REPRESENTATION('',({origin},{solid}),{context})")
    app = add("APPLICATION_CONTEXT('automotive design')")
    product_context = add(f"PRODUCT_CONTEXT('',{app},'mechanical')")
    product = add(f"PRODUCT('box','box','',({product_context}))")
    formation = add(f"PRODUCT_DEFINITION_FORMATION('','',{product})")
    definition_context = add(f"PRODUCT_DEFINITION_CONTEXT('part definition',{app},'design')")
    definition = add(f"PRODUCT_DEFINITION('design','',{formation},{definition_context})")
    shape = add(f"PRODUCT_DEFINITION_SHAPE('','',{definition})")
    add(f"SHAPE_DEFINITION_REPRESENTATION({shape},{representation})")
    data = "\n".join(f"#{i}={text};" for i, text in enumerate(entities, start=1))
    return (
        "ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION(('box'),'2;1');\nFILE_NAME('box.step','',(''),(''),'','','');\n"
        "FILE_SCHEMA(('AUTOMOTIVE_DESIGN { 1 0 10303 214 1 1 1 1 }'));\nENDSEC;\n"
        f"DATA;\n{data}\nENDSEC;\nEND-ISO-10303-21;\n"
    )


def test_step_without_cascadio_explains_the_way_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "cascadio" else real_find_spec(name, *a)
    )
    message = _mesh_error(tmp_path, "box.step", _step_box(BOX_MM).encode())
    assert "cascadio" in message and "GLB or STL" in message


def test_step_part_rejects_a_units_override(tmp_path: Path) -> None:
    assert "carry their own units" in _mesh_error(tmp_path, "box.stp", _step_box(BOX_MM).encode(), units="mm")


def test_step_loads_in_metres_with_cascadio(tmp_path: Path) -> None:
    pytest.importorskip("cascadio")
    (tmp_path / "box.step").write_text(_step_box(BOX_MM))
    # The catalog says inches, but STEP files declare their own unit (millimetres here).
    mesh = load_catalog(_catalog(tmp_path, [_part("box.step")], units="in")).parts[0].mesh
    np.testing.assert_allclose(mesh.extents, [0.1, 0.05, 0.02], rtol=1e-6)
    assert mesh.is_watertight
