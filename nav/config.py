"""Typed configuration of frontier scoring and the frontier planner."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Optional

from mapping.bounds import NonNegative, Positive, PositiveInt, Range, check_bounds


@dataclass
class FrontierScoreConfig:
    """Frontier score = sum of factor / temperature (distance and penalty subtract).

    lookahead: metres along the frontier normal for the unexplored fraction and mean value.
    free_radius: metres around the frontier for the free fraction.
    temp_*: temperatures (larger = weaker factor); distance in metres.
    gain_weight: score per square metre of visible gain (nav.scoring.visible_gain: unexplored cells within
    gain_radius m of the frontier, on its far side and in line of sight on the map); 0 = no gain factor.
    min_dist_from_cur / min_angle_from_cur_deg: a frontier closer than this and within this
    angle of the robot's heading gets `front_penalty` subtracted.
    selection: "argmax" or "sample" (softmax of the scores, seeded).
    value_relative: value factors are taken relative to the value map's mean written value, and
    unwritten cells count as that mean (so only better- or worse-than-average directions move the
    score, not whether a place was looked at); False: raw values, unwritten = 0.
    """

    lookahead: Annotated[float, Range(gt=0, le=20)] = 2.0
    free_radius: Annotated[float, Range(gt=0, le=10)] = 1.0
    temp_unexplored: Positive = 0.5
    temp_free: Positive = 2.0
    temp_value: Positive = 1.0
    temp_value_along: Positive = 1.0
    temp_distance: Positive = 4.0
    gain_weight: NonNegative = 0.0
    gain_radius: Annotated[float, Range(ge=0, le=20)] = 3.0
    use_path_distance: bool = True
    min_dist_from_cur: NonNegative = 0.8
    min_angle_from_cur_deg: Annotated[float, Range(ge=0, le=180)] = 45.0
    front_penalty: NonNegative = 2.0
    selection: str = "argmax"
    value_relative: bool = True

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.selection not in ("argmax", "sample"):
            raise ValueError(f"frontier selection must be 'argmax' or 'sample', got {self.selection!r}")


@dataclass
class ApproachConfig:
    """Looking closer at a target the VLM located (semantic exploration asks for it): the goal is the
    reachable cell min_dist..max_dist metres from the target that is nearest along the path and has a
    clear line to it on the map, facing the target. A target gets at most `max_decisions` decisions;
    targets closer than `same_target` metres to an earlier one count as that one."""

    min_dist: NonNegative = 0.8
    max_dist: Annotated[float, Range(gt=0, le=20)] = 1.5
    max_decisions: PositiveInt = 2
    same_target: Positive = 1.0

    def __post_init__(self) -> None:
        check_bounds(self)
        if not self.min_dist < self.max_dist:
            raise ValueError(f"approach: need 0 <= min_dist < max_dist, got {self.min_dist}, {self.max_dist}")


@dataclass
class PlannerConfig:
    """Goals and motion: back-off (m), per-decision move limit (m), commitment and recovery. A goal stands
    `backoff` metres back from its frontier, or, where that is further, `beyond_view_near` metres more than the
    nearest floor the camera sees (FrontierPlanner.plan's view_near) and then on a cell with a clear line to the
    frontier on the map."""

    scoring: FrontierScoreConfig = field(default_factory=FrontierScoreConfig)
    backoff: NonNegative = 0.5
    beyond_view_near: NonNegative = 0.25
    max_move_per_step: Annotated[float, Range(gt=0, le=100)] = 2.5
    goal_reached_tol: Positive = 0.3
    commit_match_radius: Positive = 1.0
    stuck_decisions: PositiveInt = 3
    stuck_min_progress: NonNegative = 0.1
    blacklist_radius: NonNegative = 0.6
    # When no frontier is reachable at the map's robot radius, look again with this radius (m): squeezes
    # through gaps the map's conservative inflation closes (it blocks cells up to radius + half a cell
    # away), such as a doorway half-blocked by furniture. None: stop looking (exploration is done).
    squeeze_radius: Optional[NonNegative] = 0.15
    approach: ApproachConfig = field(default_factory=ApproachConfig)

    def __post_init__(self) -> None:
        check_bounds(self)
