"""Ground-truth exploration metrics in the built-in simulator."""
from __future__ import annotations

import numpy as np

from sim.freespace import FreeSpace


def reachable_floor(freespace: FreeSpace, start_xy) -> np.ndarray:
    """(N, 2) world xy of the true navigable cells in the robot's start component."""
    label = freespace.component_of(np.asarray(start_xy, dtype=float))
    if label == 0:
        rc = freespace.nearest_in_component(start_xy, None)
        label = int(freespace.components[rc[0], rc[1]])
    return freespace.grid.cell_to_world(np.argwhere(freespace.components == label))


def coverage(scene_map, floor_xy: np.ndarray) -> float:
    """Fraction of the reachable floor points that lie in explored cells of the map."""
    if len(floor_xy) == 0:
        return 0.0
    spec = scene_map.spec
    rc = spec.world_to_cell(floor_xy)
    ok = spec.in_bounds(rc)
    rc = np.where(ok[:, None], rc, 0)
    hit = ok & scene_map.explored[rc[:, 0], rc[:, 1]]
    return float(hit.mean())


def collisions(freespace: FreeSpace, trajectory: list[tuple[float, float]], radius: float, step: float = 0.02) -> int:
    """Number of points, sampled every `step` m along the driven polyline, closer than `radius`
    to a true obstacle (occupied cells cover obstacles; a half-diagonal is allowed for that)."""
    traj = np.asarray(trajectory, dtype=float).reshape(-1, 2)
    if len(traj) < 2:
        samples = traj
    else:
        parts = [traj[:1]]
        for a, b in zip(traj[:-1], traj[1:]):
            n = max(1, int(np.ceil(np.linalg.norm(b - a) / step)))
            parts.append(a + (b - a) * (np.arange(1, n + 1) / n)[:, None])
        samples = np.concatenate(parts)
    res = freespace.grid.resolution
    clearance = freespace.clearance - res / np.sqrt(2)
    rc = freespace.grid.world_to_cell(samples)
    ok = freespace.grid.in_bounds(rc)
    rc = np.where(ok[:, None], rc, 0)
    bad = ~ok | (clearance[rc[:, 0], rc[:, 1]] < radius - res)
    return int(bad.sum())
