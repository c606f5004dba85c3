"""What a real depth sensor makes of the ray-cast depth (sim.config.CameraConfig): range limits, noise growing
with the square of the distance, holes at occlusion edges, on dark surfaces and at random. Seeded by the view,
so the same view gives the same depth. Depth in metres, 0 = no depth (mapping.frame.Frame's convention)."""
from __future__ import annotations

import zlib

import numpy as np
from scipy import ndimage

from sim.config import CameraConfig

DARK_LUMINANCE = 40  # 0-255: colour this dark counts as a dark surface (IR-absorbing, little texture)
EDGE_JUMP = 0.05  # a depth jump of more than 5 cm + 5 % of the depth to a neighbour is an occlusion edge


def view_rng(T_world_cam: np.ndarray) -> np.random.Generator:
    """A generator seeded by the camera pose (rounded to 0.1 mm / 1e-6): the same view, the same noise."""
    key = np.round(np.asarray(T_world_cam, dtype=np.float64)[:3], 4).tobytes()
    return np.random.default_rng(zlib.crc32(key))


def sensor_depth(depth: np.ndarray, rgb: np.ndarray, camera: CameraConfig, rng: np.random.Generator) -> np.ndarray:
    """HxW float32 metres as the camera's depth sensor reports ray-cast `depth` (HxW metres, 0 / non-finite
    = nothing hit) of a view whose colour is `rgb` (HxWx3 uint8)."""
    if camera.exact_depth:
        return depth
    d = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0)
    out = np.where(valid, d, 0.0).astype(np.float32)
    if camera.depth_noise > 0:
        out = out + (rng.standard_normal(d.shape) * camera.depth_noise * out * out).astype(np.float32)
    lost = ~valid | (out <= 0)
    if camera.depth_edge_holes:
        z = np.where(valid, d, np.inf)
        limit = EDGE_JUMP + EDGE_JUMP * np.minimum(z[:, 1:], z[:, :-1])
        jump_x = ~(np.abs(z[:, 1:] - z[:, :-1]) <= limit)
        limit = EDGE_JUMP + EDGE_JUMP * np.minimum(z[1:], z[:-1])
        jump_y = ~(np.abs(z[1:] - z[:-1]) <= limit)
        edge = np.zeros(d.shape, dtype=bool)
        edge[:, 1:] |= jump_x
        edge[:, :-1] |= jump_x
        edge[1:] |= jump_y
        edge[:-1] |= jump_y
        lost |= ndimage.binary_dilation(edge, iterations=1)
    if camera.depth_dark_dropout > 0:
        dark = np.asarray(rgb, dtype=np.float32).mean(axis=2) < DARK_LUMINANCE
        lost |= dark & (rng.random(d.shape) < camera.depth_dark_dropout)
    if camera.depth_dropout > 0:
        lost |= rng.random(d.shape) < camera.depth_dropout
    if camera.depth_min_m > 0:
        lost |= out < camera.depth_min_m
    if camera.depth_max_m > 0:
        lost |= out > camera.depth_max_m
    out[lost] = 0.0
    return out
