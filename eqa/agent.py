"""The exploration agent: a state machine fed with frames, emitting navigation decisions.

Per decision: integrate the new frames into the scene map, ask the stop policy, then ask
the frontier planner for the next waypoint. The same object runs under the simulator
loop, the ROS 2 node and replay. Poses: T_world_base (x forward, y left), metres, radians.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from mapping.config import MapConfig
from mapping.frame import Frame, base_pose, pose_xy_yaw
from mapping.scene_map import SceneMap
from mapping.value_map import SemanticValueMap
from nav.config import PlannerConfig
from nav.frontier_planner import FrontierPlanner, PlanResult
from nav.stop import FixedBudget, StopPolicy, StopState, decision_budget


@dataclass
class AgentConfig:
    """map / planner: see MapConfig and PlannerConfig. look_around_turns: turns in place covering
    360 deg before the first decision (0 = none). Budget: ceil(budget_factor * sqrt(floor area))
    decisions when the episode gives the area, else default_budget. use_value_map: keep a semantic
    value map (filled by semantic exploration) that frontier scoring reads."""

    map: MapConfig = field(default_factory=MapConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    look_around_turns: int = 4
    budget_factor: float = 3.0
    default_budget: int = 50
    stop_when_explored: bool = True
    use_value_map: bool = False

    def __post_init__(self) -> None:
        if self.look_around_turns < 0:
            raise ValueError(f"look_around_turns must be >= 0, got {self.look_around_turns}")
        if not self.budget_factor > 0 or self.default_budget < 1:
            raise ValueError("budget_factor must be positive and default_budget >= 1")


@dataclass
class Decision:
    """What the agent wants next: kind "move" (goal pose, max metres), "turn" (radians) or "stop"."""

    kind: str
    step: int
    T_world_base: Optional[np.ndarray] = None
    max_distance: float = 0.0
    angle: float = 0.0
    plan: Optional[PlanResult] = None
    reason: str = ""
    timings: dict = field(default_factory=dict)


class Agent:
    """Explores with frontiers until its stop policy says stop."""

    def __init__(self, config: Optional[AgentConfig] = None, stop_policy: Optional[StopPolicy] = None):
        self.config = config or AgentConfig()
        self.stop_policy = stop_policy or FixedBudget(stop_when_done=self.config.stop_when_explored)
        self.planner = FrontierPlanner(self.config.planner)
        self.map: Optional[SceneMap] = None
        self.value_map = None
        self.budget = self.config.default_budget
        self.decisions = 0
        self.pose: Optional[np.ndarray] = None
        self._pending_map_s = 0.0
        self._exploration_done = False
        self._approach: Optional[tuple[float, float]] = None

    def reset(self, seed: int, floor_area_m2: Optional[float] = None) -> None:
        """Start a new episode: empty map, seeded planner, budget from the floor area."""
        self.map = SceneMap(self.config.map)
        self.value_map = SemanticValueMap(self.config.map.voxel_size) if self.config.use_value_map else None
        self.planner.reset(np.random.default_rng(seed))
        self.budget = decision_budget(floor_area_m2, self.config.default_budget, self.config.budget_factor)
        self.decisions = 0
        self.pose = None
        self._pending_map_s = 0.0
        self._exploration_done = False
        self._approach = None

    def request_approach(self, target_xy) -> None:
        """Ask the next decision to look at world (x, y) metres from close by first (see ApproachConfig)."""
        self._approach = (float(target_xy[0]), float(target_xy[1]))

    def look_around_angles(self) -> list[float]:
        """Turn angles (radians) of the initial look-around."""
        n = self.config.look_around_turns
        return [2 * math.pi / n] * n if n else []

    def observe(self, frames: list[Frame]) -> None:
        """Integrate frames (oldest first); the newest one's base pose becomes the robot pose."""
        if self.map is None:
            raise RuntimeError("call reset() before observe()")
        t0 = time.perf_counter()
        for frame in frames:
            self.map.integrate(frame)
            if frame.T_world_base is not None:
                self.pose = np.asarray(frame.T_world_base, dtype=float)
            else:
                x, y, yaw = self.map.robot_path[-1]
                self.pose = base_pose(x, y, yaw)
        self._pending_map_s += time.perf_counter() - t0

    def decide(self) -> Decision:
        """The next decision from the current map."""
        if self.map is None or self.pose is None:
            raise RuntimeError("observe at least one frame before decide()")
        step = self.decisions
        timings = {"map_s": self._pending_map_s}
        self._pending_map_s = 0.0
        state = StopState(decisions=step, budget=self.budget, exploration_done=self._exploration_done)
        if self.stop_policy.should_stop(state):
            return Decision(kind="stop", step=step, reason=self.stop_policy.stop_reason(state), timings=timings)
        x, y, yaw = pose_xy_yaw(self.pose)
        t0 = time.perf_counter()
        approach, self._approach = self._approach, None
        plan = self.planner.plan(self.map, (x, y), yaw, self.value_map, approach)
        timings["plan_s"] = time.perf_counter() - t0
        if plan.action == "done":
            self._exploration_done = True
            if self.stop_policy.should_stop(StopState(step, self.budget, True)):
                return Decision(kind="stop", step=step, plan=plan, reason="explored", timings=timings)
        self.decisions += 1
        if plan.action == "done":
            return Decision(kind="turn", step=step, angle=math.pi, plan=plan, reason="no frontier", timings=timings)
        self._exploration_done = False
        if plan.action == "turn":
            return Decision(kind="turn", step=step, angle=plan.turn_angle, plan=plan, reason="recovery", timings=timings)
        wx, wy, wyaw = plan.waypoint
        return Decision(kind="move", step=step, T_world_base=base_pose(wx, wy, wyaw),
                        max_distance=self.config.planner.max_move_per_step, plan=plan, timings=timings)

    def report_motion(self, moved: float) -> None:
        """Feedback after a move: metres actually travelled."""
        self.planner.report_motion(moved)
