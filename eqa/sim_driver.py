"""The built-in simulator driver: builds a house and its `SimEnv`, the agent and the simulator's observers,
and runs episodes through the one loop (`eqa.episode.run_episode`): procedural questions (`eqa bench`,
`eqa demo`), a user's question about a built-in house (`eqa run`) and exploration without a question
(`eqa explore`).

A simulator run's config (`SimRun`) is one YAML: the method's keys (eqa.method.MethodConfig) plus the
simulator (`sim:`), question generation (`questions:`) and the clearance of seeded random starts.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Optional

import numpy as np

from eqa.agent import EQAAgent, EQAQuestion
from eqa.config import from_dict, load_yaml, to_dict
from eqa.episode import Episode, run_episode
from eqa.method import MethodConfig, exploration_hash
from eqa.sim_observers import AnswerableObserver, CoverageObserver, QuestionObserver, path_distance_oracle
from eqa.stopping import SHIPPED_CALIBRATIONS
from mapping.bounds import Range, check_bounds
from sim.config import DEFAULT_CAMERA_PRESET, SimConfig
from sim.env import SimEnv, SimEpisode
from sim.house import generate_house
from sim.mesh_world import MeshWorld
from sim.questions import HouseLabeller, Question, QuestionConfig
from vlm.conformal import Calibration

RUN_VLM = "vlm.json"


@dataclass
class SimRun:
    """A method run in the built-in simulator: the method, the simulator, question generation (for the
    ground-truth labels) and start_clearance, the free distance (m) around seeded random start poses (custom
    questions and exploration; procedural questions carry their own starts)."""

    method: MethodConfig = field(default_factory=MethodConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    questions: QuestionConfig = field(default_factory=QuestionConfig)
    start_clearance: Annotated[float, Range(ge=0, le=5)] = 0.5

    def __post_init__(self) -> None:
        check_bounds(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SimRun":
        """From one flat dict: the method's keys beside `sim`, `questions` and `start_clearance`."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(MethodConfig)} | {"sim", "questions", "start_clearance"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown}; known: {sorted(known)}")
        sim = from_dict(SimConfig, data.pop("sim", None), "sim")
        questions = from_dict(QuestionConfig, data.pop("questions", None), "questions")
        clearance = data.pop("start_clearance", 0.5)
        return cls(from_dict(MethodConfig, data), sim, questions,
                   float(clearance) if isinstance(clearance, int) and not isinstance(clearance, bool) else clearance)

    def to_dict(self) -> dict:
        """The flat dict from_dict reads (method.json of a benchmark folder)."""
        return {**to_dict(self.method), "sim": to_dict(self.sim), "questions": to_dict(self.questions),
                "start_clearance": self.start_clearance}

    def exploration_hash(self) -> str:
        """The hash calibrations are checked against (eqa.method.exploration_hash with this simulator)."""
        return exploration_hash(self.method, to_dict(self.sim))


def load_sim_run(name: str | Path | None, overrides: list[str] | None = None) -> SimRun:
    """A SimRun from a YAML config (a path or a name in configs/; None: defaults) and key.sub=value overrides."""
    return SimRun.from_dict(load_yaml(name, overrides))


def shipped_calibration_path(method: str, eps: float, camera_preset: str = DEFAULT_CAMERA_PRESET) -> Path:
    """vlm/calibrations/<method>-eps<eps>.json for the default camera preset (e.g. semantic-eps0.1.json),
    <method>-<preset>-eps<eps>.json for another (e.g. semantic-realsense-eps0.1.json)."""
    camera = "" if camera_preset == DEFAULT_CAMERA_PRESET else f"-{camera_preset}"
    return SHIPPED_CALIBRATIONS / f"{method}{camera}-eps{eps:g}.json"


