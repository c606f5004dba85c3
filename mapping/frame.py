"""Sensor frame types and pose helpers shared by every module.

Conventions (DESIGN.md section 2): metres, radians, seconds. World frame z up.
Robot base frame: x forward, y left, z up. Camera frame: OpenCV optical
(x right, y down, z forward). ``T_a_b`` is a 4x4 float64 matrix mapping points
in frame b into frame a.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels; pixel (u, v) integer coordinates are pixel centres."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"intrinsics {name} must be finite, got {value}")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")

    @classmethod
    def from_hfov(cls, width: int, height: int, hfov_rad: float) -> "Intrinsics":
        """Square-pixel intrinsics from a horizontal field of view in radians."""
        if not 0.0 < hfov_rad < math.pi:
            raise ValueError(f"horizontal FOV must be in (0, 180) degrees, got {math.degrees(hfov_rad)}")
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        f = (width / 2.0) / math.tan(hfov_rad / 2.0)
        return cls(fx=f, fy=f, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0, width=width, height=height)

    def matrix(self) -> np.ndarray:
        """3x3 camera matrix K (float64)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def to_dict(self) -> dict:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "width": self.width, "height": self.height}


@dataclass
class Frame:
    """One posed RGB-D observation.

    rgb: HxWx3 uint8. depth: HxW float32 z-depth in metres (0 or non-finite = invalid).
    T_world_cam: camera (optical frame) pose in the world. stamp: seconds.
    semantic: optional HxW int32 instance ids (simulators only; 0 = nothing hit).
    T_world_base: optional robot base pose at capture time.
    """

    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics
    T_world_cam: np.ndarray
    stamp: float
    semantic: Optional[np.ndarray] = None
    T_world_base: Optional[np.ndarray] = field(default=None)

    def validate(self) -> None:
        """Raise ValueError naming the problem if the frame is malformed."""
        h, w = self.intrinsics.height, self.intrinsics.width
        if self.rgb.shape != (h, w, 3) or self.rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be uint8 {h}x{w}x3 to match intrinsics, got {self.rgb.dtype} {self.rgb.shape}")
        if self.depth.shape != (h, w):
            raise ValueError(f"depth must be {h}x{w} to match intrinsics, got {self.depth.shape}")
        check_pose(self.T_world_cam, "T_world_cam")
        if self.semantic is not None and self.semantic.shape != (h, w):
            raise ValueError(f"semantic must be {h}x{w}, got {self.semantic.shape}")


def check_pose(T: np.ndarray, name: str = "pose") -> None:
    """Raise ValueError unless T is a finite 4x4 rigid transform."""
    T = np.asarray(T)
    if T.shape != (4, 4):
        raise ValueError(f"{name} must be 4x4, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError(f"{name} contains NaN or inf")
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-5) or not np.isclose(np.linalg.det(R), 1.0, atol=1e-5):
        raise ValueError(f"{name} rotation is not orthonormal")
    if not np.allclose(T[3], [0, 0, 0, 1]):
        raise ValueError(f"{name} last row must be [0, 0, 0, 1]")


def rot_z(yaw: float) -> np.ndarray:
    """3x3 rotation about +z by yaw radians."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_y(angle: float) -> np.ndarray:
    """3x3 rotation about +y by angle radians."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def make_pose(R: np.ndarray, t) -> np.ndarray:
    """4x4 float64 homogeneous transform from rotation R and translation t."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.asarray(t, dtype=float)
    return T


def base_pose(x: float, y: float, yaw: float, z: float = 0.0) -> np.ndarray:
    """T_world_base for a robot on the floor at (x, y) metres heading yaw radians."""
    return make_pose(rot_z(yaw), (x, y, z))


def pose_xy_yaw(T_world_base: np.ndarray) -> tuple[float, float, float]:
    """(x, y, yaw) of a base pose; yaw from the x axis projected on the floor."""
    return float(T_world_base[0, 3]), float(T_world_base[1, 3]), math.atan2(T_world_base[1, 0], T_world_base[0, 0])


# Optical frame axes expressed in a level base frame: x_opt = -y_base, y_opt = -z_base, z_opt = x_base.
R_BASE_OPTICAL_LEVEL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def camera_mount(height: float, pitch_down: float) -> np.ndarray:
    """T_base_cam of a forward camera at `height` metres, pitched down by `pitch_down` radians."""
    return make_pose(rot_y(pitch_down) @ R_BASE_OPTICAL_LEVEL, (0.0, 0.0, height))


def wrap_angle(a):
    """Wrap angle(s) in radians to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi


def pixel_to_world(frame: Frame, u: float, v: float, half_window_px: int = 8) -> Optional[np.ndarray]:
    """World point (x, y, z metres) seen at pixel (u, v): the median valid depth in a square window of
    +-half_window_px pixels around it, back-projected through the frame's camera; None without valid depth."""
    k, h, w = frame.intrinsics, frame.intrinsics.height, frame.intrinsics.width
    ui, vi = int(round(u)), int(round(v))
    if not (0 <= ui < w and 0 <= vi < h):
        raise ValueError(f"pixel ({u}, {v}) is outside the {w}x{h} image")
    patch = np.asarray(frame.depth)[max(0, vi - half_window_px):vi + half_window_px + 1,
                                    max(0, ui - half_window_px):ui + half_window_px + 1]
    valid = patch[np.isfinite(patch) & (patch > 0)]
    if valid.size == 0:
        return None
    z = float(np.median(valid))
    p_cam = np.array([(u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z, 1.0])
    return (np.asarray(frame.T_world_cam, dtype=float) @ p_cam)[:3]


def quaternion_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """3x3 rotation of a quaternion (normalised first); ValueError for a non-finite or zero quaternion."""
    q = np.array([x, y, z, w], dtype=float)
    n = float(np.linalg.norm(q))
    if not np.all(np.isfinite(q)) or n < 1e-9:
        raise ValueError(f"not a rotation quaternion: {q.tolist()}")
    x, y, z, w = q / n
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_quaternion(R: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a 3x3 rotation, w >= 0."""
    R = np.asarray(R, dtype=float)
    trace = R[0, 0] + R[1, 1] + R[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = ((R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, 0.25 * s)
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + R[i, i] - R[j, j] - R[k, k], 1e-300))
        v = [0.0, 0.0, 0.0]
        v[i] = 0.25 * s
        v[j] = (R[j, i] + R[i, j]) / s
        v[k] = (R[k, i] + R[i, k]) / s
        q = (v[0], v[1], v[2], (R[k, j] - R[j, k]) / s)
    q = np.array(q) / np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return float(q[0]), float(q[1]), float(q[2]), float(q[3])
