"""Load a parts catalog (YAML + mesh files) into validated, metre-scaled, centred meshes.

A catalog file looks like this (paths are relative to the YAML file)::

    name: gearbox
    units: mm            # m | cm | mm | in | ft; the default for every part (default: m)
    parts:
      - class_id: 0      # a non-negative int, unique; it becomes the label id
        name: Gear_Housing  # unique; it becomes the Rekognition label
        file: gear_housing.glb
        flat: false      # plate-like: the renderer drops edge-on views
        description: ...  # free text, ignored
        units: cm        # optional per-part override
        repair: false    # optional: try to close holes instead of rejecting an open mesh

For meshes whose units nobody knows, replace ``units`` with ``auto_scale: <metres>``: every part is then
scaled so that its largest bounding-box extent equals that many metres. Relative sizes between parts are
lost, which is the price of not knowing the units; the two keys are mutually exclusive.

Mesh formats: STL, OBJ, PLY, GLB, glTF. STEP/STP needs the optional ``cascadio`` package (OpenCASCADE);
STEP files carry their own length unit and arrive in metres, so ``units`` does not apply to them.

Only geometry is kept: colours and textures are dropped because the renderer randomizes materials.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
import yaml

from include.rendering.types import Catalog, Part

UNITS_TO_METRES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "ft": 0.3048}
MESH_SUFFIXES = (".stl", ".obj", ".ply", ".glb", ".gltf")
STEP_SUFFIXES = (".step", ".stp")
MAX_NAME_LENGTH = 256  # Rekognition Custom Labels' limit on a label name

_CATALOG_KEYS = {"name", "units", "auto_scale", "parts", "description"}
_PART_KEYS = {"class_id", "name", "file", "flat", "description", "units", "repair"}
# A solid whose volume is below this fraction of its bounding cube is a sheet, not a part.
_MIN_VOLUME_FRACTION = 1e-9


class CatalogError(ValueError):
    """A catalog or one of its meshes cannot be used; the message names the file and the problem."""


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a catalog YAML and every mesh it lists; fails on the first problem found."""
    path = Path(path)
    spec = _read_yaml(path)
    _reject_unknown_keys(spec, _CATALOG_KEYS, f"{path}")
    units = _units(spec.get("units", "m"), f"{path}: units")
    entries = _part_entries(spec, path)
    auto_scale = _auto_scale(spec, entries, path)
    parts = tuple(_load_part(entry, path, units, auto_scale) for entry in entries)
    return Catalog(name=_catalog_name(spec, path), parts=parts)


def load_mesh(path: str | Path, units: str = "m", repair: bool = False) -> trimesh.Trimesh:
    """Load one mesh file as a validated, watertight solid in metres, centred on its bounding-box centre."""
    path = Path(path)
    mesh = _read_mesh(path)
    if path.suffix.lower() not in STEP_SUFFIXES:
        mesh.apply_scale(UNITS_TO_METRES[_units(units, f"{path}: units")])
    _validate_solid(mesh, path, repair)
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    return mesh


def resolve_class(catalog: Catalog, name_or_id: str | int) -> Part:
    """Find a part by class id (int) or exact name (str), or say which classes the catalog does have."""
    if isinstance(name_or_id, bool) or not isinstance(name_or_id, int | str):
        raise CatalogError(f"a class is a class_id (int) or a name (str), got {name_or_id!r}")
    key = "class_id" if isinstance(name_or_id, int) else "name"
    for part in catalog.parts:
        if getattr(part, key) == name_or_id:
            return part
    known = ", ".join(f"{p.class_id}={p.name}" for p in catalog.parts)
    raise CatalogError(f"unknown class {name_or_id!r} in catalog {catalog.name!r}; known: {known}")


def class_map_to_yaml(class_map: Mapping[int, str]) -> str:
    """Serialise ``{class_id: name}`` for datasets that travel without their meshes."""
    _check_classes(list(class_map), list(class_map.values()), "class map")
    return yaml.safe_dump({int(k): class_map[k] for k in sorted(class_map)}, sort_keys=True)


