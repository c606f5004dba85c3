"""Semantic value map: a 2-D running weighted average of values written as discs.

World frame, metres; grid row = y, col = x. The grid grows to cover every update.
"""
from __future__ import annotations

import math
import os

import numpy as np

from mapping.grid import GridSpec
from mapping.growable import GrowableGrid

_FORMAT = "confident-eqa-value-map/1"


class SemanticValueMap:
    """`value` and `weight` grids at `resolution` metres per cell.

    decay: in (0, 1]; before each update all existing weights are multiplied by it,
    so newer observations count more (1 = plain running average).
    """

    def __init__(self, resolution: float = 0.1, decay: float = 1.0, margin: float = 2.0) -> None:
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        self.decay = float(decay)
        self.grid = GrowableGrid(resolution, margin)
        self.grid.add_layer("value", np.float32, 0.0)
        self.grid.add_layer("weight", np.float32, 0.0)

    @property
    def resolution(self) -> float:
        return self.grid.resolution

    @property
    def spec(self) -> GridSpec:
        return self.grid.spec

    @property
    def value(self) -> np.ndarray:
        return self.grid["value"]

    @property
    def weight(self) -> np.ndarray:
        return self.grid["weight"]

    def update(self, points, values, radius, weights=None) -> None:
        """Write value v_i with weight w_i (default 1) on every cell whose centre is
        within radius (metres; scalar or per point) of point i (world x, y[, z]).
        Cells covered by several discs of one update get their weighted mean."""
        pts = np.asarray(points, dtype=float)
        if pts.ndim == 1:
            pts = pts[None]
        if pts.ndim != 2 or pts.shape[1] not in (2, 3):
            raise ValueError(f"points must be (N, 2) or (N, 3), got {pts.shape}")
        n = len(pts)
        vals = np.broadcast_to(np.asarray(values, dtype=float), (n,))
        rad = np.broadcast_to(np.asarray(radius, dtype=float), (n,))
        w = np.ones(n) if weights is None else np.broadcast_to(np.asarray(weights, dtype=float), (n,))
        for name, arr in (("points", pts), ("values", vals), ("radius", rad), ("weights", w)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite")
        if np.any(rad < 0) or np.any(w < 0):
            raise ValueError("radius and weights must be >= 0")
        if self.decay < 1.0:
            self.grid["weight"] *= np.float32(self.decay)
        if n == 0:
            return
        res = self.resolution
        xy = pts[:, :2]
        rmax = float(rad.max())
        self.grid.ensure_covers(*(xy.min(axis=0) - rmax), *(xy.max(axis=0) + rmax))
        k = int(math.ceil(rmax / res)) + 1
        d = np.arange(-k, k + 1)
        dr, dc = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))
        r0, c0 = self.grid.cells_of(xy)
        rows = r0[:, None] + dr[None, :]
        cols = c0[:, None] + dc[None, :]
        centres = self.spec.cell_to_world(np.stack([rows, cols], axis=-1))
        inside = ((centres - xy[:, None, :]) ** 2).sum(axis=-1) <= rad[:, None] ** 2 + 1e-12
        # a disc smaller than a cell still writes the cell holding its point
        inside |= (dr == 0)[None, :] & (dc == 0)[None, :]
        shape = self.grid.shape
        flat = (rows * shape[1] + cols)[inside]
        wi = np.broadcast_to(w[:, None], inside.shape)[inside]
        vi = np.broadcast_to(vals[:, None], inside.shape)[inside]
        size = shape[0] * shape[1]
        sw = np.bincount(flat, weights=wi, minlength=size)
        swv = np.bincount(flat, weights=wi * vi, minlength=size)
        touched = np.flatnonzero(sw > 0)
        W = self.grid["weight"].reshape(-1)
        V = self.grid["value"].reshape(-1)
        w_old = W[touched].astype(np.float64)
        w_new = w_old + sw[touched]
        V[touched] = (w_old * V[touched] + swv[touched]) / w_new
        W[touched] = w_new

    def value_at(self, xy, default: float = 0.0) -> np.ndarray | float:
        """Value at world (x, y) (or (N, 2) points); `default` where nothing was written."""
        p = np.asarray(xy, dtype=float)
        single = p.ndim == 1
        p = np.atleast_2d(p)[:, :2]
        out = np.full(len(p), float(default))
        if not self.grid.empty:
            rc = self.spec.world_to_cell(p)
            ok = self.spec.in_bounds(rc)
            r, c = rc[ok, 0], rc[ok, 1]
            seen = self.weight[r, c] > 0
            vals = np.where(seen, self.value[r, c], default)
            out[ok] = vals
        return float(out[0]) if single else out

    def mean_value(self) -> float:
        """Weight-averaged value over the written cells (0 when nothing was written)."""
        w = self.weight
        total = float(w.sum()) if not self.grid.empty else 0.0
        return float((self.value * w).sum() / total) if total > 0 else 0.0

    def mean_along(self, start, direction, length: float, default: float = 0.0) -> float:
        """Mean value of the written cells crossed by the ray start + s * direction,
        s in [0, length] metres (sampled every half cell, each cell counted once);
        `default` if the ray crosses no written cell."""
        start = np.asarray(start, dtype=float)[:2]
        direction = np.asarray(direction, dtype=float)[:2]
        norm = float(np.hypot(*direction))
        if norm < 1e-12 or not math.isfinite(norm):
            raise ValueError(f"direction must be a finite non-zero 2-vector, got {direction}")
        if not length >= 0:
            raise ValueError(f"length must be >= 0, got {length}")
        if self.grid.empty:
            return float(default)
        n = int(math.ceil(length / (0.5 * self.resolution))) + 1
        s = np.linspace(0.0, length, n)
        p = start[None] + s[:, None] * (direction / norm)[None]
        rc = self.spec.world_to_cell(p)
        rc = rc[self.spec.in_bounds(rc)]
        if len(rc) == 0:
            return float(default)
        rc = np.unique(rc, axis=0)
        w = self.weight[rc[:, 0], rc[:, 1]]
        seen = w > 0
        if not seen.any():
            return float(default)
        return float(self.value[rc[seen, 0], rc[seen, 1]].mean())

    # -- persistence ---------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        out = self.grid.state("value__")
        out["value__decay"] = np.array(self.decay)
        out["value__format"] = np.array(_FORMAT)
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write value and weight grids to one compressed .npz file."""
        with open(path, "wb") as f:
            np.savez_compressed(f, **self.state())

    @classmethod
    def from_state(cls, data) -> "SemanticValueMap":
        if "value__format" not in data or str(data["value__format"]) != _FORMAT:
            raise ValueError(f"not a value map (format {_FORMAT} expected)")
        m = cls(float(data["value____resolution"]), float(data["value__decay"]))
        m.grid.load_state(data, "value__")
        return m

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SemanticValueMap":
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"{path}: not a value map file ({exc})") from exc
        with data:
            return cls.from_state(data)
