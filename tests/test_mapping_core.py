"""Unit tests of mapping/: config, growable grids, frontiers, value map, bad input, save/load.

Frames here are analytic (a camera above an infinite flat floor), so these tests do
not depend on the simulator; tests/test_mapping_sim.py covers real scene geometry.
"""
import math

import numpy as np
import pytest

from mapping.config import MapConfig
from mapping.frame import Frame, Intrinsics, base_pose, camera_mount, pixel_to_world
from mapping.frontiers import extract_frontiers, frontier_mask
from mapping.grid import GridSpec
from mapping.growable import GrowableGrid
from mapping.inflation import disc, inflate, inflate_window
from mapping.render import render_map, save_map_png
from mapping.scene_map import SceneMap
from mapping.value_map import SemanticValueMap

K = Intrinsics.from_hfov(160, 120, math.radians(120))
MOUNT = camera_mount(1.5, math.radians(30))


def floor_frame(x=0.0, y=0.0, yaw=0.0, floor_z=0.0, with_base=True, stamp=0.0) -> Frame:
    """A frame of an infinite flat floor at z = floor_z seen from a robot at (x, y, yaw)."""
    Tb = base_pose(x, y, yaw, floor_z)
    Tc = Tb @ MOUNT
    u, v = np.meshgrid(np.arange(K.width), np.arange(K.height))
    d = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones(u.shape)], axis=-1) @ Tc[:3, :3].T
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (floor_z - Tc[2, 3]) / d[..., 2]
    depth = np.where((t > 0) & np.isfinite(t), t, 0.0).astype(np.float32)
    rgb = np.full((K.height, K.width, 3), 100, np.uint8)
    return Frame(rgb, depth, K, Tc, stamp, T_world_base=Tb if with_base else None)


def scan(m: SceneMap, x=0.0, y=0.0, n=8, **kw) -> None:
    for i in range(n):
        m.integrate(floor_frame(x, y, 2 * math.pi * i / n, **kw))


def grids(m: SceneMap) -> dict:
    return {"occupied": m.occupied.copy(), "free": m.free.copy(), "explored": m.explored.copy(),
            "evidence": m.evidence.copy()}


# ---- config -------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, msg", [
    ({"voxel_size": 0.0}, "voxel_size"),
    ({"voxel_size": float("nan")}, "voxel_size"),
    ({"max_depth": -1.0}, "max_depth"),
    ({"min_depth": 6.0}, "min_depth"),
    ({"obstacle_min_height": 2.0}, "obstacle_min_height"),
    ({"explored_fov_fraction": 1.5}, "explored_fov_fraction"),
    ({"pixel_stride": 0}, "pixel_stride"),
    ({"robot_radius": -0.1}, "robot_radius"),
    ({"block_resolution": 7}, "block_resolution"),
])
def test_config_rejects_bad_values(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        MapConfig(**kwargs)


def test_config_round_trips_and_rejects_unknown_keys():
    c = MapConfig(voxel_size=0.05, floor_height=0.2)
    assert MapConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="bogus"):
        MapConfig.from_dict({"bogus": 1})


# ---- growable grid ------------------------------------------------------------------------
def test_growable_grid_keeps_world_positions_when_growing():
    g = GrowableGrid(0.1, margin=0.5)
    g.add_layer("a", np.int32, -1)
    g.ensure_covers(0.0, 0.0, 1.0, 1.0)
    rc = g.spec.world_to_cell(np.array([0.55, 0.35]))
    g["a"][rc[0], rc[1]] = 7
    assert g.ensure_covers(-5.0, -3.0, 0.5, 0.5)  # grows down-left: origin moves
    assert not g.ensure_covers(0.0, 0.0, 0.5, 0.5)
    rc2 = g.spec.world_to_cell(np.array([0.55, 0.35]))
    assert g["a"][rc2[0], rc2[1]] == 7
    assert (g["a"] == 7).sum() == 1 and (g["a"] == -1).sum() == g["a"].size - 1
    spec = g.spec
    assert spec.origin[0] <= -5.0 and spec.origin[1] <= -3.0
    # origin stays an exact multiple of the resolution
    assert abs(spec.origin[0] / 0.1 - round(spec.origin[0] / 0.1)) < 1e-9


