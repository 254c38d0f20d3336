"""Render randomized, labelled images of catalog parts: one ``Renderer`` per process.

The renderer builds one pyrender scene and reuses it for every image: part meshes are uploaded once, and an image
only moves nodes, rewrites material factors, swaps the lighting preset's light nodes and moves the camera. Per image:

1. draw the scene (``randomizers.draw_scene``), reject edge-on views of flat parts (no GL work);
2. segmentation pass: every object a distinct id, the floor 0 (so it still occludes); boxes and pixel counts;
3. only for objects whose projections overlap another's: a solo pass for the unoccluded pixel count;
4. reject the view if the primary is too small or too hidden, else the colour pass, composited over the background.

pyrender is imported lazily (through ``include.rendering.gl``) so that importing this module stays cheap.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import trimesh
from PIL import Image

from include.rendering import labels
from include.rendering.randomizers import (
    BackgroundDraw,
    LightingDraw,
    MaterialDraw,
    PartGeometry,
    PlacementError,
    RenderConfig,
    SceneDraw,
    background_files,
    camera_pose,
    direction,
    draw_lighting,
    draw_scene,
    look_at,
    part_geometry,
    resolve_background_dir,
    stream,
    view_area_ratio,
    world_hull,
)
from include.rendering.types import Box, Catalog

if TYPE_CHECKING:
    import pyrender

_BACKGROUND_CACHE_SIZE = 32  # decoded background images kept per renderer


SKIP_CATEGORIES = ("edge_on", "not_visible", "placement")


class RenderSkip(Exception):
    """No acceptable image for this (class, seed): the caller counts it (by ``category``) and moves on.

    ``reason`` is for people (it names the part, the numbers and thresholds); ``category`` is one of
    ``SKIP_CATEGORIES``, stable enough to count; ``attempts`` holds each rejected attempt's reason.
    """

    def __init__(self, category: str, reason: str, attempts: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.category = category
        self.reason = reason
        self.attempts = list(attempts)


# ----------------------------------------------------------------------------------------------------------------------
# Backgrounds (pixels from a BackgroundDraw)
# ----------------------------------------------------------------------------------------------------------------------


def _ramp(t: np.ndarray, c0: Sequence[int], c1: Sequence[int]) -> Image.Image:
    """An RGB image blending from c0 (t = 0) to c1 (t = 255), via a palette: 3x faster than blending in numpy."""
    weights = np.arange(256, dtype=np.float64)[:, None] / 255.0
    palette = np.round(np.asarray(c0) * (1.0 - weights) + np.asarray(c1) * weights).astype(np.uint8)
    image = Image.fromarray(t, "L")
    image.putpalette(palette.tobytes())
    return image.convert("RGB")


def _gradient(draw: BackgroundDraw, width: int, height: int) -> Image.Image:
    angle = math.radians(draw.angle_deg)
    x = (np.arange(width, dtype=np.float32) - width / 2) * math.cos(angle)
    y = (np.arange(height, dtype=np.float32) - height / 2) * math.sin(angle)
    span = abs(width * math.cos(angle)) + abs(height * math.sin(angle))
    t = ((x[None, :] + y[:, None]) * (255.0 / span) + 127.5).astype(np.uint8)  # |x + y| <= span / 2
    return _ramp(t, *draw.colors)


def _noise(draw: BackgroundDraw, width: int, height: int) -> Image.Image:
    cells = np.random.default_rng(draw.noise_seed).integers(0, 256, size=(draw.noise_cells, draw.noise_cells))
    smooth = Image.fromarray(cells.astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR)
    return _ramp(np.asarray(smooth), *draw.colors)


def _photo(draw: BackgroundDraw, source: Image.Image, width: int, height: int) -> Image.Image:
    """A crop of ``source`` with the output's aspect ratio (``crop[2]`` of the largest one), resized and flipped."""
    sw, sh = source.size
    scale = min(sw / width, sh / height) * draw.crop[2]
    cw, ch = max(1, round(width * scale)), max(1, round(height * scale))
    x0, y0 = round((sw - cw) * draw.crop[0]), round((sh - ch) * draw.crop[1])
    image = source.resize((width, height), Image.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if draw.flip else image


def background_image(
    draw: BackgroundDraw, width: int, height: int, load: Callable[[str], Image.Image] | None = None
) -> Image.Image:
    """A new RGB image of the background for a draw; ``load(file_name) -> RGB image`` serves 'image' draws."""
    if draw.kind == "solid":
        return Image.new("RGB", (width, height), tuple(draw.colors[0]))
    if draw.kind == "gradient":
        return _gradient(draw, width, height)
    if draw.kind == "noise":
        return _noise(draw, width, height)
    if load is None:
        raise ValueError("an 'image' background needs a loader")
    return _photo(draw, load(draw.file), width, height)


def composite(rgba: np.ndarray, background: Image.Image, multisampled: bool = False) -> np.ndarray:
    """A premultiplied RGBA render over an opaque background: a new, writable (H, W, 3) uint8 array.

    The colour pass clears to transparent black, so alpha is the coverage: 255 on objects (which stay fully
    opaque), 0 where nothing was drawn, and in between only on ``multisampled`` (EGL) edges, whose colour is
    already coverage-weighted. Pillow's masked paste (into ``background``, which it modifies) is exact for 0 and
    255 and 3x faster than numpy; the few edge pixels of a multisampled render are then redone with the
    premultiplied formula.
    """
    behind = np.asarray(background) if multisampled else None
    foreground = Image.fromarray(np.ascontiguousarray(rgba))
    background.paste(foreground, (0, 0), foreground)
    image = np.array(background)
    if behind is None:
        return image
    alpha = rgba[..., 3]
    edges = np.nonzero((alpha > 0) & (alpha < 255))
    rest = (255 - alpha[edges]).astype(np.uint16)[:, None]
    blended = rgba[..., :3][edges].astype(np.uint16) + (behind[edges].astype(np.uint16) * rest + 127) // 255
    image[edges] = np.minimum(blended, 255).astype(np.uint8)
    return image


# ----------------------------------------------------------------------------------------------------------------------
# The renderer
# ----------------------------------------------------------------------------------------------------------------------


def _render_mesh(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The part without its visuals (every part then shares one shader program) and with sharp edges kept sharp."""
    return trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, process=False).smooth_shaded


def _floor_quad() -> trimesh.Trimesh:
    """A one-sided 2 x 2 square at z = 0 facing +Z: from below it is culled, so it never hides anything there."""
    vertices = np.array([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 1.0, 0.0]])
    return trimesh.Trimesh(vertices=vertices, faces=[[0, 1, 2], [0, 2, 3]], process=False)


def _set_material(material: pyrender.MetallicRoughnessMaterial, draw: MaterialDraw) -> None:
    material.baseColorFactor = [*draw.base_color, 1.0]
    material.metallicFactor = draw.metallic
    material.roughnessFactor = draw.roughness


class Renderer:
    """Renders ``(primary class, seed)`` to an RGB image, its visible boxes and the draws that made it.

    Owns one OpenGL context: create one per process, reuse it for every image, ``close()`` it at the end. Shaders
    are compiled and meshes uploaded in ``__init__`` so that per-image timings exclude them.
    """

    def __init__(self, catalog: Catalog, config: RenderConfig) -> None:
        from include.rendering import gl  # here, not at the top: keeps pyrender out of module import time

        self.catalog = catalog
        self.config = config
        self.stage_seconds: defaultdict[str, float] = defaultdict(float)
        self._gl = gl
        self._background_names = background_files(config.background_dir) if "image" in config.backgrounds else ()
        self._backgrounds: dict[str, Image.Image] = {}
        with self._stage("init_geometry"):
            self.geometry: dict[int, PartGeometry] = {p.class_id: part_geometry(p) for p in catalog.parts}
        with self._stage("init_gl"):
            self._offscreen = gl.Offscreen(config.width, config.height, config.shadow_quality, self.stage_seconds)
            self._build_scene()
            self._warm_up()

    # -- public API ----------------------------------------------------------------------------------------------------

    def render(self, primary_class_id: int, seed: int) -> tuple[np.ndarray, list[Box], dict[str, Any]]:
        """(RGB uint8 image (H, W, 3), visible boxes, JSON-able draws) for one seed; the same inputs give the same bytes.

        Rejected views are re-drawn from derived seeds up to ``config.max_attempts`` times; then ``RenderSkip``.
        """
        self.catalog.part(primary_class_id)  # an unknown class is a caller bug, not a skip
        rejected: list[RenderSkip] = []
        for attempt in range(self.config.max_attempts):
            try:
                image, boxes, meta = self.render_draw(self.draw(primary_class_id, seed, attempt))
            except RenderSkip as skip:
                rejected.append(skip)
                continue
            meta["rejected_attempts"] = [skip.reason for skip in rejected]
            return image, boxes, meta
        category = Counter(skip.category for skip in rejected).most_common(1)[0][0]
        raise RenderSkip(
            category,
            f"class {primary_class_id} seed {seed}: no acceptable view in {len(rejected)} attempts "
            f"(last: {rejected[-1].reason})",
            [skip.reason for skip in rejected],
        )

    def draw(self, primary_class_id: int, seed: int, attempt: int = 0) -> SceneDraw:
        """The randomizer draws of one attempt (no rendering); a layout that does not fit is a ``RenderSkip``."""
        with self._stage("draw"):
            try:
                return draw_scene(primary_class_id, seed, attempt, self.geometry, self.config, self._background_names)
            except PlacementError as error:
                raise RenderSkip("placement", f"placement: {error}") from None

    def render_draw(self, draw: SceneDraw) -> tuple[np.ndarray, list[Box], dict[str, Any]]:
        """Render one set of draws, or raise ``RenderSkip`` if the view breaks a rule (edge-on, primary hidden)."""
        view = self._view(draw)
        self._reject_edge_on(draw, view["eye"])
        with self._stage("scene_update"):
            self._apply(draw, view)
        with self._stage("seg_render"):
            ids = self._offscreen.ids(self._scene, {node: i + 1 for i, node in enumerate(self._object_nodes)})
        with self._stage("boxes"):
            stats = labels.instance_stats(ids, len(draw.objects))
        with self._stage("solo_render"):
            unoccluded = self._unoccluded_pixels(draw, view, stats)
        with self._stage("boxes"):
            boxes = labels.visible_boxes(
                stats,
                [o.class_id for o in draw.objects],
                unoccluded,
                self.config.min_visible_pixels,
                self.config.min_visible_fraction,
            )
        if boxes[0] is None:
            raise RenderSkip("not_visible", self._hidden_reason(draw, stats, unoccluded))
        with self._stage("colour_render"):
            rgba = self._offscreen.rgba(self._scene, self._colour_flags(draw.lighting))
        with self._stage("composite"):
            background = background_image(draw.background, self.config.width, self.config.height, self._load)
            image = composite(rgba, background, self._offscreen.multisampled)
        return image, [b for b in boxes if b is not None], self._meta(draw, view, stats, unoccluded, boxes)

    def close(self) -> None:
        """Free the GL context (also done by the garbage collector, but not reliably at interpreter exit)."""
        self._offscreen.close()

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scene construction ------------------------------------------------------------------------------------------

    def _build_scene(self) -> None:
        pr = self._gl.pyrender
        self._scene = pr.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[0.3, 0.3, 0.3])
        self._meshes: dict[int, pyrender.Mesh] = {}
        self._nodes: dict[int, pyrender.Node] = {}  # the first copy of each part; never leaves the scene
        self._copies: dict[int, list[pyrender.Node]] = defaultdict(list)  # further copies, added per image
        self._copies_in_scene: list[pyrender.Node] = []
        for part in self.catalog.parts:
            material = pr.MetallicRoughnessMaterial(baseColorFactor=[0.6, 0.6, 0.6, 1.0])
            mesh = pr.Mesh.from_trimesh(_render_mesh(part.mesh), material=material)
            mesh.is_visible = False  # hidden, not removed: removing a mesh frees its GL buffers
            self._meshes[part.class_id] = mesh
            self._nodes[part.class_id] = self._scene.add(mesh, name=f"part-{part.class_id}")
        floor_material = pr.MetallicRoughnessMaterial(baseColorFactor=[0.3, 0.3, 0.3, 1.0], metallicFactor=0.0)
        self._floor = pr.Mesh.from_trimesh(_floor_quad(), material=floor_material)
        self._floor.is_visible = False
        self._floor_node = self._scene.add(self._floor, name="floor")
        aspect = self.config.width / self.config.height
        self._camera = pr.PerspectiveCamera(yfov=math.radians(self.config.yfov_deg), aspectRatio=aspect)
        self._camera_node = self._scene.add(self._camera, name="camera")
        # Lights of both presets exist once; a preset switch moves nodes in or out of the scene. The sun doubles as
        # the first studio light, so its 16 MB shadow map stays allocated across switches.
        node = self._gl.StableNode
        sun = node(0, light=pr.DirectionalLight(), name="sun")
        spot = node(1, light=pr.SpotLight(innerConeAngle=math.radians(15.0), outerConeAngle=math.radians(45.0)))
        ring = [node(2 + i, light=pr.DirectionalLight(), name=f"studio-{i + 1}") for i in range(3)]
        self._lights = {"studio": [sun, *ring], "warehouse": [sun, spot]}
        self._active_preset: str | None = None
        self._object_nodes: list[pyrender.Node] = []  # node of draw.objects[i]

    def _warm_up(self) -> None:
        """Upload every mesh and compile every shader variant this config can use (0.5-3 s each on llvmpipe)."""
        radius = max(float(np.linalg.norm(g.hull, axis=1).max()) for g in self.geometry.values())
        for mesh in self._meshes.values():
            mesh.is_visible = True
        self._floor.is_visible = True
        self._scene.set_pose(self._floor_node, np.diag([4 * radius, 4 * radius, 1.0, 1.0]))
        self._scene.set_pose(self._camera_node, look_at(np.array([3.0, 2.0, 2.0]) * radius, np.zeros(3)))
        for preset in self.config.lighting:
            lighting = self._preset_lighting(preset)
            self._set_lights(lighting, np.zeros(3), radius)
            self._offscreen.rgba(self._scene, self._colour_flags(lighting))
        self._offscreen.ids(self._scene, dict.fromkeys(self._nodes.values(), 1))
        for mesh in self._meshes.values():
            mesh.is_visible = False
        self._floor.is_visible = False

    def _preset_lighting(self, preset: str) -> LightingDraw:
        return draw_lighting(stream(0), (preset,), self.config.shadows)

    # -- per image ---------------------------------------------------------------------------------------------------

    def _view(self, draw: SceneDraw) -> dict[str, Any]:
        """Camera pose and the sizes derived from the layout: primary sphere, scene sphere, floor, clip planes."""
        hulls = [world_hull(self.geometry[o.class_id], o.transform) for o in draw.objects]
        primary_center = (hulls[0].min(axis=0) + hulls[0].max(axis=0)) / 2.0
        primary_radius = float(np.linalg.norm(hulls[0] - primary_center, axis=1).max())
        everything = np.concatenate(hulls)
        scene_center = (everything.min(axis=0) + everything.max(axis=0)) / 2.0
        scene_radius = float(np.linalg.norm(everything - scene_center, axis=1).max())
        pose, distance = camera_pose(
            draw.camera, primary_center, primary_radius, self.config.yfov_deg, self.config.width / self.config.height
        )
        eye = pose[:3, 3]
        far = float(np.linalg.norm(eye - scene_center)) + scene_radius
        return {
            "pose": pose,
            "eye": eye,
            "distance": distance,
            "hulls": hulls,
            "scene_center": scene_center,
            "scene_radius": scene_radius,
            # The floor reaches past the camera, so low views see floor, then the background beyond its edge.
            "floor_half": distance + scene_radius,
            "znear": 0.02 * distance,
            "zfar": 4.0 * (far + distance + scene_radius),
        }

    def _reject_edge_on(self, draw: SceneDraw, eye: np.ndarray) -> None:
        for obj in draw.objects:
            ratio = view_area_ratio(self.geometry[obj.class_id], obj.transform, eye)
            if ratio < self.config.flat_min_area_ratio:
                raise RenderSkip(
                    "edge_on",
                    f"edge-on view of flat part {obj.name!r}: projected area {ratio:.2f} of its maximum "
                    f"< flat_min_area_ratio {self.config.flat_min_area_ratio}",
                )

    def _apply(self, draw: SceneDraw, view: Mapping[str, Any]) -> None:
        scene = self._scene
        for node in self._copies_in_scene:
            scene.remove_node(node)
        self._copies_in_scene = []
        present = {o.class_id for o in draw.objects}
        for class_id, mesh in self._meshes.items():
            mesh.is_visible = class_id in present
            if class_id not in present:  # parked at the origin, inside the layout: stale poses would skew bounds
                scene.set_pose(self._nodes[class_id], np.eye(4))
        seen: Counter[int] = Counter()
        self._object_nodes = []
        for obj in draw.objects:
            node = self._node_for(obj.class_id, seen[obj.class_id])
            seen[obj.class_id] += 1
            scene.set_pose(node, obj.transform)
            for primitive in self._meshes[obj.class_id].primitives:
                _set_material(primitive.material, obj.material)
            self._object_nodes.append(node)
        warehouse = draw.lighting.preset == "warehouse"
        self._floor.is_visible = warehouse
        if warehouse:  # left out of the id pass: objects rest on it, so it hides nothing (and it is culled below)
            half = view["floor_half"]
            self._scene.set_pose(self._floor_node, np.diag([half, half, 1.0, 1.0]))
            floor = self._floor.primitives[0].material
            floor.baseColorFactor = [*draw.lighting.floor_color, 1.0]
            floor.roughnessFactor = draw.lighting.floor_roughness
        self._set_lights(draw.lighting, view["scene_center"], view["scene_radius"])
        self._camera.znear, self._camera.zfar = view["znear"], view["zfar"]
        scene.set_pose(self._camera_node, view["pose"])

    def _node_for(self, class_id: int, copy: int) -> pyrender.Node:
        if copy == 0:
            return self._nodes[class_id]
        pool = self._copies[class_id]
        while len(pool) < copy:  # nodes are cheap; the mesh they point to is uploaded once
            pool.append(
                self._gl.pyrender.Node(mesh=self._meshes[class_id], name=f"part-{class_id}-copy-{len(pool) + 1}")
            )
        node = pool[copy - 1]
        self._scene.add_node(node)
        self._copies_in_scene.append(node)
        return node

    def _set_lights(self, lighting: LightingDraw, center: np.ndarray, radius: float) -> None:
        if lighting.preset != self._active_preset:
            wanted, current = self._lights[lighting.preset], self._lights.get(self._active_preset, [])
            for node in current:
                if node not in wanted:
                    self._scene.remove_node(node)
            for node in wanted:
                if node not in current:
                    self._scene.add_node(node)
            self._active_preset = lighting.preset
        self._scene.ambient_light = np.full(3, lighting.ambient)
        for node, light in zip(self._lights[lighting.preset], lighting.lights, strict=True):
            towards = direction(light.azimuth_deg, light.elevation_deg)
            if light.kind == "spot":  # irradiance at the centre stays ``intensity`` whatever the scene size
                distance = light.distance * radius
                node.light.intensity = light.intensity * distance**2
                self._scene.set_pose(node, look_at(center + distance * towards, center))
            else:
                node.light.intensity = light.intensity
                self._scene.set_pose(node, look_at(center + towards, center))
            node.light.color = np.asarray(light.color)

    def _colour_flags(self, lighting: LightingDraw) -> int:
        flags = self._gl.pyrender.RenderFlags.NONE
        if any(light.shadows for light in lighting.lights):
            flags |= self._gl.pyrender.RenderFlags.SHADOWS_DIRECTIONAL  # only the sun: one shadowed light
        return flags

    def _unoccluded_pixels(self, draw: SceneDraw, view: Mapping[str, Any], stats: labels.InstanceStats) -> list[int]:
        """Pixels each object covers alone: its visible pixels, unless another object's projection overlaps it.

        Those get "alone" passes, but objects whose projections are disjoint cannot hide each other and share one
        pass (a greedy colouring of the overlap graph): usually 1-2 passes for 4 objects instead of 4. Projected
        hull boxes are conservative while the hull is in front of the camera; the floor never hides a resting
        object (it is below them, and culled from underneath).
        """
        result = [int(p) for p in stats.pixels[1:]]
        if len(result) == 1:
            return result
        boxes = [self._hull_box(hull, view) for hull in view["hulls"]]

        def overlap(i: int, j: int) -> bool:
            return boxes[i] is None or boxes[j] is None or labels.boxes_overlap(boxes[i], boxes[j])

        others = [[j for j in range(len(result)) if j != i] for i in range(len(result))]
        passes: list[list[int]] = []
        for i, visible in enumerate(result):
            if visible < self.config.min_visible_pixels or not any(overlap(i, j) for j in others[i]):
                continue  # dropped anyway, or exact already
            group = next((g for g in passes if not any(overlap(i, j) for j in g)), None)
            if group is None:
                passes.append([i])
            else:
                group.append(i)
        for group in passes:
            ids = self._offscreen.ids(self._scene, {self._object_nodes[i]: i + 1 for i in group})
            alone = np.bincount(ids.ravel(), minlength=len(result) + 1)
            for i in group:
                result[i] = int(alone[i + 1])
        return result

    def _hull_box(self, hull: np.ndarray, view: Mapping[str, Any]) -> tuple[int, int, int, int] | None:
        """Projected box of a hull; None (unknown) when part of it is behind the near plane, where projection is not
        conservative; an empty box (-1, ...) that overlaps nothing when it is wholly outside the image."""
        uv, depth = labels.project_points(
            hull, view["pose"], self.config.yfov_deg, self.config.width, self.config.height
        )
        if depth.min() <= view["znear"]:
            return None
        box = labels.points_box(uv, self.config.width, self.config.height)
        return (-1, -1, -1, -1) if box is None else box

    def _hidden_reason(self, draw: SceneDraw, stats: labels.InstanceStats, unoccluded: Sequence[int]) -> str:
        visible = int(stats.pixels[1])
        fraction = visible / unoccluded[0] if unoccluded[0] else 0.0
        return (
            f"primary {draw.objects[0].name!r} barely visible: {visible} px (min {self.config.min_visible_pixels}), "
            f"{fraction:.2f} of its unoccluded area (min {self.config.min_visible_fraction})"
        )

    def _load(self, name: str) -> Image.Image:
        image = self._backgrounds.get(name)
        if image is None:
            if len(self._backgrounds) >= _BACKGROUND_CACHE_SIZE:
                self._backgrounds.pop(next(iter(self._backgrounds)))
            with Image.open(resolve_background_dir(self.config.background_dir) / name) as source:
                image = self._backgrounds[name] = source.convert("RGB")
        return image

    def _meta(
        self,
        draw: SceneDraw,
        view: Mapping[str, Any],
        stats: labels.InstanceStats,
        unoccluded: Sequence[int],
        boxes: Sequence[Box | None],
    ) -> dict[str, Any]:
        meta = draw.to_dict()
        meta["camera"]["pose"] = view["pose"].tolist()
        meta["camera"]["distance"] = view["distance"]
        meta["camera"]["yfov_deg"] = self.config.yfov_deg
        for obj, record, visible, alone, box in zip(
            draw.objects, meta["objects"], stats.pixels[1:], unoccluded, boxes, strict=True
        ):
            record["visible_pixels"] = int(visible)
            record["unoccluded_pixels"] = int(alone)
            record["labelled"] = box is not None
            record["view_area_ratio"] = round(
                view_area_ratio(self.geometry[obj.class_id], obj.transform, view["eye"]), 4
            )
        meta["platform"] = self._gl.PLATFORM
        return meta

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[name] += time.perf_counter() - start
