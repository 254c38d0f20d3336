"""The one place that configures OpenGL and imports pyrender.

PyOpenGL picks its platform when it is first imported, so ``PYOPENGL_PLATFORM`` must be set before pyrender (or
anything that imports OpenGL) loads. Everything else in the project gets pyrender from here::

    from include.rendering.gl import pyrender

Importing this module costs about 0.8 s (PyOpenGL, pyrender, trimesh); nothing in ``include.rendering`` imports it
at module import time, so DAG files stay fast to parse.

``Offscreen`` wraps pyrender's ``OffscreenRenderer`` for the two reads the renderer needs (an RGBA colour image and
an instance-id image). It reaches into private attributes of pyrender 0.1.45 (its renderer, platform and shader
program cache) for cheaper reads and a shader cache that works on OSMesa: see ``Offscreen`` and ``_ProgramCache``.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, MutableMapping

import numpy as np

# PyOpenGL fixes its platform on first import. Had something imported it before us with no platform set, it chose
# GLX, and OSMesa would later fail with "'GLXPlatform' object has no attribute 'OSMesa'": say so plainly instead.
if "OpenGL" in sys.modules and "PYOPENGL_PLATFORM" not in os.environ:
    raise ImportError("OpenGL was imported before include.rendering.gl; import pyrender/OpenGL only through it")

# CPU workers have no display and no GPU: OSMesa (llvmpipe) is the default. GPU workers export
# PYOPENGL_PLATFORM=egl (the Dockerfile's gpu-worker target does); whatever is set is honoured.
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

# pyrender 0.1.45 still uses np.infty (removed in numpy 2) in Mesh.bounds, which shadow passes reach.
if not hasattr(np, "infty"):
    np.infty = np.inf

import pyrender  # noqa: E402 - everything OpenGL must follow the platform choice above
from OpenGL import GL  # noqa: E402
from pyrender.shader_program import ShaderProgram, ShaderProgramCache  # noqa: E402

PLATFORM = os.environ["PYOPENGL_PLATFORM"]

# pyrender's mesh.frag filters each shadow lookup with a 3x3 PCF of bilinear 4-tap lookups: 36 texture reads per
# pixel per shadowed light, half of a warehouse colour pass on llvmpipe. "fast" keeps one bilinear 4-tap lookup,
# which cuts the shadow cost about 4x (512 px: 48 -> 28 ms per colour pass; 22 ms without shadows).
_PCF_CALL = "float shadow = PCF(shadow_map, textureSize(shadow_map, 0), light_coords.xy, compare);"
_FAST_CALL = (
    "float shadow = texture2DShadowLerp(shadow_map, vec2(textureSize(shadow_map, 0)), light_coords.xy, compare);"
)


class _FastShadowProgram(ShaderProgram):
    def _load(self, shader_filename: str) -> str:
        text = super()._load(shader_filename)
        if os.path.basename(shader_filename) != "mesh.frag":
            return text
        if _PCF_CALL not in text:
            raise RuntimeError(f"pyrender {pyrender.__version__}: mesh.frag changed; cannot apply fast shadows")
        return text.replace(_PCF_CALL, _FAST_CALL)


class _ProgramCache(ShaderProgramCache):
    """pyrender's shader program cache, with a key that works on OSMesa, and optionally fast shadows.

    pyrender keys its cache on ``OpenGL.contextdata.getContext()``, which on OSMesa is a new ctypes pointer object
    on every call (same hash, identity ``==``): the cache never hits, and every draw call compiles and leaks a
    program: a few ms each from Mesa's disk cache (0.1-0.5 s when it is cold), and ~8 MB of RSS per image. Each
    pyrender renderer has its own cache and context, so the key needs only the shader files and defines.
    """

    def __init__(self, fast_shadows: bool) -> None:
        super().__init__()
        self._program_class = _FastShadowProgram if fast_shadows else ShaderProgram

    def get_program(
        self,
        vertex_shader: str,
        fragment_shader: str,
        geometry_shader: str | None = None,
        defines: dict[str, object] | None = None,
    ) -> ShaderProgram:
        defines = defines or {}
        files = [f for f in (vertex_shader, fragment_shader, geometry_shader) if f is not None]
        key = (tuple(files), tuple(sorted(defines.items())))
        if key not in self._program_cache:
            paths = [os.path.join(self.shader_dir, f) for f in files]
            self._program_cache[key] = self._program_class(*paths, defines=defines)
        return self._program_cache[key]


class StableNode(pyrender.Node):
    """A node with a hash we choose, for lights.

    pyrender keeps lights in a set and hands them to the shader in set order, which for identity hashes depends on
    memory addresses: the float sum over lights could then differ in its last bit from one process to the next.
    Distinct small hashes iterate in the same order every time, so a seed gives the same bytes in any process.
    """

    def __init__(self, key: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._key = key

    def __hash__(self) -> int:
        return self._key


def _destroy_egl_context(platform: object) -> None:
    from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglDestroyContext, eglMakeCurrent

    eglMakeCurrent(platform._egl_display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)
    eglDestroyContext(platform._egl_display, platform._egl_context)
    platform._egl_context = None


class Offscreen:
    """One GL context and pyrender renderer of a fixed size, read back as RGBA or as an id image.

    OSMesa contexts have no framebuffer objects, so pyrender's ``OffscreenRenderer.render`` reads back the colour
    as RGB and the depth as linearised floats on every call. Here the OSMesa path draws with the inner renderer
    and reads just what is needed in one ``glReadPixels``: RGBA (the alpha is the coverage mask: the clear colour is
    transparent) or the red channel of a segmentation pass (the instance id). EGL contexts go through the public
    API with the RGBA flag. OSMesa read times accumulate in ``seconds["readback_rgba"]`` / ``["readback_ids"]``.
    """

    def __init__(
        self, width: int, height: int, shadow_quality: str = "fast", seconds: MutableMapping[str, float] | None = None
    ) -> None:
        self.width, self.height = width, height
        self._osr = pyrender.OffscreenRenderer(width, height)
        self._framebuffers = self._osr._platform.supports_framebuffers()
        self.multisampled = self._framebuffers  # pyrender renders into a 4x MSAA framebuffer when it has one
        self._osr._renderer._program_cache = _ProgramCache(fast_shadows=shadow_quality == "fast")
        self.seconds = defaultdict(float) if seconds is None else seconds

    def rgba(self, scene: pyrender.Scene, flags: int) -> np.ndarray:
        """(H, W, 4) uint8 colour over transparent black, top row first; read-only."""
        if self._framebuffers:
            return self._osr.render(scene, flags | pyrender.RenderFlags.RGBA)[0]
        self._draw(scene, flags)
        return self._read("rgba", GL.GL_RGBA, 4)

    def ids(self, scene: pyrender.Scene, node_ids: Mapping[pyrender.Node, int]) -> np.ndarray:
        """(H, W) uint8 segmentation: ``node_ids[node]`` where that node is nearest, else 0; read-only.

        Nodes mapped to 0 still occlude; nodes left out of ``node_ids`` are not drawn at all.
        """
        seg_map = {node: (value, 0, 0) for node, value in node_ids.items()}
        flags = pyrender.RenderFlags.SEG
        if self._framebuffers:
            return self._osr.render(scene, flags | pyrender.RenderFlags.RGBA, seg_map)[0][..., 0]
        self._draw(scene, flags, seg_map)
        return self._read("ids", GL.GL_RED, 1)[..., 0]

    def close(self) -> None:
        if self._osr is None:
            return
        if PLATFORM == "egl":
            # pyrender's EGL delete_context also eglTerminate()s the device's display, which every context in this
            # process shares: a second renderer would lose its context. Destroy only this one.
            self._osr._platform.delete_context = functools.partial(_destroy_egl_context, self._osr._platform)
        self._osr.delete()
        self._osr = None

    def _draw(self, scene: pyrender.Scene, flags: int, seg_map: Mapping | None = None) -> None:
        self._osr._platform.make_current()
        self._osr._renderer.render(scene, flags, seg_map)
        GL.glFinish()  # so that the read below measures the read, not the rasterisation still in flight

    def _read(self, kind: str, fmt: int, channels: int) -> np.ndarray:
        start = time.perf_counter()
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)
        GL.glReadBuffer(GL.GL_FRONT)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)  # rows of odd widths are not padded
        data = GL.glReadPixels(0, 0, self.width, self.height, fmt, GL.GL_UNSIGNED_BYTE)
        image = np.frombuffer(data, dtype=np.uint8).reshape(self.height, self.width, channels)[::-1]
        self.seconds[f"readback_{kind}"] += time.perf_counter() - start
        return image


__all__ = ["GL", "PLATFORM", "Offscreen", "StableNode", "pyrender"]