def test_map_grows_with_what_is_seen():
    m = SceneMap(MapConfig(grid_margin=0.5))
    scan(m, 0.0, 0.0, n=4)
    spec0, free0 = m.spec, m.free.copy()
    scan(m, 15.0, -12.0, n=4)
    spec1 = m.spec
    assert spec1.shape[0] > spec0.shape[0] and spec1.shape[1] > spec0.shape[1]
    # cells seen first are still free at the same world positions
    rr, cc = np.nonzero(free0)
    xy = spec0.cell_to_world(np.stack([rr, cc], axis=1))
    rc = spec1.world_to_cell(xy)
    assert m.free[rc[:, 0], rc[:, 1]].all()
    # both places are mapped
    for p in ((1.0, 0.0), (16.0, -12.0)):
        rc = spec1.world_to_cell(np.array(p))
        assert m.free[rc[0], rc[1]] and m.explored[rc[0], rc[1]]


# ---- bad input ----------------------------------------------------------------------------
def test_all_invalid_depth_changes_nothing():
    m = SceneMap()
    scan(m, n=4)
    before = grids(m)
    blocks = m.tsdf.num_blocks
    f = floor_frame(0.5, 0.5, 1.0)
    for bad in (0.0, np.nan, np.inf, -1.0, 50.0):
        f.depth = np.full_like(f.depth, bad)
        m.integrate(f)
    after = grids(m)
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
    assert m.tsdf.num_blocks == blocks and len(m.robot_path) == 4


def test_invalid_depth_pixels_are_ignored():
    clean, dirty = SceneMap(), SceneMap()
    rng = np.random.default_rng(0)
    for i in range(4):
        f = floor_frame(0.0, 0.0, i * math.pi / 2)
        g = floor_frame(0.0, 0.0, i * math.pi / 2)
        bad = rng.random(f.depth.shape) < 0.2
        vals = rng.choice(np.array([np.nan, np.inf, -np.inf, -2.0, 0.0], dtype=np.float32), size=bad.sum())
        g.depth[bad] = vals
        f.depth[bad] = 0.0
        clean.integrate(f)
        dirty.integrate(g)
    for k, v in grids(clean).items():
        np.testing.assert_array_equal(v, grids(dirty)[k])
    assert clean.free.sum() > 100


