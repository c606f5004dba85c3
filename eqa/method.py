"""The method config: everything an `EQAAgent` does, whatever drives it (simulator, ROS 2, replay).

A method YAML in configs/ states only what differs from these defaults. Simulator-only settings (the
simulator, question generation, the ground-truth direction oracle) belong to the simulator run
(`eqa.sim_driver.SimRun`), which reads the same YAML; nothing here imports the simulator.
Units: metres, radians (degrees where a name says so), seconds; probabilities in [0, 1].
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Optional

from eqa.config import to_dict
from mapping.bounds import NonNegative, Positive, Probability, Range, check_bounds
from mapping.config import MapConfig
from nav.config import PlannerConfig
from vlm.config import VLMConfig
from vlm.conformal import config_hash
from vlm.registry import backend

OPEN_QUESTION_POLICIES = ("fixed-budget", "relevance")  # policies that stop without answer probabilities
STOP_POLICIES = ("fixed-budget", "relevance", "max-prob", "conformal", "oracle")
ANSWER_RULES = ("most-relevant-step", "least-rejected")  # the answer of a stop without confidence (eqa.stopping)
VLM_POLICIES = ("relevance", "max-prob", "conformal")  # stop policies that read the VLM's outputs


@dataclass
class AgentConfig:
    """map / planner: see MapConfig and PlannerConfig. look_around_turns: turns in place covering
    360 deg before the first decision (0 = none; more when the camera's explored wedge, MapConfig
    explored_fov_fraction of its field of view, is too narrow for them to cover 360 deg). A camera whose
    horizontal field of view is below scan_below_hfov_deg (0 = never) looks around where each move ends, toward
    the headings whose view still shows at least scan_min_unseen_m2 of unexplored floor (nav.scan).
    Budget: ceil(budget_factor * sqrt(floor area)) decisions when the episode gives the floor area (m^2), else
    default_budget."""

    map: MapConfig = field(default_factory=MapConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    look_around_turns: Annotated[int, Range(ge=0, le=36)] = 4
    scan_below_hfov_deg: Annotated[float, Range(ge=0, le=360)] = 100.0
    scan_min_unseen_m2: NonNegative = 0.1
    budget_factor: Annotated[float, Range(gt=0, le=100)] = 3.0
    default_budget: Annotated[int, Range(ge=1, le=10_000)] = 50

    def __post_init__(self) -> None:
        check_bounds(self)


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

    k: Annotated[int, Range(ge=1, le=6)] = 3
    min_dist: NonNegative = 2.0
    max_dist: Annotated[float, Range(gt=0, le=50)] = 10.0
    merge: NonNegative = 1.0
    tau_local: Annotated[float, Range(ge=-100, le=100)] = 1.0
    tau_global: Annotated[float, Range(ge=-100, le=100)] = 1.0
    combine: str = "exp"
    radius: Annotated[float, Range(gt=0, le=20)] = 2.0
    min_valid_depth: Probability = 0.2
    min_brightness: Annotated[float, Range(ge=0, le=255)] = 10.0
    earlier_views: bool = True
    views_on_the_way: bool = True
    approach_relevance: Optional[Annotated[float, Range(gt=0, le=1)]] = None

    def __post_init__(self) -> None:
        check_bounds(self)
        if not self.min_dist < self.max_dist:
            raise ValueError("semantic: need 0 <= min_dist < max_dist")
        if self.combine not in ("exp", "product"):
            raise ValueError(f"semantic.combine must be 'exp' or 'product', got {self.combine!r}")


@dataclass
class StopConfig:
    """When to stop and answer (eqa.stopping). policy: one of STOP_POLICIES. Thresholds are probabilities.
    conformal: `calibration` is a calibration JSON path; when None the shipped file for (method, eps) under
    vlm/calibrations/ is used. stop_when_explored: also stop when no frontier is left (the one switch for
    it). stop_on_empty: conformal also stops (not confidently) once the intersection of its sets is empty.
    answer_rule: one of ANSWER_RULES, how a stop without confidence picks its answer."""

    policy: str = "fixed-budget"
    relevance_threshold: Probability = 0.8
    prob_threshold: Probability = 0.5
    max_prob_threshold: Probability = 0.8
    eps: Annotated[float, Range(gt=0, lt=1)] = 0.1
    calibration: Optional[str] = None
    stop_when_explored: bool = True
    stop_on_empty: bool = True
    answer_rule: str = "most-relevant-step"

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.policy not in STOP_POLICIES:
            raise ValueError(f"stop.policy must be one of {STOP_POLICIES}, got {self.policy!r}")
        if self.answer_rule not in ANSWER_RULES:
            raise ValueError(f"stop.answer_rule must be one of {ANSWER_RULES}, got {self.answer_rule!r}")


@dataclass
class OpenAnswerConfig:
    """Open questions (no choices; eqa.agent.EQAQuestion with choices ()): the agent answers in free text from
    its `views` most relevant views (most relevant first), at most `max_tokens` tokens, with a backend that
    writes text (hf, openai)."""

    views: Annotated[int, Range(ge=1, le=8)] = 3
    max_tokens: Annotated[int, Range(ge=1, le=1024)] = 32

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass
class MethodConfig:
    """A method: agent, VLM (None = exploration only, no answer), semantic exploration (None = frontiers
    only) and stopping. early_stop=False: every episode runs to its budget whatever `stop` says (its state is
    still recorded: calibration runs and offline stopping sweeps). direction_oracle / oracle_temperature:
    semantic directions scored by the true path distance to an answerable view (softmax(-d / temperature));
    only the simulator driver can provide it (an upper bound). open_answer: how open questions are answered."""

    name: str = "fbe"
    agent: AgentConfig = field(default_factory=AgentConfig)
    vlm: Optional[VLMConfig] = None
    semantic: Optional[SemanticConfig] = None
    stop: StopConfig = field(default_factory=StopConfig)
    early_stop: bool = True
    direction_oracle: bool = False
    oracle_temperature: Positive = 1.0
    open_answer: OpenAnswerConfig = field(default_factory=OpenAnswerConfig)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.stop.policy in VLM_POLICIES and self.vlm is None:
            raise ValueError(f"method {self.name!r}: stop policy {self.stop.policy!r} needs a vlm section")
        if self.semantic is not None and self.vlm is None:
            raise ValueError(f"method {self.name!r}: semantic exploration needs a vlm section")
        if self.direction_oracle and self.semantic is None:
            raise ValueError(f"method {self.name!r}: direction_oracle needs a semantic section")


def exploration_hash(method: MethodConfig, environment: dict) -> str:
    """Hash of what shapes the recorded VLM outputs besides the VLM itself: the driver's environment settings
    (the simulator config as a dict), agent, semantic exploration, direction oracle and visual prompt (not the
    name, stopping or VLM transport). Calibrations record it; a mismatch is an error."""
    d = to_dict(method)
    keep = {k: d[k] for k in ("agent", "semantic", "direction_oracle", "oracle_temperature")}
    keep["sim"] = environment
    keep["visual_prompt"] = (d.get("vlm") or {}).get("visual_prompt")  # changes the images the VLM sees
    return config_hash(json.loads(json.dumps(keep)))


def check_open_questions(method: MethodConfig) -> None:
    """Open questions (OpenEQA's, `eqa run` without choices) need a VLM that writes text and a stop policy that
    needs no answer probabilities; ValueError naming what to change otherwise."""

    if method.vlm is None or not backend(method.vlm.backend).writes_text:
        raise ValueError(f"method {method.name!r}: open questions are answered in free text; use a VLM "
                         "backend that writes text (e.g. --method semantic vlm.backend=hf or openai)")
    if method.stop.policy not in OPEN_QUESTION_POLICIES:
        raise ValueError(f"method {method.name!r}: stop policy {method.stop.policy!r} needs answer choices; open "
                         f"questions stop by {', '.join(OPEN_QUESTION_POLICIES)} (e.g. stop.policy=relevance)")
