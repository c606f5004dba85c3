"""The one place that converts between world metres and 2-D grid cells.

Grids: row = y index, col = x index; cell (0, 0) has its centre at
origin + resolution / 2, i.e. `origin` is the world (x, y) of the cell's lower corner.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GridSpec:
    """A 2-D grid: `origin` (x, y) metres of cell (0, 0)'s corner, `resolution` metres per cell."""

    origin: tuple[float, float]
    resolution: float
    shape: tuple[int, int]  # (rows, cols)

    def __post_init__(self) -> None:
        if not self.resolution > 0:
            raise ValueError(f"grid resolution must be positive, got {self.resolution}")

    def world_to_cell(self, xy) -> np.ndarray:
        """(..., 2) world x, y metres -> (..., 2) integer (row, col)."""
        xy = np.asarray(xy, dtype=float)
        col = np.floor((xy[..., 0] - self.origin[0]) / self.resolution).astype(np.int64)
        row = np.floor((xy[..., 1] - self.origin[1]) / self.resolution).astype(np.int64)
        return np.stack([row, col], axis=-1)

    def cell_to_world(self, rc) -> np.ndarray:
        """(..., 2) (row, col) -> (..., 2) world x, y of the cell centres, metres."""
        rc = np.asarray(rc, dtype=float)
        x = self.origin[0] + (rc[..., 1] + 0.5) * self.resolution
        y = self.origin[1] + (rc[..., 0] + 0.5) * self.resolution
        return np.stack([x, y], axis=-1)

    def in_bounds(self, rc) -> np.ndarray:
        rc = np.asarray(rc)
        return (rc[..., 0] >= 0) & (rc[..., 0] < self.shape[0]) & (rc[..., 1] >= 0) & (rc[..., 1] < self.shape[1])

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """World x and y of every cell centre, each of shape `shape`."""
        xs = self.origin[0] + (np.arange(self.shape[1]) + 0.5) * self.resolution
        ys = self.origin[1] + (np.arange(self.shape[0]) + 0.5) * self.resolution
        return np.meshgrid(xs, ys)

    @classmethod
    def covering(cls, xmin: float, ymin: float, xmax: float, ymax: float, resolution: float) -> "GridSpec":
        """Smallest grid at `resolution` covering the box, origin snapped to multiples of resolution."""
        ox = np.floor(xmin / resolution) * resolution
        oy = np.floor(ymin / resolution) * resolution
        cols = int(np.ceil((xmax - ox) / resolution))
        rows = int(np.ceil((ymax - oy) / resolution))
        return cls((float(ox), float(oy)), float(resolution), (max(rows, 1), max(cols, 1)))
