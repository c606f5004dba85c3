"""The method config: everything an `EQAAgent` does, whatever drives it (simulator, ROS 2, replay).

A method YAML in configs/ states only what differs from these defaults. Simulator-only settings (the
simulator, question generation, the ground-truth direction oracle) belong to the simulator run
(`eqa.sim_driver.SimRun`), which reads the same YAML; nothing here imports the simulator.
Units: metres, radians (degrees where a name says so), seconds; probabilities in [0, 1].
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

from eqa.config import to_dict
from mapping.config import MapConfig
from nav.config import PlannerConfig
from vlm.config import VLMConfig
from vlm.conformal import config_hash

STOP_POLICIES = ("fixed-budget", "relevance", "max-prob", "conformal", "oracle")
VLM_POLICIES = ("relevance", "max-prob", "conformal")  # stop policies that read the VLM's outputs


@dataclass
class AgentConfig:
    """map / planner: see MapConfig and PlannerConfig. look_around_turns: turns in place covering
    360 deg before the first decision (0 = none). Budget: ceil(budget_factor * sqrt(floor area))
    decisions when the episode gives the floor area (m^2), else default_budget."""

    map: MapConfig = field(default_factory=MapConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    look_around_turns: int = 4
    budget_factor: float = 3.0
    default_budget: int = 50

    def __post_init__(self) -> None:
        if self.look_around_turns < 0:
            raise ValueError(f"look_around_turns must be >= 0, got {self.look_around_turns}")
        if not self.budget_factor > 0 or self.default_budget < 1:
            raise ValueError("budget_factor must be positive and default_budget >= 1")


@dataclass
class SemanticConfig:
    """Semantic exploration. k candidate points min_dist..max_dist m away (merged when closer than `merge` m);
    their semantic values SV are written as discs of `radius` m. combine: "exp" (paper:
    SV = exp(tau_local * LSV + tau_global * GSV)) or "product" (reference code: LSV * GSV). Views with less
    than `min_valid_depth` valid depth or mean brightness below `min_brightness` are skipped.
    earlier_views: also score the earlier views of a decision, each from where it was taken (at the first
    decision the look-around's other headings; after a move, with `views_on_the_way`, the frames captured
    along the way), one direction + worth-exploring call each; False: the newest view only.
    approach_relevance: None (off) or a probability; with a VLM that can locate the target (the builtin
    backend), each view's call also asks relevance and where the target is; its pixel is back-projected
    with the view's depth, and when a view's relevance reaches this value (target within max_dist m of
    where the view was taken) the robot goes to look at the most relevant such target from close by
    (nav.config.ApproachConfig). Other backends: no effect."""

    k: int = 3
    min_dist: float = 2.0
    max_dist: float = 10.0
    merge: float = 1.0
    tau_local: float = 1.0
    tau_global: float = 1.0
    combine: str = "exp"
    radius: float = 2.0
    min_valid_depth: float = 0.2
    min_brightness: float = 10.0
    earlier_views: bool = True
    views_on_the_way: bool = True
    approach_relevance: Optional[float] = None

    def __post_init__(self) -> None:
        if not 1 <= self.k <= 6:
            raise ValueError(f"semantic.k must be in [1, 6], got {self.k}")
        if not 0 <= self.min_dist < self.max_dist:
            raise ValueError("semantic: need 0 <= min_dist < max_dist")
        if self.combine not in ("exp", "product"):
            raise ValueError(f"semantic.combine must be 'exp' or 'product', got {self.combine!r}")
        if not self.radius > 0 or self.merge < 0:
            raise ValueError("semantic.radius must be > 0 and merge >= 0")
        if self.approach_relevance is not None and not 0 < self.approach_relevance <= 1:
            raise ValueError(f"semantic.approach_relevance must be in (0, 1] or null, got {self.approach_relevance}")


@dataclass
class StopConfig:
    """When to stop and answer (eqa.stopping). policy: one of STOP_POLICIES. Thresholds are probabilities.
    conformal: `calibration` is a calibration JSON path; when None the shipped file for (method, eps) under
    vlm/calibrations/ is used. stop_when_explored: also stop when no frontier is left (the one switch for
    it). stop_on_empty: conformal also stops (not confidently) once the intersection of its sets is empty."""

    policy: str = "fixed-budget"
    relevance_threshold: float = 0.8
    prob_threshold: float = 0.5
    max_prob_threshold: float = 0.8
    eps: float = 0.1
    calibration: Optional[str] = None
    stop_when_explored: bool = True
    stop_on_empty: bool = True

    def __post_init__(self) -> None:
        if self.policy not in STOP_POLICIES:
            raise ValueError(f"stop.policy must be one of {STOP_POLICIES}, got {self.policy!r}")
        for name in ("relevance_threshold", "prob_threshold", "max_prob_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"stop.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.eps < 1.0:
            raise ValueError(f"stop.eps must be in (0, 1), got {self.eps}")


@dataclass
class MethodConfig:
    """A method: agent, VLM (None = exploration only, no answer), semantic exploration (None = frontiers
    only) and stopping. early_stop=False: every episode runs to its budget whatever `stop` says (its state is
    still recorded: calibration runs and offline stopping sweeps). direction_oracle / oracle_temperature:
    semantic directions scored by the true path distance to an answerable view (softmax(-d / temperature));
    only the simulator driver can provide it (an upper bound)."""

    name: str = "fbe"
    agent: AgentConfig = field(default_factory=AgentConfig)
    vlm: Optional[VLMConfig] = None
    semantic: Optional[SemanticConfig] = None
    stop: StopConfig = field(default_factory=StopConfig)
    early_stop: bool = True
    direction_oracle: bool = False
    oracle_temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.stop.policy in VLM_POLICIES and self.vlm is None:
            raise ValueError(f"method {self.name!r}: stop policy {self.stop.policy!r} needs a vlm section")
        if self.semantic is not None and self.vlm is None:
            raise ValueError(f"method {self.name!r}: semantic exploration needs a vlm section")
        if self.direction_oracle and self.semantic is None:
            raise ValueError(f"method {self.name!r}: direction_oracle needs a semantic section")
        if not self.oracle_temperature > 0:
            raise ValueError(f"oracle_temperature must be > 0, got {self.oracle_temperature}")


def exploration_hash(method: MethodConfig, environment: dict) -> str:
    """Hash of what shapes the recorded VLM outputs besides the VLM itself: the driver's environment settings
    (the simulator config as a dict), agent, semantic exploration, direction oracle and visual prompt (not the
    name, stopping or VLM transport). Calibrations record it; a mismatch is an error."""
    d = to_dict(method)
    keep = {k: d[k] for k in ("agent", "semantic", "direction_oracle", "oracle_temperature")}
    keep["sim"] = environment
    keep["visual_prompt"] = (d.get("vlm") or {}).get("visual_prompt")  # changes the images the VLM sees
    return config_hash(json.loads(json.dumps(keep)))
