"""The simulator as an Env: reset/observe/turn/move_to, collision-free motion."""
import math

import numpy as np
import pytest

from mapping.frame import base_pose, pose_xy_yaw
from sim.catalog import build_parts
from sim.config import SimConfig
from sim.env import SimEnv, SimEpisode
from sim.house import generate_house
from sim.scene import SceneObject
from sim.testing import room_scene


def _clear_of_obstacles(env, pts):
    """True when every point keeps the robot radius away from every true obstacle."""
    fs = env.freespace
    occ_xy = fs.grid.cell_to_world(np.argwhere(fs.occupied))
    d = np.sqrt(((pts[:, None, :] - occ_xy[None, :, :]) ** 2).sum(-1)).min(axis=1)
    # Occupied cells cover the true obstacles, which may reach half a cell diagonal past a cell centre.
    return d > env.config.robot.radius + fs.grid.resolution / math.sqrt(2)


def test_reset_observe_and_turn():
    env = SimEnv(room_scene())
    first = env.reset(SimEpisode(start=(0.0, 0.0, 0.0)))
    assert env.observe() == []
    f1 = env.turn(math.pi / 2)
    f2 = env.turn(math.pi / 2)
    frames = env.observe()
    assert [f.stamp for f in frames] == [f1.stamp, f2.stamp] and f2.stamp > f1.stamp > first.stamp
    assert env.observe() == []
    x, y, yaw = pose_xy_yaw(env.robot_pose())
    assert (x, y) == (0.0, 0.0) and yaw == pytest.approx(-math.pi)
    assert not np.array_equal(first.rgb, f2.rgb)


def test_start_in_a_wall_is_rejected_and_env_needs_reset():
    env = SimEnv(room_scene())
    with pytest.raises(RuntimeError, match="reset"):
        env.turn(0.1)
    with pytest.raises(ValueError, match="collides"):
        env.reset(SimEpisode(start=(2.05, 0.0, 0.0)))


def test_move_to_into_a_wall_stops_before_it():
    env = SimEnv(room_scene(width=4.0, depth=3.0))
    env.reset(SimEpisode(start=(0.0, 0.0, 0.0)))
    result = env.move_to(base_pose(3.0, 0.0, 0.0), max_distance=10.0)
    x, y, _ = pose_xy_yaw(result.T_world_base)
    assert result.blocked and not result.reached
    assert x <= 2.0 - env.config.robot.radius + 1e-6  # inner wall face at x = 2.0
    assert x > 1.5  # it did drive towards the wall
    assert result.distance == pytest.approx(math.hypot(x, y), abs=0.1)


def test_move_respects_max_distance_and_reports_progress():
    env = SimEnv(room_scene(width=4.0, depth=3.0), SimConfig(capture_spacing=0.0))
    env.reset(SimEpisode(start=(-1.5, 0.0, 0.0)))
    result = env.move_to(base_pose(1.5, 0.0, 0.0), max_distance=1.0)
    assert result.distance == pytest.approx(1.0)
    assert not result.reached and not result.blocked
    result = env.move_to(base_pose(1.5, 0.0, 0.5), max_distance=5.0)
    x, y, yaw = pose_xy_yaw(result.T_world_base)
    assert result.reached and (x, y) == pytest.approx((1.5, 0.0)) and yaw == pytest.approx(0.5)
    assert len(env.observe()) == 2


def test_a_path_around_an_obstacle_is_followed():
    scene = room_scene(width=6.0, depth=4.0)
    size = (0.6, 2.8, 1.0)  # a cabinet across the middle, free gaps of 0.6 m at both ends
    obj = SceneObject(instance_id=1, category="cabinet", room_id=0, position=(0.0, 0.0, 0.0), yaw=0.0, size=size,
                      color="brown", parts=build_parts("cabinet", size, "brown", None))
    obj.update_bbox()
    scene.objects.append(obj)
    env = SimEnv(scene)
    env.reset(SimEpisode(start=(-2.0, 0.0, 0.0)))
    result = env.move_to(base_pose(2.0, 0.0, 0.0), max_distance=20.0)
    assert result.reached
    straight = 4.0
    assert result.distance > straight + 1.0  # it went around, not through
    path = np.array(env.path)
    assert path[-1] == pytest.approx([2.0, 0.0])


def test_motion_never_leaves_free_space_in_a_house():
    env = SimEnv(generate_house(2), SimConfig(capture_spacing=0.0))
    env.reset(SimEpisode(seed=7))
    rng = np.random.default_rng(0)
    xmin, ymin, xmax, ymax = env.scene.bounds()
    visited = []
    for _ in range(15):
        goal = base_pose(rng.uniform(xmin, xmax), rng.uniform(ymin, ymax), rng.uniform(-3, 3))
        before = env.robot_pose()[:2, 3].copy()
        result = env.move_to(goal, max_distance=3.0)
        assert result.distance <= 3.0 + 1e-9
        after = result.T_world_base[:2, 3]
        assert np.linalg.norm(after - before) <= result.distance + 1e-6
        visited.append(after)
    assert _clear_of_obstacles(env, np.array(visited)).all()
    # The whole driven polyline, sampled every 2 cm, keeps the disc clear of every obstacle.
    traj = np.array(env.trajectory)
    samples = [a + (b - a) * t for a, b in zip(traj[:-1], traj[1:]) for t in np.linspace(0, 1, max(2, int(np.linalg.norm(b - a) / 0.02)))]
    assert _clear_of_obstacles(env, np.array(samples)).all()
    assert len(env.observe()) == 15


def test_random_start_is_seeded_and_navigable():
    env = SimEnv(generate_house(1))
    a = env.random_start(np.random.default_rng(4), clearance=0.5)
    b = env.random_start(np.random.default_rng(4), clearance=0.5)
    assert a == b
    assert env.freespace.is_navigable(np.array(a[:2]))


def test_frames_are_captured_along_the_driven_path():
    env = SimEnv(room_scene(width=6.0, depth=3.0), SimConfig(capture_spacing=1.0))
    env.reset(SimEpisode(start=(-2.5, 0.0, 0.0)))
    env.move_to(base_pose(2.2, 0.0, math.pi / 2), max_distance=10.0)
    frames = env.observe()
    xs = [f.T_world_base[0, 3] for f in frames]
    assert xs[:-1] == pytest.approx([-1.5, -0.5, 0.5, 1.5], abs=0.01)  # every metre along the path
    assert all(abs(pose_xy_yaw(f.T_world_base)[2]) < 0.05 for f in frames[:-1])  # facing the travel
    assert pose_xy_yaw(frames[-1].T_world_base)[2] == pytest.approx(math.pi / 2)
    assert [f.stamp for f in frames] == sorted(f.stamp for f in frames)


def test_walk_handles_limits_equal_to_the_path_length_up_to_rounding():
    from sim.env import walk_polyline

    rng = np.random.default_rng(0)
    for _ in range(200):
        pts = np.cumsum(rng.uniform(-0.05, 0.05, size=(40, 2)), axis=0)
        total = float(np.sum(np.hypot(*np.diff(pts, axis=0).T)))
        for limit in (total, np.nextafter(total, 0), total - 1e-12, total * 0.5, 0.0):
            travelled, walked, _, complete = walk_polyline(pts, limit, 0.0)
            assert travelled <= limit + 1e-9 or complete
            assert np.all(np.isfinite(walked)) and len(walked) >= 1
