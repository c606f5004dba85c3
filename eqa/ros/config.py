"""Settings of the ROS 2 nodes, each a ROS parameter (sections become dotted names: `topics.rgb`,
`navigation.timeout_s`). Defaults are here; `configs/ros/eqa_node.yaml` and `configs/ros/sim_robot.yaml`
set them for robots and the simulated robot. Units: metres, radians, seconds."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any

from mapping.bounds import NonNegative, Positive, Range, check_bounds
from sim.config import check_camera_preset

POSE_SOURCES = ("tf", "odom")
NAV_MODES = ("nav2", "goal_pose")


@dataclass
class TopicConfig:
    """Topic and action names (remap them, or set them here)."""

    rgb: str = "/camera/color/image_raw"
    depth: str = "/camera/aligned_depth_to_color/image_raw"
    camera_info: str = "/camera/color/camera_info"
    odom: str = "/odom"
    goal_pose: str = "/goal_pose"
    navigate_action: str = "navigate_to_pose"


@dataclass
class FrameConfig:
    """world: the fixed frame goals are given in (map); base: the robot's base frame. pose_source 'tf': camera
    and base poses from /tf and /tf_static at each image's stamp; 'odom': the base pose from Odometry
    (header.frame_id -> child_frame_id, which must be world -> base) and the camera from camera_offset, the
    camera body's pose in the base frame (x, y, z metres; roll, pitch, yaw radians, REP-103: pitch > 0 looks
    down), the optical frame following REP-103."""

    world: str = "map"
    base: str = "base_link"
    pose_source: str = "tf"
    camera_offset: list[float] = field(default_factory=lambda: [0.0, 0.0, 1.5, 0.0, 0.5236, 0.0])

    def __post_init__(self) -> None:
        if self.pose_source not in POSE_SOURCES:
            raise ValueError(f"frames.pose_source must be one of {POSE_SOURCES}, got {self.pose_source!r}")
        if len(self.camera_offset) != 6:
            raise ValueError(f"frames.camera_offset needs 6 numbers (x, y, z, roll, pitch, yaw), got "
                             f"{self.camera_offset}")


@dataclass
class SyncConfig:
    """pair_tolerance_s: colour, depth and camera info of one frame lie within this of each other;
    pose_tolerance_s: a frame newer than the newest pose (TF or odometry) waits this long for one at or after
    its stamp, then takes the newest if that is at most this much older (0: always wait for a pose at or after
    the frame's stamp); a frame without a pose after frame_timeout_s is dropped as stale; frame_timeout_s also
    bounds how long the agent waits for a frame (then the question ends with an error); max_frame_age_s: the
    first frame of a question is at most this old;
    stationary_speed / stationary_turn_rate (m/s, rad/s): the robot counts as stopped below both (odometry
    twist), which marks the frame a decision waits for after a motion; reliable_sensors: subscribe to images
    with reliable QoS (default: sensor data, best effort); queue_depth: messages each camera subscription
    holds while the node is busy (the DDS history depth; a burst longer than this loses the oldest), and also
    how many messages of each stream wait for the other streams of their frame (at least 8)."""

    pair_tolerance_s: NonNegative = 0.02
    pose_tolerance_s: NonNegative = 0.1
    frame_timeout_s: Positive = 10.0
    max_frame_age_s: Positive = 2.0
    stationary_speed: NonNegative = 0.05
    stationary_turn_rate: NonNegative = 0.1
    reliable_sensors: bool = False
    queue_depth: Annotated[int, Range(ge=1, le=1000)] = 5

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass
class KeyframeConfig:
    """A frame is kept for the agent when the robot moved min_distance metres or turned min_angle radians since
    the last kept one (0 and 0: every frame); at most capacity wait for a decision."""

    min_distance: NonNegative = 1.0
    min_angle: NonNegative = 0.5
    capacity: Annotated[int, Range(ge=1, le=1000)] = 16

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass
class NavigationConfig:
    """mode 'nav2': goals through the NavigateToPose action (topics.navigate_action); 'goal_pose': PoseStamped
    on topics.goal_pose, arrival read from the pose. A goal counts as reached when the robot ends within
    arrival_distance m and arrival_angle rad of it (at least the navigation stack's own goal tolerances).
    timeout_s: a goal not finished by then is canceled and reported "not reached"; server_timeout_s: how long
    to wait for the action server; stall_s ('goal_pose'): a robot whose pose has not changed for this long has
    stopped (short of the goal, unless within the arrival distance and angle)."""

    mode: str = "nav2"
    timeout_s: Positive = 60.0
    server_timeout_s: Positive = 5.0
    arrival_distance: Positive = 0.3
    arrival_angle: Positive = 0.3
    stall_s: Positive = 5.0

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.mode not in NAV_MODES:
            raise ValueError(f"navigation.mode must be one of {NAV_MODES}, got {self.mode!r}")


@dataclass
class EQANodeConfig:
    """The eqa_node. method: a method config (name in configs/ or a path) with method_overrides (key=value);
    vlm_backend / vlm_base_url / vlm_model: the VLM ('' keeps the method's; 'openai' with a base URL for a VLM
    server on the robot's GPU); camera_preset: the simulator camera preset (sim.config.CAMERA_PRESETS) the
    robot's camera is closest to, which picks the shipped calibration (default realsense: a RealSense-class
    RGB-D camera); stop_policy, eps and calibration ('' = the shipped one of the preset) for stopping;
    episodes_dir: where each question's record and pictures go; seed: the planner's random seed;
    floor_area_m2: the floor area of the place, which sets the decision budget as in the simulator
    (ceil(agent.budget_factor * sqrt(area)); 0: unknown, agent.default_budget); record_bags: also record each
    question as a rosbag2 bag (MCAP) in its episode folder, `bag/` (eqa.bag.recorder: the frames the agent was
    given and its decisions; `eqa replay --check` re-runs it); autostart: configure and activate at start
    (otherwise a lifecycle manager does). Parameters are read when the node starts."""

    method: str = "semantic"
    method_overrides: list[str] = field(default_factory=list)
    vlm_backend: str = ""
    vlm_base_url: str = ""
    vlm_model: str = ""
    camera_preset: str = "realsense"
    stop_policy: str = "conformal"
    eps: Annotated[float, Range(gt=0, lt=1)] = 0.1
    calibration: str = ""
    episodes_dir: str = "eqa_episodes"
    seed: Annotated[int, Range(ge=0)] = 0
    floor_area_m2: NonNegative = 0.0
    record_bags: bool = False
    autostart: bool = True
    topics: TopicConfig = field(default_factory=TopicConfig)
    frames: FrameConfig = field(default_factory=FrameConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    navigation: NavigationConfig = field(default_factory=NavigationConfig)

    def __post_init__(self) -> None:
        check_bounds(self)
        check_camera_preset(self.camera_preset, "camera_preset")

    def method_overrides_all(self) -> list[str]:
        """The camera preset, then the method overrides, then the VLM and stopping settings (later ones win)."""
        out = [f"sim.camera.preset={self.camera_preset}"] + list(self.method_overrides)
        if self.vlm_backend:
            out.append(f"vlm.backend={self.vlm_backend}")
        if self.vlm_base_url:
            out.append(f"vlm.openai.base_url={self.vlm_base_url}")
        if self.vlm_model:
            out.append(f"vlm.openai.model={self.vlm_model}")
        out += [f"stop.policy={self.stop_policy}", f"stop.eps={self.eps}"]
        if self.calibration:
            out.append(f"stop.calibration={self.calibration}")
        return out


@dataclass
class SimRobotConfig:
    """The sim_robot: the built-in house of `seed` (n_rooms 0: seeded), the robot at `start` (x, y, yaw; empty:
    a seeded random start), the simulator of the run config `method` with the camera of `camera_preset`
    (sim.config.CAMERA_PRESETS; default realsense) and `overrides` (its `sim:` section, applied after the preset;
    a goal moves the robot at most its agent.planner.max_move_per_step, as in-process).
    rate_hz 0: publish exactly the frames the in-process simulator captures (one per capture_spacing along a
    move, one after each move and turn), stamped in simulated time; rate_hz > 0: stream the camera at that
    rate while moving at the robot's speed in real time. Topic names as the eqa_node's defaults."""

    seed: Annotated[int, Range(ge=0)] = 0
    n_rooms: Annotated[int, Range(ge=0, le=12)] = 0
    start: list[float] = field(default_factory=list)
    method: str = "semantic"
    camera_preset: str = "realsense"
    overrides: list[str] = field(default_factory=list)
    rate_hz: Annotated[float, Range(ge=0, le=60)] = 0.0
    publish_tf: bool = True
    depth_encoding: str = "32FC1"
    world_frame: str = "map"
    base_frame: str = "base_link"
    camera_frame: str = "camera_color_optical_frame"
    topics: TopicConfig = field(default_factory=TopicConfig)

    def __post_init__(self) -> None:
        check_bounds(self)
        check_camera_preset(self.camera_preset, "camera_preset")
        if self.start and len(self.start) != 3:
            raise ValueError(f"start needs x, y, yaw, got {self.start}")
        if self.depth_encoding not in ("32FC1", "16UC1"):
            raise ValueError(f"depth_encoding must be 32FC1 or 16UC1, got {self.depth_encoding!r}")

    def run_overrides(self) -> list[str]:
        """The camera preset, then the overrides (later ones win)."""
        return [f"sim.camera.preset={self.camera_preset}"] + list(self.overrides)


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted parameter name -> value of every leaf field of a config dataclass (sections become prefixes)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.update(flatten(value, name + "."))
        else:
            out[name] = list(value) if isinstance(value, list) else value
    return out


def unflatten(values: dict[str, Any]) -> dict:
    """The nested dict of dotted names (the inverse of flatten, for eqa.config.from_dict)."""
    out: dict = {}
    for name, value in values.items():
        node = out
        *sections, leaf = name.split(".")
        for s in sections:
            node = node.setdefault(s, {})
        node[leaf] = value
    return out
