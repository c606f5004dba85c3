"""Procedural multiple-choice question sets over built-in houses (HM-EQA's five categories).

A question carries its ground-truth targets, the viewpoints from which it is answerable and
a start pose from which it is not, so exploration is needed:

- answerable viewpoints: base poses (x, y, yaw) on the house's main navigable component, facing
  the targets, from which the targets show with at least `min_pixels` full-resolution pixels
  ("any" questions: one target; counts: every target with `min_pixels_each` in one view;
  facing questions: seen from within `front_cone_deg` of the object's front). Pixels are counted
  at the visibility resolution (`sim.viewpoints`); counts within a factor 1.5 of the threshold are
  recounted at twice that resolution, and those still within 1.15 at the camera's full resolution,
  so thin objects (lamp poles, table legs) are not mislabelled by coarse sampling. A "No" existence
  answer targets the room: a viewpoint answers it when it sees at least `no_floor_fraction` of
  the room's free floor. At most `max_viewpoints`, spread out by farthest-point selection.
- start pose: navigable, >= `start_clearance` metres between the robot disc and any obstacle,
  outside the rooms the question names, and none of the 4 look-around views (yaw + k * 90 deg,
  which cover 360 deg with the 120 deg camera) shows any target pixel (for "No" existence: sees
  at most `start_max_floor_fraction` of the room's floor). Checking the look-around and not only
  the first view is the conservative choice: turning in place must not reveal the answer.
- one reading (`answer_checks`, sim.answer_checks): an answerable viewpoint must also show the answer one way
  only: a colour question's answer colour covers most of the target's visible surface and no wrong choice names
  the colour of a large part of it; the part that shows a state (shade, screen) is in view; nothing else of the
  counted kind is. Viewpoints that fail are dropped, and a question left without any is not asked.

Splits use disjoint house seeds: house k of split s with dataset seed S is
`SPLIT_BASES[s] + S * SEED_STRIDE + k` (S in [0, 99], k < SEED_STRIDE), so the train, calib and
test ranges [0, 1e6), [1e6, 2e6), [2e6, 3e6) never overlap and different dataset seeds use
different houses. Every random choice comes from `numpy.random.default_rng(house seed)`.

Dataset seeds of the calib split are reserved per use, so that no calibration is computed from questions a
setting was chosen on: TUNING_SEEDS for every choice (exploration settings, thresholds, checks), and
CALIBRATION_SEEDS only for the shipped conformal calibrations (`make calibrations`). Reported figures come from
test-split seeds not used before.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Callable, Iterator, Optional

import numpy as np
from scipy import ndimage

from mapping.bounds import NonNegative, Positive, Probability, Range, check_bounds
from mapping.frame import wrap_angle
from sim.answer_checks import TriangleLabels, check_views
from sim.config import SimConfig
from sim.freespace import FreeSpace
from sim.house import generate_house
from sim.question_templates import QUESTION_CATEGORIES, Candidate, house_candidates
from sim.scene import Scene
from sim.viewpoints import (VisibilityCaster, cell_candidates, farthest_subset, free_floor_points, line_of_sight,
                            main_component, wall_grid)
from vlm.prompts import letter

SPLITS = ("train", "calib", "test")
SPLIT_BASES = {"train": 0, "calib": 1_000_000, "test": 2_000_000}
SEED_STRIDE = 10_000
MAX_DATASET_SEED = 99
TUNING_SEEDS = tuple(range(10))  # calib split: choosing settings (all settings so far were chosen on 0 and 1)
CALIBRATION_SEEDS = (10, 11)  # calib split: the shipped conformal calibrations, never used for a choice
Pose = tuple[float, float, float]  # base (x, y, yaw): metres, radians about +z
REFINE_BANDS = (1.5, 1.15)  # pixel counts within these factors of a threshold are re-cast at 2x, then full resolution
GIVE_UP_HOUSES = 50  # houses tried before an empty result is an error
START_BATCH = 4  # start candidates checked per cast (4 look-around views each)


@dataclass
class QuestionConfig:
    """Question generation. Pixel thresholds are full camera-resolution pixels; distances metres."""

    categories: tuple[str, ...] = QUESTION_CATEGORIES
    n_choices: Annotated[int, Range(ge=2, le=4)] = 4  # multiple-choice questions (yes/no ones have 2)
    questions_per_house: Annotated[int, Range(ge=1, le=100)] = 5
    n_rooms: Optional[Annotated[int, Range(ge=1, le=16)]] = None  # fixed room count, or None: drawn from the seed
    visibility_width: Annotated[int, Range(ge=16, le=1024)] = 160  # visibility casting resolution (camera's
    visibility_height: Annotated[int, Range(ge=12, le=768)] = 120  # aspect and FOV)
    min_pixels: Positive = 600.0  # a target counts as visible from a viewpoint with this many pixels
    min_pixels_each: Positive = 250.0  # count questions: every counted target, all in one view
    front_cone_deg: Annotated[float, Range(gt=0, le=90)] = 60.0  # screens, fridge doors: viewed within this
    no_floor_fraction: Probability = 0.5  # "No" existence: share of the room's free floor seen from the viewpoint
    start_max_floor_fraction: Probability = 0.05
    n_candidates: Annotated[int, Range(ge=1, le=1000)] = 32  # viewpoint candidates rendered per question
    candidate_stride: Annotated[float, Range(gt=0, le=2)] = 0.3  # spacing of candidate positions, m
    min_view_distance: NonNegative = 0.5
    max_view_distance: Annotated[float, Range(gt=0, le=50)] = 5.0
    max_viewpoints: Annotated[int, Range(ge=1, le=1000)] = 20
    start_clearance: Annotated[float, Range(ge=0, le=5)] = 0.5  # free distance from the robot disc to obstacles, m
    start_candidates: Annotated[int, Range(ge=1, le=1000)] = 16  # start poses tried per question (4 views each)
    answer_checks: bool = True  # answerable viewpoints must show one reading (sim.answer_checks)
    colour_majority: Probability = 0.6  # the answer colour's share of the target's pixels, at least
    colour_distractor_max: Probability = 0.1  # a wrong choice colour's share of the target's pixels, at most
    state_min_pixels: NonNegative = 150.0  # pixels of the part showing the state (shade, screen), at least
    count_other_max_pixels: NonNegative = 50.0  # pixels of each other instance of the counted kind, at most

    def __post_init__(self) -> None:
        check_bounds(self)
        unknown = [c for c in self.categories if c not in QUESTION_CATEGORIES]
        if unknown or not self.categories:
            raise ValueError(f"categories must be a non-empty subset of {list(QUESTION_CATEGORIES)}, "
                             f"got unknown {unknown}")
        if self.start_max_floor_fraction >= self.no_floor_fraction:
            raise ValueError("start_max_floor_fraction must be below no_floor_fraction")
        if not self.min_view_distance < self.max_view_distance:
            raise ValueError("need 0 <= min_view_distance < max_view_distance")


@dataclass
class Question:
    """One multiple-choice question in a built-in house (JSON-serialisable; poses are (x, y, yaw))."""

    id: str
    split: str
    house_seed: int
    n_rooms: Optional[int]
    category: str
    template: str
    question: str
    choices: list[str]
    answer_index: int
    target_ids: list[int]
    target_mode: str  # "any" | "all" | "floor" (see `Candidate`)
    room_id: Optional[int]
    answerable_viewpoints: list[list[float]]
    start: list[float]
    floor_area_m2: float
    target_facing: bool = False  # targets count only when seen from their front (screens, fridge doors)
    answer: str = ""  # the letter, filled in from answer_index

    def __post_init__(self) -> None:
        self.validate()
        self.answer = letter(self.answer_index)

    @property
    def answer_text(self) -> str:
        return self.choices[self.answer_index]

    def candidate(self) -> Candidate:
        """The labelling rule of this question (targets, mode, facing), e.g. to test views during an episode."""
        return Candidate(category=self.category, template=self.template, question=self.question,
                         choices=list(self.choices), answer_index=self.answer_index, target_ids=list(self.target_ids),
                         mode=self.target_mode, facing=self.target_facing, room_id=self.room_id,
                         rooms=() if self.room_id is None else (self.room_id,))

    def validate(self) -> None:
        """ValueError naming the bad field."""
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"question id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.choices, list) or not all(isinstance(c, str) for c in self.choices):
            raise ValueError(f"question {self.id}: choices must be a list of strings, got {self.choices!r}")
        if not isinstance(self.answer_index, int) or isinstance(self.answer_index, bool):
            raise ValueError(f"question {self.id}: answer_index must be an integer, got {self.answer_index!r}")
        if not isinstance(self.target_ids, list) or not all(
                isinstance(t, int) and not isinstance(t, bool) for t in self.target_ids):
            raise ValueError(f"question {self.id}: target_ids must be a list of integers, got {self.target_ids!r}")
        for name in ("question", "category", "template", "split"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"question {self.id}: {name} must be a string, got {getattr(self, name)!r}")
        if not isinstance(self.house_seed, int) or isinstance(self.house_seed, bool):
            raise ValueError(f"question {self.id}: house_seed must be an integer, got {self.house_seed!r}")
        if not _finite_numbers(self.start) or not all(_finite_numbers(p) for p in self.answerable_viewpoints) \
                or not _finite_numbers([self.floor_area_m2]) or not self.floor_area_m2 > 0:
            raise ValueError(f"question {self.id}: start, answerable_viewpoints and floor_area_m2 must be finite "
                             "numbers (floor area > 0)")
        if self.split not in SPLITS:
            raise ValueError(f"question {self.id}: split must be one of {SPLITS}, got {self.split!r}")
        if self.category not in QUESTION_CATEGORIES:
            raise ValueError(f"question {self.id}: unknown category {self.category!r}")
        if not 2 <= len(self.choices) <= 4 or len(set(self.choices)) != len(self.choices):
            raise ValueError(f"question {self.id}: choices must be 2 to 4 distinct strings, got {self.choices}")
        if not 0 <= self.answer_index < len(self.choices):
            raise ValueError(f"question {self.id}: answer_index {self.answer_index} out of range")
        if self.answer and self.answer != letter(self.answer_index):
            raise ValueError(f"question {self.id}: answer letter {self.answer!r} does not match "
                             f"answer_index {self.answer_index}")
        if self.target_mode not in ("any", "all", "floor") or not self.target_ids:
            raise ValueError(f"question {self.id}: bad target_mode {self.target_mode!r} or empty target_ids")
        if len(self.start) != 3 or not all(math.isfinite(v) for v in self.start):
            raise ValueError(f"question {self.id}: start must be a finite (x, y, yaw)")
        if not self.answerable_viewpoints or any(len(p) != 3 for p in self.answerable_viewpoints):
            raise ValueError(f"question {self.id}: answerable_viewpoints must be a non-empty list of (x, y, yaw)")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Question":
        if not isinstance(data, dict):
            raise ValueError(f"a question must be a JSON object, got {type(data).__name__}")
        fields = cls.__dataclass_fields__
        names = list(fields)
        missing = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING]
        unknown = sorted(set(data) - set(names))
        if missing or unknown:
            raise ValueError(f"question fields: missing {missing}, unknown {unknown}")
        return cls(**data)


def _finite_numbers(values) -> bool:
    """Whether `values` is a list or tuple of finite int / float numbers."""
    return isinstance(values, (list, tuple)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def dataset_seed(split: str, hseed: int) -> int:
    """The dataset seed whose questions of `split` use house `hseed` (the inverse of house_seed)."""
    return (hseed - SPLIT_BASES[split]) // SEED_STRIDE


def house_seed(split: str, seed: int, k: int) -> int:
    """House seed of the k-th house of `split` for dataset seed `seed` (disjoint per split and seed)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0 <= seed <= MAX_DATASET_SEED:
        raise ValueError(f"dataset seed must be in [0, {MAX_DATASET_SEED}], got {seed}")
    if not 0 <= k < SEED_STRIDE:
        raise ValueError(f"house index {k} exceeds {SEED_STRIDE} houses per split and seed")
    return SPLIT_BASES[split] + seed * SEED_STRIDE + k