def method_calibration(run: SimRun, vlm) -> Calibration:
    """The calibration a conformal method uses (stop.calibration, else the shipped file for its name, eps and
    camera preset), checked against the VLM, prompt version, exploration config and camera."""
    stop = run.method.stop
    preset = run.sim.camera.preset
    path = Path(stop.calibration) if stop.calibration else shipped_calibration_path(run.method.name, stop.eps, preset)
    if not path.is_file():
        raise FileNotFoundError(f"no calibration file {path} for method {run.method.name!r} eps {stop.eps:g} "
                                f"camera preset {preset!r}; make one with `eqa calibrate` (see README) or set "
                                "stop.calibration=PATH")
    cal = Calibration.load(path)
    cal.check(vlm.info.model_id, vlm.info.prompt_version, run.exploration_hash(), eps=stop.eps,
              camera=run.sim.camera.describe())
    if cal.never_stops:
        print(f"warning: {path}: {cal.describe_infinite()}", file=sys.stderr, flush=True)
    return cal


def make_agent(run: SimRun, vlm=None) -> EQAAgent:
    """The agent of the run's method (conformal stopping with its checked calibration)."""
    cal = method_calibration(run, vlm) if run.method.stop.policy == "conformal" else None
    return EQAAgent(run.method, vlm, cal)


def run_question(q: Question, run: SimRun, out_dir: str | Path, vlm=None, rerun: bool = False,
                 progress: bool = False, on_record=None, tap=None) -> dict:
    """Run one procedural question episode; returns the summary (also written to summary.json). tap: sees the
    agent's inputs and decisions (eqa.bag.recorder.BagRecorder)."""
    scene = generate_house(q.house_seed, q.n_rooms, run.sim.house, run.sim.robot)
    check_targets(q, scene)
    env = SimEnv(scene, run.sim)
    oracle = None
    if run.method.direction_oracle:
        oracle = path_distance_oracle(env.freespace, np.asarray(q.answerable_viewpoints)[:, :2],
                                      run.method.oracle_temperature)
    episode = Episode(q.id, SimEpisode(start=tuple(q.start)), EQAQuestion(q.question, tuple(q.choices)),
                      q.house_seed, q.floor_area_m2, oracle)
    observers = [AnswerableObserver(HouseLabeller(scene, run.sim, run.questions), q),
                 QuestionObserver(q.id, q.category, q.answer_index)]
    return run_episode(env, make_agent(run, vlm), episode, out_dir, observers, rerun=rerun, progress=progress,
                       on_record=on_record, tap=tap)


def check_targets(q: Question, scene) -> None:
    """ValueError unless the question's targets (and room) are objects, room floors and rooms of its house."""
    known = {o.instance_id for o in scene.objects} | {r.floor_id for r in scene.rooms}
    unknown = sorted(set(q.target_ids) - known)
    if unknown:
        raise ValueError(f"question {q.id}: target ids {unknown} are neither objects nor room floors of house "
                         f"{q.house_seed}")
    if q.room_id is not None and q.room_id not in {r.room_id for r in scene.rooms}:
        raise ValueError(f"question {q.id}: house {q.house_seed} has no room {q.room_id}")


@dataclass
class CustomQuestion:
    """A user's question about a built-in house (`eqa run`): no ground truth unless answer_index is given."""

    id: str
    question: str
    choices: list[str]
    answer_index: Optional[int] = None
    category: str = "custom"

    def __post_init__(self) -> None:
        EQAQuestion(self.question, tuple(self.choices))  # validates the text and choices
        if self.answer_index is not None and not 0 <= self.answer_index < len(self.choices):
            raise ValueError(f"answer index {self.answer_index} is not one of the {len(self.choices)} choices")


def sim_env(run: SimRun, house: int | MeshWorld, n_rooms: Optional[int] = None) -> tuple[SimEnv, float]:
    """(the env, its floor area m^2) of a built-in house seed or a loaded mesh scene (sim.mesh_world)."""
    if isinstance(house, MeshWorld):
        env = SimEnv(house, run.sim)
        return env, house.floor_area(env.freespace)
    scene = generate_house(house, n_rooms, run.sim.house, run.sim.robot)
    return SimEnv(scene, run.sim), scene.floor_area()


