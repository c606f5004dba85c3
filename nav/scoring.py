"""Frontier scoring with the reference method's factors, in metres and wrapped radians."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from mapping.frame import wrap_angle
from mapping.grid import GridSpec
from nav.config import FrontierScoreConfig
from nav.scan import ViewWedge, visible_unexplored


@dataclass
class FrontierFactors:
    """Per-frontier factors, each an (F,) array: fractions in [0, 1], values as written, metres."""

    unexplored: np.ndarray
    free: np.ndarray
    value: np.ndarray
    value_along: np.ndarray
    distance: np.ndarray
    in_front: np.ndarray
    gain: np.ndarray

    def as_rows(self) -> list[dict]:
        keys = ("unexplored", "free", "value", "value_along", "distance", "in_front", "gain")
        return [{k: (bool(getattr(self, k)[i]) if k == "in_front" else float(getattr(self, k)[i])) for k in keys}
                for i in range(len(self.distance))]


def fraction_along(mask: np.ndarray, spec: GridSpec, starts: np.ndarray, directions: np.ndarray, length: float,
                   outside: bool) -> np.ndarray:
    """Fraction of samples (every half cell over `length` m) on each ray that hit True cells of `mask`.

    starts, directions: (F, 2) world metres / unit vectors. Samples off the grid count as `outside`.
    """
    n = max(2, int(math.ceil(length / (0.5 * spec.resolution))))
    s = np.linspace(spec.resolution, length, n)
    pts = starts[:, None, :] + s[None, :, None] * directions[:, None, :]
    rc = spec.world_to_cell(pts)
    ok = spec.in_bounds(rc)
    rc = np.where(ok[..., None], rc, 0)
    hits = np.where(ok, mask[rc[..., 0], rc[..., 1]], outside)
    return hits.mean(axis=1)


def fraction_in_disc(mask: np.ndarray, spec: GridSpec, centres: np.ndarray, radius: float) -> np.ndarray:
    """Fraction of cells within `radius` m of each (F, 2) centre that are True in `mask` (off-grid = False)."""
    k = int(math.ceil(radius / spec.resolution))
    dr, dc = np.mgrid[-k:k + 1, -k:k + 1]
    keep = (dr ** 2 + dc ** 2) * spec.resolution ** 2 <= radius ** 2
    offsets = np.stack([dr[keep], dc[keep]], axis=1)
    rc = spec.world_to_cell(centres)[:, None, :] + offsets[None]
    ok = spec.in_bounds(rc)
    rc = np.where(ok[..., None], rc, 0)
    return np.where(ok, mask[rc[..., 0], rc[..., 1]], False).mean(axis=1)


def visible_gain(explored: np.ndarray, occupied: np.ndarray, spec: GridSpec, centroids: np.ndarray,
                 normals: np.ndarray, radius: float) -> np.ndarray:
    """(F,) square metres of unexplored cells within `radius` m of each frontier centroid, on its unexplored
    side (within 90 deg of the normal) and in line of sight from it on the map (rays stop at occupied cells):
    roughly the floor a visit could reveal, small for a pocket behind furniture, large for an unseen room."""
    out = np.zeros(len(centroids))
    if radius <= 0:
        return out
    wedge = ViewWedge(math.pi, 0.0, radius)
    for i, (c, n) in enumerate(zip(centroids, normals)):
        out[i] = visible_unexplored(explored, occupied, spec, c, np.array([math.atan2(n[1], n[0])]), wedge)[0]
    return out


def frontier_factors(frontiers, explored: np.ndarray, free: np.ndarray, spec: GridSpec, robot_xy, robot_yaw: float,
                     cfg: FrontierScoreConfig, path_distance: Optional[np.ndarray] = None,
                     value_map=None, occupied: Optional[np.ndarray] = None) -> FrontierFactors:
    """Factors of every frontier. path_distance: (F,) metres along the navigable grid (inf = unreachable);
    occupied: the map's occupied cells, which bound the visible gain (None: no gain factor, zeros)."""
    centroids = np.array([f.centroid for f in frontiers], dtype=float).reshape(-1, 2)
    normals = np.array([f.normal for f in frontiers], dtype=float).reshape(-1, 2)
    unexplored = fraction_along(~explored, spec, centroids, normals, cfg.lookahead, outside=True)
    free_frac = fraction_in_disc(free, spec, centroids, cfg.free_radius)
    if value_map is not None and len(frontiers):
        base = value_map.mean_value() if cfg.value_relative else 0.0
        value = np.asarray(value_map.value_at(centroids, default=base), dtype=float).reshape(-1) - base
        along = np.array([value_map.mean_along(c, n, cfg.lookahead, default=base)
                          for c, n in zip(centroids, normals)]) - base
    else:
        value = np.zeros(len(frontiers))
        along = np.zeros(len(frontiers))
    offset = centroids - np.asarray(robot_xy, dtype=float)[None]
    euclid = np.hypot(offset[:, 0], offset[:, 1])
    distance = path_distance if (cfg.use_path_distance and path_distance is not None) else euclid
    bearing = np.arctan2(offset[:, 1], offset[:, 0])
    angle = np.abs(wrap_angle(bearing - robot_yaw))
    in_front = (euclid < cfg.min_dist_from_cur) & (angle < math.radians(cfg.min_angle_from_cur_deg))
    gain = (visible_gain(explored, occupied, spec, centroids, normals, cfg.gain_radius)
            if occupied is not None and cfg.gain_weight > 0 else np.zeros(len(frontiers)))
    return FrontierFactors(unexplored, free_frac, value, along, np.asarray(distance, dtype=float), in_front, gain)


def frontier_scores(f: FrontierFactors, cfg: FrontierScoreConfig) -> np.ndarray:
    """Log-weights of the frontiers (-inf for unreachable ones)."""
    score = (f.unexplored / cfg.temp_unexplored + f.free / cfg.temp_free + f.value / cfg.temp_value
             + f.value_along / cfg.temp_value_along + cfg.gain_weight * f.gain - f.distance / cfg.temp_distance
             - cfg.front_penalty * f.in_front)
    return np.where(np.isfinite(f.distance), score, -np.inf)


def select(scores: np.ndarray, cfg: FrontierScoreConfig, rng: np.random.Generator) -> Optional[int]:
    """Index of the chosen frontier (argmax, or sampled from the softmax), None if none is reachable."""
    finite = np.isfinite(scores)
    if not finite.any():
        return None
    if cfg.selection == "argmax":
        return int(np.argmax(np.where(finite, scores, -np.inf)))
    z = np.where(finite, scores - scores[finite].max(), -np.inf)
    p = np.exp(z)
    return int(rng.choice(len(scores), p=p / p.sum()))