class HouseLabeller:
    """Attaches answerable viewpoints and a start pose to candidates of one house."""

    def __init__(self, scene: Scene, sim: SimConfig, cfg: QuestionConfig):
        self.scene, self.cfg = scene, cfg
        self.caster = VisibilityCaster(scene, sim.camera, cfg.visibility_width, cfg.visibility_height)
        self.fs = FreeSpace.from_scene(scene, sim.robot.radius, sim.robot.height, sim.grid_resolution)
        self.reachable = main_component(self.fs)
        self.walls = wall_grid(scene, self.fs)
        edge_clearance = ndimage.distance_transform_edt(~self.fs.occupied) * self.fs.grid.resolution - sim.robot.radius
        self.start_mask = self.reachable & (edge_clearance >= cfg.start_clearance)
        self.rooms = {r.room_id: r for r in scene.rooms}
        self._floor_points: dict[int, np.ndarray] = {}
        self.camera = sim.camera
        self._refiners: list[VisibilityCaster] = []
        self.labels = TriangleLabels(self.caster.mesh)

    def label(self, cand: Candidate, rng: np.random.Generator) -> Optional[tuple[np.ndarray, Pose]]:
        """(answerable viewpoints (M, 3), start (x, y, yaw)), or None when either cannot be found."""
        views = self.viewpoints(cand, rng)
        if len(views) == 0:
            return None
        start = self.start_pose(cand, rng)
        return None if start is None else (views, start)

    def floor_points(self, room_id: int) -> np.ndarray:
        if room_id not in self._floor_points:
            self._floor_points[room_id] = free_floor_points(self.scene, self.rooms[room_id])
        return self._floor_points[room_id]

    def _accept_floor(self, room_id: int) -> list[int]:
        """The room's floor id plus its rugs (lying on the floor, they show where the floor is)."""
        return [self.rooms[room_id].floor_id] + [o.instance_id for o in self.scene.objects
                                                 if o.room_id == room_id and o.category == "rug"]

    def _targets_centre(self, cand: Candidate) -> np.ndarray:
        if cand.mode == "floor":
            return np.asarray(self.rooms[cand.room_id].centre())
        objs = [self.scene.object_by_id(i) for i in cand.target_ids]
        lo = np.min([o.bbox_min for o in objs], axis=0)
        hi = np.max([o.bbox_max for o in objs], axis=0)
        return (lo[:2] + hi[:2]) / 2.0

    def answerable(self, cand: Candidate, poses: np.ndarray,
                   cast: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None) -> np.ndarray:
        """(N,) bool: which poses answer the candidate (the rule in the module docstring). cast: the
        `self.caster.cast(poses)` result when the caller labels the same poses for several candidates."""
        ids, depth, T = self.caster.cast(poses) if cast is None else cast
        if cand.mode == "floor":
            frac = self.caster.floor_fraction(ids, depth, T, self.floor_points(cand.room_id),
                                              self._accept_floor(cand.room_id))
            return frac >= self.cfg.no_floor_fraction
        score = self._pixel_score(cand, self.caster.pixel_counts(ids, cand.target_ids))
        # Counts near the threshold are decided again at higher resolution: within a factor 1.5 at twice
        # the visibility resolution, then within 1.15 at the camera's full resolution (exact there).
        for level, band in enumerate(REFINE_BANDS):
            unsure = np.nonzero((score >= 1.0 / band) & (score < band))[0]
            if len(unsure) == 0:
                break
            caster = self._refiner(level)
            fine_ids, _, _ = caster.cast(poses[unsure])
            score[unsure] = self._pixel_score(cand, caster.pixel_counts(fine_ids, cand.target_ids))
        ok = score >= 1.0
        if cand.facing:
            ok &= self._in_front(cand, poses)
        return ok

    def _pixel_score(self, cand: Candidate, px: np.ndarray) -> np.ndarray:
        """(N,) pixel count over its threshold: best target ("any") or worst target ("all")."""
        if cand.mode == "all":
            return px.min(axis=1) / self.cfg.min_pixels_each
        return px.max(axis=1) / self.cfg.min_pixels

    def _refiner(self, level: int) -> VisibilityCaster:
        """Caster of refinement `level`: 0 = twice the visibility resolution, 1 = the camera's resolution."""
        while len(self._refiners) <= level:
            if len(self._refiners) == 0:
                w, h = 2 * self.cfg.visibility_width, 2 * self.cfg.visibility_height
            else:
                w, h = self.camera.width, self.camera.height
            self._refiners.append(VisibilityCaster(self.scene, self.camera, w, h))
        return self._refiners[level]

    def _in_front(self, cand: Candidate, poses: np.ndarray) -> np.ndarray:
        obj = self.scene.object_by_id(cand.target_ids[0])
        front = np.array([math.cos(obj.yaw), math.sin(obj.yaw)])
        centre = (np.asarray(obj.bbox_min[:2]) + np.asarray(obj.bbox_max[:2])) / 2.0
        d = np.asarray(poses)[:, :2] - centre
        cos = d @ front / np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)
        return cos >= math.cos(math.radians(self.cfg.front_cone_deg))

    def viewpoints(self, cand: Candidate, rng: np.random.Generator) -> np.ndarray:
        """(M, 3) answerable base poses facing the target (M <= max_viewpoints; empty when none)."""
        cfg = self.cfg
        xy = cell_candidates(self.fs, self.reachable, cfg.candidate_stride)
        centre = self._targets_centre(cand)
        if cand.mode == "floor":
            room = self.rooms[cand.room_id]
            x0, y0, x1, y1 = room.bounds()
            m = 0.3  # a little past the walls: doorways look into the room
            xy = xy[(xy[:, 0] > x0 - m) & (xy[:, 0] < x1 + m) & (xy[:, 1] > y0 - m) & (xy[:, 1] < y1 + m)]
        else:
            dist = np.hypot(*(xy - centre).T)
            xy = xy[(dist >= cfg.min_view_distance) & (dist <= cfg.max_view_distance)]
            xy = xy[line_of_sight(self.walls, self.fs, xy, centre)]
            if cand.facing:
                xy = xy[self._in_front(cand, xy)]
        if len(xy) == 0:
            return np.zeros((0, 3))
        if len(xy) > cfg.n_candidates:
            xy = xy[np.sort(rng.choice(len(xy), size=cfg.n_candidates, replace=False))]
        d = centre - xy
        yaw = np.arctan2(d[:, 1], d[:, 0])
        near = np.hypot(d[:, 0], d[:, 1]) < 0.3  # at the centre of a room: any heading
        yaw[near] = rng.uniform(-math.pi, math.pi, size=int(near.sum()))
        poses = np.column_stack([xy, yaw])
        poses = poses[self.answerable(cand, poses)]
        if cfg.answer_checks and len(poses):
            checks = self.check_results(cand, poses)
            if checks:
                poses = poses[np.all(list(checks.values()), axis=0)]
        return poses[farthest_subset(poses[:, :2], cfg.max_viewpoints)]

    def check_results(self, cand: Candidate, poses: np.ndarray) -> dict[str, np.ndarray]:
        """Per one-reading check that applies to the candidate, (N,) bool: which poses pass it."""
        ids, _, _, tris = self.caster.cast_triangles(poses)
        return check_views(cand, self.scene, ids, tris, self.caster.scale, self.labels, self.cfg)

    def start_pose(self, cand: Candidate, rng: np.random.Generator) -> Optional[Pose]:
        """A start pose from which none of 4 look-around views reveals the answer, or None."""
        cfg = self.cfg
        xy = self.fs.grid.cell_to_world(np.argwhere(self.start_mask))
        for rid in cand.rooms:
            xy = xy[~self.rooms[rid].contains(xy)]
        if len(xy) == 0:
            return None
        pick = rng.choice(len(xy), size=min(cfg.start_candidates, len(xy)), replace=False)
        xy = xy[pick]
        yaw = rng.uniform(-math.pi, math.pi, size=len(xy))
        turns = np.arange(4) * (math.pi / 2)
        for b in range(0, len(xy), START_BATCH):  # a few at a time: the first batch usually succeeds
            bxy, byaw = xy[b:b + START_BATCH], yaw[b:b + START_BATCH]
            look = wrap_angle(byaw[:, None] + turns[None, :])
            poses = np.column_stack([np.repeat(bxy, 4, axis=0), look.ravel()])
            hidden = self.hidden(cand, poses).reshape(len(bxy), 4).all(axis=1)
            if hidden.any():
                i = int(np.argmax(hidden))
                return float(bxy[i, 0]), float(bxy[i, 1]), float(byaw[i])
        return None

    def hidden(self, cand: Candidate, poses: np.ndarray) -> np.ndarray:
        """(N,) bool: the poses do not reveal the answer (no target pixel; little of the room's floor)."""
        ids, depth, T = self.caster.cast(poses)
        if cand.mode == "floor":
            frac = self.caster.floor_fraction(ids, depth, T, self.floor_points(cand.room_id),
                                              self._accept_floor(cand.room_id))
            return frac <= self.cfg.start_max_floor_fraction
        return np.all(self.caster.pixel_counts(ids, cand.target_ids) == 0, axis=1)