def test_nan_pose_raises():
    m = SceneMap()
    f = floor_frame()
    f.T_world_cam = f.T_world_cam.copy()
    f.T_world_cam[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.integrate(f)
    g = floor_frame()
    g.T_world_base = np.full((4, 4), np.nan)
    with pytest.raises(ValueError, match="T_world_base"):
        m.integrate(g)
    assert m.spec.shape == (0, 0) and m.tsdf.num_blocks == 0


def test_intrinsics_that_do_not_match_the_image_raise():
    m = SceneMap()
    f = floor_frame()
    f.intrinsics = Intrinsics.from_hfov(320, 240, math.radians(120))
    with pytest.raises(ValueError, match="does not match intrinsics"):
        m.integrate(f)
    g = floor_frame()
    g.depth = g.depth[:, :-1]
    with pytest.raises(ValueError, match="does not match intrinsics"):
        m.integrate(g)


# ---- grids on a flat floor ------------------------------------------------------------------
def test_flat_floor_is_free_and_has_frontier_facing_out():
    m = SceneMap()
    scan(m, n=8)
    assert not m.occupied.any()
    nav = m.navigable()
    rc = m.spec.world_to_cell(np.array([0.0, 0.0]))
    assert nav[rc[0], rc[1]]
    assert not (nav & ~m.free).any()
    fr = m.frontiers()
    assert len(fr) >= 1
    # the explored disc is bounded by explored_range: every frontier faces away from the robot
    for f in fr:
        radial = f.centroid / np.linalg.norm(f.centroid)
        assert np.dot(radial, f.normal) > 0.5
        assert abs(np.linalg.norm(f.normal) - 1.0) < 1e-9
        assert f.size == pytest.approx(len(f.cells) * 0.1)
        assert np.linalg.norm(f.centroid) < m.config.explored_range + 0.5


def test_floor_height_from_start_pose_and_camera_fallback():
    m = SceneMap()
    scan(m, n=2, floor_z=0.8)
    assert m.floor_z == pytest.approx(0.8)
    assert m.free.sum() > 100 and not m.occupied.any()
    m2 = SceneMap()
    scan(m2, n=2, floor_z=0.8, with_base=False)
    assert m2.floor_z == pytest.approx(0.8)  # camera z - camera_height (1.5)
    np.testing.assert_array_equal(m.free, m2.free)
    m3 = SceneMap(MapConfig(floor_height=0.0))  # wrong floor: the floor is 0.8 m "high" -> obstacle
    scan(m3, n=2, floor_z=0.8)
    assert m3.occupied.sum() > 100


def test_spurious_obstacle_is_cleared_by_seeing_the_floor_again():
    m = SceneMap()
    f = floor_frame()
    patch = (slice(80, 100), slice(70, 90))  # floor ahead of the robot
    f.depth[patch] *= 0.7  # points 30% closer along the ray -> 0.45 m above the floor
    m.integrate(f)
    hit = np.argwhere(m.occupied)
    assert len(hit) >= 4
    xy = m.spec.cell_to_world(hit)
    assert np.all(xy[:, 0] > 0.2) and np.all(np.abs(xy[:, 1]) < 0.5)  # in front of the robot
    for _ in range(8):
        m.integrate(floor_frame())
    assert not m.occupied[hit[:, 0], hit[:, 1]].any()
    assert m.free[hit[:, 0], hit[:, 1]].all()


# ---- inflation and frontiers on hand-made grids ----------------------------------------------
def test_disc_and_inflation():
    d = disc(0.2, 0.1)
    assert d.shape == (5, 5) and d[2, 0] and d[0, 2] and not d[0, 0]
    occ = np.zeros((30, 30), bool)
    occ[15, 15] = True
    inf = inflate(occ, 0.2, 0.1)
    assert inf.sum() == d.sum()
    # windowed update equals a full recomputation
    occ2 = occ.copy()
    occ2[3:6, 20:22] = True
    win = inf.copy()
    inflate_window(occ2, win, 3, 6, 20, 22, 0.2, 0.1)
    np.testing.assert_array_equal(win, inflate(occ2, 0.2, 0.1))


def test_frontier_clusters_normals_and_min_size():
    spec = GridSpec((0.0, 0.0), 0.1, (40, 60))
    explored = np.zeros(spec.shape, bool)
    explored[:, :30] = True  # left half explored: frontier along col 29, unexplored at +x
    navigable = np.zeros(spec.shape, bool)
    navigable[5:35, 10:40] = True
    navigable[0, 2] = True  # lone navigable cell at the grid edge: tiny cluster
    fr = extract_frontiers(navigable, explored, spec, min_size=0.5, normal_window=1.0)
    assert len(fr) == 1
    f = fr[0]
    assert set(map(int, f.cells[:, 1])) == {29}
    assert f.size == pytest.approx(3.0)
    np.testing.assert_allclose(f.normal, [1.0, 0.0], atol=0.05)
    np.testing.assert_allclose(f.centroid, [2.95, 2.0], atol=1e-9)
    assert frontier_mask(navigable, explored)[0, 2]  # grid edge counts as unexplored
    fr_all = extract_frontiers(navigable, explored, spec, min_size=0.0, normal_window=1.0)
    assert len(fr_all) == 2


def test_frontier_normal_points_down_for_unexplored_below():
    spec = GridSpec((-3.0, 5.0), 0.1, (50, 50))
    explored = np.zeros(spec.shape, bool)
    explored[20:, :] = True  # unexplored rows 0..19 = lower y
    nav = np.ones(spec.shape, bool)
    fr = extract_frontiers(nav, explored, spec, min_size=0.5, normal_window=1.0)
    assert len(fr) == 1
    np.testing.assert_allclose(fr[0].normal, [0.0, -1.0], atol=0.05)


def test_pixel_to_world_back_projects_the_median_depth_around_the_pixel():
    k = Intrinsics.from_hfov(64, 48, math.radians(90))  # fx = 32 px
    depth = np.full((48, 64), 2.0, np.float32)
    depth[20:28, 40:48] = np.nan  # a hole: the window's other pixels still give the depth
    T = base_pose(1.0, 2.0, math.pi / 2) @ camera_mount(1.5, 0.0)  # facing +y, camera 1.5 m up
    f = Frame(np.zeros((48, 64, 3), np.uint8), depth, k, T, 0.0)
    np.testing.assert_allclose(pixel_to_world(f, k.cx, k.cy), [1.0, 4.0, 1.5], atol=1e-9)
    # 16 px right of centre at 2 m depth: 1 m to the robot's right (+x when facing +y)
    np.testing.assert_allclose(pixel_to_world(f, k.cx + 16, k.cy), [2.0, 4.0, 1.5], atol=1e-9)
    depth[:] = 0.0
    assert pixel_to_world(f, 10, 10) is None
    with pytest.raises(ValueError, match="outside"):
        pixel_to_world(f, 64, 10)


# ---- semantic value map ---------------------------------------------------------------------
def test_value_map_running_weighted_average():
    vm = SemanticValueMap(0.1)
    vm.update([[0.0, 0.0]], [1.0], 0.5)
    assert vm.value_at((0.05, 0.05)) == pytest.approx(1.0)
    assert vm.value_at((0.0, 0.8)) == 0.0  # outside the disc
    assert vm.value_at((50.0, 50.0), default=-1.0) == -1.0  # outside the grid
    vm.update([[0.0, 0.0]], [0.0], 0.3, weights=3.0)
    assert vm.value_at((0.05, 0.05)) == pytest.approx(0.25)  # (1*1 + 3*0) / 4
    assert vm.value_at((0.45, 0.05)) == pytest.approx(1.0)  # only in the first disc
    # disc radius: cells whose centre is within 0.5 m
    xs, ys = vm.spec.cell_centres()
    inside = np.hypot(xs, ys) <= 0.5 + 1e-9
    np.testing.assert_array_equal(vm.weight > 0, inside)


def test_value_map_overlapping_discs_in_one_update_and_growth():
    vm = SemanticValueMap(0.1, margin=0.2)
    vm.update(np.array([[0.0, 0.0, 1.0], [0.2, 0.0, 1.0]]), np.array([0.0, 1.0]), 0.35)
    assert vm.value_at((0.1, 0.0)) == pytest.approx(0.5)
    vm.update([[-10.0, 7.0]], [0.8], 0.2)  # far away: grid grows, old values keep their place
    assert vm.value_at((0.1, 0.0)) == pytest.approx(0.5)
    assert vm.value_at((-10.0, 7.0)) == pytest.approx(0.8)


def test_value_map_decay_favours_recent_values():
    vm = SemanticValueMap(0.1, decay=0.5)
    vm.update([[0.0, 0.0]], [1.0], 0.2)
    vm.update([[0.0, 0.0]], [0.0], 0.2)
    # old weight 1 decays to 0.5: (0.5 * 1 + 1 * 0) / 1.5
    assert vm.value_at((0.0, 0.0)) == pytest.approx(1.0 / 3.0)
    with pytest.raises(ValueError, match="decay"):
        SemanticValueMap(0.1, decay=0.0)


def test_value_map_mean_along_ray():
    vm = SemanticValueMap(0.1)
    vm.update([[1.0, 0.0]], [1.0], 0.25)
    vm.update([[2.0, 0.0]], [0.5], 0.25)
    assert vm.mean_along((0.0, 0.0), (1.0, 0.0), 3.0) == pytest.approx(0.75, abs=0.02)
    assert vm.mean_along((0.0, 0.0), (1.0, 0.0), 1.5) == pytest.approx(1.0)
    assert vm.mean_along((0.0, 0.0), (0.0, 1.0), 3.0, default=-1.0) == -1.0
    assert vm.mean_along((0.0, 0.0), (5.0, 0.0), 1.5) == pytest.approx(1.0)  # direction normalised
    with pytest.raises(ValueError, match="direction"):
        vm.mean_along((0.0, 0.0), (0.0, 0.0), 1.0)
    with pytest.raises(ValueError, match="finite"):
        vm.update([[np.nan, 0.0]], [1.0], 0.2)


def test_value_map_save_load(tmp_path):
    vm = SemanticValueMap(0.05, decay=0.9)
    vm.update(np.random.default_rng(1).uniform(-2, 2, (20, 2)), np.linspace(0, 1, 20), 0.3)
    vm.save(tmp_path / "v.npz")
    vm2 = SemanticValueMap.load(tmp_path / "v.npz")
    np.testing.assert_array_equal(vm.value, vm2.value)
    np.testing.assert_array_equal(vm.weight, vm2.weight)
    assert vm2.spec == vm.spec and vm2.decay == 0.9
    with pytest.raises(ValueError):
        SemanticValueMap.load(tmp_path / "missing.npz")


# ---- persistence and rendering ----------------------------------------------------------------
def test_save_load_identical(tmp_path):
    m = SceneMap(MapConfig(voxel_size=0.05))
    scan(m, n=4)
    f = floor_frame(1.0, 0.5, 0.3)
    f.depth[40:60, 60:90] *= 0.6
    m.integrate(f)
    m.save(tmp_path / "map.npz")
    m2 = SceneMap.load(tmp_path / "map.npz")
    assert m2.config == m.config and m2.spec == m.spec and m2.floor_z == m.floor_z
    for k, v in grids(m).items():
        np.testing.assert_array_equal(v, grids(m2)[k], err_msg=k)
    np.testing.assert_array_equal(m.navigable(), m2.navigable())
    assert m.robot_path == m2.robot_path
    assert m2.tsdf.num_blocks == m.tsdf.num_blocks
    np.testing.assert_array_equal(np.sort(m.tsdf.point_cloud(), axis=0), np.sort(m2.tsdf.point_cloud(), axis=0))
    a, b = m.frontiers(), m2.frontiers()
    assert len(a) == len(b)
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(fa.cells, fb.cells)
        np.testing.assert_allclose(fa.normal, fb.normal)
    # the loaded map keeps integrating like the original
    g = floor_frame(-1.0, 0.0, 2.0)
    m.integrate(g)
    m2.integrate(g)
    np.testing.assert_array_equal(m.free, m2.free)


def test_load_rejects_other_files(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a scene map"):
        SceneMap.load(p)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a scene map"):
        SceneMap.load(tmp_path / "other.npz")


def test_render_colours(tmp_path):
    m = SceneMap()
    scan(m, n=4)
    vm = SemanticValueMap(0.1)
    vm.update([[1.0, 0.0]], [1.0], 0.3)
    img = render_map(m, vm, scale=2)
    rows, cols = m.spec.shape
    assert img.shape == (rows * 2, cols * 2, 3) and img.dtype == np.uint8

    def pixel(x, y):
        rc = m.spec.world_to_cell(np.array([x, y]))
        return img[(rows - 1 - rc[0]) * 2, rc[1] * 2]

    assert tuple(pixel(-1.5, 1.0)) == (235, 235, 235)  # explored free, no value
    assert tuple(pixel(1.0, 0.0)) != (235, 235, 235)  # heat-map
    f = m.frontiers()[0]
    r, c = f.cells[0]
    assert tuple(img[(rows - 1 - r) * 2, c * 2]) == (230, 30, 30)
    save_map_png(tmp_path / "m.png", m, vm)
    assert (tmp_path / "m.png").stat().st_size > 100


# ---- compiled kernels against a plain numpy reference ------------------------------------------
def test_kernels_match_numpy_reference_and_gridspec():
    from mapping.binning import CENTRAL, GROUND, OBSTACLE, bin_points, project_classify

    f = floor_frame(0.3, -0.2, 0.7)
    rng = np.random.default_rng(3)
    depth = f.depth * rng.uniform(0.5, 1.0, f.depth.shape).astype(np.float32)  # points above the floor too
    depth[rng.random(depth.shape) < 0.1] = np.nan
    T = f.T_world_cam
    n_max = depth.size
    xy, cls = np.empty((n_max, 2)), np.empty(n_max, np.uint8)
    n, bbox = project_classify(depth, 1, K.fx, K.fy, K.cx, K.cy, T[:3, :3].copy(), T[:3, 3].copy(), 0.0,
                               0.1, 5.0, 0.0, -0.1, 0.15, 1.6, 16.0, 143.0, 3.0, xy, cls)
    # numpy reference
    u, v = np.meshgrid(np.arange(K.width), np.arange(K.height))
    z = depth.astype(np.float64)
    ok = np.isfinite(z) & (z >= 0.1) & (z <= 5.0)
    cam = np.stack([(u - K.cx) / K.fx * z, (v - K.cy) / K.fy * z, z], -1)[ok]
    w = cam @ T[:3, :3].T + T[:3, 3]
    h = w[:, 2]
    in_columns = (u[ok] >= 16) & (u[ok] <= 143)  # ground only from the central columns
    keep = ((h >= 0.15) & (h <= 1.6)) | ((h >= -0.1) & (h < 0.15) & in_columns)
    w, uu = w[keep], u[ok][keep]
    assert n == len(w)
    np.testing.assert_allclose(xy[:n], w[:, :2], atol=1e-9)
    np.testing.assert_array_equal((cls[:n] & OBSTACLE) > 0, w[:, 2] >= 0.15)
    np.testing.assert_array_equal((cls[:n] & GROUND) > 0, w[:, 2] < 0.15)
    central = (uu >= 16) & (uu <= 143) & (np.hypot(w[:, 0] - T[0, 3], w[:, 1] - T[1, 3]) <= 3.0)
    np.testing.assert_array_equal((cls[:n] & CENTRAL) > 0, central)
    np.testing.assert_allclose(bbox, [w[:, 0].min(), w[:, 1].min(), w[:, 0].max(), w[:, 1].max()])
    # binning uses the GridSpec cell of each point, including points exactly on cell edges
    spec = GridSpec((-3.0, -2.5), 0.1, (80, 90))
    pts = np.concatenate([w[:, :2], np.round(w[:50, :2], 1)])
    c = np.full(len(pts), GROUND, np.uint8)
    g, o, e = np.zeros(spec.shape, np.int32), np.zeros(spec.shape, np.int32), np.zeros(spec.shape, bool)
    bin_points(pts, c, len(pts), spec.origin[0], spec.origin[1], spec.resolution, 0, 0, g, o, e)
    rc = spec.world_to_cell(pts)
    rc = rc[spec.in_bounds(rc)]
    ref = np.zeros(spec.shape, np.int64)
    np.add.at(ref, (rc[:, 0], rc[:, 1]), 1)
    np.testing.assert_array_equal(g, ref)
    assert not o.any() and not e.any()


def test_navigable_with_larger_robot_is_smaller():
    m = SceneMap()
    f = floor_frame()
    f.depth[70:90, 60:100] *= 0.7  # an obstacle ahead
    m.integrate(f)
    for i in range(1, 4):
        m.integrate(floor_frame(0.0, 0.0, i * math.pi / 2))
    small, big = m.navigable(), m.navigable(0.5)
    assert big.sum() < small.sum() and not (big & ~small).any()
    assert m.navigable(0.2) is m.navigable()  # the config radius is cached
    with pytest.raises(ValueError, match="robot_radius"):
        m.navigable(-1.0)
    mem = m.memory_bytes()
    assert mem["grids"] > 0 and mem["tsdf"] > 0


def test_empty_map_is_usable(tmp_path):
    m = SceneMap()
    assert m.frontiers() == [] and m.navigable().size == 0 and m.robot_xy is None
    assert render_map(m).ndim == 3
    m.save(tmp_path / "e.npz")
    m2 = SceneMap.load(tmp_path / "e.npz")
    assert m2.spec.shape == (0, 0) and m2.floor_z is None and m2.tsdf.num_blocks == 0
    m2.integrate(floor_frame())
    assert m2.free.any()


def test_footprint_window_at_cell_boundaries():
    """A robot whose footprint edge falls on a cell boundary only up to rounding (x = 2.2 m with the
    grid origin at -2.1 m: (2.2 + 0.3 + 2.1) / 0.1 = 45.99999...) must not break the update."""
    from mapping.config import MapConfig
    from mapping.occupancy import OccupancyGrids
    from mapping.frame import Intrinsics, base_pose, camera_mount
    import math as _m

    grids = OccupancyGrids(MapConfig())
    K = Intrinsics.from_hfov(32, 24, _m.radians(90))
    depth = np.full((24, 32), 2.0, dtype=np.float32)
    grids.grid.ensure_covers(0.0, 0.0, 0.1, 0.1)
    assert grids.grid.spec.origin == pytest.approx((-2.1, -2.1))
    for x, y, yaw in ((2.2, 4.55, _m.pi), (2.2, 4.55, -_m.pi / 2), (2.2, 0.0, _m.pi), (0.0, 4.55, 0.0)):
        # Facing away, so the window edge on that side comes from the footprint, not the seen points.
        T = base_pose(x, y, yaw) @ camera_mount(1.5, _m.radians(30))
        grids.update(depth, K, T, 0.0, (x, y))
        rc = grids.grid.spec.world_to_cell(np.array([x, y]))
        assert grids.grid["explored"][rc[0], rc[1]]  # the footprint is marked explored
