"""HM-EQA on HM3D scene files in the built-in simulator (`eqa bench --dataset hm-eqa --scenes DIR`).

Each question runs on its scene's mesh (sim.mesh_world: loaded, floor chosen from the start pose's height,
free space from the geometry), from its start pose (`scene_init_poses.csv`, Habitat frame, mapped with
sim.habitat_frame). The agent is asked the question with its real choices; HM-EQA's padding options ("(Do
not choose this option)") are dropped, and the summary keeps the benchmark's letters. Rows whose answer
letter points at a padding option are flagged (`answer_is_padding`) and scored as unanswerable (truth None).

Scenes: DIR laid out as HM3D's splits, DIR/<scene>/<hash>.basis.glb (also DIR/<split>/<scene>/...), with
<hash>.semantic.glb/.txt beside it when present. One loaded scene is kept per worker process and floor
(sim.mesh_world.cached_world): consecutive questions on the same scene reuse its mesh and free space.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np

from eqa.agent import EQAQuestion
from eqa.datasets.hmeqa import PAD, HmEqaQuestion
from eqa.episode import Episode, run_episode
from eqa.sim_driver import SimRun, house_seed, make_agent, worker_vlm
from eqa.sim_observers import QuestionObserver
from sim.env import SimEnv, SimEpisode
from sim.mesh_world import MeshSceneConfig, MeshWorld, cached_world
from vlm.prompts import letters

SPLITS = ("", "val", "train", "minival", "test")
BUNDLED = Path(__file__).parent / "datasets" / "hm_eqa"  # questions.csv and scene_init_poses.csv of HM-EQA


def scene_file(scenes: Path, scene: str) -> Optional[Path]:
    """The render mesh of HM3D scene "<nnnnn>-<hash>" under `scenes`, or None when it is missing."""
    hash_id = scene.split("-", 1)[-1]
    for split in SPLITS:
        folder = scenes / split / scene
        for name in (f"{hash_id}.basis.glb", f"{hash_id}.glb"):
            if (folder / name).is_file():
                return folder / name
    return None


def question_payload(q: HmEqaQuestion, path: Path, scene_config: MeshSceneConfig) -> dict:
    """The runner payload of one HM-EQA question (JSON)."""
    return {"row": q.row, "scene": q.scene, "floor": q.floor, "question": q.question, "choices": list(q.choices),
            "answer": q.answer, "label": q.label, "start_position": list(q.start.position_habitat),
            "start_angle": q.start.angle_habitat, "scene_file": str(path), "scene_config": asdict(scene_config)}


def job_id(q: HmEqaQuestion) -> str:
    return f"hmeqa-{q.row:03d}-{q.scene}"


def place_start(env: SimEnv, world: MeshWorld, start: tuple[float, float, float], snap: float) -> tuple[tuple, float]:
    """((x, y, yaw) start in the world, metres moved): `start` (world x, y m, yaw rad), moved to the nearest
    navigable cell of its component when the robot's disc does not fit there and one lies within `snap` m;
    ValueError otherwise."""
    x, y, yaw = start
    fs = env.freespace
    if fs.is_navigable(np.array([x, y])):
        return (x, y, yaw), 0.0
    rc = fs.nearest_in_component((x, y), None)
    nx, ny = fs.grid.cell_to_world(rc)
    moved = float(np.hypot(nx - x, ny - y))
    if moved > snap:
        raise ValueError(f"{world.name}: start pose ({x:.2f}, {y:.2f}) lies inside an obstacle or off the floor; "
                         f"the nearest navigable cell is {moved:.2f} m away (more than scene.start_snap {snap:g} m)")
    return (float(nx), float(ny), yaw), moved


def hmeqa_job(job: str, payload: dict, run: dict, folder: Path) -> dict:
    """Runner worker: one HM-EQA question (payload from question_payload) with the SimRun `run`."""
    sim_run = SimRun.from_dict(run)
    config = MeshSceneConfig(**payload["scene_config"])
    position = payload["start_position"]
    world = cached_world(payload["scene_file"], config, round(float(position[1]), 2))
    env = SimEnv(world, sim_run.sim)
    start, moved = place_start(env, world, world.habitat_start(position, payload["start_angle"]), config.start_snap)
    choices = payload["choices"]
    real = [i for i, c in enumerate(choices) if c != PAD]
    truth_letter = payload["answer"]
    truth_index = letters(len(choices)).index(truth_letter)
    truth = real.index(truth_index) if truth_index in real else None
    question = EQAQuestion(payload["question"], tuple(choices[i] for i in real))
    episode = Episode(job, SimEpisode(start=start), question, house_seed(world), world.floor_area(env.freespace))
    summary = run_episode(env, make_agent(sim_run, worker_vlm(run, folder)), episode, folder,
                          [QuestionObserver(job, payload["label"], truth), _HmEqaObserver(payload, real, moved)],
                          rerun=False, progress=False)
    return summary


class _HmEqaObserver:
    """Adds the benchmark's identity of the question to the summary: row, scene, floor, letters, padding flag."""

    def __init__(self, payload: dict, real: list[int], start_moved: float):
        self.payload, self.real, self.moved = payload, real, start_moved

    def label(self, record, agent) -> None:
        """Nothing per decision."""

    def summary(self, summary: dict) -> dict:
        p = self.payload
        all_letters = letters(len(p["choices"]))
        answer = summary.get("answer")
        return {"dataset": "hm-eqa", "row": p["row"], "scene": p["scene"], "floor": p["floor"],
                "answer_letter": all_letters[self.real[answer]] if answer is not None else None,
                "truth_letter": p["answer"], "answer_is_padding": p["choices"][all_letters.index(p["answer"])] == PAD,
                "start_moved_m": round(self.moved, 3)}