def house_seed(house: int | MeshWorld) -> int:
    """The planner seed of an episode in `house`: the house seed, or a hash of a scene file's name."""
    return house if isinstance(house, int) else zlib.crc32(house.name.encode()) % (2 ** 31)


def run_custom(q: CustomQuestion, house: int | MeshWorld, run: SimRun, out_dir: str | Path, vlm=None,
               n_rooms: Optional[int] = None, start: Optional[tuple[float, float, float]] = None,
               rerun: bool = True, progress: bool = False, on_record=None, tap=None) -> dict:
    """Run a user's question in built-in house `house` (a seed) or a mesh scene (a MeshWorld) from `start`
    (x, y, yaw; default: a seeded random pose with run.start_clearance). No simulator oracle is used. tap: as
    run_question's."""
    if run.method.direction_oracle or run.method.stop.policy == "oracle":
        raise ValueError("oracle methods need a procedural question with ground truth")
    env, area = sim_env(run, house, n_rooms)
    seed = house_seed(house)
    if start is None:
        start = env.random_start(np.random.default_rng(seed), clearance=run.start_clearance)
    episode = Episode(q.id, SimEpisode(start=tuple(start)), EQAQuestion(q.question, tuple(q.choices)), seed, area)
    return run_episode(env, make_agent(run, vlm), episode, out_dir, [QuestionObserver(q.id, q.category,
                                                                                      q.answer_index)],
                       rerun=rerun, progress=progress, on_record=on_record, tap=tap)


def explore_house(house: int | MeshWorld, out_dir: str | Path, run: Optional[SimRun] = None,
                  n_rooms: Optional[int] = None, rerun: bool = True, progress: bool = True,
                  start: Optional[tuple[float, float, float]] = None) -> dict:
    """Frontier exploration (no question) of built-in house `house` (a seed) or a mesh scene (a MeshWorld) from
    `start` (default: a seeded start pose); writes the episode folder (with map.npz, and scene.json for a
    procedural house), returns the summary (coverage and collisions included)."""
    run = run or SimRun()
    if run.method.vlm is not None:
        raise ValueError(f"method {run.method.name!r} answers questions; explore with a method without a VLM")
    env, area = sim_env(run, house, n_rooms)
    planner_seed = house_seed(house)
    if start is None:
        start = env.random_start(np.random.default_rng([planner_seed, 1]), clearance=run.start_clearance)
    name = f"house{house}" if isinstance(house, int) else Path(house.name).stem.split(".")[0]
    episode = Episode(name, SimEpisode(start=tuple(start)), None, planner_seed, area)
    summary = run_episode(env, make_agent(run), episode, out_dir, [CoverageObserver(env)], rerun=rerun,
                          progress=progress, save_map=True)
    if isinstance(house, int):
        env.scene.save(Path(out_dir) / "scene.json")
    return summary


@functools.lru_cache(maxsize=2)
def _load_vlm(config_json: str):
    """One loaded VLM per worker process and config (model weights are loaded once, not per episode)."""
    from vlm import make_vlm
    from vlm.config import VLMConfig

    return make_vlm(from_dict(VLMConfig, json.loads(config_json)))


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


def worker_vlm(run: dict, folder: Path):
    """A runner worker's VLM for the SimRun dict `run` (None for a method without one): loaded once per
    process, checked against the benchmark folder's VLM (the episode `folder` lies in its episodes/), its
    call accounting reset for this episode."""
    if run.get("vlm") is None:
        return None
    vlm = _load_vlm(json.dumps(run["vlm"], sort_keys=True))
    check_resumed_vlm(Path(folder).parent.parent, vlm)
    vlm.accounting.reset()
    return vlm


def question_job(job_id: str, payload: dict, run: dict, folder: Path) -> dict:
    """Runner worker: `payload` is a question record, `run` a SimRun as a dict (SimRun.to_dict), `folder` the
    episode's temporary folder inside the benchmark folder's episodes/."""
    sim_run = SimRun.from_dict(run)
    q = Question.from_json(payload)
    return run_question(q, sim_run, folder, vlm=worker_vlm(run, folder))