def _r(v: float, nd: int = 4) -> float:
    return float(round(float(v), nd))


def _pick_candidate(pool: list[Candidate], answer_counts: dict) -> Candidate:
    """The first candidate whose answer text is the least used so far in its category (balances yes/no)."""
    best = min(pool, key=lambda c: answer_counts.get((c.category, c.answer), 0))
    pool.remove(best)
    return best


def generate_questions(split: str, n: int, seed: int, cfg: Optional[QuestionConfig] = None,
                       sim: Optional[SimConfig] = None,
                       progress: Optional[Callable[[int], None]] = None) -> list[Question]:
    """`n` questions for `split`, categories balanced round-robin, deterministic in (split, n, seed, configs)."""
    cfg = cfg or QuestionConfig()
    sim = sim or SimConfig()
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out: list[Question] = []
    counts = {c: 0 for c in cfg.categories}
    answer_counts: dict = {}
    for k in range(SEED_STRIDE):
        if len(out) >= n:
            break
        if k == GIVE_UP_HOUSES and not out:
            raise ValueError(f"no question could be made from {k} houses with categories {list(cfg.categories)}; "
                             "check the question config")
        for q in house_questions(split, house_seed(split, seed, k), cfg, sim, counts, answer_counts,
                                 limit=n - len(out)):
            out.append(q)
            counts[q.category] += 1
            answer_counts[(q.category, q.answer_text)] = answer_counts.get((q.category, q.answer_text), 0) + 1
            if progress:
                progress(1)
    if len(out) < n:
        raise ValueError(f"only {len(out)} of {n} questions could be made from {SEED_STRIDE} houses")
    return out


