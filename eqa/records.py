"""Episode records: typed step records, one JSON line per decision in `record.jsonl` (appended and flushed
as it happens, after a header line naming the schema and its version), and atomic JSON files.

A `StepRecord` holds everything a decision used and produced: pose, the frames integrated, every scored
view with its VLM outputs and the candidate points and values it wrote, the stop policy's prediction
sets, the plan (every frontier with its factors and score), the decision, its outcome, ground truth
attached by a driver's observers, and timings. Stop policies and the offline replay read these fields.
World frame, metres, radians, seconds; probabilities in [0, 1].
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Optional

import numpy as np

from eqa.config import from_dict, to_dict

SCHEMA = "confident-eqa-record"
SCHEMA_VERSION = 2  # 1: untyped rows without a header line (before the agent core was its own object)


class Action(StrEnum):
    """What a decision does."""

    MOVE = "move"
    TURN = "turn"
    STOP = "stop"


class Reason(StrEnum):
    """Why a turn or a stop (moves have none)."""

    LOOK_AROUND = "look-around"  # the initial turns in place (not counted as decisions, not recorded)
    SCAN = "scan"  # turns in place where a move ended, for a narrow camera (part of the move; not recorded)
    RECOVERY = "recovery"  # turn: no progress for several decisions, or the chosen goal is unreachable
    NO_FRONTIER = "no frontier"  # turn: nothing reachable is left to explore, but the policy goes on
    CONFIDENT = "confident"  # stop: the stop policy is confident of its answer
    NO_ANSWER_LEFT = "no answer left"  # stop: the conformal sets contradict each other (not confident)
    BUDGET = "budget"  # stop: the decision budget is used up
    EXPLORED = "explored"  # stop: nothing reachable is left to explore
    CANCELED = "canceled"  # stop: the driver ended the episode (a user canceled the question); not a decision
    END_OF_DATA = "end of data"  # stop: a replayed recording ended before the agent stopped; not a decision


EXPLORED_REASONS = (Reason.EXPLORED, Reason.NO_FRONTIER)  # the decision found nothing left to explore


@dataclass
class FrameRecord:
    """A frame integrated into the map: its stamp (s) and the base pose it was taken from."""

    stamp: float
    xy: Optional[tuple[float, float]] = None
    yaw: Optional[float] = None


@dataclass
class CandidatePoint:
    """A semantic candidate point: world xy (m), projection status (vlm.visual_prompt) and pixel (u, v)."""

    xy: tuple[float, float]
    status: str
    pixel: Optional[tuple[float, float]] = None


@dataclass
class TargetRecord:
    """Where the VLM located the question's target in a view: pixel (u, v), relevance, world xy (m) from the
    depth there (None without valid depth), and whether the agent should go and look at it from close by."""

    pixel: tuple[float, float]
    relevance: float
    xy: Optional[tuple[float, float]]
    approach: bool


@dataclass
class ViewRecord:
    """One view the agent scored, from the base pose (xy m, yaw rad) it was taken at. p_answer / relevance:
    the VLM's answer for the decision's newest view (the stop rule's input). Semantic exploration adds the
    candidate points, their local values lsv (p over the visible points), the global value gsv (P(worth
    exploring)), the values sv written into the value map, their source ("vlm" or "oracle") and the located
    target. skipped: why the view was not scored (dark, no depth). vlm_s: seconds of its model call."""

    stamp: float
    xy: tuple[float, float]
    yaw: float
    skipped: Optional[str] = None
    p_answer: Optional[list[float]] = None
    relevance: Optional[float] = None
    candidates: list[CandidatePoint] = field(default_factory=list)
    lsv: Optional[list[float]] = None
    gsv: Optional[float] = None
    sv: Optional[list[float]] = None
    source: Optional[str] = None
    target: Optional[TargetRecord] = None
    vlm_s: float = 0.0


@dataclass
class ConformalRecord:
    """Conformal prediction sets (choice indices): this view's set and the running intersection; the
    threshold q (None when infinite: the sets never shrink)."""

    step_set: list[int]
    set: list[int]
    threshold: Optional[float]


@dataclass
class FrontierRecord:
    """A frontier the planner scored: centroid and outward normal (world m), size (m) and, when scored, its
    factors (nav.scoring; distance None when unreachable) and score (None: -inf)."""

    centroid: tuple[float, float]
    normal: tuple[float, float]
    size: float
    unexplored: Optional[float] = None
    free: Optional[float] = None
    value: Optional[float] = None
    value_along: Optional[float] = None
    distance: Optional[float] = None
    in_front: Optional[bool] = None
    gain: Optional[float] = None
    score: Optional[float] = None


@dataclass
class PlanRecord:
    """The planner's result (nav.frontier_planner.PlanResult.record): action move / turn / done, the chosen
    frontier index, whether it was the committed one, squeeze fallback, approach target, goal and waypoint
    poses (x, y, yaw), turn angle (rad) and every frontier."""

    action: str
    chosen: Optional[int] = None
    committed: bool = False
    squeeze: bool = False
    approach: Optional[tuple[float, float]] = None
    goal: Optional[tuple[float, float, float]] = None
    waypoint: Optional[tuple[float, float, float]] = None
    turn_angle: float = 0.0
    frontiers: list[FrontierRecord] = field(default_factory=list)


@dataclass
class GroundTruth:
    """Simulator ground truth, attached by the driver's observers and never read by the agent: whether the
    decision's view answers the question, the coverage of the reachable floor by the map (fraction) and
    the collisions of the driven path so far."""

    answerable: Optional[bool] = None
    coverage: Optional[float] = None
    collisions: Optional[int] = None


@dataclass
class Outcome:
    """What carrying out a move did: metres travelled, whether the goal was out of reach, whether reached."""

    moved: float = 0.0
    blocked: bool = False
    reached: bool = False


@dataclass
class Timings:
    """Seconds: map integration, model calls, prompting (candidate points, projection, prompt assembly),
    planning, and carrying out the decision."""

    map_s: float = 0.0
    vlm_s: float = 0.0
    prompt_s: float = 0.0
    plan_s: float = 0.0
    act_s: float = 0.0


@dataclass
class StepRecord:
    """One decision. step: decisions taken before it; stamp: the newest frame's (s); pose: base (x, y, yaw) at
    the decision; budget: the episode's decision budget; frames: those integrated since the previous
    decision; views: the views scored, newest last; turn: the turn angle (rad) of a turn decision."""

    step: int
    stamp: float
    pose: tuple[float, float, float]
    budget: int
    action: Optional[Action] = None  # set when the agent decides
    reason: Optional[Reason] = None
    frames: list[FrameRecord] = field(default_factory=list)
    views: list[ViewRecord] = field(default_factory=list)
    conformal: Optional[ConformalRecord] = None
    truth: GroundTruth = field(default_factory=GroundTruth)
    plan: Optional[PlanRecord] = None
    turn: Optional[float] = None
    outcome: Optional[Outcome] = None
    timings: Timings = field(default_factory=Timings)

    @property
    def newest(self) -> Optional[ViewRecord]:
        """The decision's newest view, if it was scored."""
        return self.views[-1] if self.views else None

    @property
    def p_answer(self) -> Optional[list[float]]:
        """The answer probabilities of the newest view (None without a VLM answer)."""
        return self.newest.p_answer if self.newest is not None else None

    @property
    def relevance(self) -> Optional[float]:
        """The relevance of the newest view (None without a VLM answer)."""
        return self.newest.relevance if self.newest is not None else None

    @property
    def earlier_views(self) -> list[ViewRecord]:
        """The views scored before the newest (look-around headings, frames on the way)."""
        return self.views[:-1]

    def to_json(self) -> dict:
        return clean(to_dict(self))

    @classmethod
    def from_json(cls, data: dict) -> "StepRecord":
        return from_dict(cls, data, "record")


def clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class RecordWriter:
    """Writes `record.jsonl`: a header line ({"schema", "version"}), then one StepRecord per line, flushed so
    a crash loses nothing written."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", encoding="utf-8")
        self._line({"schema": SCHEMA, "version": SCHEMA_VERSION})

    def write(self, record: StepRecord) -> None:
        self._line(record.to_json())

    def _line(self, data: dict) -> None:
        self._file.write(json.dumps(data, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_records(path: str | os.PathLike) -> list[StepRecord]:
    """The step records of a record file; a truncated last line (crash mid-write) is skipped. ValueError for a
    file of another schema or version (records of schema 1 were written before the header existed)."""
    path = Path(path)
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    header = _json_line(path, lines, 0) if lines else None
    if not isinstance(header, dict) or header.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a {SCHEMA} file (no header line; records written before schema version "
                         f"{SCHEMA_VERSION} cannot be read: re-run the episodes)")
    if header.get("version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: record schema version {header.get('version')}, this code reads {SCHEMA_VERSION}")
    records = []
    for i in range(1, len(lines)):
        data = _json_line(path, lines, i)
        if data is None:  # a line cut short by a crash
            break
        records.append(StepRecord.from_json(data))
    return records


def _json_line(path: Path, lines: list[str], i: int) -> Optional[dict]:
    """Line i parsed; None for a truncated last line; ValueError for a bad line elsewhere."""
    try:
        return json.loads(lines[i])
    except json.JSONDecodeError:
        if i == len(lines) - 1:
            return None
        raise ValueError(f"{path}: line {i + 1} is not valid JSON") from None


def write_json_atomic(path: str | os.PathLike, data: dict) -> None:
    """Write JSON to a temporary file and rename it into place."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(clean(data), indent=1), encoding="utf-8")
    os.replace(tmp, path)
