"""EQA stop policies: when to stop exploring and which answer to give.

Each policy is fed one row per decision (`observe`, with the newest view's `relevance`, `p_answer`
and, in the simulator, the oracle's `answerable`), is asked `should_stop(StopState)` by the agent,
and finally gives `answer()`. The same objects run live and on recorded rows (`replay`), so an
offline replay reproduces the live stop step exactly.

Policies (StopConfig.policy):
- fixed-budget: stop at the budget (or when nothing is left to explore);
- relevance:    stop when relevance > relevance_threshold and max p > prob_threshold;
- max-prob:     stop when max p > max_prob_threshold;
- conformal:    keep the running intersection of conformal prediction sets, stop when one answer is left
                (and, with stop_on_empty, when the sets contradict each other and none is left: no later
                view can make it one answer again; that stop is not confident);
- oracle:       stop at the first answerable view (simulator ground truth; an upper bound).
Answer: the policy's own when it stopped confidently (argmax p of that step; the single set member),
else argmax p at the most relevant step (DESIGN.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from nav.stop import StopState, budget_or_explored, budget_stop_reason
from vlm.conformal import Calibration, RunningIntersection

POLICIES = ("fixed-budget", "relevance", "max-prob", "conformal", "oracle")
EXPLORED_REASONS = ("explored", "no frontier")  # recorded reasons meaning nothing was left to explore
SHIPPED_CALIBRATIONS = Path(__file__).resolve().parent.parent / "vlm" / "calibrations"


@dataclass
class StopConfig:
    """policy: one of POLICIES. Thresholds are probabilities. conformal: `calibration` is a calibration
    JSON path; when None the shipped file for (method, eps) under vlm/calibrations/ is used.
    stop_when_explored: also stop when no frontier is left. stop_on_empty: conformal also stops
    (not confidently) once the intersection is empty."""

    policy: str = "fixed-budget"
    relevance_threshold: float = 0.8
    prob_threshold: float = 0.5
    max_prob_threshold: float = 0.8
    eps: float = 0.1
    calibration: Optional[str] = None
    stop_when_explored: bool = True
    stop_on_empty: bool = True

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"stop.policy must be one of {POLICIES}, got {self.policy!r}")
        for name in ("relevance_threshold", "prob_threshold", "max_prob_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"stop.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.eps < 1.0:
            raise ValueError(f"stop.eps must be in (0, 1), got {self.eps}")


def shipped_calibration_path(method: str, eps: float) -> Path:
    """vlm/calibrations/<method>-eps<eps>.json (e.g. semantic-eps0.1.json)."""
    return SHIPPED_CALIBRATIONS / f"{method}-eps{eps:g}.json"


class EQAStop:
    """Base: budget / explored stopping and the most-relevant-step answer rule. Subclasses define
    `confident()` (stop now) and may override `confident_answer()`. allow_early=False records the
    policy's state but only stops at the budget (calibration runs)."""

    name = "fixed-budget"
    final_set: Optional[list[int]] = None  # the prediction set, for policies that keep one

    def __init__(self, n_choices: int, allow_early: bool = True, stop_when_explored: bool = True):
        self.n_choices = n_choices
        self.allow_early = allow_early
        self.stop_when_explored = stop_when_explored
        self.last: Optional[dict] = None
        self.best_relevance, self.best_answer, self.best_step = -1.0, None, None
        self.stopped_confident = False

    def observe(self, step: int, row: dict) -> dict:
        """Take one decision's row; returns fields to add to the record."""
        self.last = row
        if row.get("relevance") is not None and row.get("p_answer") is not None:
            if row["relevance"] > self.best_relevance:
                self.best_relevance = float(row["relevance"])
                self.best_answer, self.best_step = int(np.argmax(row["p_answer"])), step
        return self._update(step, row)

    def _update(self, step: int, row: dict) -> dict:
        return {}

    def confident(self) -> bool:
        return False

    def should_stop(self, state: StopState) -> bool:
        if self.allow_early and self.last is not None and self.confident():
            self.stopped_confident = True
            return True
        if self._gives_up():
            return True
        return budget_or_explored(state, self.stop_when_explored)

    def stop_reason(self, state: StopState) -> str:
        """Why should_stop said stop: confident, no answer left (before the budget), budget or explored."""
        if self.stopped_confident:
            return f"confident ({self.name})"
        if self._gives_up() and state.decisions < state.budget:
            return f"no answer left ({self.name})"
        return budget_stop_reason(state)

    def hopeless(self) -> bool:
        """Stop without confidence: nothing further can make the policy confident."""
        return False

    def _gives_up(self) -> bool:
        return self.allow_early and self.last is not None and self.hopeless()

    def confident_answer(self) -> Optional[int]:
        return int(np.argmax(self.last["p_answer"])) if self.last and self.last.get("p_answer") else None

    def answer(self) -> tuple[Optional[int], str]:
        """(answer index, how it was chosen)."""
        if self.stopped_confident:
            a = self.confident_answer()
            if a is not None:
                return a, self.name
        return self.best_answer, "most-relevant-step"


