"""Frontiers: explored navigable cells bordering unexplored cells, in connected clusters."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mapping.grid import GridSpec

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Frontier:
    """One frontier cluster.

    cells: (K, 2) int (row, col) in the grid `spec` current when it was extracted.
    centroid: world (x, y) metres, mean of the member cell centres.
    goal: world (x, y) of the member cell nearest the centroid (a reachable target).
    normal: unit world (x, y) pointing into the unexplored side.
    size: metres (cell count * resolution).
    """

    cells: np.ndarray
    centroid: np.ndarray
    goal: np.ndarray
    normal: np.ndarray
    size: float


def frontier_mask(navigable: np.ndarray, explored: np.ndarray) -> np.ndarray:
    """Explored navigable cells with at least one unexplored 8-neighbour (grid edge = unexplored)."""
    unexplored = np.pad(~explored, 1, constant_values=True)
    near = ndimage.binary_dilation(unexplored, structure=_EIGHT)[1:-1, 1:-1]
    return navigable & explored & near


def _normal(explored: np.ndarray, r0: int, r1: int, c0: int, c1: int, cells: np.ndarray) -> np.ndarray:
    """Unit (drow, dcol) from the explored mass to the unexplored mass in the window;
    falls back to the summed offsets towards unexplored neighbours of the cells."""
    win = explored[r0:r1, c0:c1]
    rr, cc = np.mgrid[r0:r1, c0:c1]
    n_exp = win.sum()
    n_un = win.size - n_exp
    if n_exp > 0 and n_un > 0:
        d = np.array([rr[~win].mean() - rr[win].mean(), cc[~win].mean() - cc[win].mean()])
        if np.hypot(*d) > 1e-6:
            return d / np.hypot(*d)
    padded = np.pad(~explored, 1, constant_values=True)
    d = np.zeros(2)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr or dc:
                hit = padded[cells[:, 0] + 1 + dr, cells[:, 1] + 1 + dc]
                d += np.array([dr, dc]) * hit.sum()
    n = np.hypot(*d)
    return d / n if n > 1e-9 else np.array([0.0, 1.0])


def split_cells(cells: np.ndarray, parts: int, iterations: int = 8) -> list[np.ndarray]:
    """Split (K, 2) cells into `parts` compact groups: deterministic k-means seeded by
    farthest-point sampling (first seed: the cell farthest from the mean)."""
    pts = cells.astype(np.float64)
    if parts <= 1 or len(pts) <= parts:
        return [cells]
    seeds = [int(np.argmax(((pts - pts.mean(axis=0)) ** 2).sum(axis=1)))]
    d2 = ((pts - pts[seeds[0]]) ** 2).sum(axis=1)
    for _ in range(parts - 1):
        seeds.append(int(np.argmax(d2)))
        d2 = np.minimum(d2, ((pts - pts[seeds[-1]]) ** 2).sum(axis=1))
    centres = pts[seeds]
    for _ in range(iterations):
        assign = np.argmin(((pts[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
        counts = np.bincount(assign, minlength=parts)
        for axis in range(2):
            sums = np.bincount(assign, weights=pts[:, axis], minlength=parts)
            centres[:, axis] = np.where(counts > 0, sums / np.maximum(counts, 1), centres[:, axis])
    assign = np.argmin(((pts[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    return [cells[assign == k] for k in range(parts) if np.any(assign == k)]


def extract_frontiers(navigable: np.ndarray, explored: np.ndarray, spec: GridSpec,
                      min_size: float, normal_window: float, max_size: float = np.inf) -> list[Frontier]:
    """Cluster frontier cells (8-connected), drop clusters shorter than min_size metres,
    split clusters longer than max_size metres into compact pieces, and describe each;
    sorted by size, largest first. normal_window: metres of context around a cluster's
    bounding box used to estimate its outward normal."""
    mask = frontier_mask(navigable, explored)
    labels, n = ndimage.label(mask, structure=_EIGHT)
    if n == 0:
        return []
    rows, cols = np.nonzero(labels)
    lab = labels[rows, cols]
    order = np.argsort(lab, kind="stable")
    rows, cols, lab = rows[order], cols[order], lab[order]
    counts = np.bincount(lab, minlength=n + 1)[1:]
    starts = np.concatenate([[0], np.cumsum(counts)])
    res = spec.resolution
    pad = int(math.ceil(normal_window / res))
    H, W = explored.shape
    out = []
    groups = []
    for k in np.flatnonzero(counts * res >= min_size - 1e-9):
        s, e = starts[k], starts[k + 1]
        cells = np.stack([rows[s:e], cols[s:e]], axis=1)
        parts = int(math.ceil(len(cells) * res / max_size - 1e-9)) if math.isfinite(max_size) else 1
        groups.extend(split_cells(cells, parts))
    for cells in groups:
        centres = spec.cell_to_world(cells)
        centroid = centres.mean(axis=0)
        goal = centres[int(np.argmin(((centres - centroid) ** 2).sum(axis=1)))]
        r0, r1 = max(int(cells[:, 0].min()) - pad, 0), min(int(cells[:, 0].max()) + pad + 1, H)
        c0, c1 = max(int(cells[:, 1].min()) - pad, 0), min(int(cells[:, 1].max()) + pad + 1, W)
        n_rc = _normal(explored, r0, r1, c0, c1, cells)
        normal = np.array([n_rc[1], n_rc[0]])  # (drow, dcol) -> world (dx, dy)
        out.append(Frontier(cells=cells, centroid=centroid, goal=goal, normal=normal, size=float(len(cells) * res)))
    out.sort(key=lambda f: -f.size)
    return out
