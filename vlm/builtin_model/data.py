"""Training / evaluation data for the builtin VLM, generated from the built-in simulator.

Per house (train-split house seeds for training, test-split for evaluation) the questions of
`sim.questions.house_questions` are labelled against views rendered at the model's input
resolution (same 120-degree HFOV camera as the simulator, smaller image):

- views: answerable viewpoints of each question (jittered), poses near them (random heading),
  the question's start pose, and random poses on the house's main navigable component;
- relevance label: `HouseLabeller.answerable` (the ground-truth rule of the question generator);
- answer label: the question's answer index (used only where the view is relevant);
- direction: 3 floor points 2-10 m from the robot, at least 1 m apart, that project into the view unoccluded
  (`vlm.visual_prompt.project_points`), drawn at random or, with `point_sampling: farthest`, by farthest-point
  sampling as the explorer draws its candidates; label = the point with the smallest path distance (true
  navigable grid, 8-connected geodesic) to any answerable viewpoint of the question;
- worth-exploring label: the view is relevant, or some visible floor point 1-10 m ahead has a path
  distance to the nearest answerable viewpoint at least max(1 m, 25 %) shorter than the robot's own;
- goal distances (only with `goal_distances: true`, for the experimental goal_map): per pair and feature
  cell, the mean path distance (m) from the navigable floor seen in the cell to the nearest answerable
  viewpoint, minus the robot's own (negative = closer to the answer); nan where the cell shows fewer than
  FLOOR_MIN_PIXELS pixels of navigable floor. A dense direction label.
- target cells: which cells of the model's feature grid (CELL x CELL pixels each) show any pixel of the
  question's targets (its objects, or the room floor of "floor" questions), from the renderer's instance ids;
  a grounding label for the question's attention (bit-packed per pair).

Every view is labelled against every question of its house, so one image serves several samples.

Recolouring (`recolour_per_view` > 0, training data only): each view that answers a colour question is
rendered again with the question's target painted in `recolour_per_view` of the other choices' colours, and
labelled with that choice. Every object is then seen in several colours, so the answer has to be read from
the image, not remembered per house. These extra views are paired with that question only.
Deterministic in (split, seed, house index); the base views do not depend on recolouring.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

N_POINTS = 3
CELL = 8  # pixels per feature cell side; the model's stride (model.STRIDE) is this constant
DATA_VERSION = 3  # part of the cache key: 2 added target cells, 3 the targets' centre cells
FLOOR_MAX_Z = 0.05  # metres: a pixel whose world point is this low sees the floor
FLOOR_MIN_PIXELS = 8  # goal distances: a cell needs this many pixels on navigable floor
CENTRE_MIN_PIXELS = 10  # a target instance with at least this many pixels in view marks its centre cell
POINT_MIN_M, POINT_MAX_M = 2.0, 10.0
WORTH_MIN_M = 1.0
POINT_MERGE_M = 1.0  # direction points are at least this far apart
POINT_SAMPLING = ("random", "farthest")


@dataclass
class DataConfig:
    """Views per house and image size. width/height: model input (same HFOV as the sim camera)."""

    width: int = 224
    height: int = 168
    questions_per_house: int = 5
    answerable_views: int = 8  # jittered answerable viewpoints per question
    near_views: int = 4  # poses within near_radius of an answerable viewpoint, random heading
    near_radius: float = 2.0
    random_views: int = 16  # random navigable poses per house
    point_candidates: int = 200
    recolour_per_view: int = 0  # colour-question views re-rendered with the target in other choices' colours
    point_sampling: str = "random"  # direction points: "random" (at least 1 m apart) or "farthest" (as the explorer)
    goal_distances: bool = False  # also label each cell's goal distance (for goal_map; about 20 % more time)

    def __post_init__(self) -> None:
        if self.point_sampling not in POINT_SAMPLING:
            raise ValueError(f"data.point_sampling must be one of {POINT_SAMPLING}, got {self.point_sampling!r}")


def _distance_field(fs, reachable: np.ndarray, sources_xy: np.ndarray) -> np.ndarray:
    """Geodesic distance (m) on the reachable grid from the nearest source; inf where unreachable."""
    from skimage.graph import MCP_Geometric

    rc = fs.grid.world_to_cell(np.asarray(sources_xy)[:, :2])
    rc = np.clip(rc, 0, np.array(fs.grid.shape) - 1)
    starts = [tuple(int(v) for v in c) for c in rc if reachable[c[0], c[1]]]
    if not starts:
        return np.full(fs.grid.shape, np.inf)
    costs = np.where(reachable, 1.0, -1.0)
    mcp = MCP_Geometric(costs, fully_connected=True)
    cum, _ = mcp.find_costs(starts)
    cum = np.asarray(cum, dtype=np.float64) * fs.grid.resolution
    cum[~reachable] = np.inf
    return cum


def _navigable_cell_index(xy: np.ndarray, fs, reachable: np.ndarray) -> np.ndarray:
    """(N,) flat index of the reachable grid cell under each world xy (N, 2), -1 for nan / off-grid / blocked."""
    ok = np.all(np.isfinite(xy), axis=1)
    rc = fs.grid.world_to_cell(np.where(ok[:, None], xy, 0.0))
    ok &= fs.grid.in_bounds(rc)
    rc = np.clip(rc, 0, np.array(fs.grid.shape) - 1)
    ok &= reachable[rc[:, 0], rc[:, 1]]
    return np.where(ok, rc[:, 0] * fs.grid.shape[1] + rc[:, 1], -1).astype(np.int32)


def _dist_at(field: np.ndarray, fs, xy: np.ndarray) -> np.ndarray:
    rc = fs.grid.world_to_cell(np.asarray(xy).reshape(-1, 2))
    ok = fs.grid.in_bounds(rc)
    rc = np.clip(rc, 0, np.array(fs.grid.shape) - 1)
    d = field[rc[:, 0], rc[:, 1]]
    return np.where(ok, d, np.inf)


def cell_grid(width: int, height: int) -> tuple[int, int]:
    """(rows, columns) of CELL-pixel feature cells of a width x height view (partial edge cells count)."""
    return -(-height // CELL), -(-width // CELL)


def cell_count(width: int, height: int) -> int:
    """Feature cells of a width x height view."""
    rows, cols = cell_grid(width, height)
    return rows * cols


def cells_showing(ids: np.ndarray, target_ids) -> np.ndarray:
    """(cells,) bool, row-major over the CELL-pixel grid: cells with any pixel of an instance in target_ids.
    ids: (H, W) instance ids from the renderer."""
    H, W = ids.shape
    hit = np.isin(ids, np.asarray(list(target_ids)))
    hit = np.pad(hit, ((0, -H % CELL), (0, -W % CELL)))
    return hit.reshape(hit.shape[0] // CELL, CELL, hit.shape[1] // CELL, CELL).any(axis=(1, 3)).ravel()


def instance_centre_cells(ids: np.ndarray, min_pixels: int = CENTRE_MIN_PIXELS) -> dict[int, int]:
    """{instance id: row-major CELL-pixel grid cell of its pixel centroid} for every instance with at least
    min_pixels pixels in the (H, W) id image (id 0 = background excluded)."""
    H, W = ids.shape
    flat = ids.ravel().astype(np.int64)
    n = np.bincount(flat)
    ys, xs = np.divmod(np.arange(flat.size), W)
    cy = np.bincount(flat, weights=ys) / np.maximum(n, 1)
    cx = np.bincount(flat, weights=xs) / np.maximum(n, 1)
    cols = cell_grid(W, H)[1]
    return {int(i): int(cy[i] // CELL) * cols + int(cx[i] // CELL) for i in np.nonzero(n >= min_pixels)[0] if i > 0}


def floor_pixels(depth: np.ndarray, intr, T_world_cam: np.ndarray) -> np.ndarray:
    """(H * W, 2) world xy (m) of the point each pixel sees (row-major), nan where the pixel has no valid depth
    or its point is not on the floor (world z above FLOOR_MAX_Z)."""
    H, W = depth.shape
    vv, uu = np.mgrid[0:H, 0:W]
    z = depth.astype(np.float64).ravel()
    cam = np.column_stack([(uu.ravel() - intr.cx) * z / intr.fx, (vv.ravel() - intr.cy) * z / intr.fy, z])
    world = cam @ np.asarray(T_world_cam)[:3, :3].T + np.asarray(T_world_cam)[:3, 3]
    floor = np.isfinite(z) & (z > 0) & (np.abs(world[:, 2]) <= FLOOR_MAX_Z)
    return np.where(floor[:, None], world[:, :2], np.nan)


def cell_means(per_pixel: np.ndarray, width: int, height: int, min_pixels: int = FLOOR_MIN_PIXELS) -> np.ndarray:
    """(..., H * W) per-pixel values (nan = none) -> (..., cells) mean over each CELL-pixel cell's finite values
    (row-major cells; nan where fewer than min_pixels are finite)."""
    rows, cols = cell_grid(width, height)
    lead = per_pixel.shape[:-1]
    img = per_pixel.reshape(*lead, height, width)
    pad = [(0, 0)] * len(lead) + [(0, rows * CELL - height), (0, cols * CELL - width)]
    img = np.pad(img, pad, constant_values=np.nan).reshape(*lead, rows, CELL, cols, CELL)
    ok = np.isfinite(img)
    n = ok.sum(axis=(-3, -1))
    total = np.where(ok, img, 0.0).sum(axis=(-3, -1))
    return np.where(n >= min_pixels, total / np.maximum(n, 1), np.nan).reshape(*lead, rows * cols)


def _choose_points(xy: np.ndarray, order: np.ndarray, robot_xy, sampling: str) -> list[int]:
    """Up to N_POINTS indices into xy (world m) among `order`, at least POINT_MERGE_M apart. "random": greedy in
    the given (shuffled) order; "farthest": farthest-point sampling from the point farthest from the robot, as
    the explorer picks its candidates (`nav.semantic_points.farthest_points`)."""
    if sampling == "farthest":
        from nav.semantic_points import farthest_points

        return [int(order[i]) for i in farthest_points(xy[order], N_POINTS, POINT_MERGE_M, robot_xy)]
    chosen: list[int] = []
    for i in order:
        if all(np.hypot(*(xy[i] - xy[k])) >= POINT_MERGE_M for k in chosen):
            chosen.append(int(i))
        if len(chosen) == N_POINTS:
            break
    return chosen


def house_samples(split: str, hseed: int, dcfg: DataConfig) -> list[dict]:
    """Parts (views and labels) of one house: the base part, then any recoloured parts; [] when the house
    yields no question."""
    from mapping.frame import Intrinsics, base_pose, camera_mount
    from sim.config import SimConfig
    from sim.house import generate_house
    from sim.questions import HouseLabeller, QuestionConfig, house_questions
    from sim.render import Renderer
    from vlm.visual_prompt import VISIBLE, project_points

    sim = SimConfig()
    qcfg = QuestionConfig(questions_per_house=dcfg.questions_per_house)
    questions = list(house_questions(split, hseed, qcfg, sim, {c: 0 for c in qcfg.categories}, {},
                                     limit=dcfg.questions_per_house))
    if not questions:
        return []
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
            if _navigable_cell_index(cand.reshape(1, 2), fs, reach)[0] >= 0:
                j[:2] = cand
            j[2] += rng.uniform(-0.25, 0.25)
            poses.append(j)
        for _ in range(dcfg.near_views):
            c = vps[rng.integers(len(vps))]
            near = cell_xy[np.hypot(*(cell_xy - c[:2]).T) <= dcfg.near_radius]
            xy = near[rng.integers(len(near))] if len(near) else c[:2]
            poses.append(np.array([xy[0], xy[1], rng.uniform(-math.pi, math.pi)]))
        poses.append(np.asarray(q.start, dtype=np.float64))
    for i in rng.choice(len(cell_xy), size=dcfg.random_views, replace=len(cell_xy) < dcfg.random_views):
        poses.append(np.array([cell_xy[i, 0], cell_xy[i, 1], rng.uniform(-math.pi, math.pi)]))
    poses = np.asarray(poses)
    poses[:, 2] = (poses[:, 2] + math.pi) % (2 * math.pi) - math.pi
    V, Q = len(poses), len(questions)

    images = np.empty((V, dcfg.height, dcfg.width, 3), np.uint8)
    points = np.zeros((V, N_POINTS, 2), np.float32)
    has_points = np.zeros(V, bool)
    point_xy = np.zeros((V, N_POINTS, 2))
    visible_floor: list[np.ndarray] = []
    target_cells = np.zeros((V, Q, cell_count(dcfg.width, dcfg.height)), bool)
    target_centres = np.zeros((V, Q, cell_count(dcfg.width, dcfg.height)), np.uint8)  # target instances per cell
    # goal distances: per view and pixel, the flat index of the navigable grid cell of the floor it shows
    floor_rc = np.full((V, dcfg.height * dcfg.width), -1, np.int32) if dcfg.goal_distances else None
    for v, (x, y, yaw) in enumerate(poses):
        T_world_cam = base_pose(x, y, yaw) @ T_base_cam
        rgb, depth, ids = renderer.render(T_world_cam)
        images[v] = rgb
        if floor_rc is not None:
            floor_rc[v] = _navigable_cell_index(floor_pixels(depth, intr, T_world_cam), fs, reach)
        centres = instance_centre_cells(ids)
        for qi, q in enumerate(questions):
            target_cells[v, qi] = cells_showing(ids, q.target_ids)
            for t in q.target_ids:
                if t in centres:
                    target_centres[v, qi, centres[t]] += 1
        d = np.hypot(*(cell_xy - (x, y)).T)
        ang = np.arctan2(cell_xy[:, 1] - y, cell_xy[:, 0] - x) - yaw
        ang = (ang + math.pi) % (2 * math.pi) - math.pi
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
        order = rng.permutation(np.nonzero(far)[0])  # drawn in both modes: the random stream stays the same
        chosen = _choose_points(cell_xy[sel], order, (x, y), dcfg.point_sampling)
        if len(chosen) == N_POINTS:
            has_points[v] = True
            points[v] = proj.pixels[chosen]
            point_xy[v] = cell_xy[sel[chosen]]

    relevant = np.zeros((V, Q), bool)
    worth = np.zeros((V, Q), bool)
    dir_label = np.full((V, Q), -1, np.int64)
    point_dist = np.full((V, Q, N_POINTS), np.inf, np.float32)
    goal_dist = np.full((V, Q, cell_count(dcfg.width, dcfg.height)), np.nan, np.float16) if dcfg.goal_distances \
        else None
    cast = labeller.caster.cast(poses)  # one visibility cast of the views serves every question
    for qi, q in enumerate(questions):
        relevant[:, qi] = labeller.answerable(q.candidate(), poses, cast)
        field = _distance_field(fs, reach, np.asarray(q.answerable_viewpoints))
        d_cur = _dist_at(field, fs, poses[:, :2])
        if goal_dist is not None:
            d_pix = np.where(floor_rc >= 0, field.ravel()[np.maximum(floor_rc, 0)], np.inf) - d_cur[:, None]
            goal_dist[:, qi] = cell_means(np.where(np.isfinite(d_pix), d_pix, np.nan), dcfg.width, dcfg.height)
        for v in range(V):
            if visible_floor[v].shape[0] and np.isfinite(d_cur[v]):
                best = _dist_at(field, fs, visible_floor[v]).min()
                worth[v, qi] = best <= d_cur[v] - max(WORTH_MIN_M, 0.25 * d_cur[v])
            if has_points[v]:
                pd = _dist_at(field, fs, point_xy[v])
                point_dist[v, qi] = pd
                if np.isfinite(pd).any():
                    dir_label[v, qi] = int(np.argmin(pd))
        worth[:, qi] |= relevant[:, qi]
    qrec = [{"question": q.question, "choices": list(q.choices), "answer_index": q.answer_index,
             "category": q.category, "template": q.template, "house_seed": q.house_seed, "id": q.id}
            for q in questions]
    base = {"images": images, "points": points, "has_points": has_points, "relevant": relevant, "worth": worth,
            "dir_label": dir_label, "point_dist": point_dist, "questions": qrec, "poses": poses.astype(np.float32),
            "target_cells": np.packbits(target_cells, axis=-1), "target_centres": target_centres}
    if goal_dist is not None:
        base["goal_dist"] = goal_dist
    if dcfg.recolour_per_view <= 0:
        return [base]
    world_cams = [base_pose(x, y, yaw) @ T_base_cam for x, y, yaw in poses]
    return [base] + recoloured_parts(scene, renderer, questions, world_cams, base, dcfg.recolour_per_view,
                                     np.random.default_rng(hseed + 104_729))


def recoloured_scene_mesh(scene, instance_id: int, colour: str):
    """Mesh of `scene` with object `instance_id` rebuilt in palette colour `colour` (scene left unchanged)."""
    import copy

    from sim.catalog import build_parts
    from sim.mesh import build_mesh

    scene = copy.deepcopy(scene)
    obj = scene.object_by_id(instance_id)
    if obj is None:
        raise ValueError(f"no object with instance id {instance_id}")
    obj.color = colour
    obj.parts = build_parts(obj.category, obj.size, colour, obj.state)
    return build_mesh(scene)


def recoloured_parts(scene, renderer, questions, world_cams: list, base: dict, per_view: int,
                     rng: np.random.Generator) -> list[dict]:
    """For each colour question, its relevant views re-rendered with the target in `per_view` other choices'
    colours; one part (paired with the relabelled question only) per (question, new colour)."""
    from sim.palette import COLORS

    parts = []
    for qi, q in enumerate(questions):
        views = np.nonzero(base["relevant"][:, qi])[0]
        if q.template != "colour" or len(views) == 0:
            continue
        others = [i for i, c in enumerate(q.choices) if i != q.answer_index and c.lower() in COLORS]
        if not others:
            continue
        picks = {int(v): set(rng.choice(others, size=min(per_view, len(others)), replace=False).tolist())
                 for v in views}
        for ci in others:
            vs = np.array([v for v in views if ci in picks[int(v)]], dtype=np.int64)
            if len(vs) == 0:
                continue
            painted = renderer.with_colours(recoloured_scene_mesh(scene, q.target_ids[0], q.choices[ci].lower()))
            images = np.stack([painted.render(world_cams[v])[0] for v in vs])
            sl = slice(qi, qi + 1)
            parts.append({"images": images, "points": base["points"][vs], "has_points": base["has_points"][vs],
                          "relevant": base["relevant"][vs, sl], "worth": base["worth"][vs, sl],
                          "dir_label": base["dir_label"][vs, sl], "point_dist": base["point_dist"][vs, sl],
                          "target_cells": base["target_cells"][vs, sl],
                          "target_centres": base["target_centres"][vs, sl],
                          "questions": [dict(base["questions"][qi], answer_index=int(ci),
                                             id=f"{q.id}-recoloured-{q.choices[ci].lower()}")],
                          "poses": base["poses"][vs],
                          **({"goal_dist": base["goal_dist"][vs, sl]} if "goal_dist" in base else {})})
    return parts


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
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            results = []
            for r in pool.imap(_worker, jobs):  # ordered: deterministic concatenation
                results.append(r)
                if progress:
                    progress(1)
    else:
        results = []
        for j in jobs:
            results.append(_worker(j))
            if progress:
                progress(1)
    return merge([part for _, parts in results for part in parts])


def merge(parts: list[dict]) -> dict:
    """One flat dataset: views (images, points) and (view, question) pairs with their labels."""
    images, points, has_points, poses = [], [], [], []
    pv, pq, rel, wor, dl, pdist, cells, centres, goal = [], [], [], [], [], [], [], [], []
    questions: list[dict] = []
    v0 = 0
    for p in parts:
        V, Q = p["relevant"].shape
        images.append(p["images"])
        points.append(p["points"])
        has_points.append(p["has_points"])
        poses.append(p["poses"])
        vv, qq = np.meshgrid(np.arange(V), np.arange(Q), indexing="ij")
        pv.append(vv.ravel() + v0)
        pq.append(qq.ravel() + len(questions))
        rel.append(p["relevant"].ravel())
        wor.append(p["worth"].ravel())
        dl.append(p["dir_label"].ravel())
        pdist.append(p["point_dist"].reshape(V * Q, N_POINTS))
        cells.append(p["target_cells"].reshape(V * Q, -1))
        centres.append(p["target_centres"].reshape(V * Q, -1))
        if "goal_dist" in p:
            goal.append(p["goal_dist"].reshape(V * Q, -1))
        questions += p["questions"]
        v0 += V
    return {"images": np.concatenate(images), "points": np.concatenate(points),
            "has_points": np.concatenate(has_points), "poses": np.concatenate(poses),
            "pair_view": np.concatenate(pv), "pair_question": np.concatenate(pq),
            "relevant": np.concatenate(rel), "worth": np.concatenate(wor), "dir_label": np.concatenate(dl),
            "point_dist": np.concatenate(pdist), "target_cells": np.concatenate(cells),
            "target_centres": np.concatenate(centres), "questions": questions,
            **({"goal_dist": np.concatenate(goal)} if goal else {})}


def save(ds: dict, path) -> None:
    arrays = {k: v for k, v in ds.items() if k != "questions"}
    np.savez(path, questions_json=np.array(json.dumps(ds["questions"])), **arrays)


def load(path) -> dict:
    with np.load(path) as z:
        ds = {k: z[k] for k in z.files if k != "questions_json"}
        ds["questions"] = json.loads(str(z["questions_json"]))
    return ds
