"""What only the built-in simulator knows, attached to its episodes by the simulator driver: observers that
label each decision's record with ground truth and add it to the summary, and the ground-truth direction
oracle of the `oracle-direction` method. The agent never reads any of it (the `oracle` stop policy, an
upper bound, reads the answerable labels).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from eqa.coverage import collisions, coverage, reachable_floor
from eqa.records import StepRecord
from eqa.semantic import DirectionOracle
from sim.freespace import FreeSpace
from sim.questions import HouseLabeller, Question


class AnswerableObserver:
    """Labels each decision with whether its view (at the decision's pose) answers the procedural question,
    by the question generator's own rule; the summary gets the first answerable step (None: never)."""

    def __init__(self, labeller: HouseLabeller, question: Question):
        self.labeller = labeller
        self.candidate = question.candidate()
        self.first_answerable: Optional[int] = None

    def label(self, record: StepRecord, agent) -> None:
        answerable = bool(self.labeller.answerable(self.candidate, np.array([record.pose]))[0])
        record.truth.answerable = answerable
        if answerable and self.first_answerable is None:
            self.first_answerable = record.step

    def summary(self, summary: dict) -> dict:
        return {"first_answerable_step": self.first_answerable}


class QuestionObserver:
    """The question's identity and, where known, its true answer: the summary gets the id, category, truth,
    whether the answer is right and whether the truth is in the final prediction set."""

    def __init__(self, question_id: str, category: str, truth: Optional[int]):
        self.question_id, self.category, self.truth = question_id, category, truth

    def label(self, record: StepRecord, agent) -> None:
        """Nothing per decision."""

    def summary(self, summary: dict) -> dict:
        answer, truth = summary.get("answer"), self.truth
        out = {"question_id": self.question_id, "category": self.category, "truth": truth,
               "success": (answer == truth) if None not in (answer, truth) else None}
        if "final_set" in summary:
            out["truth_in_set"] = (truth in summary["final_set"]) if truth is not None else None
        return out


class CoverageObserver:
    """Labels each decision with the map's coverage of the reachable floor (fraction) and the collisions of the
    path driven so far; the summary gets the values of the last decision."""

    def __init__(self, env):
        self.env = env
        self.floor: Optional[np.ndarray] = None
        self.last: dict = {}

    def label(self, record: StepRecord, agent) -> None:
        if self.floor is None:
            self.floor = reachable_floor(self.env.freespace, self.env.path[0])
        record.truth.coverage = coverage(agent.map, self.floor)
        record.truth.collisions = collisions(self.env.freespace, self.env.trajectory, self.env.config.robot.radius)
        self.last = {"coverage": record.truth.coverage, "collisions": record.truth.collisions}

    def summary(self, summary: dict) -> dict:
        return dict(self.last)


def path_distance_oracle(freespace: FreeSpace, goals_xy: np.ndarray, temperature: float = 1.0) -> DirectionOracle:
    """Direction oracle: LSV = softmax(-d / T) over the points' true path distances (m) to the nearest goal
    (answerable viewpoint); GSV = 1."""
    field = freespace.distance_field(goals_xy)

    def oracle(points: np.ndarray) -> tuple[np.ndarray, float]:
        d = freespace.grid.values_at(field, points, np.inf)
        d = np.where(np.isfinite(d), d, d[np.isfinite(d)].max(initial=0.0) + 10.0)
        p = np.exp(-(d - d.min()) / temperature)
        return p / p.sum(), 1.0

    return oracle
