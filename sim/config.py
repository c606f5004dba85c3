"""Typed configuration of the built-in simulator (camera, robot, house generation)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from sim.scene import ROOM_KINDS


@dataclass
class CameraConfig:
    """Pinhole RGB-D camera on the robot: image size px, horizontal FOV deg, mount height m, pitch down deg."""

    width: int = 640
    height: int = 480
    hfov_deg: float = 120.0
    mount_height: float = 1.5
    pitch_down_deg: float = 30.0

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera image size must be positive, got {self.width}x{self.height}")
        if not 1.0 <= self.hfov_deg <= 170.0:
            raise ValueError(f"camera hfov_deg must be in [1, 170], got {self.hfov_deg}")
        if not 0.0 < self.mount_height < 5.0:
            raise ValueError(f"camera mount_height must be in (0, 5) m, got {self.mount_height}")
        if not -89.0 <= self.pitch_down_deg <= 89.0:
            raise ValueError(f"camera pitch_down_deg must be in [-89, 89], got {self.pitch_down_deg}")


@dataclass
class RobotConfig:
    """A disc robot: radius m, height m (obstacles below it block), speeds m/s and rad/s."""

    radius: float = 0.2
    height: float = 1.5
    linear_speed: float = 0.5
    angular_speed: float = 1.0

    def __post_init__(self) -> None:
        if not self.radius > 0:
            raise ValueError(f"robot radius must be positive, got {self.radius}")
        if not self.height > 0:
            raise ValueError(f"robot height must be positive, got {self.height}")
        if not (self.linear_speed > 0 and self.angular_speed > 0):
            raise ValueError("robot speeds must be positive")


@dataclass
class HouseConfig:
    """Procedural house generation: room count range, wall and door sizes (m), door probabilities."""

    min_rooms: int = 4
    max_rooms: int = 10
    wall_height: float = 2.5
    wall_thickness: float = 0.1
    door_width: float = 0.9
    min_room_side: float = 2.6
    extra_door_prob: float = 0.3
    closed_door_prob: float = 0.5
    door_leaf_prob: float = 0.5
    room_kinds: tuple[str, ...] = ROOM_KINDS

    def __post_init__(self) -> None:
        if not 1 <= self.min_rooms <= self.max_rooms <= 16:
            raise ValueError(f"need 1 <= min_rooms <= max_rooms <= 16, got {self.min_rooms}..{self.max_rooms}")
        unknown = [k for k in self.room_kinds if k not in ROOM_KINDS]
        if unknown:
            raise ValueError(f"unknown room kind(s) {unknown}; known: {list(ROOM_KINDS)}")
        if not 0 < self.wall_thickness < 0.5 or not 2.0 <= self.wall_height <= 5.0:
            raise ValueError("wall_thickness must be in (0, 0.5) m and wall_height in [2, 5] m")
        if not 0.7 <= self.door_width <= 1.5:
            raise ValueError(f"door_width must be in [0.7, 1.5] m, got {self.door_width}")
        for name in ("extra_door_prob", "closed_door_prob", "door_leaf_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")


@dataclass
class SimConfig:
    """Everything the built-in simulator needs.

    grid_resolution: the true free-space grid (m/cell). capture_spacing: while driving, a frame
    is captured every this many metres, facing the direction of travel (0 = only at the end).
    """

    camera: CameraConfig = field(default_factory=CameraConfig)
    robot: RobotConfig = field(default_factory=RobotConfig)
    house: HouseConfig = field(default_factory=HouseConfig)
    grid_resolution: float = 0.05
    capture_spacing: float = 1.0

    def __post_init__(self) -> None:
        if self.capture_spacing < 0:
            raise ValueError(f"capture_spacing must be >= 0 m, got {self.capture_spacing}")
        if not 0.01 <= self.grid_resolution <= 0.2:
            raise ValueError(f"grid_resolution must be in [0.01, 0.2] m, got {self.grid_resolution}")

    @property
    def hfov_rad(self) -> float:
        return math.radians(self.camera.hfov_deg)
