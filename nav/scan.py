"""Looking around where a move ends, for cameras whose view is narrow.

A narrow camera (a RealSense-class 69 deg, against HM-EQA's 120 deg) sees a thin wedge of floor from each
pose, so a robot that only looks where it drives leaves most of a room unexplored. A scan turns the robot in
place toward each heading whose wedge still holds unexplored floor it could see: cells not yet explored that
lie within the camera's ground footprint (from its nearest visible floor distance to the explored range) and
in line of sight on the map (no occupied cell between the robot and them).

Angles in radians, counter-clockwise; positions in world metres; grids follow mapping.grid.GridSpec.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mapping.frame import Frame, wrap_angle
from mapping.grid import GridSpec

RAY_STEP_RAD = math.radians(2.0)  # angular spacing of the visibility rays


@dataclass(frozen=True)
class ViewWedge:
    """The floor a camera marks explored from one pose: a wedge of `width` radians (the explored part of the
    horizontal field of view) between `near` and `far` metres of horizontal distance from the robot."""

    width: float
    near: float
    far: float


def camera_hfov(frame: Frame) -> float:
    """Horizontal field of view (radians) of the frame's camera."""
    k = frame.intrinsics
    return math.atan2(k.cx + 0.5, k.fx) + math.atan2(k.width - 0.5 - k.cx, k.fx)


def nearest_floor_distance(frame: Frame, floor_z: float) -> float:
    """Horizontal distance (m) from the camera to the nearest floor point its image shows (the bottom-centre
    pixel's ray hitting the plane z = floor_z); 0 when that ray does not point down."""
    k = frame.intrinsics
    ray = frame.T_world_cam[:3, :3] @ np.array([0.0, (k.height - 1 - k.cy) / k.fy, 1.0])
    height = float(frame.T_world_cam[2, 3]) - floor_z
    if ray[2] >= -1e-9 or height <= 0:
        return 0.0
    t = height / -ray[2]
    return float(math.hypot(ray[0] * t, ray[1] * t))


def visible_unexplored(explored: np.ndarray, occupied: np.ndarray, spec: GridSpec, robot_xy, headings: np.ndarray,
                       wedge: ViewWedge) -> np.ndarray:
    """(len(headings),) square metres of unexplored cells each heading's wedge would show: cells whose centre
    lies in the wedge and in line of sight from robot_xy on the map (rays stop at the first occupied cell)."""
    res = spec.resolution
    half = 0.5 * wedge.width
    n_rays = max(2, int(math.ceil(wedge.width / RAY_STEP_RAD)) + 1)
    offsets = np.linspace(-half, half, n_rays)
    dists = np.arange(0.0, wedge.far + 1e-9, 0.5 * res)
    out = np.zeros(len(headings))
    for i, heading in enumerate(np.asarray(headings, dtype=float)):
        ang = heading + offsets
        pts = np.asarray(robot_xy, dtype=float)[None, None, :] + dists[None, :, None] * np.stack(
            [np.cos(ang), np.sin(ang)], axis=-1)[:, None, :]
        cells = spec.world_to_cell(pts)
        inside = spec.in_bounds(cells)
        rc = np.where(inside[..., None], cells, 0)
        blocked = np.cumsum(occupied[rc[..., 0], rc[..., 1]] & inside, axis=1) > 0
        seen = ~blocked & (dists[None, :] >= wedge.near)
        # cells off the grid are unexplored, and nothing on the map blocks the view there
        unexplored = ~inside | ~explored[rc[..., 0], rc[..., 1]]
        out[i] = _distinct_cells(cells[seen & unexplored]) * res * res
    return out


def _distinct_cells(cells: np.ndarray) -> int:
    """Number of distinct (row, col) pairs in an (N, 2) integer array (cells off the grid included)."""
    if not len(cells):
        return 0
    lo = cells.min(axis=0)
    span = int(cells[:, 1].max() - lo[1]) + 1
    return len(np.unique((cells[:, 0] - lo[0]).astype(np.int64) * span + (cells[:, 1] - lo[1])))


def scan_turns(explored: np.ndarray, occupied: np.ndarray, spec: GridSpec, robot_xy, yaw: float, wedge: ViewWedge,
               min_unseen_m2: float) -> list[float]:
    """Turn angles (radians, each relative to the heading before it) that sweep counter-clockwise through the
    headings around the robot, spaced by the wedge width, whose wedge shows at least `min_unseen_m2` of
    unexplored floor; the current heading is left out (it has just been seen). Empty: nothing worth a turn."""
    n = int(math.ceil(2 * math.pi / wedge.width - 1e-9))
    if n < 2:
        return []
    headings = yaw + np.arange(1, n) * (2 * math.pi / n)
    worth = visible_unexplored(explored, occupied, spec, robot_xy, headings, wedge) >= min_unseen_m2
    turns, current = [], yaw
    for heading in headings[worth]:
        turns.append(float(wrap_angle(heading - current)))
        current = heading
    return turns
