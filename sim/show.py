"""Pictures of a scene: a top-down plan and a contact sheet of rendered views."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from sim.env import SimEnv, SimEpisode
from sim.palette import COLORS, FLOOR_STYLES


def plan_png(scene, path: str | Path, robot_path: list[tuple[float, float]] | None = None) -> None:
    """Top-down plan: rooms coloured and labelled by kind, walls, doors, objects labelled by category."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle

    xmin, ymin, xmax, ymax = scene.bounds()
    fig, ax = plt.subplots(figsize=(max(6.0, (xmax - xmin) * 0.9), max(5.0, (ymax - ymin) * 0.9)), dpi=110)
    for room in scene.rooms:
        rgb = np.array(FLOOR_STYLES[room.kind][1]) / 255.0
        ax.add_patch(Polygon(room.polygon, closed=True, facecolor=rgb, alpha=0.35, edgecolor="none"))
        cx, cy = room.centre()
        ax.text(cx, cy, f"{room.kind}\n#{room.room_id}", ha="center", va="center", fontsize=9, weight="bold",
                color="black", alpha=0.6)
    for wall in scene.walls:
        for lo, hi in wall.boxes():
            if lo[2] > 0.0:
                continue  # lintel above a door opening
            ax.add_patch(Rectangle((lo[0], lo[1]), hi[0] - lo[0], hi[1] - lo[1], facecolor="black"))
    for obj in scene.objects:
        lo, hi = obj.bbox_min, obj.bbox_max
        face = np.array(COLORS.get(obj.color or "grey", COLORS["grey"])) / 255.0
        edge = "red" if obj.category == "door" and obj.state == "closed" else "black"
        ax.add_patch(Rectangle((lo[0], lo[1]), hi[0] - lo[0], hi[1] - lo[1], facecolor=face, edgecolor=edge,
                               linewidth=0.6, alpha=0.85))
        if obj.category != "door":
            label = obj.category + (f" ({obj.state})" if obj.state else "")
            ax.text((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, label, fontsize=5, ha="center", va="center")
    if robot_path:
        p = np.asarray(robot_path)
        ax.plot(p[:, 0], p[:, 1], "-o", color="magenta", markersize=2, linewidth=1)
    ax.set_xlim(xmin - 0.3, xmax + 0.3)
    ax.set_ylim(ymin - 0.3, ymax + 0.3)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"house seed {scene.seed}: {len(scene.rooms)} rooms, {len(scene.objects)} objects, "
                 f"{scene.floor_area():.0f} m$^2$")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def depth_to_rgb(depth: np.ndarray, max_depth: float = 8.0) -> np.ndarray:
    """Grey-scale depth image (near = bright, invalid = black)."""
    d = np.clip(depth / max_depth, 0.0, 1.0)
    img = ((1.0 - d) * 235 + 20).astype(np.uint8)
    img[~(depth > 0)] = 0
    return np.repeat(img[..., None], 3, axis=-1)


def ids_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Stable pseudo-random colour per instance id (0 = black)."""
    h = (ids.astype(np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFF)
    rgb = np.stack([(h >> np.uint64(16)) & np.uint64(255), (h >> np.uint64(8)) & np.uint64(255), h & np.uint64(255)], -1)
    rgb = rgb.astype(np.uint8)
    rgb[ids == 0] = 0
    return rgb


def contact_sheet(env: SimEnv, path: str | Path, n_views: int = 4, seed: int = 0) -> list[tuple[float, float, float]]:
    """Rows of (RGB, depth, instances) from one pose per room (largest rooms first); returns the poses."""
    rooms = sorted(env.scene.rooms, key=lambda r: -r.area())[:n_views]
    rng = np.random.default_rng(seed)
    rows, poses = [], []
    for room in rooms:
        cx, cy = room.centre()
        cell = env.freespace.nearest_in_component((cx, cy), None)
        x, y = env.freespace.grid.cell_to_world(cell)
        yaw = float(rng.uniform(-math.pi, math.pi))
        frame = env.reset(SimEpisode(start=(x, y, yaw)))
        rows.append(np.concatenate([frame.rgb, depth_to_rgb(frame.depth), ids_to_rgb(frame.semantic)], axis=1))
        poses.append((float(x), float(y), yaw))
    sheet = np.concatenate(rows, axis=0)
    Image.fromarray(sheet).save(path)
    return poses
