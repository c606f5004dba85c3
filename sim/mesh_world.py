"""A mesh scene file made ready for the simulator: loaded (z up), one floor chosen, shifted so that floor
lies at z = 0 (the robot's base frame sits on the floor, as on a real robot's odometry frame), with the
disc robot's free space on it.

Frames: the world frame here is the file's frame (z up after `sim.mesh_io`) translated by (0, 0, -floor_z).
`to_world` / `start_pose` map file-frame points and Habitat start poses (HM-EQA) into it.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import numpy as np

from mapping.bounds import Range, check_bounds
from sim.freespace import FreeSpace
from sim.habitat_frame import habitat_angle_to_yaw, habitat_to_world_point
from sim.mesh_freespace import choose_floor, mesh_freespace
from sim.mesh_io import SHADINGS, UP_AXES, load_mesh_scene
from sim.mesh_scene import MeshScene


@dataclass(frozen=True)
class MeshSceneConfig:
    """How a mesh scene file is read: up axis and shading (sim.mesh_io: auto, y or z; auto, lambert or
    flat), floor_step: the highest step the robot drives over (m; also the floor-height tolerance),
    start_snap: how far (m) a given start pose that is not navigable may move to the nearest navigable
    cell (HM-EQA starts come from Habitat's navmesh, made for a thinner agent); 0: an error."""

    up: str = "auto"
    shading: str = "auto"
    floor_step: Annotated[float, Range(gt=0, le=0.5)] = 0.1
    start_snap: Annotated[float, Range(ge=0, le=2)] = 0.5

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.up not in UP_AXES:
            raise ValueError(f"scene.up must be one of {UP_AXES}, got {self.up!r}")
        if self.shading not in SHADINGS:
            raise ValueError(f"scene.shading must be one of {SHADINGS}, got {self.shading!r}")


class MeshWorld:
    """A loaded scene file on one floor (see the module docstring)."""

    def __init__(self, mesh: MeshScene, floor_z: float, path: str, config: MeshSceneConfig):
        self.floor_z = float(floor_z)
        self.mesh = mesh.transformed(np.eye(3), (0.0, 0.0, -self.floor_z))
        self.path = path
        self.config = config
        self._freespace: dict[tuple, FreeSpace] = {}

    @property
    def name(self) -> str:
        return Path(self.path).name

    def freespace(self, robot_radius: float, robot_height: float, resolution: float) -> FreeSpace:
        """The robot's free space on this floor (computed once per robot and resolution)."""
        key = (robot_radius, robot_height, resolution)
        if key not in self._freespace:
            self._freespace[key] = mesh_freespace(self.mesh, 0.0, robot_radius, robot_height,
                                                  self.config.floor_step, resolution)
        return self._freespace[key]

    def to_world(self, p_file) -> np.ndarray:
        """(..., 3) points of the file's (z-up) frame -> this world (floor at z = 0)."""
        return np.asarray(p_file, dtype=float) - np.array([0.0, 0.0, self.floor_z])

    def habitat_start(self, position_habitat, angle: float) -> tuple[float, float, float]:
        """(x, y, yaw) in this world of a Habitat agent start (position in Habitat's y-up frame, angle about +y),
        e.g. an HM-EQA scene_init_poses row."""
        x, y, _ = self.to_world(habitat_to_world_point(position_habitat))
        return float(x), float(y), habitat_angle_to_yaw(angle)

    def floor_area(self, freespace: FreeSpace) -> float:
        """Floor area (m^2) seen from above, furniture and walls standing on it included (as a procedural
        house's room area is)."""
        return freespace.inside_area()

    def describe(self) -> str:
        lo, hi = self.mesh.bounds()
        return (f"{self.name}: {self.mesh.n_triangles} triangles, {len(self.mesh.textures)} textures, "
                f"{len(self.mesh.names)} labelled instances, {hi[0] - lo[0]:.1f} x {hi[1] - lo[1]:.1f} m, "
                f"floor at {self.floor_z:.2f} m")


def load_world(path: str | Path, config: Optional[MeshSceneConfig] = None, floor_near: Optional[float] = None,
               floor_z: Optional[float] = None, floor_below: Optional[float] = None) -> MeshWorld:
    """Load a scene file and pick its floor: `floor_z` (m, file frame) as given, else the detected floor
    nearest `floor_near` (e.g. a start pose's height), else the largest detected floor 0.2-2.5 m below
    `floor_below` (a camera's height), else the detected floor with the largest area."""
    config = config or MeshSceneConfig()
    mesh = load_mesh_scene(path, config.up, config.shading)
    if floor_z is None:
        floor_z = choose_floor(mesh, floor_near, below=floor_below)
    elif not math.isfinite(floor_z):
        raise ValueError(f"floor height must be finite, got {floor_z}")
    return MeshWorld(mesh, floor_z, str(path), config)


@functools.lru_cache(maxsize=2)
def cached_world(path: str, config: MeshSceneConfig, floor_near: Optional[float] = None,
                 floor_below: Optional[float] = None) -> MeshWorld:
    """One loaded world per (file, config, floor near `floor_near` m or below `floor_below` m) per process: a
    benchmark's questions on the same scene and floor share its mesh and free space."""
    return load_world(path, config, floor_near=floor_near, floor_below=floor_below)