def house_questions(split: str, hseed: int, cfg: QuestionConfig, sim: SimConfig, counts: dict[str, int],
                    answer_counts: dict, limit: int) -> Iterator[Question]:
    """Up to min(limit, questions_per_house) labelled questions of one house, least-used category first."""
    rng = np.random.default_rng(hseed)
    scene = generate_house(hseed, cfg.n_rooms, sim.house, sim.robot)
    pools = house_candidates(scene, rng, cfg.n_choices)
    pools = {c: pools[c] for c in cfg.categories}
    labeller = HouseLabeller(scene, sim, cfg)
    local = dict(counts)
    local_answers = dict(answer_counts)
    made = 0
    while made < min(limit, cfg.questions_per_house):
        open_cats = [c for c in cfg.categories if pools[c]]
        if not open_cats:
            return
        cat = min(open_cats, key=lambda c: (local[c], cfg.categories.index(c)))
        cand = _pick_candidate(pools[cat], local_answers)
        labelled = labeller.label(cand, rng)
        if labelled is None:
            continue
        views, start = labelled
        q = Question(id=f"{split}-{hseed}-{made}", split=split, house_seed=hseed, n_rooms=cfg.n_rooms,
                     category=cand.category, template=cand.template, question=cand.question, choices=cand.choices,
                     answer_index=cand.answer_index, target_ids=[int(i) for i in cand.target_ids],
                     target_mode=cand.mode, room_id=cand.room_id,
                     answerable_viewpoints=[[_r(x), _r(y), _r(yaw)] for x, y, yaw in views],
                     start=[_r(v) for v in start], floor_area_m2=_r(scene.floor_area(), 2),
                     target_facing=cand.facing)
        local[cat] += 1
        key = (cand.category, cand.answer)
        local_answers[key] = local_answers.get(key, 0) + 1
        made += 1
        yield q


