"""A set of aligned 2-D layers that grow to cover whatever world area is asked for.

The grid origin is kept as integer cell indices (origin = index * resolution), so
growing never drifts by floating-point error and old cells map to new cells by an
exact integer shift. World <-> cell conversion goes through `spec` (a GridSpec).
"""
from __future__ import annotations

import math

import numpy as np

from mapping.grid import GridSpec


class GrowableGrid:
    """Named 2-D layers (row = y, col = x) sharing one growing extent.

    resolution: metres per cell. margin: metres of slack added when growing, so that
    growth (a copy of every layer) happens rarely.
    """

    def __init__(self, resolution: float, margin: float = 2.0) -> None:
        if not resolution > 0:
            raise ValueError(f"grid resolution must be positive, got {resolution}")
        self.resolution = float(resolution)
        self.margin_cells = max(1, int(math.ceil(margin / resolution)))
        self.index0 = (0, 0)  # (ix, iy) world cell index of local cell (row 0, col 0)
        self.shape = (0, 0)  # (rows, cols)
        self._layers: dict[str, np.ndarray] = {}
        self._fill: dict[str, object] = {}

    # -- layers -------------------------------------------------------------------------
    def add_layer(self, name: str, dtype, fill=0) -> np.ndarray:
        """Create a layer filled with `fill`; returns it."""
        if name in self._layers:
            raise ValueError(f"layer {name!r} already exists")
        self._layers[name] = np.full(self.shape, fill, dtype=dtype)
        self._fill[name] = fill
        return self._layers[name]

    def __getitem__(self, name: str) -> np.ndarray:
        return self._layers[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        if name not in self._layers:
            raise KeyError(f"no layer {name!r}; add it with add_layer")
        if value.shape != self.shape:
            raise ValueError(f"layer {name!r} must have shape {self.shape}, got {value.shape}")
        self._layers[name] = value

    @property
    def layer_names(self) -> list[str]:
        return list(self._layers)

    @property
    def empty(self) -> bool:
        return self.shape[0] == 0 or self.shape[1] == 0

    @property
    def spec(self) -> GridSpec:
        """Current GridSpec (origin = world x, y of cell (0, 0)'s lower corner)."""
        return GridSpec((self.index0[0] * self.resolution, self.index0[1] * self.resolution),
                        self.resolution, self.shape)

    # -- growth -------------------------------------------------------------------------
    def ensure_covers(self, xmin: float, ymin: float, xmax: float, ymax: float) -> bool:
        """Grow (never shrink) so the world box [xmin, xmax] x [ymin, ymax] is inside.

        Returns True if the grid changed extent (cell indices of old data shift).
        """
        if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
            raise ValueError("cannot grow the grid to a non-finite box")
        # one extra cell each side absorbs rounding differences with GridSpec.world_to_cell
        ix_lo = int(math.floor(xmin / self.resolution)) - 1
        iy_lo = int(math.floor(ymin / self.resolution)) - 1
        ix_hi = int(math.floor(xmax / self.resolution)) + 1
        iy_hi = int(math.floor(ymax / self.resolution)) + 1
        return self.ensure_cells(ix_lo, iy_lo, ix_hi, iy_hi)

    def ensure_cells(self, ix_lo: int, iy_lo: int, ix_hi: int, iy_hi: int) -> bool:
        """Grow so world cell indices [ix_lo, ix_hi] x [iy_lo, iy_hi] are inside."""
        rows, cols = self.shape
        cx0, cy0 = self.index0
        if not self.empty and ix_lo >= cx0 and iy_lo >= cy0 and ix_hi < cx0 + cols and iy_hi < cy0 + rows:
            return False
        m = self.margin_cells
        if self.empty:
            nx0, ny0, nx1, ny1 = ix_lo - m, iy_lo - m, ix_hi + m + 1, iy_hi + m + 1
        else:
            nx0 = min(cx0, ix_lo - m) if ix_lo < cx0 else cx0
            ny0 = min(cy0, iy_lo - m) if iy_lo < cy0 else cy0
            nx1 = max(cx0 + cols, ix_hi + m + 1) if ix_hi >= cx0 + cols else cx0 + cols
            ny1 = max(cy0 + rows, iy_hi + m + 1) if iy_hi >= cy0 + rows else cy0 + rows
        new_shape = (ny1 - ny0, nx1 - nx0)
        dr, dc = cy0 - ny0, cx0 - nx0
        for name, old in self._layers.items():
            new = np.full(new_shape, self._fill[name], dtype=old.dtype)
            if not self.empty:
                new[dr:dr + rows, dc:dc + cols] = old
            self._layers[name] = new
        self.index0 = (nx0, ny0)
        self.shape = new_shape
        return True

    # -- conversion -----------------------------------------------------------------------
    def cells_of(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2+) world points -> (rows, cols) int64 local indices (not bounds-checked)."""
        rc = self.spec.world_to_cell(np.asarray(xy)[:, :2])
        return rc[:, 0], rc[:, 1]

    # -- state ----------------------------------------------------------------------------
    def state(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Arrays for saving: every layer plus the extent."""
        out = {f"{prefix}{name}": arr for name, arr in self._layers.items()}
        out[f"{prefix}__index0"] = np.array(self.index0, dtype=np.int64)
        out[f"{prefix}__resolution"] = np.array(self.resolution)
        return out

    def load_state(self, data, prefix: str = "") -> None:
        """Restore layers (which must already exist) and extent from `state()` arrays."""
        res = float(data[f"{prefix}__resolution"])
        if not math.isclose(res, self.resolution):
            raise ValueError(f"saved grid resolution {res} does not match {self.resolution}")
        index0 = tuple(int(v) for v in data[f"{prefix}__index0"])
        shape = None
        for name in self._layers:
            key = f"{prefix}{name}"
            if key not in data:
                raise ValueError(f"saved map lacks layer {name!r}")
            arr = np.asarray(data[key])
            if shape is None:
                shape = arr.shape
            if arr.shape != shape or arr.ndim != 2:
                raise ValueError(f"saved layer {name!r} has shape {arr.shape}, expected {shape}")
            self._layers[name] = arr.astype(self._layers[name].dtype, copy=True)
        self.index0 = (index0[0], index0[1])
        self.shape = tuple(shape) if shape is not None else (0, 0)
