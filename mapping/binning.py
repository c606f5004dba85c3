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
    above floor_z is obstacle ([obstacle_lo, obstacle_hi]) or ground ([ground_lo, obstacle_lo);
    ground only from the columns u_lo..u_hi: near the image's sides the part of a wall or
    cabinet above its foot can fall outside the image, leaving the foot looking like floor).
    Points are pushed surface_offset metres further along their ray so that a surface on a
    cell boundary lands on its solid side. Returns (count, bbox) with
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
                if u < u_lo or u > u_hi:
                    continue  # floor only from the central columns: at the borders the wall above it may be cut off
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


@numba.njit(cache=True, nogil=True)
def drop_shadowed_ground(xy, cls, n, cam_x, cam_y, ox, oy, res, r0, c0, obstacle_count, min_obstacle_points,
                         shadow, ground_count):
    """Take back the ground counts of points lying in, or at most `shadow` metres (horizontally) behind, a cell
    that this frame saw an obstacle in (>= min_obstacle_points points), looking from the camera at (cam_x, cam_y).
    Depth noise scatters the lowest points of a wall or a cabinet front behind its surface, where they would
    count as floor. Window arrays as in bin_points; the ray is sampled every half cell."""
    rows, cols = ground_count.shape
    steps = int(math.ceil(shadow / (0.5 * res)))
    for i in range(n):
        if not (cls[i] & GROUND):
            continue
        px, py = xy[i, 0], xy[i, 1]
        c = int(math.floor((px - ox) / res)) - c0
        r = int(math.floor((py - oy) / res)) - r0
        if r < 0 or r >= rows or c < 0 or c >= cols:
            continue
        dx, dy = cam_x - px, cam_y - py
        d = math.sqrt(dx * dx + dy * dy)
        if d < 1e-9:
            continue
        dx, dy = dx / d, dy / d
        for k in range(0, steps + 1):
            s = min(k * 0.5 * res, shadow, d)
            rc = int(math.floor((py + dy * s - oy) / res)) - r0
            cc = int(math.floor((px + dx * s - ox) / res)) - c0
            if rc < 0 or rc >= rows or cc < 0 or cc >= cols:
                break
            if obstacle_count[rc, cc] >= min_obstacle_points:
                ground_count[r, c] -= 1
                break
