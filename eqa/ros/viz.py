"""What the eqa_node shows in RViz / Foxglove: the occupancy and explored map and the semantic value map as
nav_msgs/OccupancyGrid, frontiers, candidate points and the chosen goal as visualization_msgs/MarkerArray,
the prediction set and answer as text markers, and a JSON status. Grids: row = y, origin at cell (0, 0)'s
corner (both ours and OccupancyGrid's); world frame; metres."""
from __future__ import annotations

import json
from typing import Optional, Sequence

import numpy as np

from eqa.records import StepRecord
from eqa.ros.convert import fill_pose, seconds_stamp
from mapping.frame import base_pose
from mapping.grid import GridSpec


def occupancy_cells(occupied: np.ndarray, free: np.ndarray, explored: np.ndarray) -> np.ndarray:
    """int8 OccupancyGrid values: 100 occupied, 0 free, 25 explored but not free (seen, no floor), -1 unknown."""
    cells = np.full(occupied.shape, -1, dtype=np.int8)
    cells[explored] = 25
    cells[free] = 0
    cells[occupied] = 100
    return cells


def value_cells(value: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """int8 0..100 of semantic values in [0, 1] where observed (weight > 0), -1 elsewhere."""
    cells = np.full(value.shape, -1, dtype=np.int8)
    seen = weight > 0
    cells[seen] = np.clip(np.round(value[seen] * 100.0), 0, 100).astype(np.int8)
    return cells


def occupancy_grid(cells: np.ndarray, spec: GridSpec, frame_id: str, stamp: float):
    """nav_msgs/OccupancyGrid of int8 cells (rows along y) with the grid's origin and resolution."""
    from nav_msgs.msg import OccupancyGrid

    msg = OccupancyGrid()
    msg.header.frame_id, msg.header.stamp = frame_id, seconds_stamp(stamp)
    msg.info.map_load_time = msg.header.stamp
    msg.info.resolution = float(spec.resolution)
    msg.info.height, msg.info.width = int(cells.shape[0]), int(cells.shape[1])
    fill_pose(msg.info.origin, base_pose(spec.origin[0], spec.origin[1], 0.0))
    msg.data = np.ascontiguousarray(cells, dtype=np.int8).ravel().tolist()
    return msg


def _marker(ns: str, mid: int, kind: int, frame_id: str, stamp: float, rgba: Sequence[float], scale: Sequence[float]):
    from visualization_msgs.msg import Marker

    m = Marker()
    m.header.frame_id, m.header.stamp = frame_id, seconds_stamp(stamp)
    m.ns, m.id, m.type, m.action = ns, mid, kind, Marker.ADD
    m.pose.orientation.w = 1.0
    m.scale.x, m.scale.y, m.scale.z = (float(v) for v in scale)
    m.color.r, m.color.g, m.color.b, m.color.a = (float(v) for v in rgba)
    return m


def _points(m, xy: Sequence[Sequence[float]], z: float) -> None:
    from geometry_msgs.msg import Point

    m.points = [Point(x=float(p[0]), y=float(p[1]), z=z) for p in xy]


def decision_markers(record: StepRecord, frame_id: str, stamp: float, text: str):
    """visualization_msgs/MarkerArray of a decision: frontiers (spheres sized by score), candidate points of its
    views, the goal (arrow) and a text with the prediction set and answer above the robot."""
    from visualization_msgs.msg import Marker, MarkerArray

    out = MarkerArray()
    clear = Marker()
    clear.action = Marker.DELETEALL
    out.markers.append(clear)
    fronts = record.plan.frontiers if record.plan is not None else []
    if fronts:
        m = _marker("frontiers", 0, Marker.SPHERE_LIST, frame_id, stamp, (0.1, 0.4, 1.0, 0.9), (0.3, 0.3, 0.3))
        _points(m, [f.centroid for f in fronts], 0.1)
        out.markers.append(m)
    candidates = [c.xy for v in record.views for c in v.candidates]
    if candidates:
        m = _marker("candidates", 0, Marker.POINTS, frame_id, stamp, (1.0, 0.6, 0.0, 1.0), (0.15, 0.15, 0.15))
        _points(m, candidates, 0.05)
        out.markers.append(m)
    goal = record.plan.goal if record.plan is not None else None
    if goal is not None:
        m = _marker("goal", 0, Marker.ARROW, frame_id, stamp, (0.0, 0.9, 0.2, 1.0), (0.6, 0.12, 0.12))
        fill_pose(m.pose, base_pose(goal[0], goal[1], goal[2]))
        out.markers.append(m)
    m = _marker("answer", 0, Marker.TEXT_VIEW_FACING, frame_id, stamp, (1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.3))
    m.pose.position.x, m.pose.position.y, m.pose.position.z = float(record.pose[0]), float(record.pose[1]), 2.2
    m.text = text
    out.markers.append(m)
    return out


def answer_text(choices: Sequence[str], prediction_set: Optional[Sequence[int]], answer: Optional[int]) -> str:
    """'set {A, C}; answer: A (red)' as shown above the robot."""
    from vlm.prompts import letter

    parts = []
    if prediction_set is not None:
        parts.append("set {" + ", ".join(letter(i) for i in prediction_set) + "}")
    if answer is not None:
        parts.append(f"answer: {letter(answer)} ({choices[answer]})")
    return "; ".join(parts) or "exploring"


def status_json(**fields) -> str:
    """The node's status as one JSON object (std_msgs/String)."""
    return json.dumps(fields, sort_keys=True, default=str)
