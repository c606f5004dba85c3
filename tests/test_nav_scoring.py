"""Frontier scoring (units, wrapped angles), selection, goals, commitment, recovery, budgets."""
import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from mapping.grid import GridSpec
from nav.config import FrontierScoreConfig, PlannerConfig
from nav.frontier_planner import FrontierPlanner
from nav.scoring import fraction_along, fraction_in_disc, frontier_factors, frontier_scores, select, visible_gain


@dataclass
class FakeFrontier:
    centroid: np.ndarray
    goal: np.ndarray
    normal: np.ndarray
    size: float = 1.0
    cells: np.ndarray = None


class GridMap:
    """A fixed map with the SceneMap attributes the planner reads (grids given directly). squeezed: optional
    (navigable, frontiers) for robot radii below the map's `robot_radius` (0.2 m)."""

    def __init__(self, spec, navigable, explored, free, frontiers, squeezed=None, occupied=None):
        self.spec, self._nav, self.explored, self.free, self._frontiers = spec, navigable, explored, free, frontiers
        self.occupied = occupied if occupied is not None else np.zeros(spec.shape, dtype=bool)
        self.config = SimpleNamespace(robot_radius=0.2)
        self._squeezed = squeezed

    def _tight(self, robot_radius):
        return robot_radius is not None and robot_radius < self.config.robot_radius and self._squeezed is not None

    def navigable(self, robot_radius=None):
        return self._squeezed[0] if self._tight(robot_radius) else self._nav

    def frontiers(self, robot_radius=None):
        return self._squeezed[1] if self._tight(robot_radius) else self._frontiers


def _corridor(resolution):
    """A 10 m x 2 m corridor along x, explored for x < 5 m; a frontier at x = 5 facing +x."""
    spec = GridSpec((0.0, 0.0), resolution, (int(round(2 / resolution)), int(round(10 / resolution))))
    xs, ys = spec.cell_centres()
    nav = (ys > 0.3) & (ys < 1.7)
    explored = xs < 5.0
    f = FakeFrontier(np.array([4.95, 1.0]), np.array([4.95, 1.0]), np.array([1.0, 0.0]))
    return spec, nav, explored, f


@pytest.mark.parametrize("resolution", [0.05, 0.1, 0.2])
def test_unexplored_fraction_lookahead_is_in_metres(resolution):
    spec, nav, explored, f = _corridor(resolution)
    cfg = FrontierScoreConfig(lookahead=2.0)
    fac = frontier_factors([f], explored, nav, spec, (1.0, 1.0), 0.0, cfg)
    assert fac.unexplored[0] == pytest.approx(1.0, abs=0.06)
    # Facing back into the explored part: nothing unexplored within 2 m.
    back = FakeFrontier(f.centroid, f.goal, np.array([-1.0, 0.0]))
    fac = frontier_factors([back], explored, nav, spec, (1.0, 1.0), 0.0, cfg)
    assert fac.unexplored[0] == pytest.approx(0.0, abs=0.06)
    # Free fraction of a 1 m disc in the middle of the corridor is the same at every resolution.
    frac = fraction_in_disc(nav, spec, np.array([[2.0, 1.0]]), 1.0)
    band = 0.7  # the corridor's free band is |y - 1| < 0.7 m: area fraction of the unit disc inside it
    expected = 2 * (band * math.sqrt(1 - band ** 2) + math.asin(band)) / math.pi
    assert frac[0] == pytest.approx(expected, abs=0.05)


