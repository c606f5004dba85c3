"""Habitat's y-up frame <-> the project's z-up world frame (the one place this conversion lives).

Habitat world: y up, right-handed; an agent looks along its local -z, local +x is its right.
Ours (DESIGN.md, REP-103): world z up, right-handed; base frame x forward, y left, z up.

Points: p_world = R_WORLD_HABITAT @ p_habitat, i.e. (x, y, z)_habitat -> (x, -z, y). The matrix
is a proper rotation (det +1, a +90 degree turn about x), so handedness is preserved.

Agent heading: HM-EQA's `init_angle` is a rotation by `angle` radians about Habitat's +y axis
(the agent quaternion is angle-axis (angle, [0, 1, 0])). With angle 0 the agent faces Habitat
-z, which is our +y, i.e. yaw = pi/2. Rotations about Habitat +y become rotations about our +z
by the same angle (R_WORLD_HABITAT maps +y to +z), so yaw = wrap(angle + pi/2).

Cameras: a Habitat sensor is an OpenGL camera (x right, y up, looking along -z); ours is OpenCV's optical
frame (x right, y down, z forward): R_GLCAM_OPTICAL. Habitat quaternions are (w, x, y, z).
"""
from __future__ import annotations

import math

import numpy as np

from mapping.frame import make_pose, matrix_quaternion, quaternion_matrix, rot_y, wrap_angle

# p_world = R_WORLD_HABITAT @ p_habitat.
R_WORLD_HABITAT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# Our base axes (x forward, y left, z up) expressed in a Habitat agent's local axes (forward -z, right +x, up +y).
R_AGENT_BASE = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])


def habitat_to_world_point(p) -> np.ndarray:
    """(..., 3) Habitat (x, y, z) metres -> (..., 3) world (x, y, z) metres."""
    return np.asarray(p, dtype=float) @ R_WORLD_HABITAT.T


def world_to_habitat_point(p) -> np.ndarray:
    """Inverse of `habitat_to_world_point`."""
    return np.asarray(p, dtype=float) @ R_WORLD_HABITAT


def habitat_angle_to_yaw(angle: float) -> float:
    """Agent rotation about Habitat +y (radians) -> base yaw about world +z in [-pi, pi)."""
    if not math.isfinite(angle):
        raise ValueError(f"Habitat agent angle must be finite, got {angle}")
    return float(wrap_angle(angle + math.pi / 2))


def habitat_agent_pose(position, angle: float) -> np.ndarray:
    """4x4 T_world_base of a Habitat agent at `position` (Habitat metres, feet on the floor), turned `angle`."""
    R_habitat_base = rot_y(angle) @ R_AGENT_BASE
    return make_pose(R_WORLD_HABITAT @ R_habitat_base, habitat_to_world_point(position))


# A Habitat camera (OpenGL: x right, y up, looking along -z) -> our optical frame (x right, y down, z forward).
R_GLCAM_OPTICAL = np.diag([1.0, -1.0, -1.0])


def quaternion_wxyz_matrix(q) -> np.ndarray:
    """3x3 rotation of a Habitat quaternion given as (w, x, y, z) (numpy-quaternion's order)."""
    w, x, y, z = (float(v) for v in q)
    return quaternion_matrix(x, y, z, w)


def matrix_quaternion_wxyz(R: np.ndarray) -> tuple[float, float, float, float]:
    """(w, x, y, z) of a 3x3 rotation, w >= 0."""
    x, y, z, w = matrix_quaternion(R)
    return w, x, y, z


def agent_state_to_base_pose(position, rotation_wxyz) -> np.ndarray:
    """4x4 T_world_base of a Habitat agent state (position in Habitat metres, rotation quaternion (w, x, y, z)
    of the agent's local frame in Habitat's)."""
    R_habitat_agent = quaternion_wxyz_matrix(rotation_wxyz)
    return make_pose(R_WORLD_HABITAT @ R_habitat_agent @ R_AGENT_BASE, habitat_to_world_point(position))


def base_pose_to_agent_state(T_world_base: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """(Habitat position (3,), rotation (w, x, y, z)) of a robot base pose: the inverse of
    agent_state_to_base_pose."""
    R_habitat_agent = R_WORLD_HABITAT.T @ np.asarray(T_world_base)[:3, :3] @ R_AGENT_BASE.T
    return world_to_habitat_point(np.asarray(T_world_base)[:3, 3]), matrix_quaternion_wxyz(R_habitat_agent)


def sensor_state_to_camera_pose(position, rotation_wxyz) -> np.ndarray:
    """4x4 T_world_cam (OpenCV optical frame) of a Habitat camera sensor state (position in Habitat metres,
    rotation (w, x, y, z) of the OpenGL camera frame in Habitat's)."""
    R_habitat_glcam = quaternion_wxyz_matrix(rotation_wxyz)
    return make_pose(R_WORLD_HABITAT @ R_habitat_glcam @ R_GLCAM_OPTICAL, habitat_to_world_point(position))


def camera_matrix_to_camera_pose(T_habitat_glcam) -> np.ndarray:
    """4x4 T_world_cam (OpenCV optical frame) of a Habitat camera's 4x4 camera-to-world matrix (OpenGL camera in
    Habitat's y-up world; e.g. OpenEQA's extracted frame poses). ValueError if it is not a rigid transform."""
    T = np.asarray(T_habitat_glcam, dtype=float)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ValueError(f"a camera pose must be a finite 4x4 matrix, got shape {T.shape}")
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-3) or np.linalg.det(R) < 0 or not np.allclose(T[3], [0, 0, 0, 1]):
        raise ValueError("a camera pose must be a rigid transform (rotation and translation)")
    return make_pose(R_WORLD_HABITAT @ R @ R_GLCAM_OPTICAL, habitat_to_world_point(T[:3, 3]))


def camera_heading(T_world_cam: np.ndarray) -> float:
    """Yaw (rad, about world +z) of the direction an optical camera looks, projected on the floor."""
    forward = np.asarray(T_world_cam)[:3, 2]
    if np.hypot(forward[0], forward[1]) < 1e-6:
        raise ValueError("the camera looks straight up or down: no heading")
    return float(math.atan2(forward[1], forward[0]))
