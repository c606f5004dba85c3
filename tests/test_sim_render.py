"""Renderer: determinism, exact depth, instance ids consistent with object boxes, visible states."""
import math

import numpy as np
import pytest

from mapping.frame import Intrinsics, base_pose, camera_mount
from sim.config import CameraConfig, SimConfig
from sim.env import SimEnv, SimEpisode
from sim.house import generate_house
from sim.render import Renderer
from sim.testing import room_scene


@pytest.fixture(scope="module")
def house_env():
    return SimEnv(generate_house(5))


def test_same_seed_gives_byte_identical_renders_and_seeds_differ(house_env):
    env2 = SimEnv(generate_house(5))
    f1 = house_env.reset(SimEpisode(seed=3))
    f2 = env2.reset(SimEpisode(seed=3))
    assert f1.rgb.tobytes() == f2.rgb.tobytes()
    assert f1.depth.tobytes() == f2.depth.tobytes()
    assert f1.semantic.tobytes() == f2.semantic.tobytes()
    other = SimEnv(generate_house(6)).reset(SimEpisode(seed=3))
    assert other.rgb.tobytes() != f1.rgb.tobytes()


def test_frame_shapes_and_types(house_env):
    f = house_env.reset(SimEpisode(seed=1))
    f.validate()
    assert f.rgb.shape == (480, 640, 3) and f.rgb.dtype == np.uint8
    assert f.depth.shape == (480, 640) and f.depth.dtype == np.float32
    assert f.semantic.dtype == np.int32
    assert f.intrinsics.fx == pytest.approx(320 / math.tan(math.radians(60)))
    # Camera 1.5 m above the floor, optical axis pitched down 30 degrees.
    assert f.T_world_cam[2, 3] == pytest.approx(1.5)
    assert f.T_world_cam[2, 2] == pytest.approx(-math.sin(math.radians(30)))


@pytest.mark.parametrize("distance", [1.0, 2.5, 3.7])
def test_depth_of_a_wall_at_known_distance_is_exact(distance):
    # Level camera facing the +x wall, whose inner face is at x = 2.0.
    env = SimEnv(room_scene(width=4.0, depth=3.0), SimConfig(camera=CameraConfig(pitch_down_deg=0.0)))
    f = env.reset(SimEpisode(start=(2.0 - distance, 0.3, 0.0)))
    rows, cols = np.meshgrid(np.arange(200, 281, 10), np.arange(280, 361, 10), indexing="ij")
    assert np.max(np.abs(f.depth[rows, cols] - distance)) < 1e-3
    wall_id = env.scene.walls[3].instance_id
    assert np.all(f.semantic[rows, cols] == wall_id)


def test_depth_is_z_depth_across_the_image():
    env = SimEnv(room_scene(width=4.0, depth=3.0), SimConfig(camera=CameraConfig(pitch_down_deg=0.0, hfov_deg=90.0)))
    f = env.reset(SimEpisode(start=(0.0, 0.0, 0.0)))
    # Every pixel that sees the +x wall (x = 2.0) has z-depth 2.0, not the slant range.
    wall = f.semantic == env.scene.walls[3].instance_id
    assert wall.sum() > 1000
    assert np.max(np.abs(f.depth[wall] - 2.0)) < 1e-3


def _backproject(frame):
    K = frame.intrinsics
    v, u = np.nonzero(frame.depth > 0)
    z = frame.depth[v, u].astype(np.float64)
    pts_cam = np.stack([(u - K.cx) / K.fx * z, (v - K.cy) / K.fy * z, z], axis=1)
    return pts_cam @ frame.T_world_cam[:3, :3].T + frame.T_world_cam[:3, 3], frame.semantic[v, u]


def test_instance_ids_match_the_objects_whose_boxes_the_rays_hit(house_env):
    hits = 0
    for seed in range(4):
        f = house_env.reset(SimEpisode(seed=seed))
        pts, ids = _backproject(f)
        for obj in house_env.scene.objects:
            mine = ids == obj.instance_id
            if not mine.any():
                continue
            hits += 1
            inside = np.all((pts[mine] >= np.array(obj.bbox_min) - 2e-3) & (pts[mine] <= np.array(obj.bbox_max) + 2e-3), axis=1)
            assert inside.all(), f"{obj.category}#{obj.instance_id}: {np.mean(~inside):.3f} of its pixels outside its box"
    assert hits >= 3


def test_invalid_camera_configuration_is_rejected():
    with pytest.raises(ValueError, match="hfov"):
        CameraConfig(hfov_deg=190.0)
    with pytest.raises(ValueError, match="hfov"):
        CameraConfig(hfov_deg=0.0)
    with pytest.raises(ValueError, match="CameraConfig.width must be >= 8, got 0"):
        CameraConfig(width=0)
    with pytest.raises(ValueError, match="image size"):
        Intrinsics.from_hfov(640, 0, 1.0)
    renderer = Renderer(room_scene(), Intrinsics.from_hfov(64, 48, 1.5))
    bad = np.eye(4)
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        renderer.render(bad)


def _render_object(category, state):
    from sim.catalog import build_parts
    from sim.scene import SceneObject
    scene = room_scene(width=4.0, depth=3.0)
    size = (0.4, 0.4, 1.5) if category == "floor lamp" else (0.1, 1.0, 0.6)
    obj = SceneObject(instance_id=1, category=category, room_id=0, position=(1.5, 0.0, 0.0 if category == "floor lamp" else 0.6),
                      yaw=math.pi, size=size, color="black", state=state, parts=build_parts(category, size, "black", state))
    obj.update_bbox()
    scene.objects.append(obj)
    renderer = Renderer(scene, Intrinsics.from_hfov(160, 120, math.radians(90)))
    T = base_pose(-0.5, 0.0, 0.0) @ camera_mount(1.2, 0.0)
    rgb, _, ids = renderer.render(T)
    return rgb[ids == 1].astype(float)


@pytest.mark.parametrize("category,on,off", [("floor lamp", "on", "off"), ("tv", "on", "off")])
def test_on_and_off_states_look_different(category, on, off):
    lit, dark = _render_object(category, on), _render_object(category, off)
    assert lit.mean() > dark.mean() + 20
