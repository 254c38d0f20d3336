"""Seeded scene randomizers: what to render, as plain data. No OpenGL here.

Each ``draw_*`` function takes a ``numpy.random.Generator`` and returns a frozen dataclass of draws that
``to_dict()`` turns into JSON for the audit trail. ``draw_scene`` composes them for one image attempt; every
randomizer gets its own stream (``stream(seed, class_id, attempt, STREAM)``) so that, say, adding a background kind
does not change the camera a seed produces.

Units: metres, degrees in the draws (readable in audits), radians only inside the maths.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from scipy.spatial import ConvexHull, QhullError

from include.rendering.types import Part

LIGHTING_PRESETS = ("studio", "warehouse")
BACKGROUND_KINDS = ("solid", "gradient", "noise", "image")
SHADOW_QUALITIES = ("fast", "soft")  # fast: one bilinear 4-tap lookup; soft: pyrender's 3x3 PCF (36 taps)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass(frozen=True)
class MaterialPreset:
    """A PBR look: linear-RGB base colour (None: drawn from the paint palette), metallic and roughness ranges."""

    base_color: tuple[float, float, float] | None
    metallic: tuple[float, float]
    roughness: tuple[float, float]


# Linear-RGB reflectances of real metals (F0 values); roughness ranges from machined to sand-cast surfaces.
MATERIAL_PRESETS: Mapping[str, MaterialPreset] = {
    "steel": MaterialPreset((0.56, 0.57, 0.58), (0.85, 1.0), (0.25, 0.5)),
    "aluminium": MaterialPreset((0.91, 0.92, 0.92), (0.85, 1.0), (0.2, 0.45)),
    "brass": MaterialPreset((0.91, 0.78, 0.42), (0.85, 1.0), (0.2, 0.45)),
    "copper": MaterialPreset((0.95, 0.64, 0.54), (0.85, 1.0), (0.2, 0.45)),
    "cast_iron": MaterialPreset((0.36, 0.36, 0.37), (0.6, 0.85), (0.55, 0.85)),
    "painted": MaterialPreset(None, (0.0, 0.15), (0.3, 0.7)),
}
# Industrial paint colours (linear RGB): machine green, RAL blue, signal red, safety yellow, grey, black.
PAINT_PALETTE = (
    (0.05, 0.25, 0.12),
    (0.02, 0.12, 0.45),
    (0.55, 0.03, 0.03),
    (0.85, 0.6, 0.02),
    (0.35, 0.36, 0.37),
    (0.03, 0.03, 0.03),
)
# Colour of every part when the materials randomizer is off: a neutral, slightly metallic grey.
PLAIN_MATERIAL = ("plain", (0.6, 0.6, 0.6), 0.3, 0.5)

# Stream ids of the per-attempt generators (see module docstring).
CLASSES, POSES, PLACEMENT, CAMERA, MATERIALS, LIGHTING, BACKGROUND = range(7)


def _number(value: Any, name: str, lo: float, hi: float, integer: bool = False) -> float | int:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not lo <= value <= hi:
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'} in {lo}..{hi}, got {value!r}")
    return value if integer else float(value)


def _range(value: Any, name: str, lo: float, hi: float, integer: bool = False) -> tuple:
    """A (min, max) pair inside lo..hi, as a tuple (JSON gives lists)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (min, max), got {value!r}")
    a, b = (_number(v, name, lo, hi, integer) for v in value)
    if a > b:
        raise ValueError(f"{name} must have min <= max, got {value!r}")
    return a, b


def _subset(value: Any, name: str, allowed: Sequence[str]) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    unknown = [v for v in items if v not in allowed]
    if not items or unknown:
        raise ValueError(f"{name} must be a non-empty subset of {list(allowed)}, got {list(items)!r}")
    return tuple(dict.fromkeys(items))


