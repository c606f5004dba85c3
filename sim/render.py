"""Ray-cast RGB, z-depth and instance-id renderer on open3d's RaycastingScene.

Camera: pinhole, OpenCV optical frame; rays through integer pixel centres. Depth is
z-depth in metres (0 where nothing is hit). Shading: ambient + Lambert from a fixed
sun direction + a head light; emissive parts (lamps on, screens on) are unshaded.
"""
from __future__ import annotations

import numba
import numpy as np
import open3d as o3d

from mapping.frame import Intrinsics, check_pose
from sim.mesh import SceneMesh, build_mesh
from sim.scene import Scene

SUN = np.array([0.35, 0.25, 1.0]) / np.linalg.norm([0.35, 0.25, 1.0])
AMBIENT, SUN_GAIN, HEAD_GAIN = 0.38, 0.32, 0.30


class Renderer:
    """Renders a `Scene` from camera poses T_world_cam."""

    def __init__(self, scene: Scene, intrinsics: Intrinsics):
        self.intrinsics = intrinsics
        self.mesh: SceneMesh = build_mesh(scene)
        self._raycaster = raycasting_scene(self.mesh.vertices, self.mesh.triangles)
        self._dirs_cam = camera_ray_directions(intrinsics)

    def render(self, T_world_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb HxWx3 uint8, depth HxW float32 metres, instance ids HxW int32) from pose T_world_cam."""
        return self.render_triangles(T_world_cam)[:3]

    def render_triangles(self, T_world_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`render` plus the triangle of self.mesh each pixel shows (HxW, -1 where nothing is hit)."""
        rays = camera_rays(self._dirs_cam, T_world_cam)
        hit = self._raycaster.cast_rays(o3d.core.Tensor(rays))
        h, w = self._dirs_cam.shape[:2]
        t_hit = hit["t_hit"].numpy()
        prim = hit["primitive_ids"].numpy()
        normals = hit["primitive_normals"].numpy()
        rgb = np.empty((h, w, 3), dtype=np.uint8)
        depth = np.empty((h, w), dtype=np.float32)
        ids = np.empty((h, w), dtype=np.int32)
        m = self.mesh
        _shade(rays, t_hit, prim, normals, m.instance, m.color, m.color_b, m.emissive, m.pattern,
               SUN.astype(np.float32), rgb, depth, ids)
        tris = np.where(np.isfinite(t_hit), prim.astype(np.int64), -1)
        return rgb, depth, ids, tris


def raycasting_scene(vertices: np.ndarray, triangles: np.ndarray) -> o3d.t.geometry.RaycastingScene:
    """open3d's ray caster over (V, 3) float32 vertices and (T, 3) triangles."""
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(vertices, np.float32)),
                        o3d.core.Tensor(np.ascontiguousarray(triangles, np.uint32)))
    return scene


def camera_ray_directions(intrinsics: Intrinsics) -> np.ndarray:
    """HxWx3 float32 camera-frame ray directions through the pixel centres, z = 1 (so the hit parameter is the
    z-depth)."""
    K = intrinsics.matrix()
    u, v = np.meshgrid(np.arange(intrinsics.width, dtype=np.float64), np.arange(intrinsics.height, dtype=np.float64))
    dirs = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    return dirs.astype(np.float32)


def camera_rays(dirs_cam: np.ndarray, T_world_cam: np.ndarray) -> np.ndarray:
    """HxWx6 float32 world rays (origin, direction) of the camera at T_world_cam."""
    check_pose(T_world_cam, "T_world_cam")
    R, t = T_world_cam[:3, :3], T_world_cam[:3, 3]
    h, w = dirs_cam.shape[:2]
    rays = np.empty((h, w, 6), dtype=np.float32)
    rays[..., :3] = t
    rays[..., 3:] = dirs_cam @ R.T.astype(np.float32)
    return rays


@numba.njit(cache=True, inline="always")
def write_hit(t_hit, prim, tri_instance, i, j, rgb, depth, ids):  # pragma: no cover - compiled
    """Depth and instance id of pixel (i, j); where nothing was hit: depth 0, id 0, black, and False."""
    t = t_hit[i, j]
    if not np.isfinite(t):
        depth[i, j] = 0.0
        ids[i, j] = 0
        rgb[i, j, 0] = 0
        rgb[i, j, 1] = 0
        rgb[i, j, 2] = 0
        return False
    depth[i, j] = t
    ids[i, j] = tri_instance[prim[i, j]]
    return True


@numba.njit(cache=True, inline="always")
def lambert_light(rays, normals, i, j, sun):  # pragma: no cover - compiled
    """Light of pixel (i, j)'s hit: ambient + sun (either side of the surface) + a head light."""
    dx, dy, dz = rays[i, j, 3], rays[i, j, 4], rays[i, j, 5]
    inv = 1.0 / np.sqrt(dx * dx + dy * dy + dz * dz)
    nx, ny, nz = normals[i, j, 0], normals[i, j, 1], normals[i, j, 2]
    facing = abs((nx * dx + ny * dy + nz * dz) * inv)
    return AMBIENT + SUN_GAIN * abs(nx * sun[0] + ny * sun[1] + nz * sun[2]) + HEAD_GAIN * facing


@numba.njit(cache=True, parallel=True)
def _shade(rays, t_hit, prim, normals, tri_instance, tri_color, tri_color_b, tri_emissive, tri_pattern, sun,
           rgb, depth, ids):  # pragma: no cover - compiled
    """Per pixel: depth, instance id and shaded colour (floor patterns from the world hit point)."""
    h, w = t_hit.shape
    for i in numba.prange(h):
        for j in range(w):
            if not write_hit(t_hit, prim, tri_instance, i, j, rgb, depth, ids):
                continue
            p = prim[i, j]
            t = t_hit[i, j]
            dx, dy = rays[i, j, 3], rays[i, j, 4]
            light = 1.0 if tri_emissive[p] else lambert_light(rays, normals, i, j, sun)
            use_b = False
            pat = tri_pattern[p]
            if pat > 0:
                x = rays[i, j, 0] + dx * t
                y = rays[i, j, 1] + dy * t
                if pat == 1:
                    use_b = (np.floor(x / 0.4) + np.floor(y / 0.4)) % 2 != 0
                elif pat == 2:
                    use_b = np.floor(y / 0.18) % 2 != 0
                elif pat == 4:
                    use_b = np.floor((x + y) / 0.3) % 2 != 0
            for c in range(3):
                base = tri_color_b[p, c] if use_b else tri_color[p, c]
                v = base * light
                if v > 1.0:
                    v = 1.0
                rgb[i, j, c] = np.uint8(v * 255.0 + 0.5)
