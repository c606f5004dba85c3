"""Floors and free space of a mesh scene from its geometry alone (no navmesh).

Floors: heights where upward-facing triangles add up to a large area. Free space on a floor at height z_f
for a disc robot: a cell is floor when a ray cast down from z_f + step hits a surface within `step` of
z_f; it is occupied when any triangle passes through it between z_f + step and z_f + the robot height
(obstacles, walls; steps lower than `step` are driven over), when it lies inside a closed object (the ray
cast up meets a surface from behind), or when it has no floor (holes, stairwells, outside). Then
`sim.freespace.FreeSpace` inflates by the robot radius, as for procedural houses.
Grid conventions: `mapping.grid.GridSpec` (row = y, col = x).
"""
from __future__ import annotations

import numba
import numpy as np
import open3d as o3d

from mapping.grid import GridSpec
from sim.freespace import FreeSpace
from sim.mesh_scene import MeshScene
from sim.render import raycasting_scene

FLOOR_BIN = 0.05  # m: height bins of the floor histogram
MIN_FLOOR_AREA = 2.0  # m^2 of upward-facing surface for a height to count as a floor
UPWARD = 0.9  # z component of a floor triangle's normal


def floor_levels(mesh: MeshScene, min_area: float = MIN_FLOOR_AREA) -> list[tuple[float, float]]:
    """[(height m, upward-facing area m^2)] of the floors, lowest first: area-weighted histogram peaks of
    upward-facing triangles (table tops and beds are smaller than `min_area` or lie on a floor's peak)."""
    normals = mesh.triangle_normals()
    up = normals[:, 2] > UPWARD
    if not up.any():
        return []
    z = mesh.vertices[mesh.triangles[up]].mean(axis=1)[:, 2].astype(np.float64)
    area = mesh.triangle_areas()[up]
    lo = np.floor(z.min() / FLOOR_BIN)
    bins = (np.floor(z / FLOOR_BIN) - lo).astype(np.int64)
    hist = np.bincount(bins, weights=area)
    peaks: list[int] = []
    levels = []
    for b in np.argsort(-hist):
        if hist[b] < min_area:
            break
        if any(abs(b - other) <= 2 for other in peaks):  # a floor's neighbouring bins are the same floor
            continue
        peaks.append(int(b))
        near = np.abs(bins - b) <= 1
        levels.append((_weighted_median(z[near], area[near]), float(area[near].sum())))
    return sorted(levels)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def choose_floor(mesh: MeshScene, near: float | None = None, tolerance: float = 0.5,
                 below: float | None = None) -> float:
    """The floor height: the floor with the largest area, or the floor nearest `near` (m) within `tolerance`,
    or the floor with the largest area 0.2-2.5 m below `below` (m; a camera's height; furniture tops may lie in
    that range too, floors above and below lie outside it). ValueError naming the file when there is none."""
    levels = floor_levels(mesh)
    if not levels:
        raise ValueError(f"{mesh.source}: no floor found (no upward-facing surface of {MIN_FLOOR_AREA:g} m^2 "
                         "at one height; is the up axis right? see --up)")
    if below is not None:
        under = [level for level in levels if below - 2.5 <= level[0] <= below - 0.2]
        if not under:
            found = ", ".join(f"{h:.2f} m" for h, _ in levels)
            raise ValueError(f"{mesh.source}: no floor found 0.2-2.5 m below the camera at {below:.2f} m (floors at "
                             f"{found})")
        return max(under, key=lambda level: level[1])[0]
    if near is None:
        return max(levels, key=lambda level: level[1])[0]
    height, _ = min(levels, key=lambda level: abs(level[0] - near))
    if abs(height - near) > tolerance:
        found = ", ".join(f"{h:.2f} m" for h, _ in levels)
        raise ValueError(f"{mesh.source}: no floor found within {tolerance:g} m of height {near:.2f} m (floors at "
                         f"{found})")
    return height