def _choice(value: Any, name: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


@dataclass(frozen=True)
class RenderConfig:
    """Every range and toggle of the renderer. JSON round-trips through ``to_dict`` / ``from_dict``.

    Invalid values raise ``ValueError`` naming the field; sequences are normalised to tuples.
    """

    width: int = 512
    height: int = 512
    lighting: tuple[str, ...] = LIGHTING_PRESETS
    shadows: bool = True  # warehouse only: the sun casts shadows on the floor (one shadowed light)
    shadow_quality: str = "fast"
    yfov_deg: float = 40.0
    zoom_range: tuple[float, float] = (1.1, 2.5)  # camera distance / distance at which the primary just fits
    elevation_range_deg: tuple[float, float] = (10.0, 70.0)
    roll: bool = True  # in-plane camera roll, uniform over 360 degrees
    target_jitter: float = 0.3  # look-at offset, as a fraction of the primary's radius
    materials: bool = True
    material_presets: tuple[str, ...] = tuple(MATERIAL_PRESETS)
    pose_filter: bool = True  # True: stable resting poses only; False: uniformly random orientations
    objects_per_image: tuple[int, int] = (1, 1)
    backgrounds: tuple[str, ...] = ("solid", "gradient", "noise")
    background_dir: str | None = None
    min_visible_pixels: int = 200
    min_visible_fraction: float = 0.3
    flat_min_area_ratio: float = 0.3
    max_attempts: int = 8

    def __post_init__(self) -> None:
        checks = {
            "width": lambda v, n: _number(v, n, 64, 4096, integer=True),
            "height": lambda v, n: _number(v, n, 64, 4096, integer=True),
            "lighting": lambda v, n: _subset(v, n, LIGHTING_PRESETS),
            "shadows": _flag,
            "shadow_quality": lambda v, n: _choice(v, n, SHADOW_QUALITIES),
            "yfov_deg": lambda v, n: _number(v, n, 10.0, 90.0),
            "zoom_range": lambda v, n: _range(v, n, 0.3, 1000.0),
            "elevation_range_deg": lambda v, n: _range(v, n, -89.0, 89.0),
            "roll": _flag,
            "target_jitter": lambda v, n: _number(v, n, 0.0, 2.0),
            "materials": _flag,
            "material_presets": lambda v, n: _subset(v, n, tuple(MATERIAL_PRESETS)),
            "pose_filter": _flag,
            "objects_per_image": lambda v, n: _range(v, n, 1, 16, integer=True),
            "backgrounds": lambda v, n: _subset(v, n, BACKGROUND_KINDS),
            "min_visible_pixels": lambda v, n: _number(v, n, 1, 4096 * 4096, integer=True),
            "min_visible_fraction": lambda v, n: _number(v, n, 0.0, 1.0),
            "flat_min_area_ratio": lambda v, n: _number(v, n, 0.0, 1.0),
            "max_attempts": lambda v, n: _number(v, n, 1, 100, integer=True),
        }
        for name, check in checks.items():
            object.__setattr__(self, name, check(getattr(self, name), name))  # frozen: normalise in place
        if "image" in self.backgrounds and not self.background_dir:
            raise ValueError("background_dir must be set when backgrounds includes 'image'")
        if self.min_visible_pixels > self.width * self.height:
            raise ValueError(f"min_visible_pixels {self.min_visible_pixels} exceeds width*height")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RenderConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown RenderConfig fields {unknown}; known: {sorted(known)}")
        return cls(**data)


def stream(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator for (seed, *keys): the same keys always give the same draws."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, *map(int, keys)]))


def _plain(value: Any) -> Any:
    """Draws, numpy scalars/arrays and tuples to JSON types."""
    if isinstance(value, _Draw):
        return value.to_dict()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Draw:
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


# ----------------------------------------------------------------------------------------------------------------------
# Camera
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraDraw(_Draw):
    azimuth_deg: float
    elevation_deg: float
    roll_deg: float
    zoom: float
    target_offset: tuple[float, float]  # look-at shift along the camera's right/up axes, in primary radii


def draw_camera(rng: np.random.Generator, config: RenderConfig) -> CameraDraw:
    """A 360-degree orbit around the primary object, at a zoom (distance factor), with optional in-plane roll."""
    jitter = config.target_jitter * rng.uniform(-1.0, 1.0, size=2)
    return CameraDraw(
        azimuth_deg=float(rng.uniform(0.0, 360.0)),
        elevation_deg=float(rng.uniform(*config.elevation_range_deg)),
        roll_deg=float(rng.uniform(-180.0, 180.0)) if config.roll else 0.0,
        zoom=float(rng.uniform(*config.zoom_range)),
        target_offset=(float(jitter[0]), float(jitter[1])),
    )


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world pose with world +Z up (OpenGL convention: the camera looks down its -Z axis, +Y up)."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-9:  # looking straight up/down: any horizontal right axis will do
        right = np.cross(forward, np.array([1.0, 0.0, 0.0]))
    right = right / np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, 0] = right
    pose[:3, 1] = np.cross(right, forward)
    pose[:3, 2] = -forward
    pose[:3, 3] = eye
    return pose


def direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Unit vector from the origin towards (azimuth, elevation); Z is up."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


def camera_pose(
    draw: CameraDraw, center: np.ndarray, radius: float, yfov_deg: float, aspect: float
) -> tuple[np.ndarray, float]:
    """(camera-to-world pose, distance) framing a sphere (center, radius) at ``draw.zoom`` times the fitting distance."""
    half_fov = math.radians(yfov_deg) / 2.0
    half_fov = min(half_fov, math.atan(math.tan(half_fov) * aspect))  # the narrower of the two image axes
    distance = draw.zoom * radius / math.sin(half_fov)
    eye = center + distance * direction(draw.azimuth_deg, draw.elevation_deg)
    pose = look_at(eye, center)
    shift = radius * (draw.target_offset[0] * pose[:3, 0] + draw.target_offset[1] * pose[:3, 1])
    pose = look_at(eye + shift, center + shift)
    roll = trimesh.transformations.rotation_matrix(math.radians(draw.roll_deg), [0.0, 0.0, 1.0])
    return pose @ roll, distance


# ----------------------------------------------------------------------------------------------------------------------
# Materials
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaterialDraw(_Draw):
    preset: str
    base_color: tuple[float, float, float]  # linear RGB
    metallic: float
    roughness: float


def draw_material(rng: np.random.Generator, presets: Sequence[str]) -> MaterialDraw:
    """A metallic-effect PBR material: a preset, its roughness/metalness drawn, its colour jittered by a few %."""
    name = presets[int(rng.integers(len(presets)))]
    preset = MATERIAL_PRESETS[name]
    base = preset.base_color or PAINT_PALETTE[int(rng.integers(len(PAINT_PALETTE)))]
    color = np.clip(np.asarray(base) * rng.uniform(0.92, 1.08, size=3), 0.0, 1.0)
    return MaterialDraw(
        preset=name,
        base_color=tuple(float(c) for c in color),
        metallic=float(rng.uniform(*preset.metallic)),
        roughness=float(rng.uniform(*preset.roughness)),
    )


def plain_material() -> MaterialDraw:
    name, color, metallic, roughness = PLAIN_MATERIAL
    return MaterialDraw(preset=name, base_color=color, metallic=metallic, roughness=roughness)


# ----------------------------------------------------------------------------------------------------------------------
# Lighting
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LightDraw(_Draw):
    kind: str  # "directional" | "spot"
    azimuth_deg: float  # where the light comes from, seen from the scene centre
    elevation_deg: float
    intensity: float  # directional: lux-like; spot: scaled by the distance squared in the renderer
    color: tuple[float, float, float]
    distance: float = 0.0  # spot only: distance from the scene centre, in scene radii
    shadows: bool = False


@dataclass(frozen=True)
class LightingDraw(_Draw):
    preset: str
    ambient: float
    lights: tuple[LightDraw, ...]
    floor_color: tuple[float, float, float] | None = None  # warehouse only (linear RGB)
    floor_roughness: float = 0.0


def _warm_white(rng: np.random.Generator, spread: float) -> tuple[float, float, float]:
    tint = rng.uniform(-spread, spread)
    return (1.0, float(1.0 - 0.3 * max(tint, 0.0)), float(1.0 - 0.6 * max(tint, 0.0) + 0.2 * min(tint, 0.0)))


def draw_studio(rng: np.random.Generator) -> LightingDraw:
    """A homogeneous ring of four directional lights (pyrender's maximum per type); no shadows."""
    start = rng.uniform(0.0, 90.0)
    elevation = rng.uniform(30.0, 60.0)
    intensity = rng.uniform(1.0, 1.8)
    lights = tuple(
        LightDraw("directional", float(start + 90.0 * i), float(elevation), float(intensity), _warm_white(rng, 0.1))
        for i in range(4)
    )
    return LightingDraw("studio", ambient=float(rng.uniform(0.2, 0.4)), lights=lights)


def draw_warehouse(rng: np.random.Generator, shadows: bool) -> LightingDraw:
    """A directional sun (the one shadowed light) plus an overhead spot light, over a concrete-like floor."""
    sun = LightDraw(
        "directional",
        float(rng.uniform(0.0, 360.0)),
        float(rng.uniform(35.0, 75.0)),
        float(rng.uniform(1.8, 3.2)),
        _warm_white(rng, 1.0),
        shadows=shadows,
    )
    spot = LightDraw(
        "spot",
        float(rng.uniform(0.0, 360.0)),
        float(rng.uniform(60.0, 89.0)),
        float(rng.uniform(1.0, 3.0)),
        _warm_white(rng, 0.5),
        distance=float(rng.uniform(3.0, 6.0)),
    )
    grey = rng.uniform(0.08, 0.3)
    floor = np.clip(grey * rng.uniform(0.92, 1.08, size=3), 0.0, 1.0)
    return LightingDraw(
        "warehouse",
        ambient=float(rng.uniform(0.15, 0.3)),
        lights=(sun, spot),
        floor_color=tuple(float(c) for c in floor),
        floor_roughness=float(rng.uniform(0.6, 0.95)),
    )


def draw_lighting(rng: np.random.Generator, presets: Sequence[str], shadows: bool) -> LightingDraw:
    name = presets[int(rng.integers(len(presets)))]
    return draw_studio(rng) if name == "studio" else draw_warehouse(rng, shadows)


# ----------------------------------------------------------------------------------------------------------------------
# Backgrounds
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackgroundDraw(_Draw):
    kind: str
    colors: tuple[tuple[int, int, int], ...]  # sRGB 0..255: solid uses 1, gradient 2, noise 2 (low/high)
    angle_deg: float = 0.0  # gradient direction
    noise_cells: int = 0  # noise: the coarse grid size that is upsampled (smooth blotches)
    noise_seed: int = 0
    file: str = ""  # image: a file name inside background_dir
    crop: tuple[float, float, float] = (0.0, 0.0, 1.0)  # image: (x0, y0) as fractions of the slack, and a scale
    flip: bool = False


PROJECT_ROOT = Path(__file__).resolve().parents[2]


def resolve_background_dir(background_dir: str | Path) -> Path:
    """A relative ``background_dir`` is relative to the project root (like catalogs), not to the worker's cwd."""
    path = Path(background_dir)
    return path if path.is_absolute() else PROJECT_ROOT / path


def background_files(background_dir: str | Path | None) -> tuple[str, ...]:
    """Image file names under ``background_dir``, sorted so that a seed always picks the same file."""
    if not background_dir:
        return ()
    root = resolve_background_dir(background_dir)
    if not root.is_dir():
        raise ValueError(f"background_dir {str(root)!r} is not a directory")
    files = tuple(sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
    if not files:
        raise ValueError(f"background_dir {str(root)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _srgb(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, size=3))


def draw_background(rng: np.random.Generator, kinds: Sequence[str], files: Sequence[str]) -> BackgroundDraw:
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "solid":
        return BackgroundDraw(kind, (_srgb(rng),))
    if kind == "gradient":
        return BackgroundDraw(kind, (_srgb(rng), _srgb(rng)), angle_deg=float(rng.uniform(0.0, 360.0)))
    if kind == "noise":
        return BackgroundDraw(
            kind,
            (_srgb(rng), _srgb(rng)),
            noise_cells=int(rng.integers(4, 48)),
            noise_seed=int(rng.integers(2**31)),
        )
    if not files:
        raise ValueError("an 'image' background needs image files (RenderConfig.background_dir)")
    crop = rng.uniform(0.0, 1.0, size=2)
    return BackgroundDraw(
        kind,
        (),
        file=files[int(rng.integers(len(files)))],
        crop=(float(crop[0]), float(crop[1]), float(rng.uniform(0.6, 1.0))),
        flip=bool(rng.integers(2)),
    )


# ----------------------------------------------------------------------------------------------------------------------
# Part geometry: resting poses, footprints, projected areas
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartGeometry:
    """What the randomizers need to know about one part, computed once per part (and per process)."""

    class_id: int
    name: str
    flat: bool
    hull: np.ndarray  # (n, 3) convex-hull vertices in the part frame: footprints, projected areas, framing
    pose_transforms: np.ndarray  # (k, 4, 4) stable resting poses (trimesh.poses), resting on z = 0
    pose_probabilities: np.ndarray  # (k,) summing to 1
    max_projected_area: float  # over all view directions (m^2)


def fibonacci_sphere(n: int) -> np.ndarray:
    """n roughly evenly spread unit vectors."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(1.0 - z * z)
    phi = math.pi * (3.0 - math.sqrt(5.0)) * i
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def projected_area(points: np.ndarray, view_dir: np.ndarray) -> float:
    """Area of the orthographic silhouette (convex hull) of ``points`` seen along ``view_dir``."""
    d = view_dir / np.linalg.norm(view_dir)
    u = np.cross(d, [1.0, 0.0, 0.0] if abs(d[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    flat = points @ np.stack([u, v], axis=1)
    try:
        return float(ConvexHull(flat).volume)  # a 2-D hull's "volume" is its area
    except QhullError:  # qhull refuses degenerate (collinear) outlines: an edge-on sheet has no area
        return 0.0


def part_geometry(part: Part, view_directions: int = 200) -> PartGeometry:
    """Convex hull, stable poses (slow for big hulls: compute once per part) and, for flat parts, the max area."""
    mesh = part.mesh
    hull = np.asarray(mesh.convex_hull.vertices, dtype=np.float64)
    transforms, probabilities = trimesh.poses.compute_stable_poses(mesh)
    if len(transforms) == 0:  # qhull gave up on a degenerate mesh: rest it as it is
        transforms, probabilities = np.eye(4)[None], np.ones(1)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    max_area = 0.0
    if part.flat:  # silhouettes are symmetric under d -> -d: half the sphere suffices
        dirs = fibonacci_sphere(2 * view_directions)
        max_area = max(projected_area(hull, d) for d in dirs[dirs[:, 2] >= 0])
    return PartGeometry(
        class_id=part.class_id,
        name=part.name,
        flat=part.flat,
        hull=hull,
        pose_transforms=np.asarray(transforms, dtype=np.float64),
        pose_probabilities=probabilities / probabilities.sum(),
        max_projected_area=max_area,
    )


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation (Shoemake's quaternion method), as a 4x4 transform."""
    u1, u2, u3 = rng.uniform(0.0, 1.0, size=3)
    q = [
        math.sqrt(u1) * math.cos(2 * math.pi * u3),  # w first, as trimesh.transformations expects
        math.sqrt(1 - u1) * math.sin(2 * math.pi * u2),
        math.sqrt(1 - u1) * math.cos(2 * math.pi * u2),
        math.sqrt(u1) * math.sin(2 * math.pi * u3),
    ]
    return trimesh.transformations.quaternion_matrix(q)


@dataclass(frozen=True)
class ObjectDraw(_Draw):
    """One object on the floor: ``transform`` maps the part frame to the world (z = 0 is the floor)."""

    class_id: int
    name: str
    pose_index: int  # index into the part's stable poses, -1 for a random orientation
    yaw_deg: float
    transform: np.ndarray = field(repr=False)  # (4, 4)
    footprint_radius: float
    material: MaterialDraw


def orient(rng: np.random.Generator, geometry: PartGeometry, stable: bool) -> tuple[int, float, np.ndarray]:
    """(pose index, yaw, rotation) for an object resting on the floor: a stable pose drawn by its probability."""
    if stable:
        index = int(rng.choice(len(geometry.pose_probabilities), p=geometry.pose_probabilities))
        base = geometry.pose_transforms[index].copy()
        base[:3, 3] = 0.0
    else:
        index, base = -1, random_rotation(rng)
    yaw = float(rng.uniform(0.0, 360.0))
    return index, yaw, trimesh.transformations.rotation_matrix(math.radians(yaw), [0.0, 0.0, 1.0]) @ base


def rest_on_floor(geometry: PartGeometry, rotation: np.ndarray) -> tuple[np.ndarray, float]:
    """Translate a rotated part so its lowest point is on z = 0 and its footprint is centred on the origin.

    Returns the transform and the footprint radius (the circle, around the origin, that holds its XY outline).
    """
    points = geometry.hull @ rotation[:3, :3].T
    lo, hi = points.min(axis=0), points.max(axis=0)
    center_xy = (lo[:2] + hi[:2]) / 2.0
    transform = rotation.copy()
    transform[:3, 3] = [-center_xy[0], -center_xy[1], -lo[2]]
    radius = float(np.linalg.norm(points[:, :2] - center_xy, axis=1).max())
    return transform, radius


class PlacementError(ValueError):
    """The objects could not be placed without overlapping footprints."""


def place_footprints(
    rng: np.random.Generator, radii: Sequence[float], gap: float = 0.05, spread: float = 2.5, tries: int = 200
) -> np.ndarray:
    """XY centres for circles of ``radii`` on the floor: the first at the origin, none overlapping.

    Rejection sampling in a disc around the first object whose radius grows with the objects' sizes, so that
    neighbours land near (and sometimes in front of) the primary. ``gap`` is a fraction of the larger radius.
    """
    radii = np.asarray(radii, dtype=np.float64)
    centers = np.zeros((len(radii), 2))
    reach = radii[0] + spread * radii.max()
    for i in range(1, len(radii)):
        for _ in range(tries):
            angle = rng.uniform(0.0, 2.0 * math.pi)
            dist = (radii[0] + radii[i]) + rng.uniform(0.0, 1.0) * reach
            candidate = dist * np.array([math.cos(angle), math.sin(angle)])
            need = (radii[:i] + radii[i]) * (1.0 + gap)
            if np.all(np.linalg.norm(centers[:i] - candidate, axis=1) >= need):
                centers[i] = candidate
                break
        else:
            raise PlacementError(
                f"could not place object {i + 1} of {len(radii)} (footprint radius {radii[i]:.3f} m) "
                f"without overlap after {tries} tries"
            )
    return centers


# ----------------------------------------------------------------------------------------------------------------------
# The whole scene
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneDraw(_Draw):
    seed: int
    attempt: int
    objects: tuple[ObjectDraw, ...]  # objects[0] is the primary
    camera: CameraDraw
    lighting: LightingDraw
    background: BackgroundDraw


def draw_classes(
    rng: np.random.Generator, primary: int, class_ids: Sequence[int], count_range: tuple[int, int]
) -> list[int]:
    """The primary plus a uniform draw (with repeats) of the other objects' classes."""
    count = int(rng.integers(count_range[0], count_range[1] + 1))
    others = rng.choice(np.asarray(class_ids), size=count - 1) if count > 1 else []
    return [primary, *(int(c) for c in others)]


def draw_scene(
    primary: int,
    seed: int,
    attempt: int,
    geometry: Mapping[int, PartGeometry],
    config: RenderConfig,
    background_names: Sequence[str] = (),
) -> SceneDraw:
    """All draws for one attempt at one image. Raises PlacementError when the objects do not fit."""
    rng = lambda key: stream(seed, primary, attempt, key)  # noqa: E731
    classes = draw_classes(rng(CLASSES), primary, sorted(geometry), config.objects_per_image)
    poses_rng, material_rng = rng(POSES), rng(MATERIALS)
    materials: dict[int, MaterialDraw] = {}  # one material per class: copies of a part share one pyrender mesh
    placed = []
    for class_id in classes:
        index, yaw, rotation = orient(poses_rng, geometry[class_id], config.pose_filter)
        transform, radius = rest_on_floor(geometry[class_id], rotation)
        if class_id not in materials:
            materials[class_id] = (
                draw_material(material_rng, config.material_presets) if config.materials else plain_material()
            )
        placed.append((class_id, index, yaw, transform, radius))
    centers = place_footprints(rng(PLACEMENT), [p[4] for p in placed])
    objects = []
    for (class_id, index, yaw, transform, radius), (x, y) in zip(placed, centers, strict=True):
        moved = transform.copy()
        moved[:2, 3] += (x, y)
        objects.append(ObjectDraw(class_id, geometry[class_id].name, index, yaw, moved, radius, materials[class_id]))
    return SceneDraw(
        seed=seed,
        attempt=attempt,
        objects=tuple(objects),
        camera=draw_camera(rng(CAMERA), config),
        lighting=draw_lighting(rng(LIGHTING), config.lighting, config.shadows),
        background=draw_background(rng(BACKGROUND), config.backgrounds, background_names),
    )


def world_hull(geometry: PartGeometry, transform: np.ndarray) -> np.ndarray:
    return geometry.hull @ transform[:3, :3].T + transform[:3, 3]


def view_area_ratio(geometry: PartGeometry, transform: np.ndarray, eye: np.ndarray) -> float:
    """Projected area of a posed part seen from ``eye``, over its largest projected area (1 for non-flat parts)."""
    if not geometry.flat or geometry.max_projected_area <= 0.0:
        return 1.0
    points = world_hull(geometry, transform)
    center = (points.min(axis=0) + points.max(axis=0)) / 2.0
    view_local = transform[:3, :3].T @ (center - eye)  # into the part frame, where the hull lives
    return projected_area(geometry.hull, view_local) / geometry.max_projected_area
