"""Obstacle inflation and the navigable component of a 2-D grid."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from scipy import ndimage

_EIGHT = np.ones((3, 3), dtype=bool)


def disc(radius_m: float, resolution: float) -> np.ndarray:
    """Boolean disc footprint: cells whose centre lies within radius + half a cell of
    the centre cell (a robot centred there would touch that cell). Odd square shape."""
    reach = radius_m / resolution + 0.5
    r = int(math.floor(reach))
    d = np.arange(-r, r + 1)
    return (d[:, None] ** 2 + d[None, :] ** 2) <= reach ** 2 + 1e-9


def inflate(occupied: np.ndarray, radius_m: float, resolution: float) -> np.ndarray:
    """Cells a robot of radius_m centred there would collide with an occupied cell."""
    fp = disc(radius_m, resolution)
    if fp.shape == (1, 1) or not occupied.any():
        return occupied.copy()
    return ndimage.binary_dilation(occupied, structure=fp)


def inflate_window(occupied: np.ndarray, inflated: np.ndarray, r0: int, r1: int, c0: int, c1: int,
                   radius_m: float, resolution: float) -> None:
    """Recompute `inflated` in place after `occupied` changed only in rows [r0, r1) x cols [c0, c1)."""
    fp = disc(radius_m, resolution)
    k = fp.shape[0] // 2
    rows, cols = occupied.shape
    # output region: changed region grown by k; input region: grown by 2k
    or0, or1, oc0, oc1 = max(r0 - k, 0), min(r1 + k, rows), max(c0 - k, 0), min(c1 + k, cols)
    ir0, ir1, ic0, ic1 = max(or0 - k, 0), min(or1 + k, rows), max(oc0 - k, 0), min(oc1 + k, cols)
    if or0 >= or1 or oc0 >= oc1:
        return
    sub = occupied[ir0:ir1, ic0:ic1]
    dil = ndimage.binary_dilation(sub, structure=fp) if k > 0 else sub
    inflated[or0:or1, oc0:oc1] = dil[or0 - ir0:or1 - ir0, oc0 - ic0:oc1 - ic0]


def nearest_true(mask: np.ndarray, rc: tuple[int, int], max_cells: int) -> Optional[tuple[int, int]]:
    """The True cell of `mask` nearest to rc within max_cells (Chebyshev window), or None."""
    r, c = rc
    rows, cols = mask.shape
    r0, r1, c0, c1 = max(r - max_cells, 0), min(r + max_cells + 1, rows), max(c - max_cells, 0), min(c + max_cells + 1, cols)
    if r0 >= r1 or c0 >= c1:
        return None
    rr, cc = np.nonzero(mask[r0:r1, c0:c1])
    if rr.size == 0:
        return None
    d2 = (rr + r0 - r) ** 2 + (cc + c0 - c) ** 2
    i = int(np.argmin(d2))
    if d2[i] > max_cells ** 2:
        return None
    return int(rr[i] + r0), int(cc[i] + c0)


def component_at(candidates: np.ndarray, rc: tuple[int, int], snap_cells: int) -> np.ndarray:
    """8-connected component of `candidates` holding cell rc (snapped to the nearest
    candidate within snap_cells if rc itself is not one); all False if none."""
    seed = nearest_true(candidates, rc, snap_cells) if snap_cells >= 0 else None
    if seed is None:
        return np.zeros_like(candidates, dtype=bool)
    labels, _ = ndimage.label(candidates, structure=_EIGHT)
    return labels == labels[seed]
