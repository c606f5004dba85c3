"""habitat-sim as an `Env` (DESIGN.md section 3) for users who have it installed (conda; see README).

The agent's RGB and depth sensors are set up from the built-in simulator's `CameraConfig` (same size, field
of view, mount height and pitch, so the agent sees what it sees in the built-in simulator), moves follow
habitat-sim's pathfinder (its navmesh's shortest path, at most `max_distance` metres, frames captured every
`capture_spacing` metres facing the travel), turns set the agent's heading. Frames: sim.habitat_frame
converts every pose; depth is Habitat's z-depth in metres (0 = no depth).

habitat_sim is imported only when a HabitatEnv is made. The conversions, sensor specs and the path and turn
arithmetic below are plain functions, tested without habitat-sim.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from mapping.frame import Frame, Intrinsics, base_pose, pose_xy_yaw, wrap_angle
from sim.config import SimConfig
from sim.env import MoveResult, SimEpisode, capture_points, walk_polyline
from sim.habitat_frame import (agent_state_to_base_pose, base_pose_to_agent_state, habitat_to_world_point,
                               sensor_state_to_camera_pose, world_to_habitat_point)

RGB_UUID, DEPTH_UUID = "color", "depth"


@dataclass(frozen=True)
class SensorSpec:
    """One habitat-sim camera sensor: uuid, kind ("COLOR" or "DEPTH"), resolution (height, width) px, hfov
    deg, position (m) and orientation (rad, about the agent's x, y, z) in the agent's y-up frame."""

    uuid: str
    kind: str
    resolution: tuple[int, int]
    hfov_deg: float
    position: tuple[float, float, float]
    orientation: tuple[float, float, float]


def sensor_specs(config: SimConfig) -> list[SensorSpec]:
    """RGB and depth sensors matching the simulator camera: mounted camera.mount_height m above the agent's
    feet, pitched camera.pitch_down_deg down (a negative rotation about the agent's x axis)."""
    cam = config.camera
    pose = dict(resolution=(cam.height, cam.width), hfov_deg=cam.hfov_deg, position=(0.0, cam.mount_height, 0.0),
                orientation=(-math.radians(cam.pitch_down_deg), 0.0, 0.0))
    return [SensorSpec(RGB_UUID, "COLOR", **pose), SensorSpec(DEPTH_UUID, "DEPTH", **pose)]


def turned_agent_rotation(T_world_base: np.ndarray, angle: float) -> tuple[float, float, float, float]:
    """The agent rotation (w, x, y, z) after turning `angle` rad counter-clockwise seen from above (about our
    +z, which is Habitat's +y)."""
    x, y, yaw = pose_xy_yaw(T_world_base)
    return base_pose_to_agent_state(base_pose(x, y, float(wrap_angle(yaw + angle))))[1]


def path_to_world_xy(points_habitat) -> np.ndarray:
    """(K, 2) world xy of a Habitat path (K, 3)."""
    return habitat_to_world_point(np.asarray(points_habitat, float).reshape(-1, 3))[:, :2]


def frame_from_observation(obs: dict, intrinsics: Intrinsics, sensor_position, sensor_rotation_wxyz,
                           T_world_base: np.ndarray, stamp: float) -> Frame:
    """A Frame from habitat-sim observations (RGBA or RGB uint8, z-depth metres) and the sensor's state."""
    rgb = np.ascontiguousarray(np.asarray(obs[RGB_UUID])[..., :3], dtype=np.uint8)
    depth = np.asarray(obs[DEPTH_UUID], dtype=np.float32).reshape(rgb.shape[:2])
    depth = np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)
    return Frame(rgb=rgb, depth=depth, intrinsics=intrinsics,
                 T_world_cam=sensor_state_to_camera_pose(sensor_position, sensor_rotation_wxyz), stamp=stamp,
                 T_world_base=T_world_base)


class HabitatEnv:
    """habitat-sim's scene, agent and pathfinder as an `Env` (see the module docstring)."""

    def __init__(self, scene_file: str, config: Optional[SimConfig] = None, scene_dataset_config: str = "default"):
        try:
            import habitat_sim
        except ImportError:
            raise ImportError("HabitatEnv needs habitat-sim, installed with conda (see README: 'Habitat'); the "
                              "built-in simulator loads the same scene files: eqa explore --scene FILE") from None
        self._hs = habitat_sim
        self.config = config or SimConfig()
        cam = self.config.camera
        self.intrinsics = Intrinsics.from_hfov(cam.width, cam.height, math.radians(cam.hfov_deg))
        backend = habitat_sim.SimulatorConfiguration()
        backend.scene_id = scene_file
        backend.scene_dataset_config_file = scene_dataset_config
        agent = habitat_sim.agent.AgentConfiguration()
        agent.radius, agent.height = self.config.robot.radius, self.config.robot.height
        agent.sensor_specifications = [self._camera_spec(s) for s in sensor_specs(self.config)]
        self.sim = habitat_sim.Simulator(habitat_sim.Configuration(backend, [agent]))
        self.agent = self.sim.initialize_agent(0)
        self.stamp = 0.0
        self._pending: list[Frame] = []
        self.trajectory: list[tuple[float, float]] = []

    def _camera_spec(self, spec: SensorSpec):
        hs = self._hs
        s = hs.CameraSensorSpec()
        s.uuid = spec.uuid
        s.sensor_type = hs.SensorType.COLOR if spec.kind == "COLOR" else hs.SensorType.DEPTH
        s.resolution = list(spec.resolution)
        s.hfov = spec.hfov_deg
        s.position = list(spec.position)
        s.orientation = list(spec.orientation)
        return s

    # ---- Env contract ----
    def reset(self, episode: Optional[SimEpisode] = None) -> Frame:
        """Place the agent at episode.start (x, y, yaw in our world; z from the navmesh under it) or at a
        seeded random navigable point."""
        episode = episode or SimEpisode()
        pf = self.sim.pathfinder
        if episode.start is None:
            pf.seed(int(episode.seed))
            position = pf.get_random_navigable_point()
            yaw = float(np.random.default_rng(episode.seed).uniform(-math.pi, math.pi))
            x, y, _ = habitat_to_world_point(position)
        else:
            x, y, yaw = (float(v) for v in episode.start)
        self._place(x, y, yaw)
        self.stamp, self._pending, self.trajectory = 0.0, [], [(x, y)]
        return self._capture()

    def observe(self) -> list[Frame]:
        frames, self._pending = self._pending, []
        return frames

    def turn(self, angle: float) -> Frame:
        if not math.isfinite(angle):
            raise ValueError(f"turn angle must be finite, got {angle}")
        x, y, yaw = pose_xy_yaw(self.robot_pose())
        self._place(x, y, float(wrap_angle(yaw + angle)))
        self.stamp += abs(angle) / self.config.robot.angular_speed
        frame = self._capture()
        self._pending.append(frame)
        return frame

    def move_to(self, T_world_base: np.ndarray, max_distance: float) -> MoveResult:
        """Follow the navmesh's shortest path to the goal (snapped to the navmesh; `blocked` when it had to
        be moved or no path exists), at most max_distance metres."""
        if not max_distance >= 0:
            raise ValueError(f"max_distance must be >= 0, got {max_distance}")
        hs, pf = self._hs, self.sim.pathfinder
        x0, y0, yaw0 = pose_xy_yaw(self.robot_pose())
        gx, gy, gyaw = pose_xy_yaw(np.asarray(T_world_base, dtype=float))
        goal = world_to_habitat_point([gx, gy, 0.0])
        goal[1] = self.agent.get_state().position[1]
        snapped = np.asarray(pf.snap_point(goal), dtype=float)
        path = hs.ShortestPath()
        path.requested_start = self.agent.get_state().position
        path.requested_end = snapped
        found = pf.find_path(path) and len(path.points) >= 1
        blocked = (not found) or float(np.linalg.norm(snapped[[0, 2]] - goal[[0, 2]])) > 0.1
        pts = path_to_world_xy(path.points) if found else np.array([[x0, y0]])
        pts[0] = (x0, y0)
        travelled, walked, heading, complete = walk_polyline(pts, max_distance, yaw0)
        stamp0 = self.stamp
        for d, px, py, h in capture_points(walked, self.config.capture_spacing):
            self._place(px, py, h)
            self.stamp = stamp0 + d / self.config.robot.linear_speed
            self._pending.append(self._capture())
        self.stamp = stamp0
        reached = complete and not blocked
        end = walked[-1]
        self._place(float(end[0]), float(end[1]), float(wrap_angle(gyaw)) if reached else heading)
        self.stamp += travelled / self.config.robot.linear_speed
        self.trajectory.extend((float(px), float(py)) for px, py in walked[1:])
        self._pending.append(self._capture())
        return MoveResult(T_world_base=self.robot_pose(), distance=travelled, blocked=blocked, reached=reached)

    # ---- helpers ----
    def robot_pose(self) -> np.ndarray:
        state = self.agent.get_state()
        return agent_state_to_base_pose(state.position, _wxyz(state.rotation))

    def _place(self, x: float, y: float, yaw: float) -> None:
        position, rotation = base_pose_to_agent_state(base_pose(x, y, yaw))
        state = self.agent.get_state()
        floor = np.asarray(self.sim.pathfinder.snap_point(position), dtype=float)
        state.position = np.array([position[0], floor[1], position[2]], dtype=np.float32)
        state.rotation = self._hs.utils.common.quat_from_coeffs([rotation[1], rotation[2], rotation[3], rotation[0]])
        self.agent.set_state(state, reset_sensors=True)

    def _capture(self) -> Frame:
        obs = self.sim.get_sensor_observations()
        sensor = self.agent.get_state().sensor_states[RGB_UUID]
        return frame_from_observation(obs, self.intrinsics, sensor.position, _wxyz(sensor.rotation),
                                      self.robot_pose(), self.stamp)


def _wxyz(q) -> tuple[float, float, float, float]:
    """(w, x, y, z) of a numpy-quaternion or magnum quaternion."""
    if hasattr(q, "w"):
        return float(q.w), float(q.x), float(q.y), float(q.z)
    return tuple(float(v) for v in q)  # already (w, x, y, z)
