"""Ground-truth free space for the disc robot and collision-free paths on it.

Grid conventions from `mapping.grid.GridSpec` (row = y, col = x). A cell is
navigable when the robot disc centred anywhere in it clears every obstacle
between `z_min` and the robot height.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.graph import MCP_Geometric

from mapping.grid import GridSpec
from sim.scene import Scene

# Parts lower than this (rugs) are driven over, metres.
DRIVE_OVER_HEIGHT = 0.03


def obstacle_boxes(scene: Scene, z_min: float, z_max: float) -> np.ndarray:
    """(N, 4) world xmin, ymin, xmax, ymax of every solid box overlapping heights (z_min, z_max)."""
    rects = []
    for wall in scene.walls:
        for lo, hi in wall.boxes():
            if hi[2] > z_min and lo[2] < z_max:
                rects.append((lo[0], lo[1], hi[0], hi[1]))
    for obj in scene.objects:
        for lo, hi, _ in obj.part_boxes():
            if hi[2] > z_min and lo[2] < z_max:
                rects.append((lo[0], lo[1], hi[0], hi[1]))
    return np.asarray(rects, dtype=float).reshape(-1, 4)


def rasterize_boxes(rects: np.ndarray, grid: GridSpec) -> np.ndarray:
    """Boolean grid, True in every cell a rectangle overlaps (conservative)."""
    occ = np.zeros(grid.shape, dtype=bool)
    r = grid.resolution
    c0 = np.floor((rects[:, 0] - grid.origin[0]) / r).astype(int)
    r0 = np.floor((rects[:, 1] - grid.origin[1]) / r).astype(int)
    c1 = np.ceil((rects[:, 2] - grid.origin[0]) / r).astype(int)
    r1 = np.ceil((rects[:, 3] - grid.origin[1]) / r).astype(int)
    c0, r0 = np.clip(c0, 0, grid.shape[1]), np.clip(r0, 0, grid.shape[0])
    c1, r1 = np.clip(c1, 0, grid.shape[1]), np.clip(r1, 0, grid.shape[0])
    for a, b, c, d in zip(r0, r1, c0, c1):  # one slice per box, not per cell
        occ[a:b, c:d] = True
    return occ


class FreeSpace:
    """True occupancy and configuration space of a scene for a disc robot.

    grid: the cells; occupied: cells an obstacle (or, for mesh scenes, a missing floor) lies in; inside: cells
    the robot may stand in when clear (the house's interior)."""

    def __init__(self, grid: GridSpec, occupied: np.ndarray, inside: np.ndarray, robot_radius: float):
        if robot_radius <= 0:
            raise ValueError(f"robot radius must be positive, got {robot_radius}")
        resolution = grid.resolution
        self.grid = grid
        self.robot_radius = robot_radius
        self.occupied = occupied
        self.inside = inside
        # Distance (m) from each cell centre to the nearest occupied cell centre.
        self.clearance = ndimage.distance_transform_edt(~self.occupied) * resolution
        # Cell centres may be off the true position by up to half a diagonal cell.
        self.navigable = (self.clearance > robot_radius + resolution * 0.75) & inside
        self.components, _ = ndimage.label(self.navigable, structure=np.ones((3, 3)))

    @classmethod
    def from_scene(cls, scene: Scene, robot_radius: float, robot_height: float,
                   resolution: float = 0.05) -> "FreeSpace":
        """Free space of a procedural house: its walls' and objects' boxes between DRIVE_OVER_HEIGHT and the
        robot height; inside = the rooms' bounding rectangle."""
        xmin, ymin, xmax, ymax = scene.bounds()
        pad = robot_radius + 2 * resolution
        grid = GridSpec.covering(xmin - pad, ymin - pad, xmax + pad, ymax + pad, resolution)
        occupied = rasterize_boxes(obstacle_boxes(scene, DRIVE_OVER_HEIGHT, robot_height), grid)
        room_bounds = np.array([room.bounds() for room in scene.rooms])
        interior = [[room_bounds[:, 0].min(), room_bounds[:, 1].min(), room_bounds[:, 2].max(),
                     room_bounds[:, 3].max()]]
        return cls(grid, occupied, rasterize_boxes(np.array(interior), grid), robot_radius)

    def inside_area(self) -> float:
        """Area of the inside cells (for mesh scenes: the floor seen from above), m^2."""
        return float(self.inside.sum()) * self.grid.resolution ** 2

    def is_navigable(self, xy) -> np.ndarray:
        rc = self.grid.world_to_cell(xy)
        ok = self.grid.in_bounds(rc)
        rc = np.clip(rc, 0, np.array(self.grid.shape) - 1)
        return ok & self.navigable[rc[..., 0], rc[..., 1]]

    def component_of(self, xy) -> int:
        """Connected-component label of the cell at xy (0 when not navigable)."""
        rc = self.grid.world_to_cell(xy)
        if not self.grid.in_bounds(rc):
            return 0
        return int(self.components[rc[0], rc[1]])

    def nearest_in_component(self, xy, label: int | None) -> np.ndarray:
        """(row, col) of the navigable cell with component `label` (None = any) closest to world xy."""
        rows, cols = np.nonzero(self.navigable if label is None else self.components == label)
        if rows.size == 0:
            raise ValueError(f"component {label} is empty")
        centres = self.grid.cell_to_world(np.stack([rows, cols], axis=1))
        i = int(np.argmin(np.sum((centres - np.asarray(xy)) ** 2, axis=1)))
        return np.array([rows[i], cols[i]])

    def distance_field(self, sources_xy, mask: np.ndarray | None = None) -> np.ndarray:
        """Path distance (m, 8-connected geodesic over the True cells of `mask`, default the navigable cells) from
        every cell to the nearest of the world (x, y) sources (N, >= 2); inf where unreachable or off the mask.
        Sources off the grid or off the mask are ignored (none left: inf everywhere)."""
        mask = self.navigable if mask is None else mask
        rc = self.grid.world_to_cell(np.asarray(sources_xy, dtype=float).reshape(len(sources_xy), -1)[:, :2])
        rc = rc[self.grid.in_bounds(rc)]
        rc = rc[mask[rc[:, 0], rc[:, 1]]]
        if not len(rc):
            return np.full(self.grid.shape, np.inf)
        mcp = MCP_Geometric(np.where(mask, 1.0, -1.0), fully_connected=True)  # negative = impassable: inf
        cum, _ = mcp.find_costs([tuple(int(v) for v in c) for c in rc])
        return np.asarray(cum, dtype=np.float64) * self.grid.resolution

    def shortest_path(self, start_rc, goal_rc) -> np.ndarray:
        """(K, 2) world xy cell centres of the 8-connected shortest path (both cells navigable, same component)."""
        costs = np.where(self.navigable, 1.0, -1.0)  # negative = impassable for MCP
        mcp = MCP_Geometric(costs, fully_connected=True)
        mcp.find_costs([tuple(start_rc)], [tuple(goal_rc)])
        cells = np.asarray(mcp.traceback(tuple(goal_rc)))
        return self.grid.cell_to_world(cells)
