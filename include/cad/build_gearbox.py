"""Build the five sample gearbox parts as small binary GLB files plus their ``catalog.yaml``.

Run ``python -m include.cad.build_gearbox [OUT_DIR]`` (default: ``include/cad/gearbox``). The output is
byte-identical on every run with the same library versions: there is no randomness, no timestamp, and every
tessellation count is fixed here.

All dimensions are millimetres and every part is modelled with its main axis on Z. Each part is checked to be
one watertight body with outward normals before it is written, because the renderer and the catalog loader both
rely on that (volumes, visibility, stable poses).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import manifold3d
import numpy as np
import trimesh
import yaml
from shapely.geometry import Polygon, box
from shapely.ops import unary_union

from include.cad.cli import build_command

DEFAULT_OUT_DIR = Path(__file__).parent / "gearbox"

# Tessellation: coarse enough to keep the GLBs small, fine enough that silhouettes read as round at 1024 px.
ROUND_SEGMENTS = 64  # large circles (gear bodies, covers, flanges)
HOLE_SEGMENTS = 24  # bolt holes and small bores


# ---------------------------------------------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------------------------------------------


def _circle(radius: float, center: tuple[float, float] = (0.0, 0.0), segments: int = HOLE_SEGMENTS) -> Polygon:
    """A regular polygon; unlike ``Point.buffer`` its vertex count is exactly ``segments``."""
    angles = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    return Polygon(np.column_stack([center[0] + radius * np.cos(angles), center[1] + radius * np.sin(angles)]))


def _bolt_circle(count: int, pitch_radius: float, hole_radius: float, phase: float = 0.0) -> list[Polygon]:
    angles = phase + np.arange(count) * 2.0 * np.pi / count
    return [_circle(hole_radius, (pitch_radius * np.cos(a), pitch_radius * np.sin(a))) for a in angles]


def _rounded_rect(width: float, depth: float, corner: float) -> Polygon:
    core = box(-width / 2 + corner, -depth / 2 + corner, width / 2 - corner, depth / 2 - corner)
    return core.buffer(corner, quad_segs=4)


def _prism(shape: Polygon, z0: float, z1: float) -> trimesh.Trimesh:
    """Extrude a 2D shape (XY plane) between two heights."""
    mesh = trimesh.creation.extrude_polygon(shape, z1 - z0)
    mesh.apply_translation((0.0, 0.0, z0))
    return mesh


def _prisms(shapes: Sequence[Polygon], z0: float, z1: float) -> list[trimesh.Trimesh]:
    return [_prism(s, z0, z1) for s in shapes]


def _from_manifold(solid: manifold3d.Manifold) -> trimesh.Trimesh:
    out = solid.to_mesh()
    return trimesh.Trimesh(vertices=np.asarray(out.vert_properties)[:, :3], faces=np.asarray(out.tri_verts))


def _revolve(profile_rz: Sequence[tuple[float, float]], segments: int = ROUND_SEGMENTS) -> trimesh.Trimesh:
    """Revolve a closed (radius, z) profile about Z. manifold3d welds the points on the axis, trimesh does not."""
    return _from_manifold(manifold3d.Manifold.revolve(manifold3d.CrossSection([profile_rz]), segments))


def _union(meshes: Sequence[trimesh.Trimesh]) -> trimesh.Trimesh:
    return trimesh.boolean.union(meshes, engine="manifold")


def _difference(body: trimesh.Trimesh, cutters: Sequence[trimesh.Trimesh]) -> trimesh.Trimesh:
    return trimesh.boolean.difference([body, *cutters], engine="manifold")


def _cylinder_y(radius: float, x: float, z: float, y0: float, y1: float) -> trimesh.Trimesh:
    """A cylinder along Y, for the bores and bosses in the housing's side walls."""
    # Rotating +90 degrees about X maps (x, y, z) to (x, -z, y): build along Z at (x, z), spanning -y1..-y0.
    cylinder = _prism(_circle(radius, (x, z), ROUND_SEGMENTS), -y1, -y0)
    cylinder.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (1.0, 0.0, 0.0)))
    return cylinder


# ---------------------------------------------------------------------------------------------------------------
# Parts
# ---------------------------------------------------------------------------------------------------------------

# Shaft positions on the housing: (x, z, bore radius, boss radius). Input shaft small and high, output large.
_HOUSING_SHAFTS = ((-58.0, 78.0, 22.0, 32.0), (48.0, 70.0, 30.0, 42.0))