class FixedBudgetStop(EQAStop):
    name = "fixed-budget"


class RelevanceStop(EQAStop):
    name = "relevance"

    def __init__(self, n_choices: int, relevance_threshold: float, prob_threshold: float, **kw):
        super().__init__(n_choices, **kw)
        self.t_rel, self.t_prob = relevance_threshold, prob_threshold

    def confident(self) -> bool:
        r, p = self.last.get("relevance"), self.last.get("p_answer")
        return r is not None and p is not None and r > self.t_rel and max(p) > self.t_prob


class MaxProbStop(EQAStop):
    name = "max-prob"

    def __init__(self, n_choices: int, threshold: float, **kw):
        super().__init__(n_choices, **kw)
        self.threshold = threshold

    def confident(self) -> bool:
        p = self.last.get("p_answer")
        return p is not None and max(p) > self.threshold


class ConformalStop(EQAStop):
    """Running intersection of prediction sets C_t = {y : 1 - R_t (p_t(y) - 1) <= q}; stop at one member."""

    name = "conformal"

    def __init__(self, n_choices: int, threshold: float, stop_on_empty: bool = True, **kw):
        super().__init__(n_choices, **kw)
        self.sets = RunningIntersection(n_choices, threshold)
        self.stop_on_empty = stop_on_empty

    def _update(self, step: int, row: dict) -> dict:
        if row.get("relevance") is None or row.get("p_answer") is None:
            return {}
        step_set = self.sets.update(row["relevance"], row["p_answer"])
        return {"conformal": {"step_set": sorted(step_set), "set": sorted(self.sets.members),
                              "threshold": None if np.isinf(self.sets.threshold) else self.sets.threshold}}

    def confident(self) -> bool:
        return len(self.sets.members) == 1

    def hopeless(self) -> bool:
        return self.stop_on_empty and len(self.sets.members) == 0

    def confident_answer(self) -> Optional[int]:
        return next(iter(self.sets.members)) if len(self.sets.members) == 1 else None

    @property
    def final_set(self) -> list[int]:
        return sorted(self.sets.members)


class OracleStop(EQAStop):
    name = "oracle"

    def confident(self) -> bool:
        return bool(self.last.get("answerable"))

    def confident_answer(self) -> Optional[int]:
        return self.best_answer  # the view is answerable; answer by the most relevant view so far


def make_stop(config: StopConfig, n_choices: int, allow_early: bool = True,
              calibration: Optional[Calibration] = None) -> EQAStop:
    """The policy of `config` for a question with n_choices answers (conformal needs `calibration`)."""
    kw = {"allow_early": allow_early, "stop_when_explored": config.stop_when_explored}
    if config.policy == "fixed-budget":
        return FixedBudgetStop(n_choices, **kw)
    if config.policy == "relevance":
        return RelevanceStop(n_choices, config.relevance_threshold, config.prob_threshold, **kw)
    if config.policy == "max-prob":
        return MaxProbStop(n_choices, config.max_prob_threshold, **kw)
    if config.policy == "conformal":
        if calibration is None:
            raise ValueError("the conformal stop policy needs a calibration")
        return ConformalStop(n_choices, calibration.threshold, stop_on_empty=config.stop_on_empty, **kw)
    return OracleStop(n_choices, **kw)


def replay(policy: EQAStop, rows: list[dict], budget: int) -> tuple[int, Optional[int]]:
    """Run a fresh policy over recorded decision rows (in order); returns (stop row index, answer).
    Rows are those of `record.jsonl`: row i is the view after i decisions."""
    if not rows:
        raise ValueError("no rows to replay")
    for i, row in enumerate(rows):
        policy.observe(int(row.get("step", i)), row)
        state = StopState(decisions=int(row.get("step", i)), budget=budget,
                          exploration_done=row.get("reason") in EXPLORED_REASONS)
        if policy.should_stop(state):
            return i, policy.answer()[0]
    return len(rows) - 1, policy.answer()[0]
