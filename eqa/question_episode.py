"""One EQA episode for a procedural question: explore a built-in house, query the VLM on the
newest view each decision, label every step with the simulator oracle, answer, and write
the episode folder (record.jsonl, summary.json, map.png; episode.rrd when asked).

Stopping: with `early_stop` off the episode runs its whole budget, so every step's VLM
outputs are recorded for calibration and offline stopping-rule sweeps.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np

from eqa.agent import Agent, AgentConfig
from eqa.episode import EpisodeSpec, run_episode
from eqa.semantic import SemanticConfig, SemanticExplorer, distance_field_to_viewpoints, path_distance_oracle
from mapping.frame import pose_xy_yaw
from nav.stop import FixedBudget
from sim.config import SimConfig
from sim.env import SimEnv, SimEpisode
from sim.house import generate_house
from sim.questions import HouseLabeller, Question, QuestionConfig
from vlm.config import VLMConfig


@dataclass
class MethodConfig:
    """A benchmark method: simulator, agent, VLM (None = exploration only) and stopping."""

    name: str = "fbe"
    sim: SimConfig = field(default_factory=SimConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    vlm: Optional[VLMConfig] = None
    early_stop: bool = True
    questions: QuestionConfig = field(default_factory=QuestionConfig)
    semantic: Optional[SemanticConfig] = None
    direction_oracle: bool = False
    oracle_temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.semantic is not None and self.vlm is None:
            raise ValueError(f"method {self.name!r}: semantic exploration needs a vlm section")
        if self.direction_oracle and self.semantic is None:
            raise ValueError(f"method {self.name!r}: direction_oracle needs a semantic section")


class QuestionTracker:
    """Per-step oracle labels and VLM queries for one question; the answer rule of DESIGN.md
    (argmax p at the most relevant step)."""

    def __init__(self, q: Question, labeller: HouseLabeller, vlm=None, explorer: Optional[SemanticExplorer] = None):
        self.q, self.labeller, self.vlm, self.explorer = q, labeller, vlm, explorer
        self.cand = q.candidate()
        self.first_answerable: Optional[int] = None
        self.best_relevance, self.answer, self.answer_step = -1.0, None, None
        self.vlm_calls, self.vlm_seconds = 0, 0.0

    def step(self, step: int, agent: Agent, newest) -> dict:
        x, y, yaw = pose_xy_yaw(agent.pose)
        answerable = bool(self.labeller.answerable(self.cand, np.array([[x, y, yaw]]))[0])
        if answerable and self.first_answerable is None:
            self.first_answerable = step
        row = {"answerable": answerable}
        if self.explorer is not None:
            fields, view = self.explorer.step(newest, agent.map, agent.value_map, (x, y), yaw, self.q.question,
                                              self.q.choices)
            row.update(fields)
        elif self.vlm is not None:
            view = self.vlm.query_view(newest.rgb, self.q.question, self.q.choices, kinds=("answer", "relevance"))
        else:
            view = None
        if view is not None:
            p = [float(v) for v in view.answer]
            row.update({"p_answer": p, "relevance": view.relevance, "vlm_s": view.call.latency_s})
            self.vlm_calls += 1
            self.vlm_seconds += view.call.latency_s
            if view.relevance > self.best_relevance:
                self.best_relevance, self.answer, self.answer_step = view.relevance, int(np.argmax(p)), step
        return row

    def finish(self) -> dict:
        q = self.q
        return {"question_id": q.id, "category": q.category, "question": q.question, "choices": list(q.choices),
                "truth": q.answer_index, "answer": self.answer, "answer_step": self.answer_step,
                "success": (self.answer == q.answer_index) if self.answer is not None else None,
                "first_answerable_step": self.first_answerable, "vlm_calls": self.vlm_calls,
                "vlm_seconds": self.vlm_seconds, "vlm": self.vlm.info.to_record() if self.vlm is not None else None}


def run_question(q: Question, method: MethodConfig, out_dir: str | Path, vlm=None, rerun: bool = False,
                 progress: bool = False) -> dict:
    """Run one question episode; returns the summary (also written to summary.json)."""
    scene = generate_house(q.house_seed, q.n_rooms, method.sim.house, method.sim.robot)
    env = SimEnv(scene, method.sim)
    explorer = None
    if method.semantic is not None:
        oracle = None
        if method.direction_oracle:
            field_m = distance_field_to_viewpoints(env.freespace, np.asarray(q.answerable_viewpoints)[:, :2])
            grid = env.freespace.grid

            def distance_to_goal(points: np.ndarray) -> np.ndarray:
                rc = np.clip(grid.world_to_cell(points), 0, np.array(grid.shape) - 1)
                return field_m[rc[:, 0], rc[:, 1]]

            oracle = path_distance_oracle(distance_to_goal, method.oracle_temperature)
        explorer = SemanticExplorer(method.semantic, vlm, math.radians(method.sim.camera.hfov_deg), oracle,
                                    method.vlm.visual_prompt)
    tracker = QuestionTracker(q, HouseLabeller(scene, method.sim, method.questions), vlm, explorer)
    agent_config = replace(method.agent, use_value_map=method.semantic is not None)
    agent = Agent(agent_config, FixedBudget(stop_when_done=method.early_stop))
    spec = EpisodeSpec(episode_id=q.id, env_episode=SimEpisode(start=tuple(q.start)), seed=q.house_seed,
                       floor_area_m2=q.floor_area_m2)

    def finish() -> dict:
        return {**tracker.finish(), "method": method.name, "early_stop": method.early_stop}

    return run_episode(env, agent, spec, out_dir, step_hook=tracker.step, finish_hook=finish, rerun=rerun,
                       progress=progress, save_map=False)


@functools.lru_cache(maxsize=2)
def _load_vlm(config_json: str):
    """One loaded VLM per worker process and config (model weights are loaded once, not per episode)."""
    from eqa.config import from_dict
    from vlm import make_vlm

    return make_vlm(from_dict(VLMConfig, json.loads(config_json)))


def question_job(job_id: str, payload: dict, method: dict, folder: Path) -> dict:
    """Runner worker: `payload` is a question record, `method` a MethodConfig as a dict."""
    from eqa.config import from_dict

    config = from_dict(MethodConfig, method)
    q = Question.from_json(payload)
    vlm = _load_vlm(json.dumps(method["vlm"], sort_keys=True)) if config.vlm is not None else None
    if vlm is not None:
        vlm.accounting.reset()
    return run_question(q, config, folder, vlm=vlm)
