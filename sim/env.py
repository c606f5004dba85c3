"""The built-in simulator as an environment (the `Env` contract of DESIGN.md section 3, eqa.episode.Env).

Poses: T_world_base (robot on the floor, x forward, y left), T_world_cam (optical).
`move_to` follows a collision-free shortest path on the true free space, at most
`max_distance` metres per call; nothing teleports through walls or objects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from mapping.frame import Frame, Intrinsics, base_pose, camera_mount, check_pose, pose_xy_yaw, wrap_angle
from sim.config import SimConfig
from sim.depth_sensor import sensor_depth, view_rng
from sim.freespace import FreeSpace
from sim.house import generate_house
from sim.mesh_render import MeshRenderer
from sim.mesh_world import MeshWorld
from sim.render import Renderer
from sim.scene import Scene


@dataclass
class MoveResult:
    """Outcome of `move_to`: pose reached, metres travelled, whether the goal was out of reach."""

    T_world_base: np.ndarray
    distance: float
    blocked: bool
    reached: bool


@dataclass
class SimEpisode:
    """Where an episode starts: (x, y, yaw) metres/radians; None = a seeded random navigable pose."""

    start: Optional[tuple[float, float, float]] = None
    seed: int = 0


@dataclass
class _RobotState:
    x: float
    y: float
    yaw: float
    stamp: float = 0.0
    path: list[tuple[float, float]] = field(default_factory=list)
    trajectory: list[tuple[float, float]] = field(default_factory=list)


class SimEnv:
    """The built-in simulator as an `Env`: a scene, a ray-cast RGB-D camera and a disc robot."""

    def __init__(self, scene: Scene | MeshWorld, config: Optional[SimConfig] = None):
        """scene: a procedural house, or a mesh scene file loaded on one floor (sim.mesh_world)."""
        self.config = config or SimConfig()
        self.scene = scene
        cam = self.config.camera
        self.intrinsics = Intrinsics.from_hfov(cam.width, cam.height, math.radians(cam.hfov_deg))
        self.T_base_cam = camera_mount(cam.mount_height, math.radians(cam.pitch_down_deg))
        robot = self.config.robot
        if isinstance(scene, MeshWorld):
            self.renderer = MeshRenderer(scene.mesh, self.intrinsics)
            self.freespace = scene.freespace(robot.radius, robot.height, self.config.grid_resolution)
        else:
            self.renderer = Renderer(scene, self.intrinsics)
            self.freespace = FreeSpace.from_scene(scene, robot.radius, robot.height, self.config.grid_resolution)
        self._state: Optional[_RobotState] = None
        self._pending: list[Frame] = []

    @classmethod
    def from_seed(cls, seed: int, config: Optional[SimConfig] = None, n_rooms: Optional[int] = None) -> "SimEnv":
        config = config or SimConfig()
        return cls(generate_house(seed, n_rooms, config.house, config.robot), config)

    # ---- Env contract ----
    def reset(self, episode: Optional[SimEpisode] = None) -> Frame:
        """Place the robot at the episode start and return the first frame."""
        episode = episode or SimEpisode()
        if episode.start is None:
            x, y, yaw = self.random_start(np.random.default_rng(episode.seed))
        else:
            x, y, yaw = (float(v) for v in episode.start)
            if not self.freespace.is_navigable(np.array([x, y])):
                raise ValueError(f"start pose ({x:.2f}, {y:.2f}) collides with the scene or lies outside it (the "
                                 f"robot's {self.config.robot.radius:g} m disc does not fit there)")
        self._state = _RobotState(x, y, float(wrap_angle(yaw)), 0.0, [(x, y)], [(x, y)])
        self._pending = []
        return self._capture()

    def observe(self) -> list[Frame]:
        """Frames captured since the last call: along and after every move, after every turn."""
        frames, self._pending = self._pending, []
        return frames

    def turn(self, angle: float) -> Frame:
        """Rotate in place by `angle` radians (positive = counter-clockwise) and capture a frame."""
        s = self._require_state()
        if not math.isfinite(angle):
            raise ValueError(f"turn angle must be finite, got {angle}")
        s.yaw = float(wrap_angle(s.yaw + angle))
        s.stamp += abs(angle) / self.config.robot.angular_speed
        frame = self._capture()
        self._pending.append(frame)
        return frame

    def move_to(self, T_world_base: np.ndarray, max_distance: float) -> MoveResult:
        """Drive along the shortest collision-free path towards the goal, at most `max_distance` metres.

        An unreachable goal (inside an obstacle or walled off) is replaced by the reachable cell
        nearest to it, and the result says `blocked`. The final heading is the goal's when reached,
        else the direction of the last motion.
        """
        s = self._require_state()
        check_pose(np.asarray(T_world_base, dtype=float), "goal T_world_base")
        if not max_distance >= 0:
            raise ValueError(f"max_distance must be >= 0, got {max_distance}")
        gx, gy, gyaw = pose_xy_yaw(np.asarray(T_world_base, dtype=float))
        fs = self.freespace
        label = fs.component_of(np.array([s.x, s.y]))
        start_rc = fs.grid.world_to_cell(np.array([s.x, s.y])) if label else fs.nearest_in_component((s.x, s.y), None)
        if not label:
            label = int(fs.components[start_rc[0], start_rc[1]])
        goal_ok = fs.component_of(np.array([gx, gy])) == label
        goal_rc = fs.grid.world_to_cell(np.array([gx, gy])) if goal_ok else fs.nearest_in_component((gx, gy), label)
        pts = fs.shortest_path(start_rc, goal_rc)
        pts[0] = (s.x, s.y)
        if goal_ok:
            pts[-1] = (gx, gy)
        travelled, walked, heading, complete = walk_polyline(pts, max_distance, s.yaw)
        end = walked[-1]
        self._capture_along(walked, s.stamp)
        reached = complete and goal_ok
        s.x, s.y = float(end[0]), float(end[1])
        s.yaw = float(wrap_angle(gyaw)) if reached else heading
        s.stamp += travelled / self.config.robot.linear_speed
        s.path.append((s.x, s.y))
        s.trajectory.extend((float(px), float(py)) for px, py in walked[1:])
        self._pending.append(self._capture())
        return MoveResult(T_world_base=self.robot_pose(), distance=travelled, blocked=not goal_ok, reached=reached)

    # ---- helpers ----
    def view(self, stamp: Optional[float] = None) -> Frame:
        """The camera's frame at the robot's current pose, stamped `stamp` seconds (default: the simulated
        time); it is not added to what observe() returns (a camera streaming while the robot stands)."""
        s = self._require_state()
        return self._render_frame(base_pose(s.x, s.y, s.yaw), s.stamp if stamp is None else stamp)

    @property
    def stamp(self) -> float:
        """The simulated time (s): it advances with every move (distance / linear speed) and turn."""
        return self._require_state().stamp

    def robot_pose(self) -> np.ndarray:
        s = self._require_state()
        return base_pose(s.x, s.y, s.yaw)

    @property
    def trajectory(self) -> list[tuple[float, float]]:
        """Every waypoint the robot drove through since reset (polyline), metres."""
        return list(self._require_state().trajectory)

    @property
    def path(self) -> list[tuple[float, float]]:
        """Robot positions (x, y) after reset and after each move, metres."""
        return list(self._require_state().path)

    def random_start(self, rng: np.random.Generator, clearance: float = 0.0) -> tuple[float, float, float]:
        """A seeded navigable (x, y, yaw) in the largest component, with extra `clearance` metres."""
        fs = self.freespace
        counts = np.bincount(fs.components.ravel())
        counts[0] = 0
        mask = fs.components == int(np.argmax(counts))
        if clearance > 0:
            mask &= fs.clearance > self.config.robot.radius + clearance
        cells = np.argwhere(mask)
        if cells.size == 0:
            raise ValueError("no navigable start cell")
        x, y = fs.grid.cell_to_world(cells[int(rng.integers(len(cells)))])
        return float(x), float(y), float(rng.uniform(-math.pi, math.pi))

    def _capture_along(self, walked: np.ndarray, stamp0: float) -> None:
        """Frames every `capture_spacing` metres along the driven polyline (not at its end), facing the travel."""
        spacing = self.config.capture_spacing
        speed = self.config.robot.linear_speed
        for d, x, y, heading in capture_points(walked, spacing):
            self._pending.append(self._render_frame(base_pose(x, y, heading), stamp0 + d / speed))

    def _require_state(self) -> _RobotState:
        if self._state is None:
            raise RuntimeError("call reset() before using the environment")
        return self._state

    def _capture(self) -> Frame:
        s = self._require_state()
        return self._render_frame(base_pose(s.x, s.y, s.yaw), s.stamp)

    def _render_frame(self, T_world_base: np.ndarray, stamp: float) -> Frame:
        T_world_cam = T_world_base @ self.T_base_cam
        rgb, depth, ids = self.renderer.render(T_world_cam)
        if not self.config.camera.exact_depth:
            depth = sensor_depth(depth, rgb, self.config.camera, view_rng(T_world_cam))
        return Frame(rgb=rgb, depth=depth, intrinsics=self.intrinsics, T_world_cam=T_world_cam, stamp=stamp,
                     semantic=ids, T_world_base=T_world_base)


def walk_polyline(pts: np.ndarray, max_distance: float, yaw: float) -> tuple[float, np.ndarray, float, bool]:
    """Follow polyline `pts` for at most max_distance metres.

    Returns (metres travelled, the polyline actually driven, final heading, whether it was completed).
    """
    seg = np.diff(pts, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    total = float(cum[-1])
    if total <= max_distance:
        nz = np.nonzero(lengths > 1e-9)[0]
        heading = math.atan2(seg[nz[-1], 1], seg[nz[-1], 0]) if nz.size else yaw
        return total, pts.copy(), heading, True
    # cum[-1] > max_distance, so the segment index is < len(lengths); clamp anyway against rounding.
    k = min(int(np.searchsorted(cum, max_distance, side="right")) - 1, len(lengths) - 1)
    frac = min(max((max_distance - cum[k]) / lengths[k], 0.0), 1.0) if lengths[k] > 0 else 0.0
    end = pts[k] + frac * seg[k]
    return float(max_distance), np.vstack([pts[: k + 1], end]), math.atan2(seg[k, 1], seg[k, 0]), False


def capture_points(walked: np.ndarray, spacing: float) -> list[tuple[float, float, float, float]]:
    """(distance m, x, y, heading) every `spacing` metres along the driven polyline `walked` (K, 2), not at its
    end, facing the direction of travel; none when spacing is 0."""
    if spacing <= 0 or len(walked) < 2:
        return []
    seg = np.diff(walked, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    out = []
    for d in np.arange(spacing, cum[-1] - 1e-6, spacing):
        k = min(int(np.searchsorted(cum, d, side="right")) - 1, len(seg) - 1)
        p = walked[k] + (d - cum[k]) / max(lengths[k], 1e-12) * seg[k]
        out.append((float(d), float(p[0]), float(p[1]), math.atan2(seg[k, 1], seg[k, 0])))
    return out
