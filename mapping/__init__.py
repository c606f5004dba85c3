"""Mapping: RGB-D frames -> TSDF -> 2-D grids, frontiers and the semantic value map.

Heavy modules (open3d) load on first use, so `from mapping.frame import Frame` stays cheap.
"""
from importlib import import_module

from mapping.config import MapConfig
from mapping.frame import Frame, Intrinsics
from mapping.grid import GridSpec

_LAZY = {
    "SceneMap": "mapping.scene_map",
    "Frontier": "mapping.frontiers",
    "SemanticValueMap": "mapping.value_map",
    "TSDFVolume": "mapping.tsdf",
    "render_map": "mapping.render",
    "save_map_png": "mapping.render",
}

__all__ = ["Frame", "Intrinsics", "GridSpec", "MapConfig", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mapping' has no attribute {name!r}")
