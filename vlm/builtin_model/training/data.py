"""Training / evaluation data for the builtin VLM, generated from the built-in simulator.

Per house (train-split house seeds for training, test-split for evaluation) the questions of
`sim.questions.house_questions` are labelled against views rendered at the model's input
resolution (same 120-degree HFOV camera as the simulator, smaller image):

- views: answerable viewpoints of each question (jittered), poses near them (random heading),
  the question's start pose, optionally views of its look-alikes (`distractor_views`: other instances sharing a
  target's display name, e.g. the grey sink of "Where is the white sink?"), and random poses on the house's main
  navigable component;
- relevance label: `HouseLabeller.answerable` (the ground-truth rule of the question generator);
- answer label: the question's answer index (used only where the view is relevant);
- direction: 3 floor points 2-10 m from the robot, at least 1 m apart, drawn at random among those that
  project into the view unoccluded (`vlm.visual_prompt.project_points`); label = the point with the smallest
  path distance (true navigable grid, 8-connected geodesic) to any answerable viewpoint of the question;
- worth-exploring label: the view is relevant, or some visible floor point 1-10 m ahead has a path
  distance to the nearest answerable viewpoint at least max(1 m, 25 %) shorter than the robot's own;
- target cells: which cells of the model's feature grid (STRIDE x STRIDE pixels each) show any pixel of the
  question's targets (its objects, or the room floor of "floor" questions), from the renderer's instance ids;
  a grounding label for the question's attention (bit-packed per pair);
- target centres (count questions): per feature cell, how many of the counted instances showing at least
  CENTRE_MIN_PIXELS (full camera-resolution) pixels have their pixel centroid there (per count-question pair);
- block colours: per 2x2 pixel block showing an object (furniture or thing), the colour name (`model.COLOUR_WORDS`
  index) of its surface before lighting (each triangle's own colour named as `sim.answer_checks` names it);
  NO_COLOUR where the block's pixels disagree or show walls, floors, ceilings or nothing;
- optionally (`kind_counts`) target cells and centres of every count the house's named rooms could be asked, per
  view where its things show (`training.kind_counts`).

Every view is labelled against every question of its house, so one image serves several samples.
Deterministic in (split, seed, house index).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from mapping.bounds import Range, check_bounds
from mapping.frame import wrap_angle
from vlm.builtin_model.model import COLOUR_POOL, COLOUR_WORDS, STRIDE, feature_grid

N_POINTS = 3
DATA_VERSION = 5  # part of the cache key: 2 added target cells, 4 dropped the unused experimental labels,
# 5 added target centres and block colours
CENTRE_MIN_PIXELS = 80.0  # a counted instance needs this many full camera-resolution pixels for its centre to
# count (10 at the 224x168 training views; the generator asks 250 of each counted thing in an answering view)
NO_COLOUR = 255  # block colour label: none
POINT_MIN_M, POINT_MAX_M = 2.0, 10.0
WORTH_MIN_M = 1.0
POINT_MERGE_M = 1.0  # direction points are at least this far apart


@dataclass
class DataConfig:
    """Views per house and image size (defaults: the shipped model's training data). width/height: model input
    (same HFOV as the sim camera)."""

    width: Annotated[int, Range(ge=16, le=1024)] = 224
    height: Annotated[int, Range(ge=16, le=1024)] = 168
    questions_per_house: Annotated[int, Range(ge=1, le=100)] = 15
    answerable_views: Annotated[int, Range(ge=0, le=100)] = 3  # jittered answerable viewpoints per question
    near_views: Annotated[int, Range(ge=0, le=100)] = 1  # poses within near_radius of one, random heading
    near_radius: Annotated[float, Range(gt=0, le=20)] = 2.0
    random_views: Annotated[int, Range(ge=0, le=1000)] = 12  # random navigable poses per house
    point_candidates: Annotated[int, Range(ge=3, le=10_000)] = 200
    # The question generator's one-reading checks (QuestionConfig.answer_checks); the shipped weights were trained
    # on questions made before them.
    answer_checks: bool = False
    # Count questions drawn before the generator's balanced mix of categories (least-used first), per house: more
    # count questions among questions_per_house (an experimental option; 0 keeps the balanced mix).
    count_first: Annotated[int, Range(ge=0, le=100)] = 0
    # Views of look-alikes per question: each faces another instance with a target's display name (another colour,
    # another room), a hard negative for the question's relevance (an experimental option; 0 adds none).
    distractor_views: Annotated[int, Range(ge=0, le=100)] = 0
    # Count labels for every kind in every view (training.kind_counts): each view is also labelled against every
    # count the house's named rooms could be asked (an experimental option; off adds nothing).
    kind_counts: bool = False

    def __post_init__(self) -> None:
        check_bounds(self)


def cell_count(width: int, height: int) -> int:
    """Feature cells of a width x height view."""
    rows, cols = feature_grid(width, height)
    return rows * cols


def cells_showing(ids: np.ndarray, target_ids) -> np.ndarray:
    """(cells,) bool, row-major over the STRIDE-pixel grid: cells with any pixel of an instance in target_ids.
    ids: (H, W) instance ids from the renderer."""
    H, W = ids.shape
    hit = np.isin(ids, np.asarray(list(target_ids)))
    hit = np.pad(hit, ((0, -H % STRIDE), (0, -W % STRIDE)))
    return hit.reshape(hit.shape[0] // STRIDE, STRIDE, hit.shape[1] // STRIDE, STRIDE).any(axis=(1, 3)).ravel()


def centre_counts(ids: np.ndarray, target_ids, min_pixels: float) -> np.ndarray:
    """(cells,) uint8, row-major over the STRIDE-pixel grid: how many of target_ids show at least min_pixels
    pixels with their pixel centroid in each cell. ids: (H, W) instance ids."""
    H, W = ids.shape
    rows, cols = feature_grid(W, H)
    out = np.zeros(rows * cols, np.uint8)
    for tid in target_ids:
        r, c = np.nonzero(ids == tid)
        if len(r) >= min_pixels:
            out[int(r.mean()) // STRIDE * cols + int(c.mean()) // STRIDE] += 1
    return out


def block_colours(tris: np.ndarray, tri_colour: np.ndarray) -> np.ndarray:
    """(H/COLOUR_POOL, W/COLOUR_POOL) uint8 COLOUR_WORDS index of each pixel block's surface colour (NO_COLOUR where
    its pixels disagree or show none). tris: (H, W) triangle per pixel (-1: none); tri_colour: per triangle its
    COLOUR_WORDS index (-1: none), with a trailing -1 entry for tris == -1."""
    names = tri_colour[tris]
    H, W = names.shape
    k = COLOUR_POOL
    blocks = np.pad(names, ((0, -H % k), (0, -W % k)), constant_values=-1)
    blocks = blocks.reshape(blocks.shape[0] // k, k, blocks.shape[1] // k, k).transpose(0, 2, 1, 3).reshape(
        blocks.shape[0] // k, blocks.shape[1] // k, k * k)
    same = (blocks == blocks[..., :1]).all(-1) & (blocks[..., 0] >= 0)
    return np.where(same, blocks[..., 0], NO_COLOUR).astype(np.uint8)


def triangle_colours(mesh, object_ids) -> np.ndarray:
    """Per triangle of a scene mesh its COLOUR_WORDS index before lighting where it belongs to one of object_ids
    (furniture and things: walls, floors and ceilings, mostly white or patterned, get -1), plus a trailing -1 for
    pixels that hit nothing."""
    from sim.answer_checks import COLOUR_NAMES, colour_names

    to_word = np.array([COLOUR_WORDS.index(n.lower()) for n in COLOUR_NAMES])
    on_object = np.isin(mesh.instance, np.asarray(list(object_ids))) & (np.asarray(mesh.pattern) == 0)
    return np.append(np.where(on_object, to_word[colour_names(mesh.color)], -1), -1)


def look_alikes(scene, target_ids) -> list:
    """The scene's objects, other than the targets, with a target object's display name (a grey sink for a white
    sink's question); target ids that are not objects (doors) name nothing."""
    from sim.question_templates import display_name

    targets = {int(i) for i in target_ids}
    names = {display_name(o.category) for o in map(scene.object_by_id, targets) if o is not None}
    return [o for o in scene.objects if display_name(o.category) in names and o.instance_id not in targets]


def distractor_poses(scene, labeller, target_ids, cell_xy: np.ndarray, rng: np.random.Generator, n: int,
                     tries: int = 6) -> list[np.ndarray]:
    """Up to n base poses (x, y, yaw; world m, rad), each facing one of the targets' `look_alikes`. Per pose a
    look-alike is drawn, `tries` reachable cells 1-3.5 m from it are cast, and the pose where it shows the most
    pixels is kept when that is at least the generator's min_pixels. cell_xy: (N, 2) reachable cell centres.
    No look-alike (doors, "floor" targets): no pose."""
    others = look_alikes(scene, target_ids)
    out: list[np.ndarray] = []
    for _ in range(n if others else 0):
        o = others[rng.integers(len(others))]
        centre = (np.asarray(o.bbox_min[:2]) + np.asarray(o.bbox_max[:2])) / 2.0
        d = np.hypot(*(cell_xy - centre).T)
        near = np.nonzero((d >= 1.0) & (d <= 3.5))[0]
        if len(near) == 0:
            continue
        xy = cell_xy[rng.choice(near, size=min(tries, len(near)), replace=False)]
        yaw = np.arctan2(centre[1] - xy[:, 1], centre[0] - xy[:, 0]) + rng.uniform(-0.25, 0.25, size=len(xy))
        poses = np.column_stack([xy, yaw])
        ids, _, _ = labeller.caster.cast(poses)
        px = labeller.caster.pixel_counts(ids, [o.instance_id])[:, 0]
        best = int(np.argmax(px))
        if px[best] >= labeller.cfg.min_pixels:
            out.append(poses[best])
    return out


def _choose_points(xy: np.ndarray, order: np.ndarray) -> list[int]:
    """Up to N_POINTS indices into xy (world m), greedily in the given (shuffled) order, at least POINT_MERGE_M
    apart."""
    chosen: list[int] = []
    for i in order:
        if all(np.hypot(*(xy[i] - xy[k])) >= POINT_MERGE_M for k in chosen):
            chosen.append(int(i))
        if len(chosen) == N_POINTS:
            break
    return chosen


def house_samples(split: str, hseed: int, dcfg: DataConfig) -> dict | None:
    """Views and labels of one house; None when the house yields no question."""
    from mapping.frame import Intrinsics, base_pose, camera_mount
    from sim.config import SimConfig
    from sim.house import generate_house
    from sim.questions import HouseLabeller, QuestionConfig, house_questions
    from sim.render import Renderer
    from vlm.builtin_model.training.kind_counts import count_queries, view_labels
    from vlm.visual_prompt import VISIBLE, project_points

    sim = SimConfig()
    qcfg = QuestionConfig(questions_per_house=dcfg.questions_per_house, answer_checks=dcfg.answer_checks)
    used = {c: -dcfg.count_first if c == "count" else 0 for c in qcfg.categories}  # count goes first
    questions = list(house_questions(split, hseed, qcfg, sim, used, {},
                                     limit=dcfg.questions_per_house))
    if not questions:
        return None
    rng = np.random.default_rng(hseed + 7_919)
    scene = generate_house(hseed, qcfg.n_rooms, sim.house, sim.robot)
    labeller = HouseLabeller(scene, sim, qcfg)
    fs, reach = labeller.fs, labeller.reachable
    cam = sim.camera
    intr = Intrinsics.from_hfov(dcfg.width, dcfg.height, math.radians(cam.hfov_deg))
    T_base_cam = camera_mount(cam.mount_height, math.radians(cam.pitch_down_deg))
    renderer = Renderer(scene, intr)
    cells = np.argwhere(reach)
    cell_xy = fs.grid.cell_to_world(cells)

    poses = []
    for q in questions:
        vps = np.asarray(q.answerable_viewpoints, dtype=np.float64)
        pick = rng.choice(len(vps), size=min(dcfg.answerable_views, len(vps)), replace=False)
        for p in vps[pick]:
            j = p.copy()
            cand = j[:2] + rng.normal(0.0, 0.15, size=2)
            if fs.grid.values_at(reach, cand):
                j[:2] = cand
            j[2] += rng.uniform(-0.25, 0.25)
            poses.append(j)
        for _ in range(dcfg.near_views):
            c = vps[rng.integers(len(vps))]
            near = cell_xy[np.hypot(*(cell_xy - c[:2]).T) <= dcfg.near_radius]
            xy = near[rng.integers(len(near))] if len(near) else c[:2]
            poses.append(np.array([xy[0], xy[1], rng.uniform(-math.pi, math.pi)]))
        poses.append(np.asarray(q.start, dtype=np.float64))
        if dcfg.distractor_views:
            poses.extend(distractor_poses(scene, labeller, q.target_ids, cell_xy, rng, dcfg.distractor_views))
    for i in rng.choice(len(cell_xy), size=dcfg.random_views, replace=len(cell_xy) < dcfg.random_views):
        poses.append(np.array([cell_xy[i, 0], cell_xy[i, 1], rng.uniform(-math.pi, math.pi)]))
    poses = np.asarray(poses)
    poses[:, 2] = wrap_angle(poses[:, 2])
    V, Q = len(poses), len(questions)

    images = np.empty((V, dcfg.height, dcfg.width, 3), np.uint8)
    points = np.zeros((V, N_POINTS, 2), np.float32)
    has_points = np.zeros(V, bool)
    point_xy = np.zeros((V, N_POINTS, 2))
    visible_floor: list[np.ndarray] = []
    target_cells = np.zeros((V, Q, cell_count(dcfg.width, dcfg.height)), bool)
    counted = [qi for qi, q in enumerate(questions) if q.category == "count"]
    centre_min = CENTRE_MIN_PIXELS * (dcfg.width * dcfg.height) / (cam.width * cam.height)
    centres = np.zeros((V, len(counted), cell_count(dcfg.width, dcfg.height)), np.uint8)
    kind_queries = count_queries(scene) if dcfg.kind_counts else []
    kind_labels = []
    tri_colour = triangle_colours(renderer.mesh, [o.instance_id for o in scene.objects])
    colours = np.empty((V, -(-dcfg.height // COLOUR_POOL), -(-dcfg.width // COLOUR_POOL)), np.uint8)
    for v, (x, y, yaw) in enumerate(poses):
        T_world_cam = base_pose(x, y, yaw) @ T_base_cam
        rgb, depth, ids, tris = renderer.render_triangles(T_world_cam)
        images[v] = rgb
        colours[v] = block_colours(tris, tri_colour)
        for qi, q in enumerate(questions):
            target_cells[v, qi] = cells_showing(ids, q.target_ids)
        for k, qi in enumerate(counted):
            centres[v, k] = centre_counts(ids, questions[qi].target_ids, centre_min)
        if dcfg.kind_counts:
            kind_labels.append(view_labels(ids, kind_queries, centre_min))
        d = np.hypot(*(cell_xy - (x, y)).T)
        ang = wrap_angle(np.arctan2(cell_xy[:, 1] - y, cell_xy[:, 0] - x) - yaw)
        sel = np.nonzero((d >= WORTH_MIN_M) & (d <= POINT_MAX_M) & (np.abs(ang) < math.radians(62)))[0]
        if len(sel) > dcfg.point_candidates:
            sel = rng.choice(sel, size=dcfg.point_candidates, replace=False)
        if len(sel) == 0:
            visible_floor.append(np.zeros((0, 2)))
            continue
        pts = np.column_stack([cell_xy[sel], np.zeros(len(sel))])
        proj = project_points(pts, intr, T_world_cam, depth)
        vis = np.array([s == VISIBLE for s in proj.status])
        visible_floor.append(cell_xy[sel][vis])
        far = vis & (d[sel] >= POINT_MIN_M)
        chosen = _choose_points(cell_xy[sel], rng.permutation(np.nonzero(far)[0]))
        if len(chosen) == N_POINTS:
            has_points[v] = True
            points[v] = proj.pixels[chosen]
            point_xy[v] = cell_xy[sel[chosen]]

    relevant = np.zeros((V, Q), bool)
    worth = np.zeros((V, Q), bool)
    dir_label = np.full((V, Q), -1, np.int64)
    point_dist = np.full((V, Q, N_POINTS), np.inf, np.float32)
    cast = labeller.caster.cast(poses)  # one visibility cast of the views serves every question
    for qi, q in enumerate(questions):
        relevant[:, qi] = labeller.answerable(q.candidate(), poses, cast)
        field = fs.distance_field(np.asarray(q.answerable_viewpoints), reach)
        d_cur = fs.grid.values_at(field, poses[:, :2], np.inf)
        for v in range(V):
            if visible_floor[v].shape[0] and np.isfinite(d_cur[v]):
                best = fs.grid.values_at(field, visible_floor[v], np.inf).min()
                worth[v, qi] = best <= d_cur[v] - max(WORTH_MIN_M, 0.25 * d_cur[v])
            if has_points[v]:
                pd = fs.grid.values_at(field, point_xy[v], np.inf)
                point_dist[v, qi] = pd
                if np.isfinite(pd).any():
                    dir_label[v, qi] = int(np.argmin(pd))
        worth[:, qi] |= relevant[:, qi]
    qrec = [{"question": q.question, "choices": list(q.choices), "answer_index": q.answer_index,
             "category": q.category, "template": q.template, "house_seed": q.house_seed, "id": q.id}
            for q in questions]
    out = {"images": images, "points": points, "has_points": has_points, "relevant": relevant, "worth": worth,
           "dir_label": dir_label, "point_dist": point_dist, "questions": qrec, "poses": poses.astype(np.float32),
           "target_cells": np.packbits(target_cells, axis=-1), "block_colours": colours,
           "count_questions": np.asarray(counted, np.int64), "target_centres": centres}
    if dcfg.kind_counts:
        out.update(kind_house_labels(kind_queries, kind_labels, hseed))
    return out


def kind_house_labels(queries: list, labels: list, hseed: int) -> dict:
    """A house's kind-count arrays (training.kind_counts) from its queries and per-view `view_labels`: question
    records, and per stored pair (view-major) its view, query, bit-packed target cells and target centres."""
    from vlm.builtin_model.training.kind_counts import kind_question

    return {"kind_questions": [kind_question(text, hseed, k) for k, (text, _ids) in enumerate(queries)],
            "kind_view": np.concatenate([np.full(len(q), v, np.int64) for v, (q, _c, _n) in enumerate(labels)]),
            "kind_query": np.concatenate([q for q, _c, _n in labels]),
            "kind_cells": np.packbits(np.concatenate([c for _q, c, _n in labels]), axis=-1),
            "kind_centres": np.concatenate([n for _q, _c, n in labels])}


def _worker(args):
    split, hseed, dcfg = args
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    return hseed, house_samples(split, hseed, dcfg)


def build_dataset(split: str, n_houses: int, seed: int, dcfg: DataConfig, workers: int = 2,
                  first_house: int = 0, progress=None) -> dict:
    """Concatenate `house_samples` over houses first_house..first_house+n_houses-1 of (split, seed)."""
    from sim.questions import house_seed

    seeds = [house_seed(split, seed, k) for k in range(first_house, first_house + n_houses)]
    jobs = [(split, s, dcfg) for s in seeds]
    results = []
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            for r in pool.imap(_worker, jobs):  # ordered: deterministic concatenation
                results.append(r)
                if progress:
                    progress(1)
    else:
        for j in jobs:
            results.append(_worker(j))
            if progress:
                progress(1)
    return merge([house for _, house in results if house is not None])


def merge(houses: list[dict]) -> dict:
    """One flat dataset: views (images, points) and (view, question) pairs with their labels."""
    images, points, has_points, poses = [], [], [], []
    pv, pq, rel, wor, dl, pdist, cells = [], [], [], [], [], [], []
    colours, centre_pair, centre_map = [], [], []
    questions: list[dict] = []
    v0 = p0 = 0
    for h in houses:
        V, Q = h["relevant"].shape
        images.append(h["images"])
        points.append(h["points"])
        has_points.append(h["has_points"])
        poses.append(h["poses"])
        vv, qq = np.meshgrid(np.arange(V), np.arange(Q), indexing="ij")
        pv.append(vv.ravel() + v0)
        pq.append(qq.ravel() + len(questions))
        rel.append(h["relevant"].ravel())
        wor.append(h["worth"].ravel())
        dl.append(h["dir_label"].ravel())
        pdist.append(h["point_dist"].reshape(V * Q, N_POINTS))
        cells.append(h["target_cells"].reshape(V * Q, -1))
        colours.append(h["block_colours"])
        counted = h["count_questions"]  # pairs of count questions: (view, question) -> view * Q + question
        centre_pair.append((p0 + np.arange(V)[:, None] * Q + counted[None, :]).ravel())
        centre_map.append(h["target_centres"].reshape(V * len(counted), h["target_centres"].shape[-1]))
        questions += h["questions"]
        v0 += V
        p0 += V * Q
    out = {"images": np.concatenate(images), "points": np.concatenate(points),
           "has_points": np.concatenate(has_points), "poses": np.concatenate(poses),
           "pair_view": np.concatenate(pv), "pair_question": np.concatenate(pq),
           "relevant": np.concatenate(rel), "worth": np.concatenate(wor), "dir_label": np.concatenate(dl),
           "point_dist": np.concatenate(pdist), "target_cells": np.concatenate(cells),
           "block_colours": np.concatenate(colours), "centre_pair": np.concatenate(centre_pair),
           "centre_map": np.concatenate(centre_map), "questions": questions}
    if houses and all("kind_questions" in h for h in houses):
        out.update(merge_kind_labels(houses))
    return out


def merge_kind_labels(houses: list[dict]) -> dict:
    """The houses' kind-count arrays as one: kind_pair_view / kind_pair_question index the merged views and
    kind_questions; per view, kind_first and kind_n give its house's queries."""
    pv, pq, cells, centres, first, n = [], [], [], [], [], []
    questions: list[dict] = []
    v0 = 0
    for h in houses:
        V = len(h["images"])
        pv.append(h["kind_view"] + v0)
        pq.append(h["kind_query"] + len(questions))
        cells.append(h["kind_cells"])
        centres.append(h["kind_centres"])
        first.append(np.full(V, len(questions), np.int64))
        n.append(np.full(V, len(h["kind_questions"]), np.int64))
        questions += h["kind_questions"]
        v0 += V
    return {"kind_pair_view": np.concatenate(pv), "kind_pair_question": np.concatenate(pq),
            "kind_cells": np.concatenate(cells), "kind_centres": np.concatenate(centres),
            "kind_first": np.concatenate(first), "kind_n": np.concatenate(n), "kind_questions": questions}


def save(ds: dict, path) -> None:
    arrays = {k: v for k, v in ds.items() if k not in ("questions", "kind_questions")}
    if "kind_questions" in ds:
        arrays["kind_questions_json"] = np.array(json.dumps(ds["kind_questions"]))
    np.savez(path, questions_json=np.array(json.dumps(ds["questions"])), **arrays)


def load(path) -> dict:
    with np.load(path) as z:
        ds = {k: z[k] for k in z.files if not k.endswith("questions_json")}
        ds["questions"] = json.loads(str(z["questions_json"]))
        if "kind_questions_json" in z.files:
            ds["kind_questions"] = json.loads(str(z["kind_questions_json"]))
    return ds
