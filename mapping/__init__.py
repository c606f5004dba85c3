"""Mapping: RGB-D frames -> TSDF -> 2-D grids, frontiers and the semantic value map."""
from mapping.frame import Frame, Intrinsics
from mapping.grid import GridSpec

__all__ = ["Frame", "Intrinsics", "GridSpec"]
