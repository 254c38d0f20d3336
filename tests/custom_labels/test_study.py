"""Augmentation-study planning: the toggle matrix becomes variants whose render configs differ only as toggled."""

from __future__ import annotations

import pytest

from include.custom_labels import study
from include.rendering.randomizers import RenderConfig

PARAMS = {
    "bucket": "b",
    "study_name": "s",
    "catalog": "include/cad/gearbox/catalog.yaml",
    "images_per_class": 3,
    "matrix": {"materials": [True, False], "backgrounds": [True, False]},
}


def test_every_combination_is_a_variant_with_a_distinct_name_and_project():
    variants = study.plan_variants(PARAMS)
    assert len(variants) == 4
    assert {v["variant"] for v in variants} == {
        "all-on",
        "no-materials",
        "no-backgrounds",
        "no-backgrounds-no-materials",
    }
    assert len({v["project_name"] for v in variants}) == 4
    assert len({v["render_params"]["dataset_name"] for v in variants}) == 4
    for v in variants:
        RenderConfig.from_dict(v["render_params"]["render"])  # valid
        assert v["render_params"]["images_per_class"] == 3


def test_toggles_change_only_what_they_toggle():
    base = RenderConfig().to_dict()
    off = study.variant_render({}, {"materials": False, "multi_object": True, "rotation": False})
    changed = {k for k in base if base[k] != off[k]}
    assert changed == {"materials", "objects_per_image", "roll"}
    assert off["objects_per_image"] == [1, 3] and off["roll"] is False and off["materials"] is False
    assert study.variant_render({}, dict.fromkeys(study.TOGGLES_OFF, True)) == {
        **base,
        "objects_per_image": [1, 3],
    }


def test_bad_matrices_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="unknown toggle 'blur'"):
        study.plan_variants({**PARAMS, "matrix": {"blur": [True]}})
    with pytest.raises(ValueError, match="distinct"):
        study.plan_variants({**PARAMS, "matrix": {"zoom": [True, True]}})
    with pytest.raises(ValueError, match="true or false"):
        study.plan_variants({**PARAMS, "matrix": {"zoom": ["yes"]}})
    with pytest.raises(ValueError, match="at most"):
        study.plan_variants({**PARAMS, "matrix": {t: [True, False] for t in study.TOGGLES_OFF}})
    with pytest.raises(ValueError, match="matrix must map"):
        study.plan_variants({**PARAMS, "matrix": {}})


def test_ranking_puts_failed_trainings_last():
    rows = [
        {"variant": "b", "f1": 0.5},
        {"variant": "a", "f1": 0.5},
        {"variant": "c", "f1": None},
        {"variant": "d", "f1": 0.9},
    ]
    assert [r["variant"] for r in study.rank(rows)] == ["d", "a", "b", "c"]
