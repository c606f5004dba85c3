"""Typed configuration of the built-in simulator (camera, robot, house generation)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated

from mapping.bounds import Positive, Probability, Range, check_bounds
from sim.scene import ROOM_KINDS

ImageSide = Annotated[int, Range(ge=8, le=4096)]  # pixels
MIN_CAPTURE_SPACING = 0.25  # m between frames captured while driving


CAMERA_PRESETS: dict[str, dict] = {
    # HM-EQA's set-up: a wide, exact pinhole RGB-D camera (depth without range limits, noise or holes)
    "hm-eqa": {"width": 640, "height": 480, "hfov_deg": 120.0, "depth_min_m": 0.0, "depth_max_m": 0.0,
               "depth_noise": 0.0, "depth_edge_holes": False, "depth_dark_dropout": 0.0, "depth_dropout": 0.0},
    # a RealSense D435-class camera (colour stream's 69 deg, depth registered to it): depth from 0.3 to 5 m,
    # noise growing with the square of the distance (stereo: about 1 cm at 2 m), no depth at occlusion edges,
    # on half of the pixels of dark surfaces and on 1 % of the rest
    "realsense": {"width": 640, "height": 480, "hfov_deg": 69.0, "depth_min_m": 0.3, "depth_max_m": 5.0,
                  "depth_noise": 0.0025, "depth_edge_holes": True, "depth_dark_dropout": 0.5, "depth_dropout": 0.01},
}
DEFAULT_CAMERA_PRESET = "hm-eqa"  # the simulator's camera unless a config names another


def check_camera_preset(name: str, field_name: str = "camera.preset") -> None:
    """ValueError naming `field_name` unless `name` is a key of CAMERA_PRESETS."""
    if name not in CAMERA_PRESETS:
        raise ValueError(f"{field_name} must be one of {sorted(CAMERA_PRESETS)}, got {name!r}")


@dataclass
class CameraConfig:
    """Pinhole RGB-D camera on the robot, colour and depth from one optical centre: image size px, horizontal
    FOV deg, mount height m, pitch down deg, and the depth sensor: valid range depth_min_m..depth_max_m
    (0: no limit), depth_noise (standard deviation in m at 1 m, growing with the square of the depth),
    depth_edge_holes (no depth where the depth jumps, as a stereo camera's occlusion shadows),
    depth_dark_dropout (share of dark-surface pixels without depth), depth_dropout (share of all pixels).
    preset: a named set of these (CAMERA_PRESETS); keys given beside it override its values."""

    preset: str = DEFAULT_CAMERA_PRESET
    width: ImageSide = 640
    height: ImageSide = 480
    hfov_deg: Annotated[float, Range(ge=1, le=170)] = 120.0
    mount_height: Annotated[float, Range(gt=0, lt=5)] = 1.5
    pitch_down_deg: Annotated[float, Range(ge=-89, le=89)] = 30.0
    depth_min_m: Annotated[float, Range(ge=0, le=100)] = 0.0
    depth_max_m: Annotated[float, Range(ge=0, le=1000)] = 0.0
    depth_noise: Annotated[float, Range(ge=0, le=1)] = 0.0
    depth_edge_holes: bool = False
    depth_dark_dropout: Probability = 0.0
    depth_dropout: Probability = 0.0

    def __post_init__(self) -> None:
        check_bounds(self)
        check_camera_preset(self.preset)
        if self.depth_max_m and self.depth_max_m <= self.depth_min_m:
            raise ValueError(f"camera.depth_max_m ({self.depth_max_m}) must exceed depth_min_m ({self.depth_min_m})")

    @staticmethod
    def expand_config(data: dict) -> dict:
        """A camera section with its preset's values under the keys it gives (eqa.config.from_dict calls it)."""
        preset = data.get("preset", DEFAULT_CAMERA_PRESET)
        check_camera_preset(preset)
        return {**CAMERA_PRESETS[preset], **data}

    def describe(self) -> str:
        """One line naming the camera, as calibrations record it: 'realsense 640x480 69 deg, depth 0.3-5 m,
        noise 0.0025 m at 1 m, holes'."""
        depth = "exact depth" if self.exact_depth else (
            f"depth {self.depth_min_m:g}-{self.depth_max_m:g} m" if self.depth_max_m else
            f"depth from {self.depth_min_m:g} m")
        if self.depth_noise:
            depth += f", noise {self.depth_noise:g} m at 1 m"
        if self.depth_edge_holes or self.depth_dark_dropout or self.depth_dropout:
            depth += (f", holes (edges {'on' if self.depth_edge_holes else 'off'}, dark "
                      f"{self.depth_dark_dropout:g}, random {self.depth_dropout:g})")
        return (f"{self.preset} {self.width}x{self.height} {self.hfov_deg:g} deg, {depth}, mounted "
                f"{self.mount_height:g} m up, pitched {self.pitch_down_deg:g} deg down")

    @property
    def exact_depth(self) -> bool:
        """Whether depth is exact (no range limits, noise or holes)."""
        return not (self.depth_min_m or self.depth_max_m or self.depth_noise or self.depth_edge_holes
                    or self.depth_dark_dropout or self.depth_dropout)


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
