"""EQA stop policies, all in this module: when to stop exploring and which answer to give.

Every policy has one interface: `observe(record)` once per decision (the newest view's relevance and
answer probabilities, and the simulator oracle's `answerable` label where a driver attached one), then
`should_stop(state)` and, when it said stop, `stop_reason(state)`; finally `answer()`. The same objects
run live in the agent and on recorded steps (`replay`), so an offline replay reproduces the live stop.

Policies (StopConfig.policy), each a class here:
- fixed-budget: stop at the budget (or, with stop_when_explored, when nothing is left to explore);
- relevance:    stop when relevance > relevance_threshold and max p > prob_threshold;
- max-prob:     stop when max p > max_prob_threshold;
- conformal:    keep the running intersection of conformal prediction sets, stop when one answer is left
                (and, with stop_on_empty, when the sets contradict each other and none is left: no later
                view can make it one answer again; that stop is not confident);
- oracle:       stop at the first answerable view (simulator ground truth; an upper bound).
Every policy also stops at the budget and, with stop_when_explored, when nothing is left to explore.
With allow_early off (MethodConfig.early_stop false) a policy records its state but stops only at the budget.
Answer: the policy's own when it stopped confidently (argmax p of that step; the single set member), else by
StopConfig.answer_rule: "most-relevant-step", argmax p at the most relevant step (DESIGN.md), or
"least-rejected", the choice y whose largest conformal step score R_t (1 - p_t(y)) over the steps so far is
smallest (the choice the views reject least; always a member of a non-empty conformal intersection).
Open questions (no choices) have no answer probabilities: fixed-budget and relevance (on relevance alone) stop
them; the most relevant step is still tracked (the agent answers from its views in free text).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from eqa.method import ANSWER_RULES, StopConfig
from eqa.records import EXPLORED_REASONS, ConformalRecord, Reason, StepRecord
from vlm.conformal import Calibration, RunningIntersection, step_scores

SHIPPED_CALIBRATIONS = Path(__file__).resolve().parent.parent / "vlm" / "calibrations"


@dataclass
class StopState:
    """What a stop policy may look at besides the observed steps: decisions taken so far, the episode
    budget and whether the latest plan found nothing left to explore."""

    decisions: int
    budget: int
    exploration_done: bool = False


def decision_budget(floor_area_m2: Optional[float], default: int, factor: float = 3.0) -> int:
    """The reference budget ceil(factor * sqrt(floor area)) decisions, or `default` when the area is unknown."""
    if floor_area_m2 is None:
        if default < 1:
            raise ValueError(f"default budget must be >= 1, got {default}")
        return int(default)
    if not (math.isfinite(floor_area_m2) and floor_area_m2 > 0):
        raise ValueError(f"floor area must be a positive number of m^2, got {floor_area_m2}")
    return int(math.ceil(factor * math.sqrt(floor_area_m2)))


class StopPolicy:
    """Base of every policy: budget and explored stopping and the answer rules (ANSWER_RULES) of a stop without
    confidence; as it is, the fixed-budget policy. Subclasses define `confident()` (stop now) and may override
    `hopeless()` and `confident_answer()`."""

    name = "fixed-budget"

    def __init__(self, n_choices: int, allow_early: bool = True, stop_when_explored: bool = True,
                 answer_rule: str = "most-relevant-step"):
        if answer_rule not in ANSWER_RULES:
            raise ValueError(f"answer rule must be one of {ANSWER_RULES}, got {answer_rule!r}")
        self.n_choices = n_choices
        self.allow_early = allow_early
        self.stop_when_explored = stop_when_explored and allow_early
        self.answer_rule = answer_rule
        self.last: Optional[StepRecord] = None
        self.best_relevance, self.best_answer, self.best_step = -1.0, None, None
        self.best_p: Optional[list[float]] = None
        self.rejection: Optional[np.ndarray] = None  # per choice: max over steps of R_t (1 - p_t(y)), in [0, 1]
        self.stopped_confident = False

    @property
    def final_set(self) -> Optional[list[int]]:
        """The prediction set, for policies that keep one."""
        return None

    def observe(self, record: StepRecord) -> Optional[ConformalRecord]:
        """Take one decision's record; returns the prediction sets to record (conformal), else None."""
        self.last = record
        scored = record.p_answer is not None or self.n_choices == 0  # open questions have no p_answer
        if record.relevance is not None and scored and record.relevance > self.best_relevance:
            self.best_relevance, self.best_step = float(record.relevance), record.step
            if record.p_answer is not None:
                self.best_answer, self.best_p = int(np.argmax(record.p_answer)), list(record.p_answer)
        if record.relevance is not None and record.p_answer is not None:
            rejected = -step_scores(record.relevance, record.p_answer)
            self.rejection = rejected if self.rejection is None else np.maximum(self.rejection, rejected)
        return self._update(record)

    def _update(self, record: StepRecord) -> Optional[ConformalRecord]:
        return None

    def confident(self) -> bool:
        return False

    def hopeless(self) -> bool:
        """Stop without confidence: nothing further can make the policy confident."""
        return False

    def should_stop(self, state: StopState) -> bool:
        if self.allow_early and self.last is not None and self.confident():
            self.stopped_confident = True
            return True
        if self._gives_up():
            return True
        return state.decisions >= state.budget or (self.stop_when_explored and state.exploration_done)

    def stop_reason(self, state: StopState) -> Reason:
        """Why should_stop said stop: confident, no answer left (before the budget), budget or explored."""
        if self.stopped_confident:
            return Reason.CONFIDENT
        if self._gives_up() and state.decisions < state.budget:
            return Reason.NO_ANSWER_LEFT
        return Reason.BUDGET if state.decisions >= state.budget else Reason.EXPLORED

    def _gives_up(self) -> bool:
        return self.allow_early and self.last is not None and self.hopeless()

    def confident_answer(self) -> Optional[int]:
        p = self.last.p_answer if self.last is not None else None
        return int(np.argmax(p)) if p else None

    def answer(self) -> tuple[Optional[int], str]:
        """(answer index, how it was chosen: the policy's name, or the answer rule's name without confidence)."""
        if self.stopped_confident:
            a = self.confident_answer()
            if a is not None:
                return a, self.name
        if self.answer_rule == "least-rejected" and self.rejection is not None:
            return int(np.argmin(self.rejection)), self.answer_rule
        return self.best_answer, "most-relevant-step"


