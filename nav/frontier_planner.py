"""Frontier planner: score frontiers, commit to a goal, plan a path on the map, emit one waypoint.

Inputs are a scene map (`navigable(robot_radius)`, `frontiers(robot_radius)`, `explored`, `free`, `spec`,
`config.robot_radius`), an optional semantic value map and the robot pose (x, y metres, yaw radians, world
frame). When no frontier is reachable at the map's robot radius, the planner looks again at
`PlannerConfig.squeeze_radius` before reporting that nothing is left to explore. Given an approach target
(x, y metres: something the VLM located in view), it first tries to go and look at it from close by
(`PlannerConfig.approach`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from mapping.frame import wrap_angle
from mapping.grid import GridSpec, segment_samples
from nav.config import PlannerConfig
from nav.planning import astar, distance_field, truncate_path
from nav.scoring import FrontierFactors, frontier_factors, frontier_scores, select


@dataclass
class Commitment:
    """The frontier being pursued: its centroid and the goal pose (x, y, yaw) backed off from it."""

    frontier_xy: np.ndarray
    goal: tuple[float, float, float]


@dataclass
class PlanResult:
    """One decision of the planner.

    action: "move" (waypoint given), "turn" (recovery: turn in place by `turn_angle`),
    or "done" (no reachable frontier left). squeeze: planned with `PlannerConfig.squeeze_radius`
    because nothing was reachable at the map's robot radius. approach: the target (x, y) being looked
    at from close by (the goal faces it; no frontier chosen), else None.
    """

    action: str
    waypoint: Optional[tuple[float, float, float]] = None
    goal: Optional[tuple[float, float, float]] = None
    chosen: Optional[int] = None
    committed: bool = False
    turn_angle: float = 0.0
    frontiers: list = field(default_factory=list)
    factors: Optional[FrontierFactors] = None
    scores: Optional[np.ndarray] = None
    path: Optional[np.ndarray] = None
    squeeze: bool = False
    approach: Optional[tuple[float, float]] = None

    def record(self) -> dict:
        """JSON-ready summary: every frontier with its factors and score, the choice and the goal."""
        rows = self.factors.as_rows() if self.factors is not None else []
        fronts = []
        for i, f in enumerate(self.frontiers):
            row = {"centroid": [round(float(v), 3) for v in f.centroid], "normal": [round(float(v), 3) for v in f.normal],
                   "size": round(float(f.size), 3)}
            if i < len(rows):
                row.update({k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v) for k, v in rows[i].items()})
                s = float(self.scores[i])
                row["score"] = round(s, 4) if math.isfinite(s) else None
                if row.get("distance") is not None and not math.isfinite(row["distance"]):
                    row["distance"] = None
            fronts.append(row)
        return {"action": self.action, "chosen": self.chosen, "committed": self.committed, "squeeze": self.squeeze,
                "approach": None if self.approach is None else [round(float(v), 3) for v in self.approach],
                "goal": None if self.goal is None else [round(float(v), 3) for v in self.goal],
                "waypoint": None if self.waypoint is None else [round(float(v), 3) for v in self.waypoint],
                "turn_angle": self.turn_angle, "frontiers": fronts}


def _clear_line(occupied: np.ndarray, spec: GridSpec, starts: np.ndarray, target: np.ndarray,
                keep_clear: float) -> np.ndarray:
    """(N,) bool: whether the segment from each start (N, 2) to target (world metres) crosses no occupied
    cell, ignoring its last `keep_clear` metres (the target itself stands on occupied cells)."""
    if len(starts) == 0:
        return np.zeros(0, dtype=bool)
    length = np.hypot(*(target[None] - starts).T)
    n = max(2, int(math.ceil(float(length.max()) / (0.5 * spec.resolution))))  # about every half cell
    pts, t = segment_samples(starts, np.broadcast_to(target, starts.shape), samples=n)
    near_target = (1.0 - t)[None, :] * length[:, None] < keep_clear
    return ~(spec.values_at(occupied, pts) & ~near_target).any(axis=1)


def _viewpoints(reachable: np.ndarray, occupied: np.ndarray, spec: GridSpec, target: np.ndarray, min_dist: float,
                max_dist: float, keep_clear: float) -> tuple[np.ndarray, np.ndarray]:
    """(cells (K, 2) row, col; their centres (K, 2) world m) of the `reachable` cells min_dist..max_dist metres
    from `target` with a clear line to it on the map (see _clear_line), in row-major order."""
    cells = np.argwhere(reachable)
    centres = spec.cell_to_world(cells)
    gap = np.hypot(*(centres - target[None]).T)
    ok = (gap >= min_dist) & (gap <= max_dist)
    ok[ok] = _clear_line(occupied, spec, centres[ok], target, keep_clear=keep_clear)
    return cells[ok], centres[ok]


def _start_and_distances(nav: np.ndarray, spec: GridSpec, robot_xy: np.ndarray):
    """(start cell, path distance in metres from it to every cell of `nav`): the robot's cell, or the
    navigable cell nearest it; (None, None) when nothing is navigable."""
    rc = spec.world_to_cell(robot_xy)
    start = rc if (spec.in_bounds(rc) and nav[rc[0], rc[1]]) else _nearest_cell(nav, spec, robot_xy)
    if start is None:
        return None, None
    return start, distance_field(nav, start) * spec.resolution


def _nearest_cell(mask: np.ndarray, spec: GridSpec, xy) -> Optional[np.ndarray]:
    """(row, col) of the True cell of `mask` nearest world xy, None if there is none."""
    cells = np.argwhere(mask)
    if len(cells) == 0:
        return None
    centres = spec.cell_to_world(cells)
    return cells[int(np.argmin(((centres - np.asarray(xy)[None]) ** 2).sum(axis=1)))]


class FrontierPlanner:
    """Chooses frontiers and turns them into waypoints at most `max_move_per_step` metres away."""

    def __init__(self, config: Optional[PlannerConfig] = None, rng: Optional[np.random.Generator] = None):
        self.config = config or PlannerConfig()
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.commitment: Optional[Commitment] = None
        self.blacklist: list[np.ndarray] = []
        self.approaches: list[list] = []  # [target xy, decisions spent on it]
        self._no_progress = 0

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.commitment = None
        self.blacklist = []
        self.approaches = []
        self._no_progress = 0

    # ---- feedback ----
    def report_motion(self, moved: float) -> None:
        """Tell the planner how far (metres) the last waypoint moved the robot."""
        if moved < self.config.stuck_min_progress:
            self._no_progress += 1
        else:
            self._no_progress = 0

    # ---- decisions ----
    def plan(self, scene_map, robot_xy, robot_yaw: float, value_map=None, approach=None,
             view_near: float = 0.0) -> PlanResult:
        """One decision. approach: optional target (x, y) m to look at from close by first. view_near: the
        horizontal distance (m) of the nearest floor the camera sees; goals stand back from their frontier at
        least `PlannerConfig.beyond_view_near` further than that, so that the frontier is in view there."""
        cfg = self.config
        if self._no_progress >= cfg.stuck_decisions:
            # Recovery: give up on the current target and look the other way.
            if self.commitment is not None:
                self.blacklist.append(np.asarray(self.commitment.frontier_xy))
            self.commitment = None
            self._no_progress = 0
            return PlanResult(action="turn", turn_angle=math.pi)
        if approach is not None:
            closer = self._plan_approach(scene_map, np.asarray(robot_xy, dtype=float), robot_yaw,
                                         np.asarray(approach, dtype=float)[:2])
            if closer is not None:
                return closer
        result = self._plan_at(scene_map, None, robot_xy, robot_yaw, value_map, view_near)
        if result.action == "done" and cfg.squeeze_radius is not None \
                and cfg.squeeze_radius < scene_map.config.robot_radius:
            squeezed = self._plan_at(scene_map, cfg.squeeze_radius, robot_xy, robot_yaw, value_map, view_near)
            if squeezed.action != "done":
                squeezed.squeeze = True
                return squeezed
        return result

    def _plan_at(self, scene_map, robot_radius: Optional[float], robot_xy, robot_yaw: float,
                 value_map, view_near: float = 0.0) -> PlanResult:
        """One decision on the map's navigable cells and frontiers for `robot_radius` (m; None: the map's)."""
        cfg = self.config
        spec: GridSpec = scene_map.spec
        nav = scene_map.navigable(robot_radius)
        robot_xy = np.asarray(robot_xy, dtype=float)
        start, dist = _start_and_distances(nav, spec, robot_xy)
        if start is None:
            return PlanResult(action="done")
        frontiers = [f for f in scene_map.frontiers(robot_radius) if not self._blacklisted(f.centroid)]
        if not frontiers:
            self.commitment = None
            return PlanResult(action="done")
        goal_cells = spec.world_to_cell(np.array([f.goal for f in frontiers]))
        inside = spec.in_bounds(goal_cells)
        goal_cells = np.where(inside[:, None], goal_cells, 0)
        path_dist = np.where(inside, dist[goal_cells[:, 0], goal_cells[:, 1]], np.inf)
        factors = frontier_factors(frontiers, scene_map.explored, scene_map.free, spec, robot_xy, robot_yaw,
                                   cfg.scoring, path_dist, value_map, scene_map.occupied)
        scores = frontier_scores(factors, cfg.scoring)
        chosen, committed = self._keep_commitment(frontiers, robot_xy, dist, spec)
        if chosen is None:
            chosen = select(scores, cfg.scoring, self.rng)
            if chosen is None:
                self.commitment = None
                return PlanResult(action="done", frontiers=frontiers, factors=factors, scores=scores)
            goal = self._goal_pose(frontiers[chosen], dist, spec, scene_map.occupied, view_near)
            if goal is None:
                self.blacklist.append(np.asarray(frontiers[chosen].centroid))
                return PlanResult(action="turn", turn_angle=math.pi, frontiers=frontiers, factors=factors, scores=scores)
            self.commitment = Commitment(np.asarray(frontiers[chosen].centroid), goal)
        goal = self.commitment.goal
        waypoint, path = self._waypoint(nav, spec, start, goal, robot_xy)
        if waypoint is None:
            self.blacklist.append(self.commitment.frontier_xy)
            self.commitment = None
            return PlanResult(action="turn", turn_angle=math.pi, frontiers=frontiers, factors=factors, scores=scores)
        return PlanResult(action="move", waypoint=waypoint, goal=goal, chosen=chosen, committed=committed,
                          frontiers=frontiers, factors=factors, scores=scores, path=path)

    def _plan_approach(self, scene_map, robot_xy: np.ndarray, robot_yaw: float,
                       target: np.ndarray) -> Optional[PlanResult]:
        """A move toward a pose looking at `target` from close by, or None (spent, unreachable, or already
        there) so that frontier planning decides instead."""
        cfg = self.config.approach
        entry = next((e for e in self.approaches if np.hypot(*(e[0] - target)) < cfg.same_target), None)
        if entry is None:
            entry = [target, 0]
            self.approaches.append(entry)
        if entry[1] >= cfg.max_decisions:
            return None
        entry[1] += 1
        spec: GridSpec = scene_map.spec
        nav = scene_map.navigable()
        start, dist = _start_and_distances(nav, spec, robot_xy)
        if start is None:
            return None
        cells, centres = _viewpoints(np.isfinite(dist), scene_map.occupied, spec, target, cfg.min_dist, cfg.max_dist,
                                     keep_clear=cfg.min_dist / 2)
        if len(cells) == 0:
            entry[1] = cfg.max_decisions
            return None
        gx, gy = centres[int(np.argmin(dist[cells[:, 0], cells[:, 1]]))]
        yaw = math.atan2(target[1] - gy, target[0] - gx)
        if math.hypot(gx - robot_xy[0], gy - robot_xy[1]) <= self.config.goal_reached_tol \
                and abs(float(wrap_angle(yaw - robot_yaw))) < math.radians(30):
            entry[1] = cfg.max_decisions  # already looking at it from there
            return None
        goal = (float(gx), float(gy), float(yaw))
        waypoint, path = self._waypoint(nav, spec, start, goal, robot_xy)
        if waypoint is None:
            entry[1] = cfg.max_decisions
            return None
        self.commitment = None
        return PlanResult(action="move", waypoint=waypoint, goal=goal, path=path,
                          approach=(float(target[0]), float(target[1])))

    def _blacklisted(self, xy) -> bool:
        return any(np.hypot(*(np.asarray(xy) - b)) < self.config.blacklist_radius for b in self.blacklist)

    def _keep_commitment(self, frontiers, robot_xy, dist, spec) -> tuple[Optional[int], bool]:
        """Index of the frontier still matching the commitment, or None when it is reached or invalid."""
        c = self.commitment
        if c is None:
            return None, False
        gx, gy, _ = c.goal
        if math.hypot(gx - robot_xy[0], gy - robot_xy[1]) <= self.config.goal_reached_tol:
            self.commitment = None
            return None, False
        goal_rc = spec.world_to_cell(np.array([gx, gy]))
        if not spec.in_bounds(goal_rc) or not np.isfinite(dist[goal_rc[0], goal_rc[1]]):
            self.commitment = None
            return None, False
        centroids = np.array([f.centroid for f in frontiers])
        gaps = np.hypot(*(centroids - c.frontier_xy[None]).T)
        k = int(np.argmin(gaps))
        if gaps[k] > self.config.commit_match_radius:
            self.commitment = None  # the frontier was explored away
            return None, False
        self.commitment = Commitment(np.asarray(frontiers[k].centroid), c.goal)
        return k, True

    def _goal_pose(self, frontier, dist, spec, occupied, view_near: float = 0.0) -> Optional[tuple[float, float, float]]:
        """A reachable pose backed off from the frontier into navigable space (backoff, or further for a
        camera that cannot see the floor close by: view_near m), facing the frontier."""
        backoff = max(self.config.backoff, view_near + self.config.beyond_view_near)
        target = np.asarray(frontier.goal) - backoff * np.asarray(frontier.normal)
        reachable = np.isfinite(dist)
        cell = None
        if backoff > self.config.backoff:  # stand where the frontier is in view: far enough, nothing between
            cell = self._viewpoint_cell(reachable, occupied, spec, np.asarray(frontier.goal), target, backoff)
        if cell is None:
            cell = _nearest_cell(reachable, spec, target)
        if cell is None:
            return None
        x, y = spec.cell_to_world(cell)
        cx, cy = frontier.centroid
        yaw = math.atan2(cy - y, cx - x) if math.hypot(cx - x, cy - y) > 1e-6 else math.atan2(*frontier.normal[::-1])
        return float(x), float(y), float(yaw)

    def _viewpoint_cell(self, reachable, occupied, spec, frontier_xy, target, backoff) -> Optional[np.ndarray]:
        """(row, col) of the reachable cell nearest `target` (world m) among those backoff..backoff + 1 m from the
        frontier with a clear line to it on the map; None if there is none."""
        cells, centres = _viewpoints(reachable, occupied, spec, frontier_xy, backoff, backoff + 1.0, keep_clear=0.0)
        if len(cells) == 0:
            return None
        return cells[int(np.argmin(((centres - target[None]) ** 2).sum(axis=1)))]

    def _waypoint(self, nav, spec, start, goal, robot_xy):
        goal_rc = spec.world_to_cell(np.array(goal[:2]))
        _, cells = astar(nav, start, goal_rc)
        if cells is None:
            return None, None
        pts = spec.cell_to_world(cells)
        pts[0] = robot_xy
        pts[-1] = goal[:2]
        prefix = truncate_path(pts, self.config.max_move_per_step)
        end = prefix[-1]
        if np.allclose(end, goal[:2]):
            return (float(end[0]), float(end[1]), goal[2]), pts
        d = prefix[-1] - prefix[-2] if len(prefix) >= 2 else np.array([math.cos(goal[2]), math.sin(goal[2])])
        return (float(end[0]), float(end[1]), math.atan2(d[1], d[0])), pts

