"""Visual prompting: projection with bounds and occlusion checks, deterministic lettered circles."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mapping.frame import Frame, Intrinsics, base_pose, camera_mount
from vlm.visual_prompt import (BEHIND, FONT_PATH, OCCLUDED, OUTSIDE, VISIBLE, VisualPromptConfig, draw_labels,
                               label_radius, project_frame_points, project_points)

K = Intrinsics.from_hfov(64, 48, math.radians(90))


def level_camera(x=0.0, y=0.0, yaw=0.0, height=1.0):
    """T_world_cam of a level forward camera on a robot at (x, y, yaw)."""
    return base_pose(x, y, yaw) @ camera_mount(height, 0.0)


def test_point_straight_ahead_projects_to_principal_point():
    T = level_camera(yaw=0.3)
    ahead = (T @ np.array([0.0, 0.0, 3.0, 1.0]))[:3]  # 3 m along the optical axis
    depth = np.full((48, 64), 5.0, np.float32)
    proj = project_points(ahead[None], K, T, depth)
    np.testing.assert_allclose(proj.pixels[0], [K.cx, K.cy], atol=1e-9)
    assert proj.status == (VISIBLE,) and proj.z[0] == pytest.approx(3.0)


def test_projection_matches_pinhole_model_and_world_frame():
    T = level_camera(x=1.0, y=2.0, yaw=0.0, height=1.0)
    # world point 4 m ahead (+x), 1 m left (+y), on the floor (z=0): camera x = -1, y = +1 (down), z = 4
    p = np.array([[5.0, 3.0, 0.0]])
    proj = project_points(p, K, T, np.full((48, 64), 10.0, np.float32))
    assert proj.pixels[0, 0] == pytest.approx(K.fx * -1 / 4 + K.cx)
    assert proj.pixels[0, 1] == pytest.approx(K.fy * 1 / 4 + K.cy)


def test_behind_outside_and_occluded_points_are_dropped():
    T = level_camera()
    depth = np.full((48, 64), 10.0, np.float32)
    depth[:, :32] = 2.0  # a wall 2 m away over the left half of the image
    pts = np.array([
        [4.0, 0.0, 1.0],    # ahead, centre column 31.5 -> rounds to column 32 (right half): visible
        [4.0, 1.0, 1.0],    # ahead-left, behind the wall: occluded
        [1.5, 0.5, 1.0],    # ahead-left, in front of the wall: visible
        [-2.0, 0.0, 1.0],   # behind the camera
        [1.0, 5.0, 1.0],    # far to the left: outside the field of view
    ])
    proj = project_points(pts, K, T, depth)
    assert proj.status == (VISIBLE, OCCLUDED, VISIBLE, BEHIND, OUTSIDE)
    assert proj.visible.tolist() == [True, False, True, False, False]
    assert proj.visible_pixels.shape == (2, 2)
    # invalid depth: kept by default (no evidence of occlusion), dropped on request
    depth[:] = np.nan
    assert project_points(pts[:1], K, T, depth).status == (VISIBLE,)
    strict = VisualPromptConfig(keep_on_invalid_depth=False)
    assert project_points(pts[:1], K, T, depth, strict).status == (OCCLUDED,)


def test_margin_and_frame_helper_and_bad_input():
    T = level_camera()
    depth = np.full((48, 64), 10.0, np.float32)
    frame = Frame(rgb=np.zeros((48, 64, 3), np.uint8), depth=depth, intrinsics=K, T_world_cam=T, stamp=0.0)
    near_edge = np.array([[2.0, 1.9, 1.0]])  # u close to 0
    assert project_frame_points(frame, near_edge).status == (VISIBLE,)
    assert project_frame_points(frame, near_edge, VisualPromptConfig(margin_px=5)).status == (OUTSIDE,)
    with pytest.raises(ValueError, match="depth must be"):
        project_points(near_edge, K, T, depth[:10])
    with pytest.raises(ValueError, match="NaN"):
        project_points(np.array([[np.nan, 0, 0]]), K, T, depth)
    with pytest.raises(ValueError, match="T_world_cam"):
        project_points(near_edge, K, np.eye(3), depth)


def test_drawing_is_deterministic_and_draws_circles_with_letters():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    before = img.copy()
    pts = [(20, 30), (80.4, 60.6), (150, 110)]
    a = draw_labels(img, pts, ["A", "B", "C"])
    b = draw_labels(img, pts, ["A", "B", "C"])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(img, before)  # input untouched
    r = label_radius(120, 160)
    for (u, v) in pts:
        cu, cv = int(np.floor(u + 0.5)), int(np.floor(v + 0.5))
        patch = a[max(cv - r + 2, 0):cv + r - 1, max(cu - r + 2, 0):cu + r - 1]
        assert (patch == 255).all(axis=2).mean() > 0.3  # white disc
        assert (patch == 0).all(axis=2).sum() > 3  # black letter strokes
    assert (a[0:5, 60:70] == img[0:5, 60:70]).all()  # far from the points nothing changes
    c = draw_labels(img, pts, ["A", "B", "D"])
    assert not np.array_equal(a, c)  # the letter matters
    assert FONT_PATH.is_file() and (FONT_PATH.parent / "DejaVuFonts-LICENSE.md").is_file()
    with pytest.raises(ValueError, match="labels"):
        draw_labels(img, pts, ["A"])
