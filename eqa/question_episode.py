"""One EQA episode for a procedural question: explore a built-in house, query the VLM on the
newest view each decision, label every step with the simulator oracle, answer, and write
the episode folder (record.jsonl, summary.json, map.png; episode.rrd when asked).

Stopping: with `early_stop` off the episode runs its whole budget, so every step's VLM
outputs are recorded for calibration and offline stopping-rule sweeps.
"""
from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from eqa.agent import Agent, AgentConfig
from eqa.episode import draw_episode_png
from eqa.records import RecordWriter, write_json_atomic
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


def run_question(q: Question, method: MethodConfig, out_dir: str | Path, vlm=None, progress: bool = False) -> dict:
    """Run one question episode; returns the summary (also written to summary.json)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    scene = generate_house(q.house_seed, q.n_rooms, method.sim.house, method.sim.robot)
    env = SimEnv(scene, method.sim)
    labeller = HouseLabeller(scene, method.sim, method.questions)
    cand = q.candidate()
    agent = Agent(method.agent, FixedBudget(stop_when_done=method.early_stop))
    agent.reset(q.house_seed, q.floor_area_m2)
    newest = env.reset(SimEpisode(start=tuple(q.start)))
    agent.observe([newest])
    for angle in agent.look_around_angles():
        newest = env.turn(angle)
        agent.observe(env.observe())
    first_answerable: Optional[int] = None
    best = {"relevance": -1.0, "answer": None, "step": None}
    path_length, vlm_calls, vlm_seconds = 0.0, 0, 0.0
    with RecordWriter(out / "record.jsonl") as writer:
        while True:
            x, y, yaw = pose_xy_yaw(agent.pose)
            answerable = bool(labeller.answerable(cand, np.array([[x, y, yaw]]))[0])
            step = agent.decisions
            if answerable and first_answerable is None:
                first_answerable = step
            row = {"step": step, "pose": [x, y, yaw], "answerable": answerable}
            if vlm is not None:
                view = vlm.query_view(newest.rgb, q.question, q.choices, kinds=("answer", "relevance"))
                p = [float(v) for v in view.answer]
                row.update({"p_answer": p, "relevance": view.relevance, "vlm_s": view.call.latency_s})
                vlm_calls += 1
                vlm_seconds += view.call.latency_s
                if view.relevance > best["relevance"]:
                    best = {"relevance": view.relevance, "answer": int(np.argmax(p)), "step": step}
            decision = agent.decide()
            row.update({"action": decision.kind, "reason": decision.reason, "budget": agent.budget})
            if decision.plan is not None:
                row["plan"] = decision.plan.record()
            if decision.kind == "stop":
                writer.write(row)
                break
            moved = 0.0
            if decision.kind == "move":
                result = env.move_to(decision.T_world_base, decision.max_distance)
                moved = result.distance
                agent.report_motion(moved)
            else:
                env.turn(decision.angle)
            path_length += moved
            frames = env.observe()
            agent.observe(frames)
            newest = frames[-1] if frames else newest
            row.update({"moved": moved, "timings": decision.timings})
            writer.write(row)
    draw_episode_png(agent, out / "map.png")
    answer_idx = best["answer"]
    summary = {
        "episode_id": q.id, "question_id": q.id, "method": method.name, "category": q.category,
        "question": q.question, "choices": list(q.choices), "truth": q.answer_index,
        "answer": answer_idx, "answer_step": best["step"],
        "success": (answer_idx == q.answer_index) if answer_idx is not None else None,
        "decisions": agent.decisions, "budget": agent.budget,
        "normalized_steps": agent.decisions / agent.budget, "first_answerable_step": first_answerable,
        "path_length_m": path_length, "vlm_calls": vlm_calls, "vlm_seconds": vlm_seconds,
        "vlm": vlm.info.to_record() if vlm is not None else None, "early_stop": method.early_stop,
        "wall_time_s": time.perf_counter() - t_start,
    }
    write_json_atomic(out / "summary.json", summary)
    return summary



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
    return run_question(q, config, folder, vlm=vlm)
