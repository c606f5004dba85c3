"""One EQA episode for a procedural question: explore a built-in house, query the VLM on the
newest view each decision (semantic exploration also scores the decision's earlier views: the
look-around's other headings at the first decision, the frames captured along the way after a move),
label every step with the simulator oracle, answer, and write the episode
folder (record.jsonl, summary.json, map.png; episode.rrd when asked).

Stopping: `stop` picks the policy (eqa.stopping); with `early_stop` off the episode runs its whole
budget (the policy's state is still recorded), so every step's VLM outputs are recorded for
calibration and offline stopping-rule sweeps.
"""
from __future__ import annotations

import functools
import json
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np

from eqa.agent import Agent, AgentConfig
from eqa.episode import EpisodeSpec, run_episode
from eqa.stopping import EQAStop, StopConfig, make_stop, shipped_calibration_path
from eqa.semantic import SemanticConfig, SemanticExplorer, distance_field_to_viewpoints, path_distance_oracle
from mapping.frame import pose_xy_yaw
from sim.config import SimConfig
from sim.env import SimEnv, SimEpisode
from sim.house import generate_house
from sim.questions import HouseLabeller, Question, QuestionConfig
from vlm.config import VLMConfig
from vlm.conformal import Calibration, config_hash


@dataclass
class MethodConfig:
    """A benchmark method: simulator, agent, VLM (None = exploration only) and stopping.
    early_stop=False: run every episode to its budget whatever `stop` says (calibration runs)."""

    name: str = "fbe"
    sim: SimConfig = field(default_factory=SimConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    vlm: Optional[VLMConfig] = None
    early_stop: bool = True
    questions: QuestionConfig = field(default_factory=QuestionConfig)
    semantic: Optional[SemanticConfig] = None
    direction_oracle: bool = False
    oracle_temperature: float = 1.0
    stop: StopConfig = field(default_factory=StopConfig)

    def __post_init__(self) -> None:
        if self.stop.policy in ("relevance", "max-prob", "conformal") and self.vlm is None:
            raise ValueError(f"method {self.name!r}: stop policy {self.stop.policy!r} needs a vlm section")
        if self.semantic is not None and self.vlm is None:
            raise ValueError(f"method {self.name!r}: semantic exploration needs a vlm section")
        if self.direction_oracle and self.semantic is None:
            raise ValueError(f"method {self.name!r}: direction_oracle needs a semantic section")


class QuestionTracker:
    """Per-step oracle labels, VLM queries and the stop policy's belief for one question."""

    def __init__(self, q, labeller: Optional[HouseLabeller], policy: EQAStop, vlm=None,
                 explorer: Optional[SemanticExplorer] = None):
        """q: a Question (or CustomQuestion: no ground truth, so no `answerable` labels)."""
        self.q, self.labeller, self.policy, self.vlm, self.explorer = q, labeller, policy, vlm, explorer
        self.cand = q.candidate() if labeller is not None else None
        self.first_answerable: Optional[int] = None
        self.vlm_calls, self.vlm_seconds = 0, 0.0
        self.best_view: Optional[tuple[int, np.ndarray]] = None  # (step, RGB) of the most relevant view
        self.last_view: Optional[tuple[int, np.ndarray]] = None

    def step(self, step: int, agent: Agent, views: list) -> dict:
        """Row fields for the decision at `step`; views: the frames seen since the previous decision,
        newest last (the VLM answers on the newest; the explorer may also score the earlier ones)."""
        newest = views[-1]
        x, y, yaw = pose_xy_yaw(agent.pose)
        row = {}
        if self.labeller is not None:
            answerable = bool(self.labeller.answerable(self.cand, np.array([[x, y, yaw]]))[0])
            if answerable and self.first_answerable is None:
                self.first_answerable = step
            row["answerable"] = answerable
        t0 = time.perf_counter()
        earlier_s = 0.0  # model time of the earlier views' calls
        if self.explorer is not None:
            cfg = self.explorer.config
            # the first decision's views are the look-around's; later ones were captured along a move
            if cfg.earlier_views and len(views) > 1 and (step == 0 or cfg.views_on_the_way):
                earlier = [self._score_earlier(frame, agent) for frame in views[:-1]]
                row["semantic_earlier"] = [fields for fields, _ in earlier]
                earlier_s = sum(latency for _, latency in earlier)
            fields, view = self.explorer.step(newest, agent.map, agent.value_map, (x, y), yaw, self.q.question,
                                              self.q.choices)
            row.update(fields)
            self._request_approach(agent, [fields["semantic"]] + row.get("semantic_earlier", []))
        elif self.vlm is not None:
            view = self.vlm.query_view(newest.rgb, self.q.question, self.q.choices, kinds=("answer", "relevance"))
        else:
            view = None
        if view is not None:
            p = [float(v) for v in view.answer]
            # prompt_s: candidate points, projection and prompt assembly, i.e. this step's VLM work minus the
            # model calls (the earlier views' ones included)
            row.update({"p_answer": p, "relevance": view.relevance, "vlm_s": view.call.latency_s,
                        "prompt_s": max(0.0, time.perf_counter() - t0 - view.call.latency_s - earlier_s)})
            self._count_call(view)
            if self.best_view is None or view.relevance > self.policy.best_relevance:
                self.best_view = (step, newest.rgb)
        self.last_view = (step, newest.rgb)
        row.update(self.policy.observe(step, row))
        return row

    def _score_earlier(self, frame, agent: Agent) -> tuple[dict, float]:
        """The explorer's record for an earlier view of this decision (no answer asked), scored from where
        the view was taken (world x, y m and yaw rad recorded), and the seconds its model call took (0
        without a call)."""
        if frame.T_world_base is None:
            return {"skipped": "no base pose"}, 0.0
        x, y, yaw = pose_xy_yaw(frame.T_world_base)
        fields, view = self.explorer.step(frame, agent.map, agent.value_map, (x, y), yaw, self.q.question,
                                          self.q.choices, answer=False)
        record = {**fields["semantic"], "xy": [x, y], "yaw": yaw}
        if view is None:
            return record, 0.0
        self._count_call(view)
        return record, view.call.latency_s

    @staticmethod
    def _request_approach(agent: Agent, views: list[dict]) -> None:
        """Ask the agent to look closer at the most relevant target located in this decision's views."""
        located = [v["target"] for v in views if v.get("target") and v["target"]["approach"]]
        if located:
            agent.request_approach(max(located, key=lambda t: t["relevance"])["xy"])

    def _count_call(self, view) -> None:
        self.vlm_calls += 1
        self.vlm_seconds += view.call.latency_s

    def finish(self) -> dict:
        q = self.q
        answer, rule = self.policy.answer()
        out = {"question_id": q.id, "category": q.category, "question": q.question, "choices": list(q.choices),
               "truth": q.answer_index, "answer": answer, "answer_rule": rule, "answer_step": self.policy.best_step,
               "success": (answer == q.answer_index) if None not in (answer, q.answer_index) else None,
               "stop_policy": self.policy.name, "stopped_confident": self.policy.stopped_confident,
               "first_answerable_step": self.first_answerable, "vlm_calls": self.vlm_calls,
               "vlm_seconds": self.vlm_seconds, "vlm": self.vlm.info.to_record() if self.vlm is not None else None}
        final_set = self.policy.final_set
        if final_set is not None:
            out["final_set"] = final_set
            out["truth_in_set"] = (q.answer_index in final_set) if q.answer_index is not None else None
        return out


@dataclass
class CustomQuestion:
    """A user's question about a built-in house (`eqa run`): no ground truth unless answer_index is given."""

    id: str
    question: str
    choices: list[str]
    answer_index: Optional[int] = None
    category: str = "custom"

    def __post_init__(self) -> None:
        if not self.question.strip():
            raise ValueError("the question is empty")
        if not 2 <= len(self.choices) <= 6 or len(set(self.choices)) != len(self.choices):
            raise ValueError(f"give 2 to 6 distinct choices, got {self.choices}")
        if self.answer_index is not None and not 0 <= self.answer_index < len(self.choices):
            raise ValueError(f"answer index {self.answer_index} is not one of the {len(self.choices)} choices")


def exploration_hash(method: MethodConfig) -> str:
    """Hash of what shapes the recorded VLM outputs besides the VLM itself: simulator, agent,
    semantic-exploration and visual-prompt settings (not the name, stopping, question labelling or
    VLM transport)."""
    from eqa.config import to_dict

    d = to_dict(method)
    keep = {k: d[k] for k in ("sim", "agent", "semantic", "direction_oracle", "oracle_temperature")}
    keep["visual_prompt"] = (d.get("vlm") or {}).get("visual_prompt")  # changes the images the VLM sees
    return config_hash(json.loads(json.dumps(keep)))


def method_calibration(method: MethodConfig, vlm) -> Calibration:
    """The calibration a conformal method uses (stop.calibration, else the shipped file for its name
    and eps), checked against the VLM, prompt version and exploration config."""
    path = Path(method.stop.calibration) if method.stop.calibration else shipped_calibration_path(method.name,
                                                                                                  method.stop.eps)
    if not path.is_file():
        raise FileNotFoundError(f"no calibration file {path} for method {method.name!r} eps {method.stop.eps:g}; "
                                "make one with `eqa calibrate` (see README) or set stop.calibration=PATH")
    cal = Calibration.load(path)
    cal.check(vlm.info.model_id, vlm.info.prompt_version, exploration_hash(method), eps=method.stop.eps)
    return cal


def make_policy(method: MethodConfig, n_choices: int, vlm=None) -> EQAStop:
    """The method's stop policy for one question (conformal: with its checked calibration)."""
    cal = method_calibration(method, vlm) if method.stop.policy == "conformal" else None
    stop = method.stop if method.early_stop else replace(method.stop, stop_when_explored=False)
    return make_stop(stop, n_choices, allow_early=method.early_stop, calibration=cal)


def run_question(q: Question, method: MethodConfig, out_dir: str | Path, vlm=None, rerun: bool = False,
                 progress: bool = False, on_row=None) -> dict:
    """Run one procedural question episode; returns the summary (also written to summary.json)."""
    scene = generate_house(q.house_seed, q.n_rooms, method.sim.house, method.sim.robot)
    env = SimEnv(scene, method.sim)
    goal_xy = np.asarray(q.answerable_viewpoints)[:, :2] if method.direction_oracle else None
    return _run(env, q, HouseLabeller(scene, method.sim, method.questions), method, out_dir, tuple(q.start),
                q.house_seed, q.floor_area_m2, vlm, goal_xy, rerun, progress, on_row)


def run_custom(q: CustomQuestion, house_seed: int, method: MethodConfig, out_dir: str | Path, vlm=None,
               n_rooms: Optional[int] = None, start: Optional[tuple[float, float, float]] = None,
               rerun: bool = True, progress: bool = False, on_row=None) -> dict:
    """Run a user's question in built-in house `house_seed` from `start` (x, y, yaw; default: a seeded
    random pose with 0.5 m clearance). No simulator oracle is used."""
    if method.direction_oracle or method.stop.policy == "oracle":
        raise ValueError("oracle methods need a procedural question with ground truth")
    scene = generate_house(house_seed, n_rooms, method.sim.house, method.sim.robot)
    env = SimEnv(scene, method.sim)
    if start is None:
        start = env.random_start(np.random.default_rng(house_seed), clearance=0.5)
    return _run(env, q, None, method, out_dir, tuple(start), house_seed, scene.floor_area(), vlm, None, rerun,
                progress, on_row)


def _run(env: SimEnv, q, labeller: Optional[HouseLabeller], method: MethodConfig, out_dir, start, seed: int,
         floor_area_m2: float, vlm, goal_xy: Optional[np.ndarray], rerun: bool, progress: bool, on_row) -> dict:
    explorer = None
    if method.semantic is not None:
        oracle = None
        if goal_xy is not None:
            field_m = distance_field_to_viewpoints(env.freespace, goal_xy)
            grid = env.freespace.grid

            def distance_to_goal(points: np.ndarray) -> np.ndarray:
                rc = np.clip(grid.world_to_cell(points), 0, np.array(grid.shape) - 1)
                return field_m[rc[:, 0], rc[:, 1]]

            oracle = path_distance_oracle(distance_to_goal, method.oracle_temperature)
        explorer = SemanticExplorer(method.semantic, vlm, math.radians(method.sim.camera.hfov_deg), oracle,
                                    method.vlm.visual_prompt)
    policy = make_policy(method, len(q.choices), vlm)
    tracker = QuestionTracker(q, labeller, policy, vlm, explorer)
    agent_config = replace(method.agent, use_value_map=method.semantic is not None)
    agent = Agent(agent_config, policy)
    spec = EpisodeSpec(episode_id=q.id, env_episode=SimEpisode(start=start), seed=seed, floor_area_m2=floor_area_m2)

    def finish() -> dict:
        return {**tracker.finish(), "method": method.name, "early_stop": method.early_stop}

    summary = run_episode(env, agent, spec, out_dir, step_hook=tracker.step, finish_hook=finish, rerun=rerun,
                          progress=progress, save_map=False, on_row=on_row)
    write_question_png(Path(out_dir), summary, tracker)
    return summary


def write_question_png(out: Path, summary: dict, tracker: QuestionTracker) -> Path:
    """episode.png: the top-down map beside the most relevant and the last view, with the question,
    the prediction set and the answer."""
    from eqa.narrate import choice_text, letter, letters
    from eqa.picture import compose_episode_png

    choices = summary["choices"]
    lines = [summary["question"], "choices: " + "  ".join(choice_text(choices, i) for i in range(len(choices)))]
    if "final_set" in summary:
        lines.append("prediction set: " + letters(summary["final_set"]))
    verdict = "" if summary.get("success") is None else ("  (correct)" if summary["success"] else
                                                         f"  (wrong; truth {letter(summary['truth'])})")
    lines.append(f"answer: {choice_text(choices, summary['answer'])}{verdict}   "
                 f"stop: {summary['stop_reason'] or summary.get('stop_policy', '')} after {summary['decisions']}"
                 f"/{summary['budget']} decisions")
    views = []
    if tracker.best_view is not None:
        views.append((f"most relevant view (step {tracker.best_view[0]})", tracker.best_view[1]))
    if tracker.last_view is not None and (tracker.best_view is None or tracker.last_view[0] != tracker.best_view[0]):
        views.append((f"last view (step {tracker.last_view[0]})", tracker.last_view[1]))
    return compose_episode_png(out / "map.png", views, lines, out / "episode.png")


@functools.lru_cache(maxsize=2)
def _load_vlm(config_json: str):
    """One loaded VLM per worker process and config (model weights are loaded once, not per episode)."""
    from eqa.config import from_dict
    from vlm import make_vlm

    return make_vlm(from_dict(VLMConfig, json.loads(config_json)))


RUN_VLM = "vlm.json"


def check_resumed_vlm(bench_folder: Path, vlm) -> None:
    """Refuse to add episodes of `vlm` to a benchmark folder whose episodes came from another VLM (e.g. the
    weights changed between a run and its resumption): its figures would mix two models. The folder's VLM
    is kept in `vlm.json`, written by the first episode (or derived once from the finished episodes of a
    folder made before that file existed)."""
    from eqa.report import shared_vlm
    from eqa.runner import load_summaries

    path = Path(bench_folder) / RUN_VLM
    mine = vlm.info.to_record()
    if not path.is_file():
        summaries = load_summaries(bench_folder)
        held = shared_vlm(summaries, str(bench_folder)) if summaries else None
        tmp = path.with_name(f".{RUN_VLM}.{os.getpid()}")
        tmp.write_text(json.dumps(held if held is not None else mine, indent=1, sort_keys=True))
        os.replace(tmp, path)
    held = json.loads(path.read_text())
    if held != mine:
        raise ValueError(f"{bench_folder} holds episodes of VLM {held['model_id']} ({held['backend']}, prompts "
                         f"{held['prompt_version']}), but this run's VLM is {mine['model_id']} ({mine['backend']}, "
                         f"prompts {mine['prompt_version']}); use a fresh --out")


def question_job(job_id: str, payload: dict, method: dict, folder: Path) -> dict:
    """Runner worker: `payload` is a question record, `method` a MethodConfig as a dict, `folder` the
    episode's temporary folder inside the benchmark folder's episodes/."""
    from eqa.config import from_dict

    config = from_dict(MethodConfig, method)
    q = Question.from_json(payload)
    vlm = _load_vlm(json.dumps(method["vlm"], sort_keys=True)) if config.vlm is not None else None
    if vlm is not None:
        check_resumed_vlm(Path(folder).parent.parent, vlm)
        vlm.accounting.reset()
    return run_question(q, config, folder, vlm=vlm)