def class_map_from_yaml(text: str) -> dict[int, str]:
    """Inverse of :func:`class_map_to_yaml`, with the same checks a catalog gets."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"class map: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise CatalogError(f"class map: expected a mapping of class_id to name, got {type(data).__name__}")
    _check_classes(list(data), list(data.values()), "class map")
    return dict(sorted(data.items()))


# ---------------------------------------------------------------------------------------------------------------
# Catalog structure
# ---------------------------------------------------------------------------------------------------------------


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CatalogError(f"{path}: catalog file not found")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(spec, dict):
        raise CatalogError(f"{path}: expected a mapping with 'name' and 'parts', got {type(spec).__name__}")
    return spec


def _reject_unknown_keys(mapping: Mapping[str, Any], allowed: set[str], where: str) -> None:
    # A typo such as 'clas_id' or 'unit' would otherwise be silently ignored.
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise CatalogError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")


def _catalog_name(spec: Mapping[str, Any], path: Path) -> str:
    name = spec.get("name", path.parent.name)
    if not isinstance(name, str) or not name.strip():
        raise CatalogError(f"{path}: catalog name must be a non-empty string, got {name!r}")
    return name


def _units(value: Any, where: str) -> str:
    if value not in UNITS_TO_METRES:
        raise CatalogError(f"{where}: unknown unit {value!r}; use one of {sorted(UNITS_TO_METRES)}")
    return value


def _auto_scale(spec: Mapping[str, Any], entries: list[dict[str, Any]], path: Path) -> float | None:
    if "auto_scale" not in spec:
        return None
    target = spec["auto_scale"]
    if "units" in spec or any("units" in entry for entry in entries):
        raise CatalogError(f"{path}: auto_scale and units are mutually exclusive (auto_scale is for unknown units)")
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < np.inf:
        raise CatalogError(f"{path}: auto_scale must be a positive number of metres, got {target!r}")
    return float(target)


def _part_entries(spec: Mapping[str, Any], path: Path) -> list[dict[str, Any]]:
    entries = spec.get("parts")
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{path}: 'parts' must be a non-empty list")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise CatalogError(f"{path}: parts[{i}] must be a mapping, got {type(entry).__name__}")
        _reject_unknown_keys(entry, _PART_KEYS, f"{path}: parts[{i}]")
        for key in ("class_id", "name", "file"):
            if key not in entry:
                raise CatalogError(f"{path}: parts[{i}] is missing {key!r}")
    _check_classes([e["class_id"] for e in entries], [e["name"] for e in entries], str(path))
    return entries


def _check_classes(ids: list[Any], names: list[Any], where: str) -> None:
    for class_id in ids:
        if isinstance(class_id, bool) or not isinstance(class_id, int) or class_id < 0:
            raise CatalogError(f"{where}: class_id must be a non-negative integer, got {class_id!r}")
    for name in names:
        _check_label_name(name, where)
    for label, values in (("class_id", ids), ("name", names)):
        duplicates = sorted({v for v in values if values.count(v) > 1}, key=str)
        if duplicates:
            raise CatalogError(f"{where}: duplicate {label} {duplicates}")


def _check_label_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise CatalogError(f"{where}: part name must be a string of 1-{MAX_NAME_LENGTH} characters, got {name!r}")
    if name != name.strip():
        raise CatalogError(f"{where}: part name {name!r} has leading or trailing whitespace")


def _load_part(entry: Mapping[str, Any], catalog_path: Path, units: str, auto_scale: float | None) -> Part:
    mesh_path = catalog_path.parent / str(entry["file"])
    flat, repair = entry.get("flat", False), entry.get("repair", False)
    for key, value in (("flat", flat), ("repair", repair)):
        if not isinstance(value, bool):
            raise CatalogError(f"{catalog_path}: part {entry['name']!r}: {key} must be true or false, got {value!r}")
    part_units = _units(entry.get("units", units), f"{catalog_path}: part {entry['name']!r}: units")
    if "units" in entry and mesh_path.suffix.lower() in STEP_SUFFIXES:
        raise CatalogError(f"{mesh_path}: STEP files carry their own units; remove 'units' from this part")
    mesh = load_mesh(mesh_path, units=part_units, repair=repair)
    if auto_scale is not None:
        mesh.apply_scale(auto_scale / mesh.extents.max())
    return Part(class_id=entry["class_id"], name=entry["name"], mesh=mesh, flat=flat, source=str(mesh_path))


# ---------------------------------------------------------------------------------------------------------------
# Meshes
# ---------------------------------------------------------------------------------------------------------------


def _read_mesh(path: Path) -> trimesh.Trimesh:
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES + STEP_SUFFIXES:
        raise CatalogError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(MESH_SUFFIXES)}")
    if not path.is_file():
        raise CatalogError(f"{path}: mesh file not found")
    if suffix in STEP_SUFFIXES and importlib.util.find_spec("cascadio") is None:
        raise CatalogError(
            f"{path}: reading STEP needs the optional 'cascadio' package (pip install cascadio==0.0.13); "
            "or convert the part to GLB or STL"
        )
    try:
        loaded = trimesh.load(path, force="mesh")
    except Exception as exc:  # each format's parser raises its own exception types
        raise CatalogError(f"{path}: cannot read {suffix[1:].upper()} file: {exc}") from exc
    # Drop visuals and weld vertices split by normals or UVs (GLB and STEP exports split every sharp edge),
    # so watertightness is judged on positions alone.
    mesh = trimesh.Trimesh(vertices=np.asarray(loaded.vertices, dtype=np.float64), faces=loaded.faces, process=False)
    mesh.merge_vertices()
    return mesh


def _validate_solid(mesh: trimesh.Trimesh, path: Path, repair: bool) -> None:
    if len(mesh.faces) == 0:
        raise CatalogError(f"{path}: no triangles (an empty or unreadable file)")
    if not mesh.nondegenerate_faces().any():
        raise CatalogError(f"{path}: degenerate mesh, every triangle has zero area")
    if not mesh.extents.min() > 0:
        raise CatalogError(f"{path}: degenerate mesh, zero extent along an axis (extents {mesh.extents.tolist()})")
    if repair:
        _repair(mesh)
    hint = "" if repair else "; set 'repair: true' on the part to try fixing it"
    if not mesh.is_watertight:
        raise CatalogError(f"{path}: mesh is not watertight (open edges or holes){hint}")
    if not mesh.is_winding_consistent:
        raise CatalogError(f"{path}: inconsistent triangle winding{hint}")
    with np.errstate(invalid="ignore", divide="ignore"):  # trimesh divides by the volume for the centre of mass
        volume = mesh.volume
    if volume < 0:  # consistently inside out: a harmless export quirk, so fix rather than reject
        mesh.invert()
    if not abs(volume) > _MIN_VOLUME_FRACTION * mesh.extents.max() ** 3:
        raise CatalogError(f"{path}: degenerate mesh, zero volume (a closed sheet, not a solid)")


def _repair(mesh: trimesh.Trimesh) -> None:
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.update_faces(mesh.unique_faces())
    mesh.remove_unreferenced_vertices()
    trimesh.repair.fill_holes(mesh)
    trimesh.repair.fix_normals(mesh)
