"""Typed configuration of the built-in simulator (camera, robot, house generation)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated

from mapping.bounds import Positive, Probability, Range, check_bounds
from sim.scene import ROOM_KINDS

ImageSide = Annotated[int, Range(ge=8, le=4096)]  # pixels
MIN_CAPTURE_SPACING = 0.25  # m between frames captured while driving


@dataclass
class CameraConfig:
    """Pinhole RGB-D camera on the robot: image size px, horizontal FOV deg, mount height m, pitch down deg."""

    width: ImageSide = 640
    height: ImageSide = 480
    hfov_deg: Annotated[float, Range(ge=1, le=170)] = 120.0
    mount_height: Annotated[float, Range(gt=0, lt=5)] = 1.5
    pitch_down_deg: Annotated[float, Range(ge=-89, le=89)] = 30.0

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass
class RobotConfig:
    """A disc robot: radius m, height m (obstacles below it block), speeds m/s and rad/s."""

    radius: Annotated[float, Range(gt=0, le=2)] = 0.2
    height: Annotated[float, Range(gt=0, le=5)] = 1.5
    linear_speed: Positive = 0.5
    angular_speed: Positive = 1.0

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass
class HouseConfig:
    """Procedural house generation: room count range, wall and door sizes (m), door probabilities."""

    min_rooms: Annotated[int, Range(ge=1, le=16)] = 4
    max_rooms: Annotated[int, Range(ge=1, le=16)] = 10
    wall_height: Annotated[float, Range(ge=2, le=5)] = 2.5
    wall_thickness: Annotated[float, Range(gt=0, lt=0.5)] = 0.1
    door_width: Annotated[float, Range(ge=0.7, le=1.5)] = 0.9
    min_room_side: Annotated[float, Range(ge=1.5, le=20)] = 2.6
    extra_door_prob: Probability = 0.3
    closed_door_prob: Probability = 0.5
    door_leaf_prob: Probability = 0.5
    room_kinds: tuple[str, ...] = ROOM_KINDS

    def __post_init__(self) -> None:
        check_bounds(self)
        if not self.min_rooms <= self.max_rooms:
            raise ValueError(f"need 1 <= min_rooms <= max_rooms <= 16, got {self.min_rooms}..{self.max_rooms}")
        unknown = [k for k in self.room_kinds if k not in ROOM_KINDS]
        if unknown:
            raise ValueError(f"unknown room kind(s) {unknown}; known: {list(ROOM_KINDS)}")



@dataclass
class SimConfig:
    """Everything the built-in simulator needs.

    grid_resolution: the true free-space grid (m/cell). capture_spacing: while driving, a frame
    is captured every this many metres, facing the direction of travel (0 = only at the end).
    """

    camera: CameraConfig = field(default_factory=CameraConfig)
    robot: RobotConfig = field(default_factory=RobotConfig)
    house: HouseConfig = field(default_factory=HouseConfig)
    grid_resolution: Annotated[float, Range(ge=0.01, le=0.2)] = 0.05
    capture_spacing: Annotated[float, Range(ge=0, le=100)] = 1.0

    def __post_init__(self) -> None:
        check_bounds(self)
        if 0 < self.capture_spacing < MIN_CAPTURE_SPACING:  # each frame is a full render kept for the agent
            raise ValueError(f"capture_spacing must be 0 (only at the end of a move) or >= {MIN_CAPTURE_SPACING} m, "
                             f"got {self.capture_spacing}")

    @property
    def hfov_rad(self) -> float:
        return math.radians(self.camera.hfov_deg)