class FixedBudgetStop(StopPolicy):
    name = "fixed-budget"


class RelevanceStop(StopPolicy):
    name = "relevance"

    def __init__(self, n_choices: int, relevance_threshold: float, prob_threshold: float, **kw):
        super().__init__(n_choices, **kw)
        self.t_rel, self.t_prob = relevance_threshold, prob_threshold

    def confident(self) -> bool:
        r, p = self.last.relevance, self.last.p_answer
        if self.n_choices == 0:  # an open question: relevance alone
            return r is not None and r > self.t_rel
        return r is not None and p is not None and r > self.t_rel and max(p) > self.t_prob


class MaxProbStop(StopPolicy):
    name = "max-prob"

    def __init__(self, n_choices: int, threshold: float, **kw):
        super().__init__(n_choices, **kw)
        self.threshold = threshold

    def confident(self) -> bool:
        p = self.last.p_answer
        return p is not None and max(p) > self.threshold


class ConformalStop(StopPolicy):
    """Running intersection of prediction sets C_t = {y : 1 - R_t (p_t(y) - 1) <= q}; stop at one member."""

    name = "conformal"

    def __init__(self, n_choices: int, threshold: float, stop_on_empty: bool = True, **kw):
        super().__init__(n_choices, **kw)
        self.sets = RunningIntersection(n_choices, threshold)
        self.stop_on_empty = stop_on_empty

    def _update(self, record: StepRecord) -> Optional[ConformalRecord]:
        if record.relevance is None or record.p_answer is None:
            return None
        step_set = self.sets.update(record.relevance, record.p_answer)
        threshold = None if np.isinf(self.sets.threshold) else self.sets.threshold
        return ConformalRecord(sorted(step_set), sorted(self.sets.members), threshold)

    def confident(self) -> bool:
        return len(self.sets.members) == 1

    def hopeless(self) -> bool:
        return self.stop_on_empty and len(self.sets.members) == 0

    def confident_answer(self) -> Optional[int]:
        return next(iter(self.sets.members)) if len(self.sets.members) == 1 else None

    @property
    def final_set(self) -> list[int]:
        return sorted(self.sets.members)


class OracleStop(StopPolicy):
    """Stops at the first view that the simulator labels answerable (GroundTruth.answerable)."""

    name = "oracle"

    def confident(self) -> bool:
        return bool(self.last.truth.answerable)

    def confident_answer(self) -> Optional[int]:
        return self.best_answer  # the view is answerable; answer by the most relevant view so far


def make_stop(config: StopConfig, n_choices: int, allow_early: bool = True,
              calibration: Optional[Calibration] = None) -> StopPolicy:
    """The policy of `config` for a question with n_choices answers (conformal needs `calibration`)."""
    kw = {"allow_early": allow_early, "stop_when_explored": config.stop_when_explored,
          "answer_rule": config.answer_rule}
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


def replay(policy: StopPolicy, records: list[StepRecord], budget: int) -> tuple[int, Optional[int]]:
    """Run a fresh policy over recorded steps (in order); returns (stop index into records, answer).
    Record i is the view after i decisions."""
    if not records:
        raise ValueError("no records to replay")
    for i, record in enumerate(records):
        policy.observe(record)
        state = StopState(decisions=record.step, budget=budget, exploration_done=record.reason in EXPLORED_REASONS)
        if policy.should_stop(state):
            return i, policy.answer()[0]
    return len(records) - 1, policy.answer()[0]