def test_euclidean_distance_in_metres_and_front_penalty_with_wrapped_angles():
    spec, nav, explored, f = _corridor(0.1)
    cfg = FrontierScoreConfig(use_path_distance=False, min_dist_from_cur=1.0, min_angle_from_cur_deg=30.0)
    # Robot 0.5 m from the frontier, heading +pi - 0.01 but the frontier bearing is ~0: not in front.
    fac = frontier_factors([f], explored, nav, spec, (4.45, 1.0), math.pi - 0.01, cfg)
    assert fac.distance[0] == pytest.approx(0.5) and not fac.in_front[0]
    # Frontier behind-left at bearing ~ -pi with yaw +pi: the difference wraps to ~0, so it is in front.
    g = FakeFrontier(np.array([3.95, 0.999]), np.array([3.95, 0.999]), np.array([-1.0, 0.0]))
    fac = frontier_factors([g], explored, nav, spec, (4.45, 1.0), math.pi - 0.01, cfg)
    assert fac.in_front[0]
    fac2 = frontier_factors([g], explored, nav, spec, (4.45, 1.0), -math.pi + 0.01, cfg)
    assert fac2.in_front[0]
    s_front = frontier_scores(fac, cfg)[0]
    fac.in_front[:] = False
    assert frontier_scores(fac, cfg)[0] == pytest.approx(s_front + cfg.front_penalty)


def test_scores_prefer_near_unexplored_free_and_valuable():
    spec, nav, explored, f = _corridor(0.1)
    cfg = FrontierScoreConfig()
    near = frontier_factors([f], explored, nav, spec, (4.0, 1.0), 0.0, cfg, path_distance=np.array([1.0]))
    far = frontier_factors([f], explored, nav, spec, (4.0, 1.0), 0.0, cfg, path_distance=np.array([6.0]))
    assert frontier_scores(near, cfg)[0] - frontier_scores(far, cfg)[0] == pytest.approx(5.0 / cfg.temp_distance)
    unreachable = frontier_factors([f], explored, nav, spec, (4.0, 1.0), 0.0, cfg, path_distance=np.array([np.inf]))
    assert frontier_scores(unreachable, cfg)[0] == -np.inf


def test_visible_gain_is_the_unexplored_area_in_line_of_sight_beyond_the_frontier():
    # A 10 m x 10 m unknown world, explored for x < 5 m; two frontiers at x = 5 facing +x. A wall at x = 5.6 m
    # closes the space in front of the lower one (a pocket); the upper one looks into open unknown space.
    spec = GridSpec((0.0, 0.0), 0.1, (100, 100))
    xs, ys = spec.cell_centres()
    explored = xs < 5.0
    occupied = (xs > 5.6) & (xs < 5.8) & (ys < 4.0)
    centroids = np.array([[4.95, 2.0], [4.95, 8.0]])
    normals = np.array([[1.0, 0.0], [1.0, 0.0]])
    gain = visible_gain(explored, occupied, spec, centroids, normals, radius=3.0)
    # open side: the unexplored half of a 3 m disc (beyond the grid's edge y = 10 m counts as unexplored too)
    assert gain[1] == pytest.approx(0.5 * math.pi * 3.0 ** 2, rel=0.05)
    assert gain[0] < 0.35 * gain[1]
    # Facing back into the explored part there is nothing to gain; radius 0 turns the factor off.
    mid = np.array([[4.95, 3.5], [4.95, 6.5]])  # 3 m rays from here stay on the grid
    assert visible_gain(explored, occupied, spec, mid, -normals, 3.0) == pytest.approx([0.0, 0.0], abs=0.3)
    assert np.all(visible_gain(explored, occupied, spec, centroids, normals, 0.0) == 0)
    # In the score, gain_weight trades square metres against metres of path (temp_distance).
    cfg = FrontierScoreConfig(gain_weight=0.1)
    fs = [FakeFrontier(c, c, n) for c, n in zip(centroids, normals)]
    fac = frontier_factors(fs, explored, np.ones(spec.shape, bool), spec, (4.0, 5.0), 0.0, cfg,
                           path_distance=np.array([3.0, 3.0]), occupied=occupied)
    s = frontier_scores(fac, cfg)
    assert s[1] - s[0] == pytest.approx(0.1 * (fac.gain[1] - fac.gain[0]) + (fac.unexplored[1] - fac.unexplored[0])
                                        / cfg.temp_unexplored + (fac.free[1] - fac.free[0]) / cfg.temp_free)
    assert s[1] > s[0]
    off = frontier_factors(fs, explored, np.ones(spec.shape, bool), spec, (4.0, 5.0), 0.0, FrontierScoreConfig(),
                           path_distance=np.array([3.0, 3.0]), occupied=occupied)
    assert np.all(off.gain == 0)


