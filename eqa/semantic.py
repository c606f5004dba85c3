"""Semantic exploration: ask the VLM which visible direction to explore and write the semantic
value SV = exp(tau_L * LSV + tau_G * GSV) (or the reference code's product LSV * GSV) into the
semantic value map around each candidate point. One batched VLM call per view also returns the
answer and relevance for the stopping rule."""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from eqa.method import SemanticConfig
from eqa.records import CandidatePoint, TargetRecord, ViewRecord
from mapping.frame import Frame, pixel_to_world, pose_xy_yaw
from nav.semantic_points import candidate_points
from vlm.queries import QueryKind
from vlm.visual_prompt import VisualPromptConfig, project_frame_points

DirectionOracle = Callable[[np.ndarray], tuple[np.ndarray, float]]  # points (M, 2) m -> (LSV (M,), GSV)


def semantic_value(lsv: np.ndarray, gsv: float, cfg: SemanticConfig) -> np.ndarray:
    """SV per point from local values (p over points) and the global value (P(worth exploring))."""
    lsv = np.asarray(lsv, dtype=float)
    if cfg.combine == "product":
        return lsv * gsv
    return np.exp(cfg.tau_local * lsv + cfg.tau_global * gsv)


def view_usable(frame: Frame, cfg: SemanticConfig) -> tuple[bool, str]:
    """Whether the VLM can use this view; the reason when not."""
    valid = np.isfinite(frame.depth) & (frame.depth > 0)
    if valid.mean() < cfg.min_valid_depth:
        return False, f"only {valid.mean():.0%} valid depth"
    if frame.rgb.mean() < cfg.min_brightness:
        return False, "image too dark"
    return True, ""


def horizontal_fov(frame: Frame) -> float:
    """The camera's horizontal field of view (rad), from the frame's intrinsics."""
    k = frame.intrinsics
    return 2.0 * math.atan2(k.width / 2.0, k.fx)


class SemanticExplorer:
    """Per view: candidate points -> projection -> one batched VLM call -> SV into the value map.

    direction_oracle: optional points (M, 2) -> (LSV (M,), GSV) replacing the VLM's direction and
    worth-exploring scores (a driver's ground truth; the simulator's is an upper bound); the VLM still answers.
    """

    def __init__(self, config: SemanticConfig, vlm, direction_oracle: Optional[DirectionOracle] = None,
                 visual_prompt: VisualPromptConfig = VisualPromptConfig()):
        self.config, self.vlm = config, vlm
        self.direction_oracle = direction_oracle
        self.visual_prompt = visual_prompt

    def score(self, frame: Frame, scene_map, value_map, question: str, choices,
              answer: bool = True) -> tuple[ViewRecord, object]:
        """The view's record and the VLM's ViewResult (None when no call was made). Candidate points are
        picked around the base pose the frame was taken from (frame.T_world_base).

        answer=False (an earlier view of the same decision: of the look-around, or on the way): only
        direction and worth-exploring are asked, and only when some candidate point is visible; the stop
        rule sees only the newest view's answer and relevance. With `approach_relevance` (and a backend that
        locates), every view's call also asks relevance and locate, and the record's target holds the
        located pixel, the relevance and the world (x, y) (`approach`: whether to go and look at it)."""
        cfg = self.config
        x, y, yaw = pose_xy_yaw(frame.T_world_base)
        record = ViewRecord(stamp=frame.stamp, xy=(x, y), yaw=yaw)
        ok, reason = view_usable(frame, cfg)
        if not ok:
            record.skipped = reason
            return record, None
        pts = candidate_points(scene_map, (x, y), yaw, horizontal_fov(frame), cfg.k, cfg.min_dist, cfg.max_dist,
                               cfg.merge)
        floor_z = scene_map.floor_z if scene_map.floor_z is not None else 0.0
        proj = project_frame_points(frame, np.column_stack([pts, np.full(len(pts), floor_z)]), self.visual_prompt) \
            if len(pts) else None
        if proj is not None:
            record.candidates = [CandidatePoint((float(px), float(py)), status, (float(u), float(v)))
                                 for (px, py), status, (u, v) in zip(pts, proj.status, proj.pixels)]
        visible = proj.visible if proj is not None else np.zeros(0, dtype=bool)
        pts_vis = pts[visible]
        pixels = proj.pixels[visible] if proj is not None else np.zeros((0, 2))
        locate = cfg.approach_relevance is not None and QueryKind.LOCATE in self.vlm.supported_kinds
        kinds = [QueryKind.ANSWER, QueryKind.RELEVANCE] if answer else ([QueryKind.RELEVANCE] if locate else [])
        if locate:
            kinds.append(QueryKind.LOCATE)
        if len(pts_vis) and self.direction_oracle is None:
            kinds += [QueryKind.DIRECTION, QueryKind.WORTH_EXPLORING]
        view = self.vlm.query_view(frame.rgb, question, choices, points_px=pixels if len(pts_vis) else None,
                                   kinds=tuple(kinds)) if kinds else None
        if len(pts_vis):
            if self.direction_oracle is not None:
                lsv, gsv = self.direction_oracle(pts_vis)
                record.source = "oracle"
            else:
                lsv, gsv = view.direction, view.worth_exploring
                record.source = "vlm"
            sv = semantic_value(lsv, gsv, cfg)
            value_map.update(pts_vis, sv, cfg.radius)
            record.lsv, record.gsv, record.sv = [float(v) for v in lsv], float(gsv), [float(v) for v in sv]
        if view is not None:
            record.vlm_s = view.call.latency_s
            if answer:
                record.relevance = view.relevance
                record.p_answer = [float(p) for p in view.answer] if view.answer is not None else None
        if locate:
            record.target = self._target(frame, view, (x, y))
        return record, view

    def _target(self, frame: Frame, view, view_xy) -> TargetRecord:
        """Where the VLM locates the target in this view: pixel, relevance, world (x, y) from the depth
        there (None without valid depth), and whether to approach it (relevance high enough, within
        max_dist m of view_xy)."""
        u, v = view.target_px
        xyz = pixel_to_world(frame, u, v)
        xy = None if xyz is None else (float(xyz[0]), float(xyz[1]))
        in_range = xy is not None and math.hypot(xy[0] - view_xy[0], xy[1] - view_xy[1]) <= self.config.max_dist
        return TargetRecord((float(u), float(v)), float(view.relevance), xy,
                            bool(in_range and view.relevance >= self.config.approach_relevance))
