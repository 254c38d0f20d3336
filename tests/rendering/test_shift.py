"""The domain-shifted test set: held-out complements, a real shift even for an all-in training config, valid and
deterministic configs, seeds that never meet the training set's, and the shipped background textures."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from include.cad import build_backgrounds
from include.rendering import randomizers as rz
from include.rendering.dataset import DatasetSpec, item_seed, items, render_items
from include.rendering.shift import SHIPPED_BACKGROUNDS, domain_shift, shifted_seed

CATALOG = "include/cad/gearbox/catalog.yaml"
ALL_IN = {
    "lighting": list(rz.LIGHTING_PRESETS),
    "shadows": True,
    "shadow_quality": "fast",
    "backgrounds": list(rz.BACKGROUND_KINDS),
    "materials": True,
    "material_presets": list(rz.MATERIAL_PRESETS),
}


def _disjoint(test: list[str], train: list[str]) -> bool:
    return bool(test) and not set(test) & set(train)


def test_default_training_config_gets_image_backgrounds_from_the_shipped_textures() -> None:
    train = rz.RenderConfig().to_dict()
    test, changes = domain_shift({})
    assert test["backgrounds"] == ["image"]
    assert _disjoint(test["backgrounds"], train["backgrounds"])
    # Relative to the project root: the path is part of the dataset version, which must not depend on the checkout.
    assert test["background_dir"] == "include/cad/backgrounds" == str(SHIPPED_BACKGROUNDS)
    assert rz.resolve_background_dir(test["background_dir"]).is_dir()
    # Nothing held out in lighting or materials: shadows, camera and backgrounds carry the shift.
    assert test["lighting"] == train["lighting"] and test["material_presets"] == train["material_presets"]
    assert test["shadow_quality"] == "soft"
    assert any(line.startswith("backgrounds:") and "image" in line for line in changes)
    assert rz.RenderConfig.from_dict(test).to_dict() == test


def test_left_out_presets_and_kinds_are_the_test_set() -> None:
    train = {
        "width": 128,
        "height": 128,
        "lighting": ["studio"],
        "backgrounds": ["solid"],
        "materials": False,
        "shadows": False,
    }
    test, changes = domain_shift(train)
    assert test["lighting"] == ["warehouse"]
    assert test["shadows"] is True  # the held-out preset renders with its shadows
    assert test["backgrounds"] == ["gradient", "noise", "image"]
    assert _disjoint(test["backgrounds"], train["backgrounds"])
    assert test["materials"] is True and test["material_presets"] == list(rz.MATERIAL_PRESETS)
    assert (test["width"], test["height"]) == (128, 128)  # the task (image size) is not part of the domain
    assert len(changes) >= 5


def test_left_out_material_presets_are_disjoint_from_training() -> None:
    train = {"material_presets": ["steel", "aluminium", "painted"], "backgrounds": ["solid", "image"]}
    with pytest.raises(ValueError, match="background_dir"):
        domain_shift(train)  # the training config itself is validated
    train["background_dir"] = "/somewhere/photos"
    test, _ = domain_shift(train)
    assert test["material_presets"] == ["brass", "copper", "cast_iron"]
    assert _disjoint(test["material_presets"], train["material_presets"])
    assert _disjoint(test["backgrounds"], train["backgrounds"])
    assert "image" not in test["backgrounds"]  # the held-out kinds need no directory


def test_all_in_training_config_still_gets_a_real_shift(tmp_path: Path) -> None:
    train = rz.RenderConfig.from_dict({**ALL_IN, "background_dir": str(tmp_path)}).to_dict()
    test, changes = domain_shift(train)
    assert test != train
    assert test["backgrounds"] == ["image"] and test["background_dir"] == str(SHIPPED_BACKGROUNDS)
    assert test["shadows"] and test["shadow_quality"] == "soft"
    lo, hi = test["elevation_range_deg"]
    assert lo < train["elevation_range_deg"][0] and hi > train["elevation_range_deg"][1]
    lo, hi = test["zoom_range"]
    assert lo < train["zoom_range"][0] and hi > train["zoom_range"][1]
    assert any("materials: unchanged" in line for line in changes)


def test_training_on_the_shipped_textures_says_so_and_shifts_the_rest() -> None:
    train = {**ALL_IN, "background_dir": str(SHIPPED_BACKGROUNDS), "shadow_quality": "soft"}
    test, changes = domain_shift(train)
    assert test["backgrounds"] == train["backgrounds"]
    assert any("backgrounds: unchanged" in line for line in changes)
    assert test["shadow_quality"] == "fast"
    assert test["elevation_range_deg"] != list(rz.RenderConfig().elevation_range_deg)


def test_camera_widening_respects_the_limits() -> None:
    test, _ = domain_shift({"elevation_range_deg": [2.0, 88.0], "zoom_range": [0.8, 2.0]})
    assert test["elevation_range_deg"] == [2.0, 88.0]  # already beyond 5..85: kept, never narrowed
    assert test["zoom_range"][0] == 0.8 and test["zoom_range"][1] == pytest.approx(2.6)
    test, _ = domain_shift({"elevation_range_deg": [10.0, 70.0], "zoom_range": [1.1, 2.5]})
    assert test["elevation_range_deg"] == [5.0, 80.0]
    assert test["zoom_range"] == [1.0, 3.25]


def test_shift_is_deterministic_and_leaves_its_input_alone() -> None:
    train = {"lighting": ["warehouse"], "material_presets": ["steel"], "roll": False}
    before = copy.deepcopy(train)
    first, second = domain_shift(train), domain_shift(json.loads(json.dumps(train)))
    assert first == second
    assert train == before
    assert json.loads(json.dumps(first[0])) == first[0]  # travels through XCom as JSON
    assert first[0]["roll"] is False


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown RenderConfig fields"):
        domain_shift({"lightning": ["studio"]})


def test_shifted_seed_never_reuses_training_item_seeds() -> None:
    assert shifted_seed(0) == shifted_seed(0) != 0
    assert len({shifted_seed(s) for s in range(100)}) == 100
    for seed in (0, 1, 7):
        test_seed = shifted_seed(seed)
        assert 0 <= test_seed < 2**62
        train = {item_seed(seed, c, i) for c in range(5) for i in range(200)}
        test = {item_seed(test_seed, c, i) for c in range(5) for i in range(200)}
        assert not train & test


def test_shifted_config_renders_from_any_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    render, _ = domain_shift({"width": 96, "height": 96, "lighting": ["studio"], "min_visible_pixels": 50})
    monkeypatch.chdir(tmp_path)  # background_dir must not depend on where the worker runs
    spec = DatasetSpec(catalog=str(Path(__file__).resolve().parents[2] / CATALOG), images_per_class=2, render=render)
    result = render_items(spec.catalog, spec.render, items(spec, [0, 3]), tmp_path / "out", processes=1)
    assert result.rendered >= 2
    names = {build_backgrounds.file_name(n) for n in build_backgrounds.TEXTURES}
    for image in result.images:
        assert image.meta["background"]["kind"] == "image"
        assert image.meta["background"]["file"] in names
        assert image.boxes


# -- the shipped textures -----------------------------------------------------------------------------------------------


def test_shipped_textures_exist_decode_and_stay_small() -> None:
    shipped = rz.resolve_background_dir(SHIPPED_BACKGROUNDS)
    assert build_backgrounds.DEFAULT_OUT_DIR.resolve() == shipped.resolve()
    files = sorted(shipped.glob("*.jpg"))
    assert [p.name for p in files] == sorted(build_backgrounds.file_name(n) for n in build_backgrounds.TEXTURES)
    assert len(files) >= 8
    for path in files:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert image.size == (build_backgrounds.SIZE, build_backgrounds.SIZE)
            pixels = np.asarray(image)
        assert pixels.std() > 8, f"{path.name} is nearly flat"  # a texture, not a solid colour
    sizes = [p.stat().st_size for p in files]
    assert max(sizes) < 150_000 and sum(sizes) < 1_000_000, sizes
    assert rz.background_files(SHIPPED_BACKGROUNDS) == tuple(p.name for p in files)


def test_regenerating_the_textures_gives_byte_identical_files(tmp_path: Path) -> None:
    written = build_backgrounds.build(tmp_path)
    assert len(written) == len(build_backgrounds.TEXTURES)
    for path in written:
        assert path.read_bytes() == (rz.resolve_background_dir(SHIPPED_BACKGROUNDS) / path.name).read_bytes(), (
            f"{path.name} differs from its generator: rerun python -m include.cad.build_backgrounds"
        )


def test_dataset_version_follows_the_background_images(tmp_path: Path) -> None:
    from include.rendering.dataset import dataset_version

    shutil.copytree(rz.resolve_background_dir(SHIPPED_BACKGROUNDS), tmp_path / "bg")
    render = {"backgrounds": ["image"], "background_dir": str(tmp_path / "bg")}
    spec = DatasetSpec(catalog=CATALOG, images_per_class=2, render=render)
    before = dataset_version(spec)
    assert dataset_version(spec) == before
    first = sorted((tmp_path / "bg").glob("*.jpg"))[0]
    first.write_bytes(first.read_bytes() + b"\0")  # an edited texture renders differently: a new version
    assert dataset_version(spec) != before
