"""Build the shipped industrial background textures (JPEG) that image backgrounds and domain-shifted test sets use.

Run ``python -m include.cad.build_backgrounds [OUT_DIR]`` (default: ``include/cad/backgrounds``). Every texture is
procedural (numpy + Pillow only) from a fixed per-texture seed, so the pixels are the same on every run; the JPEG
bytes are too as long as Pillow's libjpeg is the same.

They are stand-ins for photographs of where parts lie in a plant: floors, plates, pallets, boxes, benches and racks.
None of them is ever used for training renders by default, which is what makes them a held-out domain.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from include.cad.cli import build_command

DEFAULT_OUT_DIR = Path(__file__).parent / "backgrounds"
SIZE = 512
# Quality 80 with 4:2:0 chroma keeps each file around 30-110 kB: the set stays well under 1 MB in git.
JPEG_QUALITY = 80

Texture = Callable[[np.random.Generator, int], Image.Image]


# ---------------------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------------------


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a random ``cells`` x ``cells`` grid upsampled bicubically."""
    grid = rng.random((cells, cells)).astype(np.float32)
    smooth = Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(smooth), 0.0, 1.0)


def _fbm(rng: np.random.Generator, size: int, octaves: Sequence[int], falloff: float = 0.55) -> np.ndarray:
    """Fractal noise in [0, 1]: octaves of value noise, each finer one weaker by ``falloff``."""
    total = np.zeros((size, size), dtype=np.float32)
    weight, weights = 1.0, 0.0
    for cells in octaves:
        total += weight * _value_noise(rng, size, cells)
        weights += weight
        weight *= falloff
    total /= weights
    lo, hi = total.min(), total.max()
    return (total - lo) / max(hi - lo, 1e-6)


def _tint(value: np.ndarray, low: Sequence[float], high: Sequence[float]) -> np.ndarray:
    """Map a [0, 1] field to colours between ``low`` and ``high`` (sRGB 0..255), as float HxWx3."""
    low_, high_ = np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32)
    return low_ + value[..., None] * (high_ - low_)


def _to_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), "RGB")


def _shade(image: Image.Image, factor: np.ndarray) -> Image.Image:
    return _to_image(np.asarray(image, dtype=np.float32) * factor[..., None])


# ---------------------------------------------------------------------------------------------------------------
# Textures
# ---------------------------------------------------------------------------------------------------------------


def concrete_floor(rng: np.random.Generator, size: int) -> Image.Image:
    """Grey, mottled concrete with aggregate speckles, saw-cut expansion joints and a few hairline cracks."""
    mottle = _fbm(rng, size, (4, 8, 16, 48))
    pixels = _tint(mottle, (118, 116, 110), (176, 173, 166))
    speckle = rng.random((size, size)) < 0.02
    pixels[speckle] *= rng.uniform(0.6, 1.2, size=(int(speckle.sum()), 1))
    image = _to_image(pixels)
    draw = ImageDraw.Draw(image)
    joint = int(rng.integers(size // 4, size // 2))
    for offset in range(joint, size, int(size * 0.6)):
        draw.line([(offset, 0), (offset, size)], fill=(80, 79, 76), width=3)
        draw.line([(0, offset), (size, offset)], fill=(80, 79, 76), width=3)
    for _ in range(3):
        point = rng.uniform(0, size, size=2)
        path = [tuple(point)]
        heading = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(15, 40))):
            heading += rng.normal(0, 0.5)
            point = point + 8 * np.array([np.cos(heading), np.sin(heading)])
            path.append(tuple(point))
        draw.line(path, fill=(92, 90, 86), width=1)
    return image


