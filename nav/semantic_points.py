"""Candidate points for semantic exploration: navigable map cells in the camera's view,
2 to 10 m away, with line of sight on the map, spread by farthest-point sampling.

World frame, metres, radians; grids as in `mapping.grid`.
"""
from __future__ import annotations


import numpy as np

from mapping.frame import wrap_angle
from mapping.grid import GridSpec, segment_samples


def line_of_sight(blocked: np.ndarray, spec: GridSpec, start, ends: np.ndarray) -> np.ndarray:
    """(N,) bool: the straight segment start -> end crosses no blocked cell (sampled every half cell)."""
    pts, _ = segment_samples(start, ends, 0.5 * spec.resolution)
    return ~spec.values_at(blocked, pts).any(axis=1)


def farthest_points(xy: np.ndarray, k: int, merge: float, first) -> np.ndarray:
    """Indices of up to k points by farthest-point sampling starting from the point farthest from
    `first`; stops when the next point would be closer than `merge` metres to a chosen one."""
    if len(xy) == 0 or k <= 0:
        return np.zeros(0, dtype=int)
    d_first = np.hypot(*(xy - np.asarray(first)[None]).T)
    chosen = [int(np.argmax(d_first))]
    d_min = np.hypot(*(xy - xy[chosen[0]]).T)
    while len(chosen) < k:
        i = int(np.argmax(d_min))
        if d_min[i] < merge:
            break
        chosen.append(i)
        d_min = np.minimum(d_min, np.hypot(*(xy - xy[i]).T))
    return np.array(chosen, dtype=int)


def candidate_points(scene_map, robot_xy, robot_yaw: float, hfov: float, k: int = 3, min_dist: float = 2.0,
                     max_dist: float = 10.0, merge: float = 1.0, stride: int = 2) -> np.ndarray:
    """(M <= k, 2) world xy of candidate points (navigable, in the horizontal FOV, in range, in sight)."""
    nav = scene_map.navigable()
    spec = scene_map.spec
    cells = np.argwhere(nav[::stride, ::stride]) * stride
    if len(cells) == 0:
        return np.zeros((0, 2))
    xy = spec.cell_to_world(cells)
    d = xy - np.asarray(robot_xy, dtype=float)[None]
    dist = np.hypot(d[:, 0], d[:, 1])
    bearing = np.abs(wrap_angle(np.arctan2(d[:, 1], d[:, 0]) - robot_yaw))
    keep = (dist >= min_dist) & (dist <= max_dist) & (bearing <= hfov / 2)
    xy = xy[keep]
    if len(xy) == 0:
        return np.zeros((0, 2))
    xy = xy[line_of_sight(scene_map.occupied, spec, robot_xy, xy)]
    return xy[farthest_points(xy, k, merge, robot_xy)]