def gear_housing() -> trimesh.Trimesh:
    """An open-top cast casing: mounting feet, top flange lip, two bearing bosses with through bores."""
    body = _prism(_rounded_rect(210, 130, 15), 0, 124)
    feet = _prism(_rounded_rect(250, 170, 12), 0, 14)
    lip = _prism(_rounded_rect(226, 146, 20), 122, 136)
    # Bosses start inside the 12 mm wall (inner face at y = 53) so they fuse with it, and stand 13 mm proud.
    bosses = [_cylinder_y(boss, x, z, y0, y1) for x, z, _, boss in _HOUSING_SHAFTS for y0, y1 in ((55, 78), (-78, -55))]
    shell = _union([body, feet, lip, *bosses])

    pocket = _prism(_rounded_rect(186, 106, 8), 14, 140)
    bores = [_cylinder_y(bore, x, z, -90, 90) for x, z, bore, _ in _HOUSING_SHAFTS]
    foot_holes = _prisms([_circle(7, (sx * 110, sy * 70)) for sx in (-1, 1) for sy in (-1, 1)], -1, 15)
    lip_taps = _prisms([_circle(4, (x, y)) for x in (-90, -30, 30, 90) for y in (-63, 63)], 126, 137)
    return _difference(shell, [pocket, *bores, *foot_holes, *lip_taps])


def _involute_tooth_outline(module: float, teeth: int, pressure_angle_deg: float = 20.0) -> Polygon:
    """A spur gear outline with involute flanks (standard addendum 1 m, dedendum 1.25 m)."""
    pitch_r = module * teeth / 2
    base_r = pitch_r * np.cos(np.radians(pressure_angle_deg))
    tip_r = pitch_r + module
    root_r = pitch_r - 1.25 * module

    def inv(radius: np.ndarray) -> np.ndarray:
        alpha = np.arccos(np.clip(base_r / radius, -1.0, 1.0))
        return np.tan(alpha) - alpha

    # Half the tooth's angular thickness at radius r: at the pitch circle it is a quarter of the tooth pitch.
    flank_r = np.linspace(max(base_r, root_r), tip_r, 7)
    half_angle = np.pi / (2 * teeth) + inv(np.array(pitch_r)) - inv(flank_r)
    if base_r > root_r:  # below the base circle the flank runs radially down to the root
        flank_r = np.concatenate([[root_r], flank_r])
        half_angle = np.concatenate([[half_angle[0]], half_angle])

    points: list[np.ndarray] = []
    for k in range(teeth):
        centre = 2 * np.pi * k / teeth
        rising = np.column_stack([flank_r, centre - half_angle])
        falling = np.column_stack([flank_r[::-1], centre + half_angle[::-1]])
        points.extend([rising, falling])
    polar = np.concatenate(points)
    return Polygon(np.column_stack([polar[:, 0] * np.cos(polar[:, 1]), polar[:, 0] * np.sin(polar[:, 1])]))


