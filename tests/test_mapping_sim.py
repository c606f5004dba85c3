"""SceneMap on real geometry from the built-in simulator (closed room, door, table)."""
import math

import numpy as np
import pytest

from mapping.config import MapConfig
from mapping.scene_map import SceneMap
from sim.env import SimEnv, SimEpisode
from sim.testing import room_scene


def scan_frames(scene, starts, steps=12):
    """Frames of a full in-place turn (steps equal turns) at each (x, y) start."""
    env = SimEnv(scene)
    frames = []
    for x, y in starts:
        frames.append(env.reset(SimEpisode(start=(x, y, 0.0))))
        for _ in range(steps - 1):
            frames.append(env.turn(2 * math.pi / steps))
    return frames


def build(frames, config=None) -> SceneMap:
    m = SceneMap(config)
    for f in frames:
        m.integrate(f)
    return m


@pytest.fixture(scope="module")
def closed_room():
    scene = room_scene(4.0, 3.0)
    return scene, scan_frames(scene, [(0.0, 0.0)])


@pytest.fixture(scope="module")
def door_room():
    scene = room_scene(4.0, 3.0, door=True)
    return scene, scan_frames(scene, [(0.0, 0.0)])


def wall_distance(xy, hx=2.0, hy=1.5, t=0.1):
    """Distance (m) from points to the solid walls of a closed hx*2 x hy*2 room (wall thickness t)."""
    x, y = np.abs(xy[:, 0]), np.abs(xy[:, 1])
    # the walls form the frame between the inner and the outer rectangle
    outside_inner = np.maximum(x - hx, y - hy)
    inside_outer = np.maximum(x - hx - t, y - hy - t)
    d_in = np.maximum(-outside_inner, 0.0)  # distance inwards from the inner face
    d_out = np.maximum(inside_outer, 0.0)
    return np.maximum(d_in, d_out)


@pytest.mark.parametrize("voxel", [0.1, 0.05])
def test_closed_room_scan(closed_room, voxel):
    scene, frames = closed_room
    m = build(frames, MapConfig(voxel_size=voxel))
    spec = m.spec
    occ_xy = spec.cell_to_world(np.argwhere(m.occupied))
    assert len(occ_xy) > 0
    # every occupied cell is within one cell of the true walls
    assert wall_distance(occ_xy).max() <= voxel * 1.5 + 1e-9
    # every stretch of the inner wall face has an occupied cell within one cell
    s = np.arange(-1.95, 1.95, voxel / 2)
    faces = np.concatenate([np.stack([np.full_like(s, 2.05), s * 0.75], 1), np.stack([np.full_like(s, -2.05), s * 0.75], 1),
                            np.stack([s, np.full_like(s, 1.55)], 1), np.stack([s, np.full_like(s, -1.55)], 1)])
    d = np.abs(faces[:, None, :] - occ_xy[None, :, :]).max(axis=2).min(axis=1)
    assert d.max() <= voxel * 1.5 + 1e-9
    # free area matches the true floor area within 5 %, and free cells are inside the room
    free_area = m.free.sum() * voxel ** 2
    assert free_area == pytest.approx(scene.floor_area(), rel=0.05)
    free_xy = spec.cell_to_world(np.argwhere(m.free))
    assert np.all(np.abs(free_xy[:, 0]) < 2.0) and np.all(np.abs(free_xy[:, 1]) < 1.5)
    # everything was seen, so nothing is left to explore
    assert m.frontiers() == []
    nav = m.navigable()
    assert nav[tuple(spec.world_to_cell(np.array([0.0, 0.0])))]
    assert not (nav & ~m.free).any()
    nav_xy = spec.cell_to_world(np.argwhere(nav))
    # a 0.2 m robot keeps its centre at least 0.2 m from the walls
    assert np.all(np.abs(nav_xy[:, 0]) <= 2.0 - 0.2 + 1e-9) and np.all(np.abs(nav_xy[:, 1]) <= 1.5 - 0.2 + 1e-9)
    assert nav.sum() * voxel ** 2 > 0.7 * (4.0 - 0.4) * (3.0 - 0.4)


def test_door_opening_gives_frontier_pointing_out(door_room):
    scene, frames = door_room
    m = build(frames)
    fr = m.frontiers()
    assert len(fr) >= 1
    door = np.array([2.05, 0.0])
    near = [f for f in fr if np.linalg.norm(f.centroid - door) < 1.0]
    assert len(near) == 1
    f = near[0]
    assert f.normal @ np.array([1.0, 0.0]) > 0.8
    assert f.centroid[0] > 2.0  # through the doorway, on the far side of the wall
    # nothing else of the room is unexplored: every frontier lies beyond the door
    assert all(g.centroid[0] > 2.0 for g in fr)
    # the navigable area reaches through the door into the second room
    nav = m.navigable()
    assert nav[tuple(m.spec.world_to_cell(np.array([2.5, 0.0])))]


def test_table_is_occupied_without_anything_at_floor_level():
    scene = room_scene(4.0, 3.0, table=True)
    table = scene.objects[0]
    lo, hi = np.array(table.bbox_min), np.array(table.bbox_max)
    # only the four legs reach the floor; the middle of the top has nothing below it
    legs = [p for p in table.part_boxes() if p[0][2] < 0.1]
    assert len(legs) == 4 and all((p[1][0] - p[0][0]) < 0.2 for p in legs)
    frames = scan_frames(scene, [(-1.3, 0.0), (1.3, 0.0)])
    m = build(frames)
    spec = m.spec
    xs, ys = spec.cell_centres()
    under = (xs > lo[0]) & (xs < hi[0]) & (ys > lo[1]) & (ys < hi[1])
    assert m.occupied[under].all()
    assert m.occupied[tuple(spec.world_to_cell(np.array([0.0, 0.0])))]
    near_table = (np.abs(xs) < 1.2) & (np.abs(ys) < 1.2)
    occ_xy = np.stack([xs[m.occupied & near_table], ys[m.occupied & near_table]], 1)
    assert np.all(occ_xy >= lo[:2] - 0.1 - 1e-9) and np.all(occ_xy <= hi[:2] + 0.1 + 1e-9)
    assert not m.navigable()[under].any()


def test_save_load_gives_identical_grids(door_room, tmp_path):
    _, frames = door_room
    m = build(frames[:6])
    m.save(tmp_path / "map.npz")
    m2 = SceneMap.load(tmp_path / "map.npz")
    assert m2.spec == m.spec
    for name in ("occupied", "free", "explored", "evidence"):
        np.testing.assert_array_equal(getattr(m, name), getattr(m2, name), err_msg=name)
    np.testing.assert_array_equal(m.navigable(), m2.navigable())
    assert [f.size for f in m.frontiers()] == [f.size for f in m2.frontiers()]
    for f in frames[6:]:
        m.integrate(f)
        m2.integrate(f)
    for name in ("occupied", "free", "explored"):
        np.testing.assert_array_equal(getattr(m, name), getattr(m2, name), err_msg=name)


def test_tsdf_surface_matches_walls(closed_room):
    _, frames = closed_room
    m = build(frames)
    pts = m.tsdf.point_cloud()
    assert len(pts) > 1000
    walls = (pts[:, 2] > 0.3) & (pts[:, 2] < 2.2)
    d = wall_distance(pts[walls, :2])
    assert np.median(d) < 0.05 and np.quantile(d, 0.95) < 0.1
    mesh = m.tsdf.triangle_mesh()
    assert len(mesh.triangles) > 1000
