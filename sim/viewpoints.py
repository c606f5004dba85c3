"""Batched visibility for question labels: which robot poses see which instances, and how much.

Poses are base poses (x, y, yaw) in the world frame (metres, radians about +z); the camera
is the simulator's (`CameraConfig`: mount height, pitch, horizontal FOV). Instance ids are
cast with open3d at a reduced *visibility resolution* with the same field of view; a pixel
count there is scaled by the image-area ratio to full-resolution pixels, since for a fixed
FOV an object's pixel area is proportional to the image area (one low-resolution pixel at
a quarter of the width and height stands for 16 full-resolution pixels). No shading is
computed: only instance ids and z-depth.
"""
from __future__ import annotations

import math

import numpy as np
import open3d as o3d

from mapping.frame import Intrinsics, base_pose, camera_mount
from mapping.grid import segment_samples
from sim.config import CameraConfig
from sim.freespace import FreeSpace, rasterize_boxes
from sim.mesh import build_mesh
from sim.scene import Room, Scene

# Rays cast per open3d call (bounds the ray buffer: 2**21 rays x 6 float32 = 50 MB).
CHUNK_RAYS = 2 ** 21


class VisibilityCaster:
    """Instance-id and z-depth images of a scene from many base poses at once."""

    def __init__(self, scene: Scene, camera: CameraConfig, width: int, height: int):
        if width <= 0 or height <= 0:
            raise ValueError(f"visibility image size must be positive, got {width}x{height}")
        if abs(width / height - camera.width / camera.height) > 0.02:
            raise ValueError(f"visibility image {width}x{height} must keep the camera aspect ratio "
                             f"{camera.width}x{camera.height} so that pixel counts scale by area")
        self.intrinsics = Intrinsics.from_hfov(width, height, math.radians(camera.hfov_deg))
        self.full_pixels = camera.width * camera.height
        # Full-resolution pixels that one visibility pixel stands for.
        self.scale = self.full_pixels / float(width * height)
        self.T_base_cam = camera_mount(camera.mount_height, math.radians(camera.pitch_down_deg))
        mesh = build_mesh(scene)
        self.mesh = mesh
        self._tri_instance = np.append(mesh.instance, 0).astype(np.int32)  # invalid primitive -> 0
        self._raycaster = o3d.t.geometry.RaycastingScene()
        self._raycaster.add_triangles(o3d.core.Tensor(mesh.vertices), o3d.core.Tensor(mesh.triangles.astype(np.uint32)))
        K = self.intrinsics.matrix()
        u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
        # z = 1 camera rays through pixel centres, so the hit parameter is z-depth (as the renderer).
        self._dirs_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)],
                                  -1).astype(np.float32)

    def cam_poses(self, poses: np.ndarray) -> np.ndarray:
        """(N, 4, 4) T_world_cam of (N, 3) base poses (x, y, yaw)."""
        poses = np.asarray(poses, dtype=float).reshape(-1, 3)
        out = np.zeros((len(poses), 4, 4))
        for i, (x, y, yaw) in enumerate(poses):
            out[i] = base_pose(x, y, yaw) @ self.T_base_cam
        return out

    def cast(self, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids (N, h, w) int32, z-depth (N, h, w) float32 metres (inf = no hit), T_world_cam (N, 4, 4))."""
        ids, depth, T, _ = self.cast_triangles(poses)
        return ids, depth, T

    def cast_triangles(self, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """As `cast`, plus the triangle each pixel shows: (N, h, w) int64 indices into `self.mesh`'s triangles,
        len(triangles) where nothing is hit."""
        T = self.cam_poses(poses)
        h, w = self._dirs_cam.shape[:2]
        ids = np.zeros((len(T), h, w), dtype=np.int32)
        tris = np.zeros((len(T), h, w), dtype=np.int64)
        depth = np.full((len(T), h, w), np.inf, dtype=np.float32)
        chunk = max(1, CHUNK_RAYS // (h * w))
        for start in range(0, len(T), chunk):
            Tc = T[start:start + chunk]
            rays = np.empty((len(Tc), h, w, 6), dtype=np.float32)
            rays[..., :3] = Tc[:, None, None, :3, 3]
            R_T = Tc[:, :3, :3].transpose(0, 2, 1).astype(np.float32)
            rays[..., 3:] = np.matmul(self._dirs_cam.reshape(1, -1, 3), R_T).reshape(len(Tc), h, w, 3)
            hit = self._raycaster.cast_rays(o3d.core.Tensor(rays))
            # Misses carry open3d's INVALID_ID (2**32 - 1); clipping maps them to the trailing 0 entry.
            prim = np.minimum(hit["primitive_ids"].numpy().astype(np.int64), len(self._tri_instance) - 1)
            tris[start:start + len(Tc)] = prim
            ids[start:start + len(Tc)] = self._tri_instance[prim]
            depth[start:start + len(Tc)] = hit["t_hit"].numpy()
        return ids, depth, T, tris

    def pixel_counts(self, ids: np.ndarray, targets) -> np.ndarray:
        """(N, K) full-resolution-equivalent pixel counts of each target instance id in each view."""
        flat = ids.reshape(len(ids), -1)
        counts = np.zeros((len(ids), len(targets)))
        for k, t in enumerate(targets):
            counts[:, k] = (flat == t).sum(axis=1)
        return counts * self.scale

    def floor_fraction(self, ids: np.ndarray, depth: np.ndarray, T_world_cam: np.ndarray, points: np.ndarray,
                       accept_ids, tol: float = 0.15) -> np.ndarray:
        """(N,) fraction of world `points` (P, 3) seen in each view.

        A point is seen when it projects inside the image in front of the camera, the pixel shows one
        of `accept_ids` (the floor, a rug) and the pixel's z-depth is within `tol` metres of the point's.
        """
        points = np.asarray(points, dtype=float).reshape(-1, 3)
        if len(points) == 0:
            raise ValueError("floor_fraction needs at least one point")
        K, (h, w) = self.intrinsics, ids.shape[1:]
        R = T_world_cam[:, :3, :3]
        t = T_world_cam[:, :3, 3]
        p_cam = np.einsum("nji,npj->npi", R, points[None, :, :] - t[:, None, :])  # R^T (p - t)
        z = p_cam[..., 2]
        zs = np.where(z > 1e-3, z, 1.0)
        u = np.rint(K.fx * p_cam[..., 0] / zs + K.cx).astype(np.int64)
        v = np.rint(K.fy * p_cam[..., 1] / zs + K.cy).astype(np.int64)
        inside = (z > 1e-3) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        uc, vc = np.clip(u, 0, w - 1), np.clip(v, 0, h - 1)
        n_idx = np.arange(len(ids))[:, None]
        hit_id = ids[n_idx, vc, uc]
        hit_depth = depth[n_idx, vc, uc]
        seen = inside & np.isin(hit_id, np.asarray(list(accept_ids))) & (np.abs(hit_depth - z) < tol)
        return seen.mean(axis=1)


def main_component(fs: FreeSpace) -> np.ndarray:
    """Boolean grid of the largest connected navigable component (the one every room reaches)."""
    counts = np.bincount(fs.components.ravel())
    counts[0] = 0
    return fs.components == int(np.argmax(counts))


def cell_candidates(fs: FreeSpace, mask: np.ndarray, stride: float) -> np.ndarray:
    """(M, 2) world xy of mask cells thinned to about one per `stride` metres (a regular sub-lattice)."""
    step = max(1, int(round(stride / fs.grid.resolution)))
    sub = np.zeros_like(mask)
    sub[::step, ::step] = mask[::step, ::step]
    return fs.grid.cell_to_world(np.argwhere(sub))


def free_floor_points(scene: Scene, room: Room, spacing: float = 0.25, inset: float = 0.1,
                      margin: float = 0.1) -> np.ndarray:
    """(P, 3) points 1 mm above the room's floor on a `spacing` grid, off furniture footprints.

    Footprints (objects whose bottom is below 0.1 m and that are taller than a rug) are grown by
    `margin`; the points stay `inset` metres inside the walls.
    """
    x0, y0, x1, y1 = room.bounds()
    xs = np.arange(x0 + inset + spacing / 2, x1 - inset, spacing)
    ys = np.arange(y0 + inset + spacing / 2, y1 - inset, spacing)
    gx, gy = np.meshgrid(xs, ys)
    xy = np.stack([gx.ravel(), gy.ravel()], axis=1)
    keep = np.ones(len(xy), dtype=bool)
    for obj in scene.objects:
        lo, hi = obj.bbox_min, obj.bbox_max
        if lo[2] < 0.1 and hi[2] - lo[2] > 0.03:
            keep &= ~((xy[:, 0] > lo[0] - margin) & (xy[:, 0] < hi[0] + margin)
                      & (xy[:, 1] > lo[1] - margin) & (xy[:, 1] < hi[1] + margin))
    xy = xy[keep]
    return np.concatenate([xy, np.full((len(xy), 1), 1e-3)], axis=1)


def farthest_subset(xy: np.ndarray, k: int) -> np.ndarray:
    """Indices of up to k points chosen greedily far apart, starting from the first point (deterministic)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if len(xy) <= k:
        return np.arange(len(xy))
    chosen = [0]
    d = np.hypot(*(xy - xy[0]).T)
    for _ in range(k - 1):
        i = int(np.argmax(d))
        chosen.append(i)
        d = np.minimum(d, np.hypot(*(xy - xy[i]).T))
    return np.asarray(chosen)


