"""Pictures of a mesh scene (sim.mesh_world): a top-down plan with the robot's free space, and a contact sheet
of rendered views (RGB, depth, instance ids) from spread-out navigable poses."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from sim.env import SimEnv, SimEpisode
from sim.mesh_render import MeshRenderer
from sim.show import depth_to_rgb, ids_to_rgb

PLAN_CUT = 1.8  # m above the floor: the plan shows what lies below this height


def top_down_colors(env: SimEnv) -> np.ndarray:
    """HxWx3 uint8 colour of the first surface below PLAN_CUT at each free-space cell centre (rows = y)."""
    xs, ys = env.freespace.grid.cell_centres()
    renderer: MeshRenderer = env.renderer
    # An orthographic camera looking straight down: one ray per cell, through the renderer's shading.
    rays = np.zeros((*xs.shape, 6), np.float32)
    rays[..., 0], rays[..., 1] = xs, ys
    rays[..., 2] = PLAN_CUT
    rays[..., 5] = -1.0
    return renderer.render_rays(rays)[0]


def mesh_plan_png(env: SimEnv, path: str | Path, title: str, robot_path=None) -> None:
    """Top-down plan: surfaces below PLAN_CUT, obstacles (red tint), navigable cells (green tint), no floor
    (dark)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fs = env.freespace
    image = top_down_colors(env).astype(np.float32)
    image[fs.occupied & fs.inside] = 0.5 * image[fs.occupied & fs.inside] + [110, 0, 0]
    image[fs.navigable] = 0.7 * image[fs.navigable] + [0, 60, 0]
    image[~fs.inside] *= 0.25
    grid = fs.grid
    x0, y0 = grid.origin
    extent = (x0, x0 + grid.shape[1] * grid.resolution, y0, y0 + grid.shape[0] * grid.resolution)
    fig, ax = plt.subplots(figsize=(max(6.0, (extent[1] - extent[0]) * 0.6), max(5.0, (extent[3] - extent[2]) * 0.6)),
                           dpi=110)
    ax.imshow(np.clip(image, 0, 255).astype(np.uint8), origin="lower", extent=extent, interpolation="nearest")
    if robot_path:
        p = np.asarray(robot_path)
        ax.plot(p[:, 0], p[:, 1], "-o", color="magenta", markersize=2, linewidth=1)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def spread_poses(env: SimEnv, n: int, seed: int) -> list[tuple[float, float, float]]:
    """n navigable poses of the largest component, far apart (greedy farthest points), seeded headings."""
    rng = np.random.default_rng(seed)
    start = env.random_start(rng)
    poses = [start]
    fs = env.freespace
    counts = np.bincount(fs.components.ravel())
    counts[0] = 0
    cells = np.argwhere(fs.components == int(np.argmax(counts)))
    xy = fs.grid.cell_to_world(cells)
    dist = np.hypot(*(xy - start[:2]).T)
    while len(poses) < n:
        k = int(np.argmax(dist))
        poses.append((float(xy[k, 0]), float(xy[k, 1]), float(rng.uniform(-math.pi, math.pi))))
        dist = np.minimum(dist, np.hypot(*(xy - xy[k]).T))
    return poses


def mesh_contact_sheet(env: SimEnv, path: str | Path, n_views: int = 4, seed: int = 0):
    """Rows of (RGB, depth, instances) from `spread_poses`; returns the poses."""
    poses = spread_poses(env, n_views, seed)
    rows = []
    for pose in poses:
        frame = env.reset(SimEpisode(start=pose))
        rows.append(np.concatenate([frame.rgb, depth_to_rgb(frame.depth), ids_to_rgb(frame.semantic)], axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return poses
