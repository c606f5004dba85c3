"""OpenEQA's HM3D episodes (its active-exploration setting, A-EQA) on HM3D scene files in the built-in simulator
(`eqa bench --dataset openeqa --scenes DIR --frames DIR`).

Each question starts where its episode history starts: the first camera pose of the episode's extracted
frames, FRAMES/hm3d-v0/<nnn>-hm3d-<hash>/00000.txt (a 4x4 camera-to-world matrix of Habitat's OpenGL camera
in Habitat's y-up world, as OpenEQA's data/hm3d/extract-frames.py writes it), on the largest floor 0.2-2.5 m
below that camera, facing the camera's heading. OpenEQA's questions are open (no choices): the agent answers
in free text (MethodConfig.open_answer) with a backend that writes text (hf, openai), and stops by relevance or
its budget. The benchmark folder gets openeqa-predictions.json, OpenEQA's prediction format (question_id,
answer), to score with OpenEQA's LLM-Match evaluator. ScanNet episodes (recorded scans, nothing to explore)
are not run.

Scenes: DIR laid out as HM3D's splits, DIR[/<split>]/<nnnnn>-<hash>/<hash>.basis.glb (OpenEQA names scenes by
hash only).
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np

from eqa.agent import EQAQuestion
from eqa.datasets.openeqa import OpenEqaQuestion
from eqa.episode import Episode, run_episode
from eqa.hmeqa_driver import SPLITS, place_start
from eqa.records import write_json_atomic
from eqa.sim_driver import SimRun, house_seed, make_agent, worker_vlm
from sim.env import SimEnv, SimEpisode
from sim.habitat_frame import camera_heading, camera_matrix_to_camera_pose
from sim.mesh_world import MeshSceneConfig, cached_world

PREDICTIONS = "openeqa-predictions.json"
BUNDLED = Path(__file__).parent / "datasets" / "open_eqa"  # OpenEQA's two question files


def scene_file(scenes: Path, scene_hash: str) -> Optional[Path]:
    """The render mesh of the HM3D scene with this hash under `scenes` (any <nnnnn>-<hash> folder), or None."""
    for split in SPLITS:
        for folder in sorted((scenes / split).glob(f"*-{scene_hash}")):
            for name in (f"{scene_hash}.basis.glb", f"{scene_hash}.glb"):
                if (folder / name).is_file():
                    return folder / name
    return None


def first_pose_file(frames: Path, q: OpenEqaQuestion) -> Optional[Path]:
    """The episode's first camera pose file (FRAMES/<episode_history>/00000.txt), or None when missing."""
    path = frames / q.episode_history / "00000.txt"
    return path if path.is_file() else None


def read_camera_matrix(path: Path) -> np.ndarray:
    """The 4x4 matrix of a pose file (whitespace-separated numbers); ValueError naming the file."""
    try:
        matrix = np.loadtxt(path, dtype=float)
    except ValueError as err:
        raise ValueError(f"{path}: not a 4x4 camera pose ({err})") from None
    if matrix.shape != (4, 4):
        raise ValueError(f"{path}: a camera pose must be 4x4 numbers, got shape {matrix.shape}")
    return matrix


def question_payload(q: OpenEqaQuestion, scene: Path, pose_file: Path, scene_config: MeshSceneConfig) -> dict:
    """The runner payload of one OpenEQA question (JSON): the question, its references and its start camera."""
    return {"question_id": q.question_id, "question": q.question, "answer": q.answer, "category": q.category,
            "extra_answers": list(q.extra_answers), "episode_history": q.episode_history,
            "scene_file": str(scene), "start_camera": read_camera_matrix(pose_file).tolist(),
            "scene_config": asdict(scene_config)}


def job_id(q: OpenEqaQuestion) -> str:
    return f"openeqa-{q.episode_index:03d}-{q.question_id}"


def openeqa_job(job: str, payload: dict, run: dict, folder: Path) -> dict:
    """Runner worker: one OpenEQA question (payload from question_payload) with the SimRun `run`."""
    sim_run = SimRun.from_dict(run)
    config = MeshSceneConfig(**payload["scene_config"])
    T_file_cam = camera_matrix_to_camera_pose(payload["start_camera"])  # the scene file's z-up frame
    world = cached_world(payload["scene_file"], config, floor_below=round(float(T_file_cam[2, 3]), 2))
    env = SimEnv(world, sim_run.sim)
    x, y, _ = world.to_world(T_file_cam[:3, 3])
    start, moved = place_start(env, world, (float(x), float(y), camera_heading(T_file_cam)), config.start_snap)
    episode = Episode(job, SimEpisode(start=start), EQAQuestion(payload["question"]), house_seed(world),
                      world.floor_area(env.freespace))
    return run_episode(env, make_agent(sim_run, worker_vlm(run, folder)), episode, folder,
                       [_OpenEqaObserver(payload, moved)], rerun=False, progress=False)


class _OpenEqaObserver:
    """Adds the benchmark's identity of the question and its reference answers to the summary."""

    def __init__(self, payload: dict, start_moved: float):
        self.payload, self.moved = payload, start_moved

    def label(self, record, agent) -> None:
        """Nothing per decision."""

    def summary(self, summary: dict) -> dict:
        p = self.payload
        return {"dataset": "openeqa", "question_id": p["question_id"], "category": p["category"],
                "truth_text": p["answer"], "extra_answers": p["extra_answers"],
                "episode_history": p["episode_history"], "start_moved_m": round(self.moved, 3)}


def write_predictions(out: Path, summaries: list[dict]) -> Path:
    """OUT/openeqa-predictions.json: [{"question_id", "answer"}] of the finished OpenEQA episodes among
    `summaries` (give every finished one of the folder), in question-id order (OpenEQA's prediction format)."""
    rows = sorted(({"question_id": s["question_id"], "answer": s.get("answer_text") or ""}
                   for s in summaries if s.get("dataset") == "openeqa"), key=lambda r: r["question_id"])
    path = out / PREDICTIONS
    write_json_atomic(path, rows)
    return path


def predictions_summary(path: Path) -> str:
    """One line about a predictions file."""
    rows = json.loads(path.read_text())
    empty = sum(1 for r in rows if not r["answer"])
    return f"{len(rows)} OpenEQA predictions in {path}" + (f" ({empty} empty)" if empty else "")
