"""Typed configuration of frontier scoring and the frontier planner."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class FrontierScoreConfig:
    """Frontier score = sum of factor / temperature (distance and penalty subtract).

    lookahead: metres along the frontier normal for the unexplored fraction and mean value.
    free_radius: metres around the frontier for the free fraction.
    temp_*: temperatures (larger = weaker factor); distance in metres.
    min_dist_from_cur / min_angle_from_cur_deg: a frontier closer than this and within this
    angle of the robot's heading gets `front_penalty` subtracted.
    selection: "argmax" or "sample" (softmax of the scores, seeded).
    value_relative: value factors are taken relative to the value map's mean written value, and
    unwritten cells count as that mean (so only better- or worse-than-average directions move the
    score, not whether a place was looked at); False: raw values, unwritten = 0.
    """

    lookahead: float = 2.0
    free_radius: float = 1.0
    temp_unexplored: float = 0.5
    temp_free: float = 2.0
    temp_value: float = 1.0
    temp_value_along: float = 1.0
    temp_distance: float = 4.0
    use_path_distance: bool = True
    min_dist_from_cur: float = 0.8
    min_angle_from_cur_deg: float = 45.0
    front_penalty: float = 2.0
    selection: str = "argmax"
    value_relative: bool = True

    def __post_init__(self) -> None:
        for name in ("lookahead", "free_radius", "temp_unexplored", "temp_free", "temp_value", "temp_value_along",
                     "temp_distance"):
            if not getattr(self, name) > 0:
                raise ValueError(f"frontier scoring {name} must be positive, got {getattr(self, name)}")
        if self.selection not in ("argmax", "sample"):
            raise ValueError(f"frontier selection must be 'argmax' or 'sample', got {self.selection!r}")
        if self.min_dist_from_cur < 0 or self.front_penalty < 0:
            raise ValueError("min_dist_from_cur and front_penalty must be >= 0")


@dataclass
class ApproachConfig:
    """Looking closer at a target the VLM located (semantic exploration asks for it): the goal is the
    reachable cell min_dist..max_dist metres from the target that is nearest along the path and has a
    clear line to it on the map, facing the target. A target gets at most `max_decisions` decisions;
    targets closer than `same_target` metres to an earlier one count as that one."""

    min_dist: float = 0.8
    max_dist: float = 1.5
    max_decisions: int = 2
    same_target: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_dist < self.max_dist:
            raise ValueError(f"approach: need 0 <= min_dist < max_dist, got {self.min_dist}, {self.max_dist}")
        if self.max_decisions < 1 or not self.same_target > 0:
            raise ValueError("approach: max_decisions must be >= 1 and same_target > 0")


@dataclass
class PlannerConfig:
    """Goals and motion: back-off (m), per-decision move limit (m), commitment and recovery."""

    scoring: FrontierScoreConfig = field(default_factory=FrontierScoreConfig)
    backoff: float = 0.5
    max_move_per_step: float = 2.5
    goal_reached_tol: float = 0.3
    commit_match_radius: float = 1.0
    stuck_decisions: int = 3
    stuck_min_progress: float = 0.1
    blacklist_radius: float = 0.6
    # When no frontier is reachable at the map's robot radius, look again with this radius (m): squeezes
    # through gaps the map's conservative inflation closes (it blocks cells up to radius + half a cell
    # away), such as a doorway half-blocked by furniture. None: stop looking (exploration is done).
    squeeze_radius: Optional[float] = 0.15
    approach: ApproachConfig = field(default_factory=ApproachConfig)

    def __post_init__(self) -> None:
        if not self.max_move_per_step > 0:
            raise ValueError(f"max_move_per_step must be positive, got {self.max_move_per_step}")
        if self.backoff < 0 or self.goal_reached_tol <= 0 or self.commit_match_radius <= 0:
            raise ValueError("backoff must be >= 0; goal_reached_tol and commit_match_radius positive")
        if self.stuck_decisions < 1:
            raise ValueError(f"stuck_decisions must be >= 1, got {self.stuck_decisions}")
        if self.squeeze_radius is not None and not self.squeeze_radius >= 0:
            raise ValueError(f"squeeze_radius must be >= 0 or null, got {self.squeeze_radius}")