def mesh_freespace(mesh: MeshScene, floor_z: float, robot_radius: float, robot_height: float, step: float = 0.1,
                   resolution: float = 0.05) -> FreeSpace:
    """Free space for a disc robot on the floor at height floor_z (m); see the module docstring."""
    lo, hi = floor_z + step, floor_z + robot_height
    v = mesh.vertices
    near = (v[:, 2] > floor_z - step - 0.5) & (v[:, 2] < hi + 0.5)
    if not near.any():
        raise ValueError(f"{mesh.source}: no geometry near the floor at {floor_z:.2f} m")
    pad = robot_radius + 2 * resolution
    xmin, ymin = v[near, 0].min(), v[near, 1].min()
    xmax, ymax = v[near, 0].max(), v[near, 1].max()
    grid = GridSpec.covering(xmin - pad, ymin - pad, xmax + pad, ymax + pad, resolution)
    floor, solid = floor_cells(mesh, grid, floor_z, step)
    if not floor.any():
        raise ValueError(f"{mesh.source}: no floor found at height {floor_z:.2f} m")
    obstacles = np.zeros(grid.shape, dtype=bool)
    tri = v[mesh.triangles]
    zmin, zmax = tri[:, :, 2].min(axis=1), tri[:, :, 2].max(axis=1)
    crossing = np.nonzero((zmax > lo) & (zmin < hi))[0]
    _mark_slab(tri[crossing].astype(np.float64), lo, hi, grid.origin[0], grid.origin[1], resolution, obstacles)
    return FreeSpace(grid, obstacles | solid | ~floor, floor, robot_radius)


def floor_cells(mesh: MeshScene, grid: GridSpec, floor_z: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """(floor, solid) cell masks. floor: a surface lies within `step` of floor_z below floor_z + step (rays
    cast down from there); solid: the ray cast up from there first meets a surface from behind (its normal
    points up), i.e. the cell lies inside a closed object taller than the robot (a wardrobe's inside)."""
    xs, ys = grid.cell_centres()
    rays = np.zeros((2, xs.size, 6), np.float32)
    rays[:, :, 0] = xs.ravel()
    rays[:, :, 1] = ys.ravel()
    rays[:, :, 2] = floor_z + step
    rays[0, :, 5] = -1.0
    rays[1, :, 5] = 1.0
    hit = raycasting_scene(mesh.vertices, mesh.triangles).cast_rays(o3d.core.Tensor(rays))
    t, normal_z = hit["t_hit"].numpy(), hit["primitive_normals"].numpy()[..., 2]
    floor = t[0] <= 2 * step
    solid = np.isfinite(t[1]) & (normal_z[1] > 0)
    return floor.reshape(grid.shape), solid.reshape(grid.shape)


@numba.njit(cache=True)
def _mark_slab(tris, lo, hi, ox, oy, res, out):  # pragma: no cover - compiled
    """Mark the cells of every point of each triangle whose height is in (lo, hi): barycentric samples spaced
    at most res / 2 apart (a loop over triangles; the samples of one triangle are a small grid)."""
    rows, cols = out.shape
    for k in range(tris.shape[0]):
        a, b, c = tris[k, 0], tris[k, 1], tris[k, 2]
        edge = max(np.sqrt(((b - a) ** 2).sum()), np.sqrt(((c - a) ** 2).sum()), np.sqrt(((c - b) ** 2).sum()))
        n = min(max(int(np.ceil(edge / (0.5 * res))), 1), 4000)
        for i in range(n + 1):
            for j in range(n + 1 - i):
                s, t = i / n, j / n
                z = a[2] + s * (b[2] - a[2]) + t * (c[2] - a[2])
                if z <= lo or z >= hi:
                    continue
                x = a[0] + s * (b[0] - a[0]) + t * (c[0] - a[0])
                y = a[1] + s * (b[1] - a[1]) + t * (c[1] - a[1])
                col = int(np.floor((x - ox) / res))
                row = int(np.floor((y - oy) / res))
                if 0 <= row < rows and 0 <= col < cols:
                    out[row, col] = True
