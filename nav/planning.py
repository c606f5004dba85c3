"""Shortest paths on a boolean navigable grid (8-connected, octile metric), compiled with numba.

Cells are (row, col) of a `mapping.grid.GridSpec`; costs are in cells (multiply by the
resolution for metres). A diagonal step is allowed only when both orthogonal
neighbours are navigable too (no corner cutting).
"""
from __future__ import annotations

import heapq
import math

import numba
import numpy as np

SQRT2 = math.sqrt(2.0)
_DR = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)
_DC = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)


@numba.njit(cache=True)
def _step_ok(nav, r, c, dr, dc):  # pragma: no cover - compiled
    h, w = nav.shape
    nr, nc = r + dr, c + dc
    if nr < 0 or nr >= h or nc < 0 or nc >= w or not nav[nr, nc]:
        return False
    if dr != 0 and dc != 0 and not (nav[r + dr, c] and nav[r, c + dc]):
        return False
    return True


@numba.njit(cache=True)
def _astar(nav, sr, sc, gr, gc, dr_arr, dc_arr):  # pragma: no cover - compiled
    h, w = nav.shape
    g = np.full((h, w), np.inf)
    parent = np.full((h, w), -1, dtype=np.int64)
    closed = np.zeros((h, w), dtype=np.bool_)
    g[sr, sc] = 0.0
    heap = [(0.0, sr * w + sc)]
    while len(heap) > 0:
        _, idx = heapq.heappop(heap)
        r, c = idx // w, idx % w
        if closed[r, c]:
            continue
        closed[r, c] = True
        if r == gr and c == gc:
            break
        for k in range(8):
            dr, dc = dr_arr[k], dc_arr[k]
            if not _step_ok(nav, r, c, dr, dc):
                continue
            nr, nc = r + dr, c + dc
            cost = g[r, c] + (1.4142135623730951 if dr != 0 and dc != 0 else 1.0)
            if cost < g[nr, nc]:
                g[nr, nc] = cost
                parent[nr, nc] = idx
                ddr, ddc = abs(nr - gr), abs(nc - gc)
                heur = max(ddr, ddc) + 0.41421356237309515 * min(ddr, ddc)
                heapq.heappush(heap, (cost + heur, nr * w + nc))
    return g[gr, gc], parent


@numba.njit(cache=True)
def _dijkstra(nav, sr, sc, dr_arr, dc_arr):  # pragma: no cover - compiled
    h, w = nav.shape
    g = np.full((h, w), np.inf)
    g[sr, sc] = 0.0
    heap = [(0.0, sr * w + sc)]
    while len(heap) > 0:
        d, idx = heapq.heappop(heap)
        r, c = idx // w, idx % w
        if d > g[r, c]:
            continue
        for k in range(8):
            dr, dc = dr_arr[k], dc_arr[k]
            if not _step_ok(nav, r, c, dr, dc):
                continue
            nr, nc = r + dr, c + dc
            cost = d + (1.4142135623730951 if dr != 0 and dc != 0 else 1.0)
            if cost < g[nr, nc]:
                g[nr, nc] = cost
                heapq.heappush(heap, (cost, nr * w + nc))
    return g


def _check(nav: np.ndarray, rc, name: str) -> tuple[int, int]:
    r, c = int(rc[0]), int(rc[1])
    if not (0 <= r < nav.shape[0] and 0 <= c < nav.shape[1]):
        raise ValueError(f"{name} cell {(r, c)} is outside the grid {nav.shape}")
    return r, c


def astar(navigable: np.ndarray, start, goal) -> tuple[float, np.ndarray | None]:
    """(cost in cells, (K, 2) path cells start..goal) or (inf, None) when unreachable/blocked."""
    nav = np.ascontiguousarray(navigable, dtype=np.bool_)
    sr, sc = _check(nav, start, "start")
    gr, gc = _check(nav, goal, "goal")
    if not (nav[sr, sc] and nav[gr, gc]):
        return math.inf, None
    cost, parent = _astar(nav, sr, sc, gr, gc, _DR, _DC)
    if not math.isfinite(cost):
        return math.inf, None
    w = nav.shape[1]
    cells, idx = [], gr * w + gc
    while idx != sr * w + sc:
        cells.append((idx // w, idx % w))
        idx = int(parent[idx // w, idx % w])
    cells.append((sr, sc))
    return float(cost), np.array(cells[::-1], dtype=np.int64)


def distance_field(navigable: np.ndarray, start) -> np.ndarray:
    """Path distance in cells from `start` to every cell (inf where unreachable)."""
    nav = np.ascontiguousarray(navigable, dtype=np.bool_)
    sr, sc = _check(nav, start, "start")
    if not nav[sr, sc]:
        return np.full(nav.shape, np.inf)
    return _dijkstra(nav, sr, sc, _DR, _DC)


def path_length(cells: np.ndarray) -> float:
    """Length in cells of a cell path."""
    if cells is None or len(cells) < 2:
        return 0.0
    d = np.abs(np.diff(cells, axis=0))
    return float(np.sum(np.where((d[:, 0] > 0) & (d[:, 1] > 0), SQRT2, 1.0)))


def truncate_path(points: np.ndarray, max_length: float) -> np.ndarray:
    """The prefix of a world (K, 2) polyline at most `max_length` metres long (end interpolated)."""
    if len(points) < 2:
        return points.copy()
    seg = np.diff(points, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    if cum[-1] <= max_length:
        return points.copy()
    k = int(np.searchsorted(cum, max_length, side="right")) - 1
    end = points[k] + (max_length - cum[k]) / lengths[k] * seg[k]
    return np.vstack([points[: k + 1], end])
