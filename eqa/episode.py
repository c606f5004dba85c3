"""The one episode loop: an `EQAAgent` in any `Env`, until the agent stops. Every driver (the built-in
simulator, replay, ROS 2, Habitat) runs its episodes through `run_episode`.

It writes the episode folder: record.jsonl (one StepRecord per decision), summary.json, map.png (top-down
map), episode.png (map, most relevant and last views, question, prediction set and answer), episode.rrd
(rerun, when asked and installed) and map.npz (when asked).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence

import numpy as np
from PIL import Image, ImageDraw

from eqa.agent import EQAAgent, EQAQuestion
from eqa.records import Action, Outcome, Reason, RecordWriter, StepRecord, write_json_atomic
from eqa.rerun_log import RerunLogger, rerun_available
from eqa.semantic import DirectionOracle
from mapping.frame import Frame
from mapping.render import render_map


class MoveResult(Protocol):
    """What `Env.move_to` reports: metres travelled, whether the goal was out of reach, whether reached."""

    distance: float
    blocked: bool
    reached: bool


class Env(Protocol):
    """The environment contract (DESIGN.md section 3): reset to an episode (first frame), the frames captured
    since the last call, collision-checked motion towards a world base pose (at most max_distance m), turning
    in place (rad, counter-clockwise; returns the new frame)."""

    def reset(self, episode) -> Frame: ...

    def observe(self) -> list[Frame]: ...

    def move_to(self, T_world_base: np.ndarray, max_distance: float) -> MoveResult: ...

    def turn(self, angle: float) -> Frame: ...


class EpisodeInterrupted(Exception):
    """Raised by an Env (from reset's first frame on, any of its calls) when its episode ends without the agent:
    a user's cancel (a canceled ROS action; reason canceled) or the end of a replayed recording (reason end of
    data). `run_episode` ends the agent's episode there with that stop reason, keeps every record written and
    still writes the summary and pictures."""

    def __init__(self, message: str = "", reason: Reason = Reason.CANCELED) -> None:
        super().__init__(message)
        self.reason = reason


class EpisodeTap(Protocol):
    """Sees everything an agent is given and decides (e.g. eqa.bag.recorder.BagRecorder): `start` before the
    first frame, `step_input` with each agent call's frames and outcome, `decision` with each decision as
    made, `finish` with the summary; `close` always, also when the episode fails."""

    def start(self, episode: "Episode", agent: EQAAgent) -> None: ...

    def step_input(self, frames: list[Frame], outcome: Optional[Outcome]) -> None: ...

    def decision(self, decision, agent: EQAAgent) -> None: ...

    def finish(self, summary: dict, agent: EQAAgent) -> None: ...

    def close(self) -> None: ...


class Observer(Protocol):
    """A driver's observer: ground truth for each decision's record (`label`, called by the agent before its
    stop policy reads the record) and fields for the episode summary (`summary`, given the summary so far)."""

    def label(self, record: StepRecord, agent: EQAAgent) -> None: ...

    def summary(self, summary: dict) -> dict: ...


@dataclass
class Episode:
    """One episode: its id, the env's episode object, the question (None: explore only), the planner's
    seed, the floor area (m^2; None: the default budget) and, for methods that use one, the driver's
    ground-truth direction oracle."""

    episode_id: str
    env_episode: object
    question: Optional[EQAQuestion]
    seed: int
    floor_area_m2: Optional[float] = None
    direction_oracle: Optional[DirectionOracle] = None


def run_episode(env: Env, agent: EQAAgent, episode: Episode, out_dir: str | Path, observers: Sequence[Observer] = (),
                rerun: bool = True, progress: bool = True, save_map: bool = False,
                on_record: Optional[Callable[[StepRecord], None]] = None, keep_map: bool = False,
                on_decision: Optional[Callable[[StepRecord], None]] = None, tap: Optional[EpisodeTap] = None) -> dict:
    """Run the agent in `env` until it stops (or the env raises EpisodeInterrupted); returns the summary (also
    written to summary.json). on_record(record): called with every record once written (e.g. to narrate the
    episode). on_decision(record): called with each decision's record as soon as it is made, before the robot
    carries it out (its outcome not yet known; e.g. a ROS node's feedback). keep_map: continue the agent's scene
    map of its previous episode (EQAAgent.reset). tap: sees every agent call's input and decision (a bag
    recorder); closed at the end, also when the episode fails."""
    try:
        return _run_episode(env, agent, episode, out_dir, observers, rerun, progress, save_map, on_record,
                            keep_map, on_decision, tap)
    finally:
        if tap is not None:
            tap.close()


def _run_episode(env, agent, episode, out_dir, observers, rerun, progress, save_map, on_record, keep_map,
                 on_decision, tap) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    logger = RerunLogger(out / "episode.rrd", episode.episode_id) if (rerun and rerun_available()) else None
    t_start = time.perf_counter()
    agent.reset(episode.question, episode.seed, episode.floor_area_m2, episode.direction_oracle, keep_map)
    if tap is not None:
        tap.start(episode, agent)
    outcome: Optional[Outcome] = None
    path_length, blocked, recoveries = 0.0, 0, 0
    last: Optional[StepRecord] = None
    interrupted: Optional[str] = None
    why_stopped = Reason.CANCELED
    with RecordWriter(out / "record.jsonl") as writer:
        try:
            frames = [env.reset(episode.env_episode)]
        except EpisodeInterrupted as why:
            interrupted, why_stopped = str(why) or "interrupted", why.reason
        while interrupted is None:
            if tap is not None:
                tap.step_input(frames, outcome)
            decision = agent.step(frames, outcome, observers)
            if tap is not None:
                tap.decision(decision, agent)
            record = decision.record
            if logger and record is not None:
                _log_decision(logger, agent, record)
            if on_decision and record is not None:
                on_decision(record)
            t0 = time.perf_counter()
            outcome = None
            try:
                if decision.action == Action.MOVE:
                    result = env.move_to(decision.T_world_base, decision.max_distance)
                    outcome = Outcome(float(result.distance), bool(result.blocked), bool(result.reached))
                    path_length += outcome.moved
                    blocked += int(outcome.blocked)
                elif decision.action == Action.TURN:
                    env.turn(decision.angle)
                    recoveries += int(decision.reason == Reason.RECOVERY)
                if record is None:  # a look-around or scan turn: not a decision
                    frames = env.observe()
                    continue
            except EpisodeInterrupted as why:
                interrupted, why_stopped = str(why) or "interrupted", why.reason
            if record is not None:
                record.outcome = outcome
                record.timings.act_s = time.perf_counter() - t0
                writer.write(record)
                last = record
                if on_record:
                    on_record(record)
            if decision.action == Action.STOP or interrupted is not None:
                break
            try:
                frames = env.observe()
            except EpisodeInterrupted as why:
                interrupted, why_stopped = str(why) or "interrupted", why.reason
                break
            if progress:
                cov = f" coverage {record.truth.coverage:.2f}" if record.truth.coverage is not None else ""
                moved = outcome.moved if outcome is not None else 0.0
                print(f"\r[{episode.episode_id}] step {record.step + 1}/{agent.budget} {record.action.value:<4} "
                      f"moved {moved:4.2f} m{cov}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    if interrupted is not None:
        agent.interrupt(why_stopped)
    goal = last.plan.goal[:2] if (last is not None and last.plan is not None and last.plan.goal is not None) else None
    draw_map_png(agent, out / "map.png", goal=goal)
    if save_map:
        agent.map.save(out / "map.npz")
    summary = episode_summary(agent, episode, path_length, blocked, recoveries)
    if interrupted is not None:
        summary["interrupted"] = interrupted
    for observer in observers:
        summary.update(observer.summary(summary))
    summary["wall_time_s"] = time.perf_counter() - t_start
    write_json_atomic(out / "summary.json", summary)
    if tap is not None:
        tap.finish(summary, agent)
    write_episode_png(out, summary, agent)
    if logger:
        logger.close()
    return summary


def episode_summary(agent: EQAAgent, episode: Episode, path_length: float, blocked: int, recoveries: int) -> dict:
    """The summary of a finished episode: decisions, budget, stop reason, path, and with a question the
    answer (index, how it was chosen, prediction set; open questions: answer_text and the open_answer call)
    and the VLM's calls."""
    answer = agent.answer()
    summary = {"episode_id": episode.episode_id, "seed": episode.seed, "decisions": agent.decisions,
               "budget": agent.budget, "normalized_steps": agent.decisions / agent.budget,
               "stop_reason": answer.stop_reason.value if answer.stop_reason is not None else None,
               "stop_policy": answer.policy, "path_length_m": path_length, "blocked_moves": blocked,
               "recovery_turns": recoveries, "method": agent.method.name, "early_stop": agent.method.early_stop}
    if episode.question is not None:
        summary.update({"question": episode.question.text, "choices": list(episode.question.choices),
                        "answer": answer.index, "answer_rule": answer.rule, "answer_step": answer.step,
                        "answer_probabilities": answer.probabilities, "stopped_confident": answer.confident,
                        "vlm_calls": agent.vlm_calls, "vlm_seconds": agent.vlm_seconds,
                        "vlm": agent.vlm.info.to_record() if agent.vlm is not None else None})
        if answer.prediction_set is not None:
            summary["final_set"] = answer.prediction_set
        if episode.question.is_open:
            summary["answer_text"] = answer.text
            summary["open_answer"] = answer.open_answer.to_record() if answer.open_answer is not None else None
            if answer.open_answer_error is not None:
                summary["open_answer_error"] = answer.open_answer_error
    return summary