def test_selection_argmax_and_seeded_sampling():
    scores = np.array([0.0, 2.0, -np.inf, 1.0])
    assert select(scores, FrontierScoreConfig(), np.random.default_rng(0)) == 1
    cfg = FrontierScoreConfig(selection="sample")
    a = [select(scores, cfg, np.random.default_rng(s)) for s in range(200)]
    b = [select(scores, cfg, np.random.default_rng(s)) for s in range(200)]
    assert a == b and 2 not in a
    counts = np.bincount(a, minlength=4) / 200
    expected = np.exp([0.0, 2.0, 0.0, 1.0]) * [1, 1, 0, 1]
    assert counts == pytest.approx(expected / expected.sum(), abs=0.08)
    assert select(np.array([-np.inf]), cfg, np.random.default_rng(0)) is None
    with pytest.raises(ValueError, match="selection"):
        FrontierScoreConfig(selection="best")


def _room_map():
    """20 x 10 m open area explored for x < 8; frontiers at x = 8 (near, y=2) and a far one at (8, 8)."""
    spec = GridSpec((0.0, 0.0), 0.1, (100, 200))
    xs, ys = spec.cell_centres()
    nav = np.ones(spec.shape, dtype=bool)
    explored = xs < 8.0
    near = FakeFrontier(np.array([7.95, 2.0]), np.array([7.95, 2.0]), np.array([1.0, 0.0]))
    far = FakeFrontier(np.array([7.95, 8.0]), np.array([7.95, 8.0]), np.array([1.0, 0.0]))
    return spec, nav, explored, [near, far]


def test_goal_is_backed_off_facing_the_frontier_and_moves_are_limited():
    spec, nav, explored, fronts = _room_map()
    planner = FrontierPlanner(PlannerConfig(backoff=0.5, max_move_per_step=2.0))
    plan = planner.plan(GridMap(spec, nav, explored, nav, fronts), (1.0, 2.0), 0.0)
    assert plan.action == "move" and plan.chosen == 0
    gx, gy, gyaw = plan.goal
    assert gx == pytest.approx(7.45, abs=0.06) and gy == pytest.approx(2.0, abs=0.06)
    assert abs(gyaw) < 0.1  # facing +x, towards the frontier
    wx, wy, _ = plan.waypoint
    assert math.hypot(wx - 1.0, wy - 2.0) == pytest.approx(2.0, abs=0.03)  # 2 m along the planned path


def test_commitment_kept_until_reached_or_invalidated():
    spec, nav, explored, fronts = _room_map()
    planner = FrontierPlanner(PlannerConfig(max_move_per_step=2.0))
    m = GridMap(spec, nav, explored, nav, fronts)
    first = planner.plan(m, (1.0, 6.0), 0.0)
    committed_goal = first.goal
    # From a new pose the other frontier would now score higher; the commitment holds.
    second = planner.plan(m, (3.0, 7.5), 0.0)
    assert second.committed and second.goal == committed_goal
    # The committed frontier disappears from the map: a new choice is made.
    remaining = [f for f in fronts if np.hypot(*(f.centroid - np.array(committed_goal[:2]))) > 1.5]
    third = planner.plan(GridMap(spec, nav, explored, nav, remaining), (3.0, 7.5), 0.0)
    assert not third.committed and third.goal != committed_goal
    # Reaching the goal releases the commitment.
    planner.plan(m, (1.0, 2.0), 0.0)
    goal = planner.commitment.goal
    after = planner.plan(m, goal[:2], 0.0)
    assert not after.committed
    # A goal that becomes unreachable (map changed) is dropped too.
    planner.plan(m, (1.0, 2.0), 0.0)
    blocked = nav.copy()
    gx_cell = spec.world_to_cell(np.array(planner.commitment.goal[:2]))
    blocked[:, gx_cell[1] - 3:gx_cell[1] + 3] = False
    replanned = planner.plan(GridMap(spec, blocked, explored, blocked, fronts), (1.0, 2.0), 0.0)
    assert not replanned.committed


