"""A domain-shifted test set: the render config and seed to evaluate a detector on, never its training renders.

``domain_shift(train_render)`` turns the training ``RenderConfig`` (as a dict, possibly partial) into the test
one, plus a readable list of what changed. The rules, applied in this order, each deterministic:

1. Lighting: the presets training left out, if any; else all of them, unchanged.
2. Shadows, only when the test lighting includes ``warehouse`` (the one preset that casts them): training without
   warehouse light -> shadows on; training with it but shadows off -> on; with shadows on -> the other
   ``shadow_quality`` (soft penumbrae instead of hard edges, or the reverse).
3. Backgrounds: the kinds training left out; an ``image`` kind reads the shipped industrial textures
   (``include/cad/backgrounds``). Training with every kind -> ``image`` only, from the shipped textures when
   training read another directory; when training read the shipped textures itself nothing is left to hold out,
   and the change list says so.
4. Materials: off in training -> on with every preset; on with some presets -> the left-out presets; on with every
   preset -> unchanged (nothing held out).
5. Camera: elevation and zoom ranges widened (more top-down and grazing views, closer and farther objects), so
   the test also covers views training never drew. Everything else (size, objects per image, pose filter, roll,
   visibility thresholds) is kept: those define the task, not the domain.

``shifted_seed`` moves the dataset seed too: with the training seed, every test item would reuse its training
twin's pose and camera draws (the randomizer streams hash the seed, not the config).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from include.rendering.randomizers import (
    BACKGROUND_KINDS,
    LIGHTING_PRESETS,
    MATERIAL_PRESETS,
    SHADOW_QUALITIES,
    RenderConfig,
    resolve_background_dir,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Relative to the project root (the renderer resolves it so, from any cwd): the path goes into the dataset spec,
# and so into its version, which must not depend on where the repo is checked out.
SHIPPED_BACKGROUNDS = Path("include/cad/backgrounds")

# Camera widening. Elevation stays in 5..85 degrees unless training already went further: below 5 the camera
# grazes the floor (flat parts are all edge-on), above 85 the look-at maths degenerates towards the pole.
ELEVATION_WIDEN_DEG = 10.0
ELEVATION_LIMITS_DEG = (5.0, 85.0)
# Zoom is the camera distance over the distance at which the primary just fits: below 1.0 it no longer fits the
# frame, so the near end stops at 1.0 unless training already went closer. 1.3x farther shrinks objects by ~25%.
ZOOM_NEAR_FACTOR = 0.85
ZOOM_NEAR_LIMIT = 1.0
ZOOM_FAR_FACTOR = 1.3


def _complement(used: tuple[str, ...], every: tuple[str, ...]) -> list[str]:
    return [name for name in every if name not in used]


def _same_dir(a: str | None, b: Path) -> bool:
    return bool(a) and resolve_background_dir(a).resolve() == resolve_background_dir(b).resolve()


def _widen(lo: float, hi: float, below: float, above: float, floor: float, ceiling: float) -> tuple[float, float]:
    """(lo - below, hi + above), but never past floor/ceiling unless the input already was."""
    return min(lo, max(lo - below, floor)), max(hi, min(hi + above, ceiling))


def domain_shift(
    train_render: Mapping[str, Any], backgrounds_dir: str | Path = SHIPPED_BACKGROUNDS
) -> tuple[dict[str, Any], list[str]]:
    """The test RenderConfig dict for a training RenderConfig dict, and what was shifted (one line per change).

    ``train_render`` may be partial (defaults fill the rest) and is validated; so is the result. ``backgrounds_dir``
    is where held-out image backgrounds come from (default: the shipped textures, relative to the project root).
    """
    train = RenderConfig.from_dict(dict(train_render))
    test = train.to_dict()
    shipped = Path(backgrounds_dir)
    changes: list[str] = []

    held_out_lighting = _complement(train.lighting, LIGHTING_PRESETS)
    if held_out_lighting:
        test["lighting"] = held_out_lighting
        changes.append(f"lighting: {held_out_lighting} (training used {list(train.lighting)})")
    else:
        changes.append(f"lighting: unchanged (training already used every preset {list(LIGHTING_PRESETS)})")
    if "warehouse" in test["lighting"]:
        if "warehouse" not in train.lighting or not train.shadows:
            test["shadows"] = True
            changes.append("shadows: on (training rendered no shadows)")
        else:
            other = next(q for q in SHADOW_QUALITIES if q != train.shadow_quality)
            test["shadow_quality"] = other
            changes.append(f"shadow_quality: {other} (training: {train.shadow_quality})")

    held_out_kinds = _complement(train.backgrounds, BACKGROUND_KINDS)
    if held_out_kinds:
        test["backgrounds"] = held_out_kinds
        if "image" in held_out_kinds:
            test["background_dir"] = str(shipped)
        changes.append(f"backgrounds: {held_out_kinds} (training used {list(train.backgrounds)})")
    elif not _same_dir(train.background_dir, shipped):
        test["backgrounds"] = ["image"]
        test["background_dir"] = str(shipped)
        changes.append(f"backgrounds: ['image'] from {shipped} (training images came from {train.background_dir})")
    else:
        changes.append("backgrounds: unchanged (training already used every kind and the shipped textures)")

    if not train.materials:
        test["materials"] = True
        test["material_presets"] = list(MATERIAL_PRESETS)
        changes.append(f"materials: on, presets {list(MATERIAL_PRESETS)} (training: plain grey)")
    else:
        held_out_presets = _complement(train.material_presets, tuple(MATERIAL_PRESETS))
        if held_out_presets:
            test["material_presets"] = held_out_presets
            changes.append(f"material_presets: {held_out_presets} (training used {list(train.material_presets)})")
        else:
            changes.append("materials: unchanged (training already used every preset)")

    elevation = _widen(*train.elevation_range_deg, ELEVATION_WIDEN_DEG, ELEVATION_WIDEN_DEG, *ELEVATION_LIMITS_DEG)
    if elevation != train.elevation_range_deg:
        test["elevation_range_deg"] = list(elevation)
        changes.append(f"elevation_range_deg: {list(elevation)} (training: {list(train.elevation_range_deg)})")
    lo, hi = train.zoom_range
    zoom = _widen(lo, hi, lo * (1 - ZOOM_NEAR_FACTOR), hi * (ZOOM_FAR_FACTOR - 1), ZOOM_NEAR_LIMIT, 1000.0)
    zoom = (round(zoom[0], 6), round(zoom[1], 6))  # readable in the change list and in dataset specs
    if zoom != train.zoom_range:
        test["zoom_range"] = list(zoom)
        changes.append(f"zoom_range: {list(zoom)} (training: {list(train.zoom_range)})")

    return RenderConfig.from_dict(test).to_dict(), changes


def shifted_seed(seed: int) -> int:
    """The test set's dataset seed for a training seed: a hash, so it lands on no small seed a user would pick.

    Item seeds hash (seed, class, index), so a different dataset seed gives different poses, cameras and draws for
    every test image; 62 bits keep it a plain non-negative int in JSON and in the randomizers' 64-bit mask.
    """
    digest = hashlib.sha256(f"domain-shift:{int(seed)}".encode()).digest()
    shifted = int.from_bytes(digest[:8], "big") >> 2
    return shifted if shifted != seed else shifted ^ 1
