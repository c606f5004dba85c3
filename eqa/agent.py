"""The EQA agent: explore until confident, then answer. One object for every driver (the built-in
simulator, ROS 2, bag replay, Habitat): it is fed the frames captured since its last decision and
returns the next decision; the driver carries decisions out and decides nothing.

Per decision: integrate the frames into the scene map; score the decision's views with the VLM (the newest
answers the question; semantic exploration also scores the look-around's and the on-the-way views, one
call each, and writes their values into the value map); update the stop policy's belief; stop, or ask the
frontier planner for the next waypoint. Before the first decision the agent turns in place
(`AgentConfig.look_around_turns`, more for a narrow camera); with a narrow camera it also looks around where
each move ends (`AgentConfig.scan_below_hfov_deg`, nav.scan). Those turns are not decisions and have no
record: a scan is part of the move's decision, and the next decision scores its views.

It imports nothing from the simulator: ground truth (answerable views, coverage, the direction oracle)
reaches an episode only through what a driver attaches (observers, a direction oracle).
Poses: T_world_base (x forward, y left, z up), metres, radians, seconds.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Optional, Protocol, Sequence

import numpy as np

from eqa.method import OPEN_QUESTION_POLICIES, MethodConfig
from eqa.config import from_dict
from eqa.records import Action, FrameRecord, Outcome, PlanRecord, Reason, StepRecord, ViewRecord
from eqa.semantic import DirectionOracle, SemanticExplorer
from eqa.stopping import StopPolicy, StopState, decision_budget, make_stop
from mapping.frame import Frame, base_pose, pose_xy_yaw
from mapping.scene_map import SceneMap
from mapping.value_map import SemanticValueMap
from nav.frontier_planner import FrontierPlanner
from nav.scan import ViewWedge, camera_hfov, nearest_floor_distance, scan_turns
from vlm.conformal import Calibration
from vlm.errors import VLMError
from vlm.interface import OpenAnswer
from vlm.prompts import letter
from vlm.queries import QueryKind


@dataclass(frozen=True)
class EQAQuestion:
    """A question: its text and 2 to 6 distinct choices, or no choices (an open question, answered in free
    text by a VLM that writes text; MethodConfig.open_answer)."""

    text: str
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("the question is empty")
        if self.choices and (not 2 <= len(self.choices) <= 6 or len(set(self.choices)) != len(self.choices)):
            raise ValueError(f"give 2 to 6 distinct choices (or none, for an open question), got {list(self.choices)}")

    @property
    def is_open(self) -> bool:
        """An open question: no choices."""
        return not self.choices


@dataclass
class Decision:
    """What the agent wants next. MOVE: drive towards the world base pose T_world_base, at most max_distance
    metres; TURN: turn in place by angle radians (counter-clockwise); STOP: answer now (EQAAgent.answer).
    record: the decision's StepRecord (None for the look-around turns, which are not decisions); the driver
    adds the outcome and the act time before writing it."""

    action: Action
    step: int
    T_world_base: Optional[np.ndarray] = None
    max_distance: float = 0.0
    angle: float = 0.0
    reason: Optional[Reason] = None
    record: Optional[StepRecord] = None


@dataclass
class Answer:
    """The agent's answer: choice index and letter (None without one), the answer probabilities of the most
    relevant view, the prediction set (conformal stopping), why it stopped, how the answer was chosen (the
    stop policy's name when it stopped confidently, else that of StopConfig.answer_rule), the step of the most
    relevant view, and whether the stop was confident. Open questions, once the episode has ended: `text` (the
    VLM's free-text answer from the most relevant views), `open_answer` (its prompt, views and cost) or
    `open_answer_error` (why the VLM gave none: the episode is kept); index and letter None."""

    index: Optional[int]
    letter: Optional[str]
    probabilities: Optional[list[float]]
    prediction_set: Optional[list[int]]
    stop_reason: Optional[Reason]
    rule: str
    step: Optional[int]
    confident: bool
    policy: str
    text: Optional[str] = None
    open_answer: Optional[OpenAnswer] = None
    open_answer_error: Optional[str] = None


class StepObserver(Protocol):
    """A driver's observer: adds ground truth to a decision's record (record.truth) before the stop policy
    reads it. The agent calls it and never reads what it writes (only the declared oracle stop policy does)."""

    def label(self, record: StepRecord, agent: "EQAAgent") -> None: ...


class EQAAgent:
    """Explores with frontiers (and the VLM's semantic values) until its stop policy says stop, then answers.

    method: the method config; vlm: the VLM (required when method.vlm is set); calibration: the conformal
    calibration (required for stop.policy conformal; its VLM, prompt version and eps must match).
    """

    def __init__(self, method: MethodConfig, vlm=None, calibration: Optional[Calibration] = None):
        if method.vlm is not None and vlm is None:
            raise ValueError(f"method {method.name!r} needs a VLM")
        if method.stop.policy == "conformal":
            if calibration is None:
                raise ValueError("conformal stopping needs a calibration (eqa calibrate, or a shipped one)")
            calibration.check(vlm.info.model_id, vlm.info.prompt_version, eps=method.stop.eps)
        self.method, self.vlm, self.calibration = method, vlm, calibration
        self.config = method.agent
        self.planner = FrontierPlanner(self.config.planner)
        self.map: Optional[SceneMap] = None
        self.value_map: Optional[SemanticValueMap] = None
        self.explorer: Optional[SemanticExplorer] = None
        self.policy: Optional[StopPolicy] = None
        self.question: Optional[EQAQuestion] = None
        self.budget = self.config.default_budget
        self.decisions = 0
        self.pose: Optional[np.ndarray] = None
        self.vlm_calls, self.vlm_seconds = 0, 0.0
        self.best_view: Optional[tuple[int, np.ndarray]] = None  # (step, RGB) of the most relevant view
        self.last_view: Optional[tuple[int, np.ndarray]] = None  # (step, RGB) of the last decision's view

    # -- episode ------------------------------------------------------------------------------------
    def reset(self, question: Optional[EQAQuestion], seed: int = 0, floor_area_m2: Optional[float] = None,
              direction_oracle: Optional[DirectionOracle] = None, keep_map: bool = False) -> None:
        """Start an episode: empty maps, the planner seeded with `seed`, the budget from the floor area (m^2;
        None: AgentConfig.default_budget). question None: explore only (methods without a VLM).
        direction_oracle: the driver's ground-truth direction scores for this episode (methods with
        direction_oracle: true; the simulator's). keep_map: keep the scene map of the previous episode (a
        robot asked another question where it is; its first frame may be anywhere), with a new value map."""
        method = self.method
        if question is None and method.vlm is not None:
            raise ValueError(f"method {method.name!r} answers questions: give the agent a question")
        if method.direction_oracle and direction_oracle is None:
            raise ValueError(f"method {method.name!r} scores directions by ground truth: its driver must give the "
                             "direction oracle (only the built-in simulator has one)")
        if question is not None and question.is_open:
            if self.vlm is None or not self.vlm.writes_text:
                backend = self.vlm.info.backend if self.vlm is not None else "method's (none)"
                raise ValueError(f"open questions are answered in free text: the {backend} backend cannot write "
                                 "text (use hf or openai)")
            if method.stop.policy not in OPEN_QUESTION_POLICIES:
                raise ValueError(f"stop policy {method.stop.policy!r} needs answer choices; an open question stops "
                                 f"by {', '.join(OPEN_QUESTION_POLICIES)} (e.g. stop.policy=relevance)")
        n_choices = len(question.choices) if question is not None else 0
        self.question = question
        self.policy = make_stop(method.stop, n_choices, allow_early=method.early_stop, calibration=self.calibration)
        if keep_map and self.map is not None:
            self.map.expect_relocation()
        else:
            self.map = SceneMap(self.config.map)
        self.value_map = SemanticValueMap(self.config.map.voxel_size) if method.semantic is not None else None
        self.explorer = SemanticExplorer(method.semantic, self.vlm, direction_oracle if method.direction_oracle
                                         else None, method.vlm.visual_prompt) if method.semantic is not None else None
        self.planner.reset(np.random.default_rng(seed))
        self.budget = decision_budget(floor_area_m2, self.config.default_budget, self.config.budget_factor)
        self.decisions = 0
        self.pose = None
        self.vlm_calls, self.vlm_seconds = 0, 0.0
        self.best_view = self.last_view = None
        self._open_views: list[tuple[float, int, np.ndarray]] = []  # (relevance, step, RGB), most relevant first
        self._open_answer: Optional[tuple[Optional[OpenAnswer], Optional[str]]] = None  # (answer, error), once
        self._phase = "start"  # start -> explore (turns in place queued as needed) -> stopped
        self._turns: list[tuple[float, Reason]] = []  # turns in place still to issue (look-around, scan)
        self._views: list[Frame] = []  # frames the next decision scores
        self._scan_due = False  # the last decision was a move: a narrow camera looks around where it ends
        self._newest: Optional[Frame] = None
        self._frames: list[FrameRecord] = []
        self._map_s = 0.0
        self._exploration_done = False
        self._approach: Optional[tuple[float, float]] = None
        self._stop_reason: Optional[Reason] = None

    def step(self, frames: Sequence[Frame], outcome: Optional[Outcome] = None,
             observers: Sequence[StepObserver] = ()) -> Decision:
        """The next decision, given the frames captured since the previous one (oldest first; at the start the
        first frame, then each look-around turn's). outcome: what the previous move did (metres travelled
        feed the planner's progress check). observers: label each decision's record with ground truth."""
        if self.map is None:
            raise RuntimeError("call reset() before step()")
        if self._phase == "stopped":
            raise RuntimeError("the agent has stopped: read answer(), or reset() for a new episode")
        if outcome is not None:
            self.planner.report_motion(outcome.moved)
        frames = self._integrate(frames)
        if self._newest is None:
            raise ValueError("the first step needs at least one frame")
        if self._phase == "start":  # the first frame: integrated, then the look-around (if any)
            self._phase = "explore"
            self._turns = [(a, Reason.LOOK_AROUND) for a in self._look_around_angles()]
            # the look-around ends where it began: its views replace the first frame
            self._views = [] if self._turns else list(frames)
        else:
            self._views.extend(frames)
        if self._scan_due:
            self._scan_due = False
            self._turns = [(a, Reason.SCAN) for a in self._scan_angles()]
        if self._turns:
            angle, reason = self._turns.pop(0)
            return Decision(Action.TURN, self.decisions, angle=angle, reason=reason)
        views, self._views = self._views or [self._newest], []
        return self._decide(views, observers)

    def integrate(self, frames: Sequence[Frame]) -> None:
        """Fold frames (oldest first) into the scene map only: no view is scored and nothing is decided (a
        driver's frames between keyframes, e.g. a 30 Hz recording replayed). The next decision's record lists
        them among its frames."""
        if self.map is None:
            raise RuntimeError("call reset() before integrate()")
        if self._phase == "stopped":
            raise RuntimeError("the agent has stopped: read answer(), or reset() for a new episode")
        self._integrate(frames)

    def _narrow_view(self) -> bool:
        """Whether the camera's horizontal field of view is below AgentConfig.scan_below_hfov_deg."""
        return camera_hfov(self._newest) < math.radians(self.config.scan_below_hfov_deg)

    def _wedge(self) -> ViewWedge:
        """The floor wedge the newest frame's camera marks explored (mapping.config.MapConfig); the floor is the
        map's, or the base's height before the map has one (no valid depth yet)."""
        c = self.config.map
        floor_z = self.map.floor_z if self.map.floor_z is not None else float(self._newest.T_world_base[2, 3])
        return ViewWedge(camera_hfov(self._newest) * c.explored_fov_fraction,
                         nearest_floor_distance(self._newest, floor_z), c.explored_range)

    def _look_around_angles(self) -> list[float]:
        """The initial turns: look_around_turns equal turns, more where the camera's explored wedge is too
        narrow for them to cover 360 deg."""
        n = self.config.look_around_turns
        if n == 0:
            return []
        n = max(n, int(math.ceil(2 * math.pi / self._wedge().width - 1e-9)))
        return [2 * math.pi / n] * n

    def _scan_angles(self) -> list[float]:
        """Turns where a move ended (narrow cameras only): toward every heading whose wedge still shows
        unexplored floor in line of sight (nav.scan)."""
        if not self._narrow_view():
            return []
        x, y, yaw = pose_xy_yaw(self.pose)
        m = self.map
        return scan_turns(m.explored, m.occupied, m.spec, (x, y), yaw, self._wedge(), self.config.scan_min_unseen_m2)

    def interrupt(self, reason: Reason = Reason.CANCELED) -> None:
        """End the episode without a decision (the driver's user canceled it); answer() then gives the answer
        so far."""
        if self.policy is None:
            raise RuntimeError("call reset() before interrupt()")
        self._phase, self._stop_reason = "stopped", reason

    @property
    def stopped(self) -> bool:
        """Whether the episode has ended (a stop decision, or interrupt())."""
        return self._phase == "stopped"

    @property
    def newest_frame(self) -> Optional[Frame]:
        """The newest frame integrated (with its base pose)."""
        return self._newest

    def answer(self) -> Answer:
        """The answer as the stop policy gives it now (after a stop: the final answer). An open question's free
        text is written once the episode has ended (a stop or interrupt()), not during it."""
        if self.policy is None:
            raise RuntimeError("call reset() before answer()")
        index, rule = self.policy.answer()
        open_answer, error = None, None
        if self.question is not None and self.question.is_open and self.stopped:
            open_answer, error = self._answer_open()
        return Answer(index=index, letter=letter(index) if index is not None else None,
                      probabilities=self.policy.best_p, prediction_set=self.policy.final_set,
                      stop_reason=self._stop_reason, rule=rule, step=self.policy.best_step,
                      confident=self.policy.stopped_confident, policy=self.policy.name,
                      text=open_answer.text if open_answer is not None else None, open_answer=open_answer,
                      open_answer_error=error)

    def _answer_open(self) -> tuple[Optional[OpenAnswer], Optional[str]]:
        """(the free-text answer from the most relevant views, None) once per episode, or (None, why): no view
        was scored, or the VLM failed (a server down, a reply refused)."""
        if self._open_answer is None:
            if not self._open_views:
                self._open_answer = (None, "no view was scored")
            else:
                cfg = self.method.open_answer
                try:
                    reply = self.vlm.answer_open([rgb for _, _, rgb in self._open_views], self.question.text,
                                                 cfg.max_tokens)
                except (VLMError, ValueError) as err:
                    self._open_answer = (None, f"{type(err).__name__}: {err}")
                else:
                    self.vlm_calls += 1
                    self.vlm_seconds += reply.latency_s
                    self._open_answer = (reply, None)
        return self._open_answer

    # -- one decision -------------------------------------------------------------------------------
    def _integrate(self, frames: Sequence[Frame]) -> list[Frame]:
        """Integrate frames (oldest first) into the map; returns them, each with its base pose (the map's
        estimate from the camera pose where a frame has none). The newest base pose becomes the robot pose."""
        t0 = time.perf_counter()
        posed = []
        for frame in frames:
            self.map.integrate(frame)
            if frame.T_world_base is None:
                frame = dataclasses.replace(frame, T_world_base=base_pose(*self.map.robot_path[-1]))
            self.pose = np.asarray(frame.T_world_base, dtype=float)
            x, y, yaw = pose_xy_yaw(self.pose)
            self._frames.append(FrameRecord(frame.stamp, (x, y), yaw))
            self._newest = frame
            posed.append(frame)
        self._map_s += time.perf_counter() - t0
        return posed

    def _decide(self, views: list[Frame], observers: Sequence[StepObserver]) -> Decision:
        step = self.decisions
        record = StepRecord(step=step, stamp=self._newest.stamp, pose=pose_xy_yaw(self.pose), budget=self.budget,
                            frames=self._frames)
        self._frames = []
        record.timings.map_s, self._map_s = self._map_s, 0.0
        t0 = time.perf_counter()
        record.views, newest_view = self._score(step, views)
        record.timings.vlm_s = sum(v.vlm_s for v in record.views)
        record.timings.prompt_s = max(0.0, time.perf_counter() - t0 - record.timings.vlm_s)
        for observer in observers:
            observer.label(record, self)
        if newest_view is not None and (self.best_view is None or newest_view.relevance > self.policy.best_relevance):
            self.best_view = (step, self._newest.rgb)
        if self.question is not None and self.question.is_open and newest_view is not None \
                and newest_view.relevance is not None:
            self._keep_open_view(newest_view.relevance, step, self._newest.rgb)
        self.last_view = (step, self._newest.rgb)
        record.conformal = self.policy.observe(record)
        return self._choose(record)

    def _keep_open_view(self, relevance: float, step: int, rgb: np.ndarray) -> None:
        """Keep the MethodConfig.open_answer.views most relevant views (earliest first among equals)."""
        kept = self._open_views + [(float(relevance), step, rgb)]
        kept.sort(key=lambda v: (-v[0], v[1]))
        self._open_views = kept[:self.method.open_answer.views]

    def _score(self, step: int, views: list[Frame]) -> tuple[list[ViewRecord], object]:
        """Records of the decision's scored views (newest last) and the newest view's VLM result (None
        without an answer). Semantic exploration scores the earlier views too, and picks the most relevant
        located target to approach."""
        q, newest = self.question, views[-1]
        if self.explorer is not None:
            cfg = self.explorer.config
            records = []
            # the first decision's views are the look-around's; later ones were captured along a move
            if cfg.earlier_views and len(views) > 1 and (step == 0 or cfg.views_on_the_way):
                for frame in views[:-1]:
                    records.append(self._count(*self.explorer.score(frame, self.map, self.value_map, q.text,
                                                                    q.choices, answer=False))[0])
            record, view = self._count(*self.explorer.score(newest, self.map, self.value_map, q.text, q.choices))
            records.append(record)
            located = [v.target for v in [record] + records[:-1] if v.target is not None and v.target.approach]
            if located:
                self._approach = max(located, key=lambda t: t.relevance).xy
            return records, view
        if self.vlm is not None:
            view = self.vlm.query_view(newest.rgb, q.text, q.choices, kinds=(QueryKind.ANSWER, QueryKind.RELEVANCE))
            x, y, yaw = pose_xy_yaw(newest.T_world_base)
            p_answer = [float(p) for p in view.answer] if view.answer is not None else None
            record = ViewRecord(newest.stamp, (x, y), yaw, p_answer=p_answer, relevance=view.relevance,
                                vlm_s=view.call.latency_s)
            return [self._count(record, view)[0]], view
        return [], None

    def _count(self, record: ViewRecord, view) -> tuple[ViewRecord, object]:
        """Count the view's model call (if any)."""
        if view is not None:
            self.vlm_calls += 1
            self.vlm_seconds += view.call.latency_s
        return record, view

    def _choose(self, record: StepRecord) -> Decision:
        """Stop, or the planner's next move or turn."""
        step = record.step
        state = StopState(decisions=step, budget=self.budget, exploration_done=self._exploration_done)
        if self.policy.should_stop(state):
            return self._stop(record, self.policy.stop_reason(state))
        x, y, yaw = record.pose
        t0 = time.perf_counter()
        approach, self._approach = self._approach, None
        plan = self.planner.plan(self.map, (x, y), yaw, self.value_map, approach, self._wedge().near)
        record.timings.plan_s = time.perf_counter() - t0
        record.plan = from_dict(PlanRecord, plan.record(), "plan")
        if plan.action == "done":
            self._exploration_done = True
            state = StopState(step, self.budget, True)
            if self.policy.should_stop(state):
                return self._stop(record, self.policy.stop_reason(state))
        self.decisions += 1
        if plan.action == "done":
            return self._turn(record, math.pi, Reason.NO_FRONTIER)
        self._exploration_done = False
        if plan.action == "turn":
            return self._turn(record, plan.turn_angle, Reason.RECOVERY)
        record.action = Action.MOVE
        self._scan_due = True
        wx, wy, wyaw = plan.waypoint
        return Decision(Action.MOVE, step, T_world_base=base_pose(wx, wy, wyaw),
                        max_distance=self.config.planner.max_move_per_step, record=record)

    def _turn(self, record: StepRecord, angle: float, reason: Reason) -> Decision:
        record.action, record.reason, record.turn = Action.TURN, reason, float(angle)
        return Decision(Action.TURN, record.step, angle=float(angle), reason=reason, record=record)

    def _stop(self, record: StepRecord, reason: Reason) -> Decision:
        record.action, record.reason = Action.STOP, reason
        self._phase, self._stop_reason = "stopped", reason
        return Decision(Action.STOP, record.step, reason=reason, record=record)
