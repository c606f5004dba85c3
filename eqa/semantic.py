"""Semantic exploration: ask the VLM which visible direction to explore and write the semantic
value SV = exp(tau_L * LSV + tau_G * GSV) (or the reference code's product LSV * GSV) into the
semantic value map around each candidate point. One batched VLM call per view also returns the
answer and relevance for the stopping rule."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from mapping.frame import pixel_to_world
from nav.semantic_points import candidate_points
from vlm.queries import ANSWER, DIRECTION, LOCATE, RELEVANCE, WORTH_EXPLORING
from vlm.visual_prompt import VisualPromptConfig, project_frame_points


@dataclass
class SemanticConfig:
    """k candidate points min_dist..max_dist m away (merged when closer than `merge` m); SV written
    as discs of `radius` m. combine: "exp" (paper) or "product" (reference code). Views with less
    than `min_valid_depth` valid depth or mean brightness below `min_brightness` are skipped.
    earlier_views: also score the earlier views of a decision, each from where it was taken (at the first
    decision the look-around's other headings; after a move, with `views_on_the_way`, the frames captured
    along the way), one direction + worth-exploring call each; False: the newest view only.
    approach_relevance: None (off) or a probability; with a VLM that can locate the target (the builtin
    backend), each view's call also asks relevance and where the target is; its pixel is back-projected
    with the view's depth, and when a view's relevance reaches this value (target within max_dist m of
    where the view was taken) the robot goes to look at the most relevant such target from close by
    (nav.config.ApproachConfig). Other backends: no effect."""

    k: int = 3
    min_dist: float = 2.0
    max_dist: float = 10.0
    merge: float = 1.0
    tau_local: float = 1.0
    tau_global: float = 1.0
    combine: str = "exp"
    radius: float = 2.0
    min_valid_depth: float = 0.2
    min_brightness: float = 10.0
    earlier_views: bool = True
    views_on_the_way: bool = True
    approach_relevance: Optional[float] = None

    def __post_init__(self) -> None:
        if not 1 <= self.k <= 6:
            raise ValueError(f"semantic.k must be in [1, 6], got {self.k}")
        if not 0 <= self.min_dist < self.max_dist:
            raise ValueError("semantic: need 0 <= min_dist < max_dist")
        if self.combine not in ("exp", "product"):
            raise ValueError(f"semantic.combine must be 'exp' or 'product', got {self.combine!r}")
        if not self.radius > 0 or self.merge < 0:
            raise ValueError("semantic.radius must be > 0 and merge >= 0")
        if self.approach_relevance is not None and not 0 < self.approach_relevance <= 1:
            raise ValueError(f"semantic.approach_relevance must be in (0, 1] or null, got {self.approach_relevance}")


def semantic_value(lsv: np.ndarray, gsv: float, cfg: SemanticConfig) -> np.ndarray:
    """SV per point from local values (p over points) and the global value (P(worth exploring))."""
    lsv = np.asarray(lsv, dtype=float)
    if cfg.combine == "product":
        return lsv * gsv
    return np.exp(cfg.tau_local * lsv + cfg.tau_global * gsv)


def view_usable(frame, cfg: SemanticConfig) -> tuple[bool, str]:
    """Whether the VLM can use this view; the reason when not."""
    valid = np.isfinite(frame.depth) & (frame.depth > 0)
    if valid.mean() < cfg.min_valid_depth:
        return False, f"only {valid.mean():.0%} valid depth"
    if frame.rgb.mean() < cfg.min_brightness:
        return False, "image too dark"
    return True, ""


class SemanticExplorer:
    """Per view: candidate points -> projection -> one batched VLM call -> SV into the value map.

    direction_oracle: optional (points (M, 2)) -> (LSV (M,), GSV) replacing the VLM's direction and
    worth-exploring scores (ground truth, simulator only); the VLM still answers.
    """

    def __init__(self, config: SemanticConfig, vlm, hfov: float,
                 direction_oracle: Optional[Callable[[np.ndarray], tuple[np.ndarray, float]]] = None,
                 visual_prompt: VisualPromptConfig = VisualPromptConfig()):
        self.config, self.vlm, self.hfov = config, vlm, hfov
        self.direction_oracle = direction_oracle
        self.visual_prompt = visual_prompt

    def step(self, frame, scene_map, value_map, view_xy, view_yaw: float, question: str, choices,
             answer: bool = True) -> tuple[dict, object]:
        """Record row fields and the VLM's ViewResult (None when no call was made). view_xy (m), view_yaw
        (rad): the world base pose the frame was taken from (candidate points are picked around it).

        answer=False (an earlier view of the same decision: of the look-around, or on the way): only
        direction and worth-exploring are asked, and only when some candidate point is visible; the stop
        rule sees only the newest view's answer and relevance. With `approach_relevance` (and a backend that
        locates), every view's call also asks relevance and locate, and row["semantic"]["target"] holds
        the located pixel, the relevance and the world (x, y) (`approach`: whether to go and look at it)."""
        cfg = self.config
        ok, reason = view_usable(frame, cfg)
        if not ok:
            return {"semantic": {"skipped": reason}}, None
        pts = candidate_points(scene_map, view_xy, view_yaw, self.hfov, cfg.k, cfg.min_dist, cfg.max_dist, cfg.merge)
        floor_z = scene_map.floor_z if scene_map.floor_z is not None else 0.0
        proj = project_frame_points(frame, np.column_stack([pts, np.full(len(pts), floor_z)]), self.visual_prompt) \
            if len(pts) else None
        visible = proj.visible if proj is not None else np.zeros(0, dtype=bool)
        pts_vis = pts[visible]
        pixels = proj.pixels[visible] if proj is not None else np.zeros((0, 2))
        row = {"candidates": [{"xy": [float(x), float(y)], "status": s,
                               "pixel": [float(u), float(v)] if proj is not None else None}
                              for (x, y), s, (u, v) in zip(pts, proj.status if proj is not None else (),
                                                           proj.pixels if proj is not None else np.zeros((0, 2)))]}
        locate = cfg.approach_relevance is not None and LOCATE in self.vlm.supported_kinds
        kinds = [ANSWER, RELEVANCE] if answer else ([RELEVANCE] if locate else [])
        if locate:
            kinds.append(LOCATE)
        if len(pts_vis) and self.direction_oracle is None:
            kinds += [DIRECTION, WORTH_EXPLORING]
        view = self.vlm.query_view(frame.rgb, question, choices, points_px=pixels if len(pts_vis) else None,
                                   kinds=tuple(kinds)) if kinds else None
        if len(pts_vis):
            if self.direction_oracle is not None:
                lsv, gsv = self.direction_oracle(pts_vis)
                source = "oracle"
            else:
                lsv, gsv = view.direction, view.worth_exploring
                source = "vlm"
            sv = semantic_value(lsv, gsv, cfg)
            value_map.update(pts_vis, sv, cfg.radius)
            row.update({"lsv": [float(v) for v in lsv], "gsv": float(gsv), "sv": [float(v) for v in sv],
                        "source": source})
        if locate:
            row["target"] = self._target(frame, view, view_xy)
        return {"semantic": row}, view

    def _target(self, frame, view, view_xy) -> dict:
        """Where the VLM locates the target in this view: pixel, relevance, world (x, y) from the depth
        there (None without valid depth), and whether to approach it (relevance high enough, within
        max_dist m of view_xy)."""
        u, v = view.target_px
        xyz = pixel_to_world(frame, u, v)
        xy = None if xyz is None else [float(xyz[0]), float(xyz[1])]
        in_range = xy is not None and math.hypot(xy[0] - view_xy[0], xy[1] - view_xy[1]) <= self.config.max_dist
        return {"pixel": [float(u), float(v)], "relevance": float(view.relevance), "xy": xy,
                "approach": bool(in_range and view.relevance >= self.config.approach_relevance)}


def path_distance_oracle(distance_to_goal: Callable[[np.ndarray], np.ndarray], temperature: float = 1.0):
    """Direction oracle: LSV = softmax(-d / T) over the points' true path distances (m) to the nearest
    answerable viewpoint; GSV = 1."""

    def oracle(points: np.ndarray) -> tuple[np.ndarray, float]:
        d = np.asarray(distance_to_goal(points), dtype=float)
        d = np.where(np.isfinite(d), d, d[np.isfinite(d)].max(initial=0.0) + 10.0)
        z = -(d - d.min()) / temperature
        p = np.exp(z)
        return p / p.sum(), 1.0

    return oracle


def distance_field_to_viewpoints(freespace, viewpoints_xy: np.ndarray) -> np.ndarray:
    """True path distance (m) from every free-space cell to the nearest answerable viewpoint."""
    from skimage.graph import MCP_Geometric

    costs = np.where(freespace.navigable, 1.0, -1.0)
    mcp = MCP_Geometric(costs, fully_connected=True)
    starts = [tuple(rc) for rc in freespace.grid.world_to_cell(viewpoints_xy) if freespace.grid.in_bounds(rc)
              and freespace.navigable[rc[0], rc[1]]]
    if not starts:
        return np.full(freespace.grid.shape, math.inf)
    cum, _ = mcp.find_costs(starts)
    return cum * freespace.grid.resolution
