"""Frame checks, depth cleaning, and the robot pose implied by a frame.

Camera frame: OpenCV optical (x right, y down, z forward). Depth is z-depth in metres.
"""
from __future__ import annotations

import math

import numpy as np

from mapping.frame import Frame, Intrinsics, check_pose


def clean_depth(depth: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """float32 copy of `depth` with invalid values (NaN, inf, <= 0, out of range) set to 0."""
    d = np.asarray(depth, dtype=np.float32)
    bad = ~np.isfinite(d) | (d < min_depth) | (d > max_depth)
    return np.where(bad, np.float32(0.0), d)


def check_frame(frame: Frame) -> None:
    """Raise ValueError with a clear message unless the frame is usable for mapping."""
    if not isinstance(frame.intrinsics, Intrinsics):
        raise ValueError(f"frame.intrinsics must be an Intrinsics, got {type(frame.intrinsics).__name__}")
    depth = np.asarray(frame.depth)
    h, w = frame.intrinsics.height, frame.intrinsics.width
    if depth.ndim != 2 or depth.shape != (h, w):
        raise ValueError(f"depth shape {depth.shape} does not match intrinsics {w}x{h} (expected ({h}, {w}))")
    if not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(f"depth must be float metres, got dtype {depth.dtype} (convert e.g. uint16 millimetres first)")
    rgb = np.asarray(frame.rgb)
    if rgb.shape != (h, w, 3):
        raise ValueError(f"rgb shape {rgb.shape} does not match intrinsics {w}x{h} (expected ({h}, {w}, 3))")
    if rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be uint8, got {rgb.dtype}")
    check_pose(frame.T_world_cam, "T_world_cam")
    if frame.T_world_base is not None:
        check_pose(frame.T_world_base, "T_world_base")


def robot_pose_xy_yaw(frame: Frame) -> tuple[float, float, float]:
    """Robot (x, y, yaw) in the world: from T_world_base, else from the camera pose
    (camera position on the floor, heading = optical axis projected on the floor)."""
    if frame.T_world_base is not None:
        T = frame.T_world_base
        return float(T[0, 3]), float(T[1, 3]), math.atan2(T[1, 0], T[0, 0])
    T = frame.T_world_cam
    forward = T[:3, 2]
    yaw = math.atan2(forward[1], forward[0]) if math.hypot(forward[0], forward[1]) > 1e-9 else 0.0
    return float(T[0, 3]), float(T[1, 3]), yaw
