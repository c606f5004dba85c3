"""Top-down PNG rendering of a SceneMap (+y up in the image, +x right)."""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw

from mapping.scene_map import SceneMap
from mapping.value_map import SemanticValueMap

UNKNOWN = (45, 45, 50)
FREE_UNEXPLORED = (150, 150, 150)
FREE_EXPLORED = (235, 235, 235)
OCCUPIED = (10, 10, 10)
OCCUPIED_UNEXPLORED = (90, 60, 40)
FRONTIER = (230, 30, 30)
NORMAL = (255, 150, 0)
PATH = (40, 90, 230)


def render_map(scene_map: SceneMap, value_map: Optional[SemanticValueMap] = None, scale: int = 4,
               value_range: tuple[float, float] = (0.0, 1.0), normal_length: float = 0.8) -> np.ndarray:
    """HxWx3 uint8 image: unknown dark, free grey (explored: light), occupied black,
    value heat-map over free cells, frontier cells red with their normals (orange, from
    the centroid, normal_length metres), robot path blue with the robot's heading.
    scale: image pixels per grid cell."""
    spec = scene_map.spec
    rows, cols = spec.shape
    if rows == 0 or cols == 0:
        return np.full((scale, scale, 3), UNKNOWN, dtype=np.uint8)
    img = np.empty((rows, cols, 3), dtype=np.float32)
    img[:] = UNKNOWN
    free, occ, exp = scene_map.free, scene_map.occupied, scene_map.explored
    img[free & ~exp] = FREE_UNEXPLORED
    img[free & exp] = FREE_EXPLORED
    if value_map is not None and not value_map.grid.empty:
        xs, ys = spec.cell_centres()
        pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
        lo, hi = value_range
        vals = value_map.value_at(pts, default=np.nan).reshape(rows, cols)
        has = np.isfinite(vals) & free
        norm = np.clip((vals[has] - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
        heat = colormaps["viridis"](norm)[:, :3] * 255.0
        img[has] = 0.35 * img[has] + 0.65 * heat
    img[occ] = OCCUPIED
    img[occ & ~exp] = OCCUPIED_UNEXPLORED
    frontiers = scene_map.frontiers()
    for f in frontiers:
        img[f.cells[:, 0], f.cells[:, 1]] = FRONTIER
    img = np.repeat(np.repeat(img[::-1].astype(np.uint8), scale, axis=0), scale, axis=1)
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)

    def px(xy) -> tuple[float, float]:
        x = (xy[0] - spec.origin[0]) / spec.resolution * scale
        y = (rows - (xy[1] - spec.origin[1]) / spec.resolution) * scale
        return float(x), float(y)

    path = [px(p[:2]) for p in scene_map.robot_path]
    if len(path) > 1:
        draw.line(path, fill=PATH, width=max(1, scale // 2))
    for f in frontiers:
        a, b = px(f.centroid), px(f.centroid + normal_length * f.normal)
        draw.line([a, b], fill=NORMAL, width=max(1, scale // 2))
        r = max(2, scale)
        draw.ellipse([b[0] - r / 2, b[1] - r / 2, b[0] + r / 2, b[1] + r / 2], fill=NORMAL)
    if scene_map.robot_path:
        x, y, yaw = scene_map.robot_path[-1]
        c = px((x, y))
        r = scene_map.config.robot_radius / spec.resolution * scale
        draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], outline=PATH, width=max(1, scale // 2))
        h = px((x + 2 * scene_map.config.robot_radius * np.cos(yaw), y + 2 * scene_map.config.robot_radius * np.sin(yaw)))
        draw.line([c, h], fill=PATH, width=max(1, scale // 2))
    return np.asarray(pil)


def save_map_png(path: str | os.PathLike, scene_map: SceneMap, value_map: Optional[SemanticValueMap] = None,
                 **kwargs) -> None:
    """Render (see render_map) and write a PNG."""
    Image.fromarray(render_map(scene_map, value_map, **kwargs)).save(path)