def test_recovery_after_no_progress():
    spec, nav, explored, fronts = _room_map()
    planner = FrontierPlanner(PlannerConfig(stuck_decisions=2, stuck_min_progress=0.1))
    m = GridMap(spec, nav, explored, nav, fronts)
    target = planner.plan(m, (1.0, 2.0), 0.0).goal
    planner.report_motion(0.0)
    planner.report_motion(0.02)
    plan = planner.plan(m, (1.0, 2.0), 0.0)
    assert plan.action == "turn" and plan.turn_angle == pytest.approx(math.pi)
    nxt = planner.plan(m, (1.0, 2.0), 0.0)
    assert nxt.action == "move" and nxt.goal != target  # the stuck frontier is blacklisted


def test_squeeze_radius_plans_through_a_gap_only_when_nothing_else_is_reachable():
    """A wall at x = 5 m with a 0.5 m gap: closed at the map's radius, open at the squeeze radius."""
    spec = GridSpec((0.0, 0.0), 0.1, (40, 100))
    xs, ys = spec.cell_centres()
    wide = xs < 5.0
    tight = wide | ((np.abs(ys - 2.0) < 0.25) & (xs < 6.0))
    explored = xs < 5.8
    beyond = FakeFrontier(np.array([5.75, 2.0]), np.array([5.75, 2.0]), np.array([1.0, 0.0]))
    squeezed = GridMap(spec, wide, explored, wide, [], squeezed=(tight, [beyond]))
    plan = FrontierPlanner(PlannerConfig(max_move_per_step=5.0)).plan(squeezed, (1.0, 2.0), 0.0)
    assert plan.action == "move" and plan.squeeze and plan.record()["squeeze"] is True
    assert plan.goal[0] > 5.0 and tight[tuple(spec.world_to_cell(np.array(plan.goal[:2])))]
    off = FrontierPlanner(PlannerConfig(squeeze_radius=None)).plan(squeezed, (1.0, 2.0), 0.0)
    assert off.action == "done"
    # a frontier reachable at the map's radius wins; the squeeze is not looked at
    near = FakeFrontier(np.array([4.95, 1.0]), np.array([4.95, 1.0]), np.array([1.0, 0.0]))
    both = GridMap(spec, wide, explored, wide, [near], squeezed=(tight, [beyond]))
    plan = FrontierPlanner().plan(both, (1.0, 2.0), 0.0)
    assert plan.action == "move" and not plan.squeeze and plan.goal[0] < 5.0
    with pytest.raises(ValueError, match="squeeze_radius"):
        PlannerConfig(squeeze_radius=-0.1)


def test_approach_looks_at_the_target_from_close_by_then_returns_to_frontiers():
    spec, nav, explored, fronts = _room_map()
    planner = FrontierPlanner(PlannerConfig(max_move_per_step=2.0))
    m = GridMap(spec, nav, explored, nav, fronts)
    target = np.array([6.0, 5.0])
    plan = planner.plan(m, (2.0, 5.0), 0.0, approach=target)
    assert plan.action == "move" and plan.approach == (6.0, 5.0) and plan.chosen is None
    assert plan.record()["approach"] == [6.0, 5.0]
    gx, gy, gyaw = plan.goal
    # the in-range cell nearest along the path: on the robot's side, at the far edge of 0.8..1.5 m, facing it
    assert math.hypot(gx - 6.0, gy - 5.0) == pytest.approx(1.5, abs=0.1) and gx < 6.0
    assert abs(math.remainder(gyaw - math.atan2(5.0 - gy, 6.0 - gx), 2 * math.pi)) < 1e-6
    assert math.hypot(plan.waypoint[0] - 2.0, plan.waypoint[1] - 5.0) == pytest.approx(2.0, abs=0.03)
    # a second decision on the same target (located again 0.4 m off) is allowed, a third is not
    assert planner.plan(m, plan.waypoint[:2], 0.0, approach=(6.4, 5.0)).approach == (6.4, 5.0)
    third = planner.plan(m, (4.4, 5.0), 0.0, approach=(6.0, 5.2))
    assert third.approach is None and third.chosen is not None
    # another target elsewhere gets its own decisions
    assert planner.plan(m, (4.4, 5.0), 0.0, approach=(3.0, 8.0)).approach == (3.0, 8.0)