def wall_grid(scene: Scene, fs: FreeSpace, z: float = 1.0) -> np.ndarray:
    """Boolean grid (fs.grid) of walls and closed doors cut at height `z` metres (door openings stay clear)."""
    rects = [(lo[0], lo[1], hi[0], hi[1]) for wall in scene.walls for lo, hi in wall.boxes() if lo[2] <= z < hi[2]]
    rects += [(o.bbox_min[0], o.bbox_min[1], o.bbox_max[0], o.bbox_max[1]) for o in scene.objects
              if o.category == "door" and o.state == "closed"]
    return rasterize_boxes(np.asarray(rects, dtype=float).reshape(-1, 4), fs.grid)


def line_of_sight(blocked: np.ndarray, fs: FreeSpace, xy: np.ndarray, target) -> np.ndarray:
    """(N,) bool: the straight floor-plan segment from each xy to `target` crosses no blocked cell.

    Sampled every half cell, ignoring the last 0.15 m (the target may touch a wall). A cheap 2-D
    pre-filter for which candidates to cast; visibility itself is decided by ray casting.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    target = np.asarray(target, dtype=float)
    pts, s = segment_samples(xy, np.broadcast_to(target, xy.shape), fs.grid.resolution / 2)
    length = np.hypot(*(target[None] - xy).T)
    near_end = (1.0 - s)[None, :] * length[:, None] < 0.15
    return ~(fs.grid.values_at(blocked, pts) & ~near_end).any(axis=1)
