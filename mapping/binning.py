"""Compiled kernels: depth pixels -> classified world points -> per-cell counts.

One pass over the (strided) depth image back-projects each valid pixel (OpenCV
optical frame, z-depth metres) to the world, classifies it by height above the floor
and keeps its world (x, y); a second pass bins the kept points into a window of the
2-D grid. Cell indices use the GridSpec formula floor((x - origin) / resolution).
"""
from __future__ import annotations

import math

import numba
import numpy as np

GROUND = np.uint8(1)
OBSTACLE = np.uint8(2)
CENTRAL = np.uint8(4)  # inside the central image part and within explored range


@numba.njit(cache=True, nogil=True)
def project_classify(depth, stride, fx, fy, cx, cy, R, t, floor_z, min_depth, max_depth, surface_offset,
                     ground_lo, obstacle_lo, obstacle_hi, u_lo, u_hi, explored_range, out_xy, out_cls):
    """Fill out_xy (N, 2) world x, y and out_cls (N,) class bits for each kept pixel.

    A pixel is kept if its depth is finite and in [min_depth, max_depth] and its height
    above floor_z is ground ([ground_lo, obstacle_lo)) or obstacle ([obstacle_lo,
    obstacle_hi]). Points are pushed surface_offset metres further along their ray so
    that a surface on a cell boundary lands on its solid side. Returns (count, bbox) with
    bbox = (xmin, ymin, xmax, ymax) of the kept points.
    """
    h, w = depth.shape
    n = 0
    xmin, ymin, xmax, ymax = np.inf, np.inf, -np.inf, -np.inf
    r2max = explored_range * explored_range
    for v in range(0, h, stride):
        yn = (v - cy) / fy
        for u in range(0, w, stride):
            z = depth[v, u]
            if not (z >= min_depth and z <= max_depth):  # also rejects NaN
                continue
            xn = (u - cx) / fx
            z = z + surface_offset / math.sqrt(1.0 + xn * xn + yn * yn)
            px, py, pz = xn * z, yn * z, z
            wx = R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz + t[0]
            wy = R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz + t[1]
            wz = R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz + t[2]
            hgt = wz - floor_z
            if hgt >= ground_lo and hgt < obstacle_lo:
                c = GROUND
            elif hgt >= obstacle_lo and hgt <= obstacle_hi:
                c = OBSTACLE
            else:
                continue
            dx, dy = wx - t[0], wy - t[1]
            if u >= u_lo and u <= u_hi and dx * dx + dy * dy <= r2max:
                c |= CENTRAL
            out_xy[n, 0] = wx
            out_xy[n, 1] = wy
            out_cls[n] = c
            n += 1
            xmin = min(xmin, wx)
            xmax = max(xmax, wx)
            ymin = min(ymin, wy)
            ymax = max(ymax, wy)
    return n, (xmin, ymin, xmax, ymax)


@numba.njit(cache=True, nogil=True)
def bin_points(xy, cls, n, ox, oy, res, r0, c0, ground_count, obstacle_count, central_hit):
    """Count ground / obstacle points per cell into window arrays whose (0, 0) is grid
    cell (r0, c0) of a grid with origin (ox, oy) and resolution res; mark central hits."""
    rows, cols = ground_count.shape
    for i in range(n):
        c = int(math.floor((xy[i, 0] - ox) / res)) - c0
        r = int(math.floor((xy[i, 1] - oy) / res)) - r0
        if r < 0 or r >= rows or c < 0 or c >= cols:
            continue
        k = cls[i]
        if k & GROUND:
            ground_count[r, c] += 1
        else:
            obstacle_count[r, c] += 1
        if k & CENTRAL:
            central_hit[r, c] = True