def draw_map_png(agent: EQAAgent, path: Path, goal=None, scale: int = 4) -> np.ndarray:
    """Top-down map with the current goal (world x, y m; green circle) marked; writes PNG."""
    img = render_map(agent.map, agent.value_map, scale=scale)
    spec = agent.map.spec
    pil = Image.fromarray(img)
    if goal is not None:
        draw = ImageDraw.Draw(pil)
        x = (goal[0] - spec.origin[0]) / spec.resolution * scale
        y = (spec.shape[0] - (goal[1] - spec.origin[1]) / spec.resolution) * scale
        r = 2.5 * scale
        draw.ellipse([x - r, y - r, x + r, y + r], outline=(0, 200, 0), width=max(2, scale // 2))
    pil.save(path)
    return np.asarray(pil)


def write_episode_png(out: Path, summary: dict, agent: EQAAgent) -> Path:
    """episode.png: the top-down map beside the most relevant and the last view, with the question, the
    prediction set and the answer (exploration episodes: the stop reason and path)."""
    from eqa.narrate import choice_text, letters
    from eqa.picture import compose_episode_png
    from vlm.prompts import letter

    stop = f"stop: {summary['stop_reason']} ({summary['stop_policy']}) after {summary['decisions']}/" \
           f"{summary['budget']} decisions, {summary['path_length_m']:.1f} m"
    lines = []
    if "question" in summary and not summary["choices"]:  # an open question
        lines = [summary["question"], f"answer: {summary.get('answer_text') or '(none)'}"]
        if summary.get("truth_text"):
            lines.append(f"reference answer: {summary['truth_text']}")
    elif "question" in summary:
        choices = summary["choices"]
        lines = [summary["question"], "choices: " + "  ".join(choice_text(choices, i) for i in range(len(choices)))]
        if "final_set" in summary:
            lines.append("prediction set: " + letters(summary["final_set"]))
        verdict = "" if summary.get("success") is None else (
            "  (correct)" if summary["success"] else f"  (wrong; truth {letter(summary['truth'])})")
        lines.append(f"answer: {choice_text(choices, summary['answer'])}{verdict}")
    lines.append(stop)
    views = []
    if agent.best_view is not None:
        views.append((f"most relevant view (step {agent.best_view[0]})", agent.best_view[1]))
    if agent.last_view is not None and (agent.best_view is None or agent.last_view[0] != agent.best_view[0]):
        views.append((f"last view (step {agent.last_view[0]})", agent.last_view[1]))
    return compose_episode_png(out / "map.png", views, lines, out / "episode.png")


def _log_decision(logger: RerunLogger, agent: EQAAgent, record: StepRecord) -> None:
    """The decision's newest frame, the map, the path, the frontiers and the goal, at time step record.step."""
    logger.log_frame(record.step, agent.newest_frame)
    plan = record.plan
    fronts = np.array([f.centroid for f in plan.frontiers]).reshape(-1, 2) if plan else np.zeros((0, 2))
    goal = np.asarray(plan.goal[:2]) if (plan and plan.goal) else None
    path = np.array([p[:2] for p in agent.map.robot_path]).reshape(-1, 2)
    logger.log_decision(record.step, render_map(agent.map, agent.value_map, scale=2), path, fronts, goal)
