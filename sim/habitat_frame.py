"""Habitat's y-up frame <-> the project's z-up world frame (the one place this conversion lives).

Habitat world: y up, right-handed; an agent looks along its local -z, local +x is its right.
Ours (DESIGN.md, REP-103): world z up, right-handed; base frame x forward, y left, z up.

Points: p_world = R_WORLD_HABITAT @ p_habitat, i.e. (x, y, z)_habitat -> (x, -z, y). The matrix
is a proper rotation (det +1, a +90 degree turn about x), so handedness is preserved.

Agent heading: HM-EQA's `init_angle` is a rotation by `angle` radians about Habitat's +y axis
(the agent quaternion is angle-axis (angle, [0, 1, 0])). With angle 0 the agent faces Habitat
-z, which is our +y, i.e. yaw = pi/2. Rotations about Habitat +y become rotations about our +z
by the same angle (R_WORLD_HABITAT maps +y to +z), so yaw = wrap(angle + pi/2).
"""
from __future__ import annotations

import math

import numpy as np

from mapping.frame import make_pose, rot_y, wrap_angle

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
