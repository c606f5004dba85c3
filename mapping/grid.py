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

    def values_at(self, grid: np.ndarray, xy, outside=False) -> np.ndarray:
        """`grid` (shape `shape`) at the cells under world points xy (..., 2) metres; `outside` for points
        off the grid. Returns an array of shape xy.shape[:-1]."""
        rc = self.world_to_cell(xy)
        inside = self.in_bounds(rc)
        rc = np.where(inside[..., None], rc, 0)
        return np.where(inside, grid[rc[..., 0], rc[..., 1]], outside)


def segment_samples(starts, ends, step: float | None = None, samples: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Points along straight segments starts[i] -> ends[i] (world metres; (N, 2) or one (2,) start for all):
    (N, S, 2) points at the same fractions t (S,) = linspace(0, 1, S) of every segment, both ends included.
    S: `samples`, or from `step` (m) max(2, ceil(longest / step) + 1), so that neighbouring samples lie at most
    `step` apart. Returns (points, t)."""
    ends = np.asarray(ends, dtype=float).reshape(-1, 2)
    starts = np.broadcast_to(np.asarray(starts, dtype=float), ends.shape)
    d = ends - starts
    if samples is None:
        longest = np.hypot(d[:, 0], d[:, 1]).max(initial=0.0)
        samples = max(2, int(np.ceil(longest / step)) + 1)
    t = np.linspace(0.0, 1.0, samples)
    return starts[:, None, :] + t[None, :, None] * d[:, None, :], t