def test_approach_needs_a_clear_line_and_is_skipped_when_already_there():
    spec, nav, explored, fronts = _room_map()
    xs, ys = spec.cell_centres()
    wall = (xs > 5.0) & (xs < 5.2) & (ys < 6.5)  # between the robot and the target, open above y = 6.5
    m = GridMap(spec, nav & ~wall, explored, nav & ~wall, fronts, occupied=wall)
    plan = FrontierPlanner(PlannerConfig(max_move_per_step=20.0)).plan(m, (2.0, 5.0), 0.0, approach=(6.0, 5.0))
    gx, gy, _ = plan.goal
    assert plan.approach is not None and gx > 5.2  # around the wall: from x < 5 m the wall hides the target
    assert 0.8 <= math.hypot(gx - 6.0, gy - 5.0) <= 1.5
    # at the goal already, facing the target: nothing to gain, frontier planning decides
    there = FrontierPlanner().plan(m, (gx, gy), plan.goal[2], approach=(6.0, 5.0))
    assert there.approach is None and there.action == "move"


def test_done_when_no_frontier():
    spec, nav, explored, _ = _room_map()
    plan = FrontierPlanner().plan(GridMap(spec, nav, explored, nav, []), (1.0, 2.0), 0.0)
    assert plan.action == "done"


def test_fraction_along_counts_off_grid_as_outside():
    spec = GridSpec((0.0, 0.0), 0.1, (10, 10))
    mask = np.zeros(spec.shape, dtype=bool)
    # Samples from x = 0.6 to 2.5 m; the grid ends at x = 1.0 m, so about 1.5 / 1.9 of them are outside.
    frac = fraction_along(mask, spec, np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]), 2.0, outside=True)
    assert frac[0] == pytest.approx(1.5 / 1.9, abs=0.03)
    assert fraction_along(mask, spec, np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]), 2.0, outside=False)[0] == 0


def test_value_factors_are_relative_to_the_mean_written_value():
    from mapping.value_map import SemanticValueMap

    spec, nav, explored, f = _corridor(0.1)
    other = FakeFrontier(np.array([1.0, 1.0]), np.array([1.0, 1.0]), np.array([-1.0, 0.0]))
    unseen = FakeFrontier(np.array([8.0, 1.0]), np.array([8.0, 1.0]), np.array([1.0, 0.0]))
    vm = SemanticValueMap(0.1)
    vm.update(np.array([[4.95, 1.0], [1.0, 1.0]]), np.array([3.0, 1.0]), 0.5)  # mean written value 2
    cfg = FrontierScoreConfig()
    fac = frontier_factors([f, other, unseen], explored, nav, spec, (3.0, 1.0), 0.0, cfg, value_map=vm)
    # Better than average: positive; worse: negative; never written: neutral (0), not penalised.
    assert fac.value == pytest.approx([1.0, -1.0, 0.0], abs=0.05)  # discs differ by a few cells
    assert fac.value_along[2] == pytest.approx(0.0)
    raw = frontier_factors([f, other, unseen], explored, nav, spec, (3.0, 1.0), 0.0,
                           FrontierScoreConfig(value_relative=False), value_map=vm)
    assert raw.value == pytest.approx([3.0, 1.0, 0.0])
