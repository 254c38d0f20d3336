"""The values passed between catalog loading, rendering and the dataset writers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trimesh


@dataclass(frozen=True)
class Part:
    """One labelled part: a watertight mesh in metres, centred on its bounding-box centre."""

    class_id: int
    name: str
    mesh: trimesh.Trimesh
    flat: bool = False  # thin plate-like parts: edge-on views are dropped
    source: str = ""  # the file the mesh came from, for error messages


@dataclass(frozen=True)
class Catalog:
    name: str
    parts: tuple[Part, ...]

    @property
    def class_map(self) -> dict[int, str]:
        return {p.class_id: p.name for p in self.parts}

    def part(self, class_id: int) -> Part:
        for p in self.parts:
            if p.class_id == class_id:
                return p
        raise KeyError(f"class_id {class_id} is not in catalog {self.name!r}; known: {sorted(self.class_map)}")


@dataclass(frozen=True)
class Box:
    """A visible-pixel bounding box in image pixels (left/top inclusive, clipped to the image)."""

    class_id: int
    left: int
    top: int
    width: int
    height: int
    visible_pixels: int
    visible_fraction: float  # visible pixels / pixels the object would cover unoccluded
    confidence: float = 1.0


@dataclass
class RenderedImage:
    """One rendered, labelled image. ``file_name`` is relative to the dataset (or shard) directory."""

    file_name: str
    width: int
    height: int
    boxes: list[Box]
    meta: dict[str, Any] = field(default_factory=dict)  # the randomizer draws that produced it, for audits