def save_jsonl(questions: list[Question], path: str | Path) -> None:
    """One JSON object per line, fields in a fixed order (byte-identical for identical questions). Written to a
    temporary file and renamed into place, so a failed write (a full disk) leaves an existing file as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for q in questions:
                f.write(json.dumps(q.to_json(), separators=(",", ":")) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def line_of(path: str | Path, question_id: str) -> Optional[int]:
    """The line of JSON-lines file `path` that holds question `question_id` (1-based), or None."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("id") == question_id:
                return lineno
    return None


def load_jsonl(path: str | Path, check: Optional[Callable[[Question], object]] = None) -> list[Question]:
    """Questions from a JSON-lines file (UTF-8); ValueError naming the file and line of a bad record, of a
    repeated id, or of a record `check(question)` refuses with ValueError; and for a file without questions."""
    out: list[Question] = []
    first_line: dict[str, int] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                q = Question.from_json(json.loads(line))
                if check is not None:
                    check(q)
            except UnicodeDecodeError:
                raise ValueError(f"{path}:{lineno}: not UTF-8 text") from None
            except (ValueError, TypeError) as err:
                raise ValueError(f"{path}:{lineno}: {err}") from None
            if q.id in first_line:
                raise ValueError(f"{path}:{lineno}: question id {q.id!r} repeats line {first_line[q.id]}")
            first_line[q.id] = lineno
            out.append(q)
    if not out:
        raise ValueError(f"{path}: no questions")
    return out
