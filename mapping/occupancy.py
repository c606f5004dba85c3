"""2-D occupied / free / explored grids built incrementally from world points.

Each frame's points are binned into cells by height above the floor:
ground = [-floor_tolerance, obstacle_min_height), obstacle = [obstacle_min_height,
robot_height]; anything else (ceiling, holes) is ignored. Ground is taken only from the central image
columns (MapConfig.explored_fov_fraction), and ground points in or just behind a cell the same frame saw an
obstacle in (MapConfig.ground_shadow) are not counted: depth noise scatters the foot of a wall or a cabinet
there. A cell's obstacle evidence rises when a frame puts obstacle points in it and decays when a frame sees only
ground in it, so a spurious hit is cleared by seeing the floor there again.
Only the window of cells the frame touched is updated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mapping.config import MapConfig
from mapping.growable import GrowableGrid
from mapping.inflation import disc, inflate_window
from mapping.binning import bin_points, drop_shadowed_ground, project_classify
from mapping.frame import Intrinsics

# metres a surface hit is pushed along its ray before binning (see binning.project_classify)
SURFACE_OFFSET = 0.001

LAYERS = (
    ("evidence", np.float32, 0.0),   # obstacle evidence; occupied when > 0
    ("ground_seen", bool, False),    # ground observed at least once
    ("explored", bool, False),
    ("occupied", bool, False),
    ("free", bool, False),
    ("inflated", bool, False),       # occupied dilated by the robot radius
)


@dataclass
class Window:
    """Rows [r0, r1) x cols [c0, c1) of the grid touched by one update."""

    r0: int
    r1: int
    c0: int
    c1: int


class OccupancyGrids:
    """Occupied / free / explored layers on a GrowableGrid at the voxel resolution."""

    def __init__(self, config: MapConfig) -> None:
        self.config = config
        self.grid = GrowableGrid(config.voxel_size, config.grid_margin)
        for name, dtype, fill in LAYERS:
            self.grid.add_layer(name, dtype, fill)

    def update(self, depth: np.ndarray, intrinsics: Intrinsics, T_world_cam: np.ndarray, floor_z: float,
               robot_xy: tuple[float, float]) -> Window:
        """Fold one frame into the grids. depth: HxW z-depth metres (invalid = 0 or
        non-finite). robot_xy: base position (world metres). Returns the touched window."""
        cfg = self.config
        s = cfg.pixel_stride
        n_max = len(range(0, depth.shape[0], s)) * len(range(0, depth.shape[1], s))
        xy = np.empty((n_max, 2), dtype=np.float64)
        cls = np.empty(n_max, dtype=np.uint8)
        margin = 0.5 * (1.0 - cfg.explored_fov_fraction) * intrinsics.width
        n, bbox = project_classify(
            depth, s, intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy,
            np.ascontiguousarray(T_world_cam[:3, :3], dtype=np.float64),
            np.ascontiguousarray(T_world_cam[:3, 3], dtype=np.float64), float(floor_z),
            cfg.min_depth, cfg.max_depth, SURFACE_OFFSET, -cfg.floor_tolerance, cfg.obstacle_min_height,
            cfg.robot_height, margin - 0.5, intrinsics.width - 1 - margin + 0.5, cfg.explored_range, xy, cls)

        fr = cfg.footprint_radius + cfg.voxel_size  # one cell more than the footprint disc can reach
        lo = [robot_xy[0] - fr, robot_xy[1] - fr]
        hi = [robot_xy[0] + fr, robot_xy[1] + fr]
        if n:
            lo = [min(lo[0], bbox[0]), min(lo[1], bbox[1])]
            hi = [max(hi[0], bbox[2]), max(hi[1], bbox[3])]
        self.grid.ensure_covers(lo[0], lo[1], hi[0], hi[1])
        spec = self.grid.spec
        (r0, c0), (r1, c1) = spec.world_to_cell(np.array([lo, hi]))
        win = Window(int(r0), int(r1) + 1, int(c0), int(c1) + 1)
        wr, wc = win.r1 - win.r0, win.c1 - win.c0
        ground_count = np.zeros((wr, wc), dtype=np.int32)
        obst_count = np.zeros((wr, wc), dtype=np.int32)
        explored_hit = np.zeros((wr, wc), dtype=bool)
        bin_points(xy, cls, n, spec.origin[0], spec.origin[1], spec.resolution, win.r0, win.c0,
                   ground_count, obst_count, explored_hit)
        if cfg.ground_shadow > 0:
            drop_shadowed_ground(xy, cls, n, float(T_world_cam[0, 3]), float(T_world_cam[1, 3]), spec.origin[0],
                                 spec.origin[1], spec.resolution, win.r0, win.c0, obst_count,
                                 cfg.min_obstacle_points, cfg.ground_shadow, ground_count)
        fp_r, fp_c = self._footprint_cells(robot_xy)
        footprint = np.zeros((wr, wc), dtype=bool)
        footprint[fp_r - win.r0, fp_c - win.c0] = True

        obst_hit = obst_count >= cfg.min_obstacle_points
        ground_hit = (ground_count > 0) & ~obst_hit

        sl = (slice(win.r0, win.r1), slice(win.c0, win.c1))
        g = self.grid
        ev = g["evidence"][sl]
        ev += cfg.obstacle_gain * obst_hit - cfg.clear_gain * ground_hit
        np.clip(ev, -cfg.evidence_max, cfg.evidence_max, out=ev)
        g["ground_seen"][sl] |= (ground_count > 0) | footprint
        g["explored"][sl] |= explored_hit | footprint
        occ = ev > 0
        g["occupied"][sl] = occ
        g["free"][sl] = g["ground_seen"][sl] & ~occ
        inflate_window(g["occupied"], g["inflated"], win.r0, win.r1, win.c0, win.c1,
                       cfg.robot_radius, cfg.voxel_size)
        return win

    def _footprint_cells(self, robot_xy) -> tuple[np.ndarray, np.ndarray]:
        """Local (rows, cols) of the cells within footprint_radius of the robot."""
        res = self.config.voxel_size
        r0, c0 = self.grid.cells_of(np.array([robot_xy], dtype=float))
        fp = disc(max(self.config.footprint_radius - 0.5 * res, 0.0), res)
        k = fp.shape[0] // 2
        dr, dc = np.nonzero(fp)
        return dr - k + r0[0], dc - k + c0[0]
