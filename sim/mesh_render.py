"""Ray-cast RGB, z-depth and instance-id renderer of a loaded `MeshScene`, with the built-in renderer's camera
model and light (sim.render): rays through integer pixel centres of an OpenCV pinhole camera, depth in metres
(0 where nothing is hit). The colour of a hit is its material's base colour x the interpolated vertex
colour x the texture at the interpolated UV (nearest texel, glTF wrap modes), then lit as the built-in
renderer lights (ambient + sun + head light) unless its material is flat (colours as stored).
"""
from __future__ import annotations

import numba
import numpy as np

import open3d as o3d

from mapping.frame import Intrinsics
from sim.mesh_scene import MeshScene
from sim.render import SUN, camera_ray_directions, camera_rays, lambert_light, raycasting_scene, write_hit


class MeshRenderer:
    """Renders a `MeshScene` from camera poses T_world_cam (the `sim.render.Renderer` interface)."""

    def __init__(self, mesh: MeshScene, intrinsics: Intrinsics):
        self.intrinsics = intrinsics
        self.mesh = mesh
        self._raycaster = raycasting_scene(mesh.vertices, mesh.triangles)
        self._semantic = (raycasting_scene(mesh.semantic.vertices, mesh.semantic.triangles)
                          if mesh.semantic is not None else None)
        self._dirs_cam = camera_ray_directions(intrinsics)

    def render(self, T_world_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb HxWx3 uint8, depth HxW float32 metres, instance ids HxW int32) from pose T_world_cam."""
        return self.render_rays(camera_rays(self._dirs_cam, T_world_cam))

    def render_rays(self, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb, hit distance in units of each ray's direction length, instance ids) of HxWx6 world rays
        (origin, direction); for camera rays with z = 1 in the camera frame the distance is the z-depth."""
        rays = np.ascontiguousarray(rays, dtype=np.float32)
        hit = self._raycaster.cast_rays(o3d.core.Tensor(rays))
        h, w = rays.shape[:2]
        rgb = np.empty((h, w, 3), dtype=np.uint8)
        depth = np.empty((h, w), dtype=np.float32)
        ids = np.empty((h, w), dtype=np.int32)
        m = self.mesh
        _shade_mesh(rays, hit["t_hit"].numpy(), hit["primitive_ids"].numpy(), hit["primitive_uvs"].numpy(),
                    hit["primitive_normals"].numpy(), m.triangles, m.uv, m.vertex_color, m.material, m.instance,
                    m.materials.factor, m.materials.texture, m.materials.wrap, m.materials.flat, m.textures.data,
                    m.textures.offset, m.textures.width, m.textures.height, SUN.astype(np.float32), rgb, depth, ids)
        if self._semantic is not None:
            ids = self._semantic_ids(rays, depth)
        return rgb, depth, ids

    def _semantic_ids(self, rays: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Instance ids from the labelled mesh where it is hit within 5 cm of the rendered surface, else 0."""
        hit = self._semantic.cast_rays(o3d.core.Tensor(rays))
        prim = hit["primitive_ids"].numpy()
        t = hit["t_hit"].numpy()
        ok = np.isfinite(t) & (np.abs(t - depth) < 0.05) & (depth > 0)
        labels = self.mesh.semantic.instance
        return np.where(ok, labels[np.where(ok, prim, 0)], 0).astype(np.int32)


@numba.njit(cache=True, inline="always")
def _wrap(x, mode):  # pragma: no cover - compiled
    if mode == 1:
        return min(max(x, 0.0), 1.0)
    if mode == 2:
        f = x - 2.0 * np.floor(x / 2.0)
        return 2.0 - f if f > 1.0 else f
    return x - np.floor(x)


@numba.njit(cache=True, parallel=True)
def _shade_mesh(rays, t_hit, prim, bary, normals, tris, uv, vcol, tri_mat, tri_instance, mat_factor, mat_tex,
                mat_wrap, mat_flat, tex_data, tex_off, tex_w, tex_h, sun, rgb, depth, ids):  # pragma: no cover
    """Per pixel: depth, instance id and textured, lit colour."""
    h, w = t_hit.shape
    for i in numba.prange(h):
        for j in range(w):
            if not write_hit(t_hit, prim, tri_instance, i, j, rgb, depth, ids):
                continue
            p = prim[i, j]
            b1, b2 = bary[i, j, 0], bary[i, j, 1]
            b0 = 1.0 - b1 - b2
            a, b, c = tris[p, 0], tris[p, 1], tris[p, 2]
            m = tri_mat[p]
            light = 1.0 if mat_flat[m] else lambert_light(rays, normals, i, j, sun)
            k = mat_tex[m]
            texel_r, texel_g, texel_b = 255.0, 255.0, 255.0
            if k >= 0:
                u = _wrap(b0 * uv[a, 0] + b1 * uv[b, 0] + b2 * uv[c, 0], mat_wrap[m, 0])
                v = _wrap(b0 * uv[a, 1] + b1 * uv[b, 1] + b2 * uv[c, 1], mat_wrap[m, 1])
                tw, th = tex_w[k], tex_h[k]
                col = min(max(int(np.floor(u * tw)), 0), tw - 1)
                row = min(max(int(np.floor(v * th)), 0), th - 1)
                q = tex_off[k] + row * tw + col
                texel_r, texel_g, texel_b = tex_data[q, 0], tex_data[q, 1], tex_data[q, 2]
            for ch in range(3):
                texel = texel_r if ch == 0 else (texel_g if ch == 1 else texel_b)
                vc = b0 * vcol[a, ch] + b1 * vcol[b, ch] + b2 * vcol[c, ch]
                val = texel * mat_factor[m, ch] * vc * light
                if val > 255.0:
                    val = 255.0
                rgb[i, j, ch] = np.uint8(val + 0.5)