def _bore_with_keyway(radius: float, key_width: float, key_depth: float) -> Polygon:
    key = box(-key_width / 2, 0, key_width / 2, radius + key_depth)
    return unary_union([_circle(radius, segments=ROUND_SEGMENTS // 2), key])


def gear_ratio() -> trimesh.Trimesh:
    """A 40-tooth module-3 spur gear: toothed rim, thin web with lightening holes, long hub, keyed bore."""
    bore = _bore_with_keyway(12.5, 8, 3.3)
    rim = _prism(_involute_tooth_outline(module=3, teeth=40).difference(_circle(47, segments=ROUND_SEGMENTS)), -12, 12)
    web_shape = _circle(48, segments=ROUND_SEGMENTS).difference(_circle(22, segments=ROUND_SEGMENTS))
    web = _prism(web_shape.difference(unary_union(_bolt_circle(6, 35, 7.5, np.pi / 6))), -5, 5)
    hub = _prism(_circle(24, segments=ROUND_SEGMENTS).difference(bore), -20, 20)
    return _union([rim, web, hub])


def bearing_cover() -> trimesh.Trimesh:
    """A blind bearing cover: chamfered plate, spigot (register) on the back, raised boss, six bolt holes."""
    profile = [
        (0, -5), (41, -5), (42, -4), (42, 0), (60, 0), (60, 8.5), (58.5, 10),
        (30, 10), (30, 18), (28, 20), (4, 20), (4, 16), (0, 16),
    ]  # fmt: skip
    holes = _prisms(_bolt_circle(6, 51, 4.5), -1, 11)
    return _difference(_revolve(profile), holes)


def flange() -> trimesh.Trimesh:
    """A flat ring flange with a raised face and eight bolt holes on a 170 mm pitch circle."""
    profile = [(51, 0), (100, 0), (100, 16), (75, 16), (75, 19), (52, 19), (50, 17), (50, 1)]
    holes = _prisms(_bolt_circle(8, 85, 9, np.pi / 8), -1, 17)
    return _difference(_revolve(profile), holes)


def _worm_thread(pitch: float, root_r: float, tip_r: float, turns: int, flank_deg: float = 20.0) -> trimesh.Trimesh:
    """A single-start trapezoidal worm thread as a twisted extrusion.

    Sweeping a section helically is the same as extruding it with a twist of 360 degrees per pitch, so the section
    is the thread's polar profile: at angle phi the radius is the axial profile at u = -pitch * phi / 2 pi.
    """
    run = (tip_r - root_r) * np.tan(np.radians(flank_deg))  # axial length of one flank
    flat = pitch / 2 - run  # crest and root lands are equally wide
    # Breakpoints of the axial profile u -> radius over one pitch: root land, rising flank, crest, falling flank.
    u_break = np.array([0.0, flat, flat + run, 2 * flat + run, pitch])
    r_break = np.array([root_r, root_r, tip_r, tip_r, root_r])
    u = np.concatenate(
        [np.linspace(a, b, n, endpoint=False) for a, b, n in zip(u_break[:-1], u_break[1:], (9, 5, 9, 5), strict=True)]
    )
    radius = np.interp(u, u_break, r_break)
    phi = -2 * np.pi * u / pitch
    section = np.column_stack([radius * np.cos(phi), radius * np.sin(phi)])[::-1]  # counter-clockwise
    length = pitch * turns
    solid = manifold3d.Manifold.extrude(
        manifold3d.CrossSection([section]), length, n_divisions=18 * turns, twist_degrees=360.0 * turns
    )
    return _from_manifold(solid.translate((0.0, 0.0, -length / 2)))


def worm_gear() -> trimesh.Trimesh:
    """A module-5 worm: stepped shaft with bearing seats, six-turn thread with chamfered ends, keyed drive end."""
    pitch = 5 * np.pi
    half = 3 * pitch
    thread = _worm_thread(pitch, root_r=20, tip_r=30, turns=6)
    # Chamfer the thread run-outs by intersecting with a double cone, as a lathe would.
    envelope = _revolve([(0, -half), (21, -half), (31, -half + 10), (31, half - 10), (21, half), (0, half)])
    thread = trimesh.boolean.intersection([thread, envelope], engine="manifold")
    # (radius, z): centring chamfer, journal, bearing seat, shoulder, thread core, and the long keyed drive end.
    shaft_profile = [
        (0, -110), (11.5, -110), (12.5, -109), (12.5, -80), (15, -80), (15, -54), (18, -54), (18, -half + 1),
        (19, -half + 1), (19, half - 1), (18, half - 1), (18, 54), (15, 54), (15, 80), (12.5, 80), (12.5, 139),
        (11.5, 140), (0, 140),
    ]  # fmt: skip
    shaft = _revolve(shaft_profile, segments=48)
    keyway = trimesh.creation.box(extents=(6, 20, 28))
    keyway.apply_translation((0, 12.5 + 10 - 3.5, 122))  # 3.5 mm deep into the drive end
    return _difference(_union([shaft, thread]), [keyway])


# ---------------------------------------------------------------------------------------------------------------
# Catalog
# ---------------------------------------------------------------------------------------------------------------

# (class_id, name, builder, flat, description); class ids are the labels' ids, so never renumber them.
PARTS = (
    (0, "Gear_Housing", gear_housing, False, "Open-top cast gearbox casing with mounting feet and two bearing bores."),
    (1, "Gear_Ratio", gear_ratio, False, "Spur gear, 40 teeth, module 3, webbed with lightening holes, keyed bore."),
    (2, "Bearing_Cover", bearing_cover, True, "Blind bearing cover with spigot, raised boss and six bolt holes."),
    (3, "Flange", flange, True, "Ring flange with raised face and eight bolt holes."),
    (4, "Worm_Gear", worm_gear, False, "Single-start module-5 worm on a stepped, keyed shaft."),
)


def check_solid(name: str, mesh: trimesh.Trimesh) -> None:
    """Refuse to ship a part the renderer or catalog loader would reject or mis-measure."""
    problems = []
    if not mesh.is_watertight:
        problems.append("not watertight")
    if not mesh.is_winding_consistent:
        problems.append("inconsistent winding")
    if mesh.body_count != 1:
        problems.append(f"{mesh.body_count} bodies")
    if not mesh.volume > 0:
        problems.append(f"volume {mesh.volume} (normals point inwards?)")
    if problems:
        raise RuntimeError(f"{name}: {', '.join(problems)}")


def _glb_bytes(name: str, mesh: trimesh.Trimesh) -> bytes:
    # A fresh mesh drops cached normals and metadata, so the file holds only positions and indices.
    clean = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, process=False)
    clean.units = "mm"
    return trimesh.Scene(geometry={name: clean}).export(file_type="glb", include_normals=False)


def catalog_dict() -> dict:
    return {
        "name": "gearbox",
        "units": "mm",
        "parts": [
            {"class_id": cid, "name": name, "file": f"{name.lower()}.glb", "flat": flat, "description": desc}
            for cid, name, _, flat, desc in PARTS
        ],
    }


def build(out_dir: Path = DEFAULT_OUT_DIR) -> list[Path]:
    """Write every part and the catalog into ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for _, name, builder, _, _ in PARTS:
        mesh = builder()
        check_solid(name, mesh)
        path = out_dir / f"{name.lower()}.glb"
        path.write_bytes(_glb_bytes(name, mesh))
        written.append(path)
    catalog = out_dir / "catalog.yaml"
    catalog.write_text(
        "# Generated by `python -m include.cad.build_gearbox`; edit that file, not this one.\n"
        + yaml.safe_dump(catalog_dict(), sort_keys=False, width=120)
    )
    return [*written, catalog]


def main(argv: Sequence[str] = ()) -> None:
    build_command(build, DEFAULT_OUT_DIR, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
