"""Visual prompting: project candidate world points into a view and draw them as lettered circles.

Points are world-frame metres; the camera is `T_world_cam` (OpenCV optical frame) with pinhole
`Intrinsics`; depth is the view's float32 z-depth in metres (0 or non-finite = invalid).
Pixel (u, v) = (column, row); integer values are pixel centres. Drawing uses the font shipped
in `vlm/assets/` so output is identical on every machine with the same Pillow version.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Sequence

import numpy as np

from mapping.bounds import NonNegative, NonNegativeInt, Positive, Range, check_bounds
from mapping.frame import Frame, Intrinsics, check_pose

FONT_PATH = Path(__file__).resolve().parent / "assets" / "DejaVuSans-Bold.ttf"

VISIBLE, BEHIND, OUTSIDE, OCCLUDED = "visible", "behind", "outside", "occluded"


@dataclass(frozen=True)
class VisualPromptConfig:
    """Projection and drawing settings.

    depth_abs_tol_m / depth_rel_tol: a point is occluded when its z exceeds the depth at its pixel by
    more than max(abs_tol, rel_tol * z). keep_on_invalid_depth: keep points whose pixel has no valid
    depth (no evidence of occlusion). margin_px: drop points closer than this to the image border.
    radius_frac: circle radius as a fraction of min(H, W), at least min_radius_px.
    """

    min_depth_m: Positive = 0.05
    depth_abs_tol_m: NonNegative = 0.15
    depth_rel_tol: NonNegative = 0.05
    keep_on_invalid_depth: bool = True
    margin_px: NonNegativeInt = 0
    radius_frac: Annotated[float, Range(gt=0, lt=0.5)] = 0.04
    min_radius_px: Annotated[int, Range(ge=2, le=500)] = 7

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass
class ProjectedPoints:
    """Projection of N world points: pixels (N, 2) float (u, v), depth z (N,) metres in the camera,
    status per point (visible / behind / outside / occluded) and the visible mask."""

    pixels: np.ndarray
    z: np.ndarray
    status: tuple[str, ...]

    @property
    def visible(self) -> np.ndarray:
        return np.array([s == VISIBLE for s in self.status], dtype=bool)

    @property
    def visible_pixels(self) -> np.ndarray:
        return self.pixels[self.visible]


def project_points(points_world: np.ndarray, intrinsics: Intrinsics, T_world_cam: np.ndarray,
                   depth: np.ndarray, config: VisualPromptConfig = VisualPromptConfig()) -> ProjectedPoints:
    """Project world points (N, 3) into the camera; drop those behind, outside the image or occluded."""
    pts = np.asarray(points_world, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points_world must be (N, 3), got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("points_world contains NaN or inf")
    check_pose(T_world_cam, "T_world_cam")
    h, w = intrinsics.height, intrinsics.width
    depth = np.asarray(depth)
    if depth.shape != (h, w):
        raise ValueError(f"depth must be {h}x{w} to match intrinsics, got {depth.shape}")
    T_cam_world = np.linalg.inv(np.asarray(T_world_cam, dtype=np.float64))
    p_cam = pts @ T_cam_world[:3, :3].T + T_cam_world[:3, 3]
    z = p_cam[:, 2]
    safe_z = np.where(z > config.min_depth_m, z, 1.0)
    u = intrinsics.fx * p_cam[:, 0] / safe_z + intrinsics.cx
    v = intrinsics.fy * p_cam[:, 1] / safe_z + intrinsics.cy
    m = config.margin_px
    status = []
    for i in range(len(pts)):
        if z[i] <= config.min_depth_m:
            status.append(BEHIND)
            continue
        ui, vi = int(np.floor(u[i] + 0.5)), int(np.floor(v[i] + 0.5))
        if not (m <= ui <= w - 1 - m and m <= vi <= h - 1 - m):
            status.append(OUTSIDE)
            continue
        d = float(depth[vi, ui])
        if not (np.isfinite(d) and d > 0):
            status.append(VISIBLE if config.keep_on_invalid_depth else OCCLUDED)
            continue
        tol = max(config.depth_abs_tol_m, config.depth_rel_tol * z[i])
        status.append(OCCLUDED if z[i] > d + tol else VISIBLE)
    in_front = z > config.min_depth_m
    pixels = np.stack([np.where(in_front, u, np.nan), np.where(in_front, v, np.nan)], axis=1)
    return ProjectedPoints(pixels=pixels.reshape(-1, 2), z=z, status=tuple(status))


def project_frame_points(frame: Frame, points_world: np.ndarray,
                         config: VisualPromptConfig = VisualPromptConfig()) -> ProjectedPoints:
    """`project_points` with the camera and depth of a Frame."""
    return project_points(points_world, frame.intrinsics, frame.T_world_cam, frame.depth, config)


def _font(size: int):
    from PIL import ImageFont

    if not FONT_PATH.is_file():
        raise FileNotFoundError(f"label font missing: {FONT_PATH} (it ships with the vlm package)")
    return ImageFont.truetype(str(FONT_PATH), size=size)


def label_radius(height: int, width: int, config: VisualPromptConfig = VisualPromptConfig()) -> int:
    """Circle radius in pixels for an image of this size."""
    return max(config.min_radius_px, int(round(config.radius_frac * min(height, width))))


def draw_labels(image: np.ndarray, pixels: Sequence[Sequence[float]], labels: Sequence[str],
                config: VisualPromptConfig = VisualPromptConfig()) -> np.ndarray:
    """A copy of `image` with a white, black-outlined circle and black label at each (u, v) pixel."""
    from PIL import Image, ImageDraw

    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 HxWx3, got {arr.dtype} {arr.shape}")
    if len(pixels) != len(labels):
        raise ValueError(f"{len(pixels)} points but {len(labels)} labels")
    h, w = arr.shape[:2]
    r = label_radius(h, w, config)
    font = _font(max(6, int(round(1.3 * r))))
    canvas = Image.fromarray(arr.copy())
    draw = ImageDraw.Draw(canvas)
    outline = max(1, r // 6)
    for (u, v), label in zip(pixels, labels):
        cu, cv = int(np.floor(float(u) + 0.5)), int(np.floor(float(v) + 0.5))
        draw.ellipse((cu - r, cv - r, cu + r, cv + r), fill=(255, 255, 255), outline=(0, 0, 0), width=outline)
        draw.text((cu, cv), label, fill=(0, 0, 0), font=font, anchor="mm")
    return np.asarray(canvas, dtype=np.uint8).copy()
