"""CAD meshes to labelled renders: catalog loading, randomized scenes, visible boxes, dataset writers.

Nothing here imports pyrender or OpenGL at import time; ``include.rendering.gl`` does that, once, on demand.
"""