def diamond_plate(rng: np.random.Generator, size: int) -> Image.Image:
    """Brushed steel checker plate: raised lozenges in alternating directions, lit from the top left."""
    # Brushing: random per-row brightness stretched along x, over a faint large-scale unevenness.
    streaks = Image.fromarray((rng.random((size, 8)) * 255).astype(np.uint8))
    streaks = np.asarray(streaks.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    brushed = 0.5 * _value_noise(rng, size, 6) + 0.5 * streaks
    pixels = _tint(brushed, (120, 124, 128), (170, 174, 178))
    height = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(height)
    pitch, length, width = 32, 11, 3
    for row, y in enumerate(range(-pitch, size + pitch, pitch // 2)):
        for x in range(-pitch, size + pitch, pitch):
            cx = x + (pitch // 2 if row % 2 else 0)
            direction = 1 if (row + x // pitch) % 2 else -1
            dx, dy = length * 0.7071, direction * length * 0.7071
            nx, ny = -dy / length * width, dx / length * width
            draw.polygon([(cx - dx, y - dy), (cx + nx, y + ny), (cx + dx, y + dy), (cx - nx, y - ny)], fill=255)
    bump = np.asarray(height.filter(ImageFilter.GaussianBlur(1.2)), dtype=np.float32) / 255.0
    gy, gx = np.gradient(bump)
    light = 1.0 + 2.2 * (-gx - gy)  # a slope facing the top-left light is brighter
    return _to_image(pixels * np.clip(light, 0.55, 1.5)[..., None])


def wooden_pallet(rng: np.random.Generator, size: int) -> Image.Image:
    """Top deck of a pine pallet: boards with grain, knots and nails, dark gaps and the floor between them."""
    image = Image.new("RGB", (size, size), (48, 44, 40))
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    top = int(rng.integers(0, 20))
    while top < size:
        board = int(rng.integers(70, 110))
        warp = _value_noise(rng, size, 5) * 18.0
        grain = 0.5 + 0.5 * np.sin((y + warp) * rng.uniform(0.35, 0.6) + _value_noise(rng, size, 24) * 3.0)
        base = rng.uniform(0.85, 1.1)
        pixels = _tint(grain, (150 * base, 112 * base, 70 * base), (206 * base, 170 * base, 120 * base))
        for _ in range(int(rng.integers(0, 3))):
            kx, ky = rng.uniform(0, size), rng.uniform(top, top + board)
            knot = np.exp(-(((x - kx) / 9.0) ** 2 + ((y - ky) / 6.0) ** 2))
            pixels *= (1.0 - 0.55 * knot)[..., None]
        strip = _to_image(pixels).crop((0, top, size, min(top + board, size)))
        image.paste(strip, (0, top))
        draw = ImageDraw.Draw(image)
        for nail_x in (size * 0.12, size * 0.5, size * 0.88):
            for nail_y in (top + board * 0.3, top + board * 0.7):
                draw.ellipse([nail_x - 3, nail_y - 3, nail_x + 3, nail_y + 3], fill=(70, 70, 72))
        top += board + int(rng.integers(8, 22))
    return image


def cardboard(rng: np.random.Generator, size: int) -> Image.Image:
    """Corrugated shipping carton: kraft brown, flute ridges, a flap seam, packing tape and printed handling marks."""
    fibre = _fbm(rng, size, (8, 32, 128), falloff=0.7)
    flutes = 0.5 + 0.5 * np.sin(np.arange(size, dtype=np.float32) * (2 * np.pi / 7.0))
    pixels = _tint(0.7 * fibre + 0.3 * flutes[None, :], (164, 124, 80), (200, 160, 112))
    image = _to_image(pixels)
    draw = ImageDraw.Draw(image)
    seam = int(rng.integers(size // 3, 2 * size // 3))
    draw.line([(0, seam), (size, seam)], fill=(120, 88, 54), width=2)
    tape = (205, 185, 140)
    draw.rectangle([size * 0.38, 0, size * 0.62, size], fill=tape)
    draw.line([(size * 0.38, 0), (size * 0.38, size)], fill=(170, 150, 110), width=1)
    ink = (40, 36, 34)
    for cx, cy in ((size * 0.15, size * 0.2), (size * 0.82, size * 0.75)):
        for dx in (-14, 14):  # "this way up" arrows
            draw.rectangle([cx + dx - 3, cy - 10, cx + dx + 3, cy + 18], fill=ink)
            draw.polygon([(cx + dx - 10, cy - 8), (cx + dx, cy - 22), (cx + dx + 10, cy - 8)], fill=ink)
    for row in range(4):  # a printed label block
        y0 = size * 0.8 + row * 12
        draw.rectangle([size * 0.08, y0, size * 0.08 + rng.integers(60, 140), y0 + 6], fill=ink)
    return image


def painted_workbench(rng: np.random.Generator, size: int) -> Image.Image:
    """A machine-green painted steel bench top, worn to bare metal in places, with scratches and oil stains."""
    paint = _fbm(rng, size, (4, 16, 64), falloff=0.5)
    pixels = _tint(paint, (42, 86, 62), (64, 116, 86))
    wear = _fbm(rng, size, (3, 9, 27)) > 0.78
    bare = _tint(_value_noise(rng, size, 40), (140, 142, 144), (180, 182, 184))
    pixels[wear] = bare[wear]
    for _ in range(4):
        stain = _fbm(rng, size, (2, 6, 18))
        cx, cy, radius = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(20, 60)
        y, x = np.mgrid[0:size, 0:size]
        mask = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2)) * (0.4 + 0.6 * stain)
        pixels *= (1.0 - 0.55 * np.clip(mask, 0, 1))[..., None]
    image = _to_image(pixels)
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x0, y0 = rng.uniform(0, size, size=2)
        angle, length = rng.uniform(0, np.pi), rng.uniform(10, 90)
        colour = tuple(int(c) for c in rng.integers(120, 190, size=3))
        draw.line([(x0, y0), (x0 + length * np.cos(angle), y0 + length * np.sin(angle))], fill=colour, width=1)
    return image


def shelving_clutter(rng: np.random.Generator, size: int) -> Image.Image:
    """Pallet racking seen from the front: blue uprights, orange beams, boxes, crates and bins on the shelves."""
    image = _to_image(_tint(_fbm(rng, size, (4, 16)), (28, 30, 34), (54, 56, 60)))
    draw = ImageDraw.Draw(image)
    beams = [int(v) for v in np.linspace(size * 0.12, size * 0.95, 4)]
    uprights = [0, int(size * 0.48), size - 14]
    for shelf_top, shelf_bottom in zip([0, *beams[:-1]], beams, strict=True):
        x = int(rng.integers(14, 30))
        while x < size - 30:
            w = int(rng.integers(40, 120))
            h = int(rng.integers(30, max(31, shelf_bottom - shelf_top - 12)))
            kind = rng.integers(3)
            colour = (
                tuple(int(c) for c in rng.integers([150, 110, 70], [200, 150, 100]))  # carton
                if kind == 0
                else tuple(int(c) for c in rng.choice([[30, 80, 160], [200, 60, 30], [230, 180, 30], [90, 90, 90]]))
            )
            top = shelf_bottom - h
            draw.rectangle([x, top, x + w, shelf_bottom], fill=colour, outline=(20, 20, 20))
            if kind == 1:  # a bin's label slot
                draw.rectangle([x + w * 0.3, top + 6, x + w * 0.7, top + 16], fill=(235, 235, 230))
            x += w + int(rng.integers(4, 24))
    for y in beams:
        draw.rectangle([0, y, size, y + 12], fill=(230, 110, 20), outline=(120, 60, 10))
    for x in uprights:
        draw.rectangle([x, 0, x + 14, size], fill=(30, 70, 150), outline=(15, 35, 80))
        for y in range(6, size, 18):
            draw.rectangle([x + 5, y, x + 9, y + 8], fill=(12, 24, 50))
    return image


def rubber_mat(rng: np.random.Generator, size: int) -> Image.Image:
    """A black anti-fatigue mat: a grid of drainage holes showing a lighter floor, with dust."""
    dust = _fbm(rng, size, (6, 24, 96))
    pixels = _tint(dust, (22, 22, 24), (52, 52, 54))
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    pitch = 24.0
    u, v = (x % pitch) - pitch / 2, ((y + np.where((x // pitch) % 2 == 1, pitch / 2, 0)) % pitch) - pitch / 2
    hole = (u / 6.5) ** 2 + (v / 4.5) ** 2 <= 1.0
    pixels[hole] = _tint(dust, (90, 88, 84), (120, 118, 112))[hole]
    rim = ((u / 7.5) ** 2 + (v / 5.5) ** 2 <= 1.0) & ~hole
    pixels[rim] *= 0.55
    return _to_image(pixels)


def epoxy_floor_marking(rng: np.random.Generator, size: int) -> Image.Image:
    """A grey-green epoxy shop floor with a yellow/black hazard border and a yellow walkway line, scuffed."""
    pixels = _tint(_fbm(rng, size, (3, 12, 48), falloff=0.45), (96, 112, 104), (128, 144, 134))
    image = _to_image(pixels)
    draw = ImageDraw.Draw(image)
    band = int(size * 0.18)
    stripe = 28
    for k in range(-band, size + 2 * band, stripe):
        colour = (30, 30, 28) if (k // stripe) % 2 else (228, 186, 24)
        top, bottom = size - band, size  # stripes slant at 45 degrees: each bottom edge is `band` to the right
        draw.polygon([(k, top), (k + stripe, top), (k + stripe + band, bottom), (k + band, bottom)], fill=colour)
    line_x = int(rng.integers(size // 4, size // 2))
    draw.rectangle([line_x, 0, line_x + 22, size - band], fill=(224, 184, 30))
    scuff = _fbm(rng, size, (8, 32, 128)) > 0.72
    out = np.asarray(image, dtype=np.float32)
    out[scuff] *= 0.82
    return _to_image(out)


TEXTURES: dict[str, Texture] = {
    "concrete_floor": concrete_floor,
    "diamond_plate": diamond_plate,
    "wooden_pallet": wooden_pallet,
    "cardboard": cardboard,
    "painted_workbench": painted_workbench,
    "shelving_clutter": shelving_clutter,
    "rubber_mat": rubber_mat,
    "epoxy_floor_marking": epoxy_floor_marking,
}


def texture_seed(name: str) -> int:
    # crc32 of the name, not hash(): Python salts str hashes per process.
    return zlib.crc32(name.encode())


def render_texture(name: str, size: int = SIZE) -> Image.Image:
    """One texture as an RGB image; the same name and size always give the same pixels."""
    return TEXTURES[name](np.random.default_rng(texture_seed(name)), size).convert("RGB")


def file_name(name: str) -> str:
    return f"{name}.jpg"


def build(out_dir: Path = DEFAULT_OUT_DIR, size: int = SIZE) -> list[Path]:
    """Write every texture as ``<name>.jpg`` into ``out_dir``; returns the paths in a stable order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in TEXTURES:
        path = out_dir / file_name(name)
        # optimize: smaller Huffman tables at no quality cost; no EXIF or timestamps are written.
        render_texture(name, size).save(path, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        paths.append(path)
    return paths


def main(argv: Sequence[str] = ()) -> None:
    build_command(build, DEFAULT_OUT_DIR, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
