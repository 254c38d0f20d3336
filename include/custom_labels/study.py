"""Augmentation study: a matrix of randomizer toggles -> one rendered dataset and one trained version per variant.

The seed's team ran 15 manual iterations over augmentation combinations; here each combination is a variant
whose render config is the base config with the toggles applied, so every variant differs from the others only
in what it toggles, and they are all scored on the same test set.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

from include import s3uri

# What each toggle does to a RenderConfig when it is off; on keeps the base config's value.
# The camera's azimuth is always drawn over 360 degrees (objects are seen from every side), so "rotation" is
# the in-plane camera roll.
TOGGLES_OFF: Mapping[str, dict[str, Any]] = {
    "zoom": {"zoom_range": [1.6, 1.6]},
    "rotation": {"roll": False},
    "materials": {"materials": False},
    "lighting": {"lighting": ["studio"], "shadows": False},
    "pose_filter": {"pose_filter": False},
    "multi_object": {"objects_per_image": [1, 1]},
    "backgrounds": {"backgrounds": ["solid"]},
}
# multi_object on means several parts per image, which the base config (one part) does not have.
TOGGLES_ON: Mapping[str, dict[str, Any]] = {"multi_object": {"objects_per_image": [1, 3]}}
MAX_VARIANTS = 64
NAME = re.compile(r"^[a-z0-9-]+$")


def variant_render(base: Mapping[str, Any], toggles: Mapping[str, bool]) -> dict[str, Any]:
    """The base render overrides with each toggle applied (validated as a RenderConfig)."""
    from include.rendering.randomizers import RenderConfig

    render = dict(base)
    for toggle, on in sorted(toggles.items()):
        if toggle not in TOGGLES_OFF:
            raise ValueError(f"unknown toggle {toggle!r}; known: {sorted(TOGGLES_OFF)}")
        if not isinstance(on, bool):
            raise ValueError(f"toggle {toggle} must be true or false, got {on!r}")
        render |= TOGGLES_ON.get(toggle, {}) if on else TOGGLES_OFF[toggle]
    return RenderConfig.from_dict(render).to_dict()


def variant_name(toggles: Mapping[str, bool]) -> str:
    """Short, stable and readable: the toggles that are off, e.g. ``no-materials-no-zoom`` (``all-on`` if none)."""
    off = [t.replace("_", "") for t, on in sorted(toggles.items()) if not on]
    on = [t.replace("_", "") for t, v in sorted(toggles.items()) if v and t in TOGGLES_ON]
    parts = [f"no-{t}" for t in off] + [f"with-{t}" for t in on]
    name = "-".join(parts) or "all-on"
    if len(name) > 60:  # project names stay readable; the hash keeps them unique
        name = f"{name[:48]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return name


def plan_variants(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the ``matrix`` param (toggle -> list of values), as render params per variant."""
    matrix = params.get("matrix") or {}
    if not isinstance(matrix, Mapping) or not matrix:
        raise ValueError("matrix must map toggles to lists of values, e.g. {'materials': [true, false]}")
    for toggle, values in matrix.items():
        if toggle not in TOGGLES_OFF:
            raise ValueError(f"unknown toggle {toggle!r}; known: {sorted(TOGGLES_OFF)}")
        if not isinstance(values, list) or not values or len(set(map(json.dumps, values))) != len(values):
            raise ValueError(f"matrix[{toggle!r}] must be a non-empty list of distinct values, got {values!r}")
    toggles = sorted(matrix)
    combos = list(itertools.product(*(matrix[t] for t in toggles)))
    if len(combos) > MAX_VARIANTS:
        raise ValueError(f"{len(combos)} variants; at most {MAX_VARIANTS} per study (narrow the matrix)")
    base = dict(params.get("base_render") or {})
    if params.get("resolution"):
        base.setdefault("width", params["resolution"])
        base.setdefault("height", params["resolution"])
    study = params["study_name"]
    if not NAME.match(study):
        raise ValueError(f"study_name {study!r} must be lowercase letters, digits and '-'")
    variants = []
    for combo in combos:
        chosen = dict(zip(toggles, combo, strict=True))
        name = variant_name(chosen)
        variants.append(
            {
                "variant": name,
                "toggles": chosen,
                "project_name": f"{study}-{name}",
                "render_params": {
                    "bucket": params["bucket"],
                    "prefix": params.get("dataset_prefix", "datasets"),
                    "dataset_name": f"{study}-{name}",
                    "catalog": params["catalog"],
                    "classes": list(params.get("classes") or []),
                    "images_per_class": int(params["images_per_class"]),
                    "seed": int(params.get("seed", 0)),
                    "render": variant_render(base, chosen),
                    "creation_date": params.get("creation_date", "2026-01-01T00:00:00"),
                    "shard_size": int(params.get("shard_size", 50)),
                },
            }
        )
    return variants


def base_dataset(params: Mapping[str, Any]) -> dict[str, Any]:
    """The study's reference training spec (every toggle on), which the default shifted test set is derived from."""
    toggles = dict.fromkeys(params["matrix"], True)
    render = variant_render({**(params.get("base_render") or {})}, toggles)
    if params.get("resolution"):
        render |= {"width": params["resolution"], "height": params["resolution"]}
    return {
        "manifest": f"study:{params['study_name']}",
        "prefix": s3uri.join(params["bucket"], params.get("dataset_prefix", "datasets")),
        "version": "study",
        "spec": {
            "name": params["study_name"],
            "catalog": params["catalog"],
            "classes": list(params.get("classes") or []),
            "seed": int(params.get("seed", 0)),
            "render": render,
            "creation_date": params.get("creation_date", "2026-01-01T00:00:00"),
        },
    }


def rank(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Variants by F1 (best first), ties by name; a variant whose training failed ranks last with F1 None."""
    return sorted(results, key=lambda r: (r.get("f1") is None, -(r.get("f1") or 0.0), r["variant"]))
