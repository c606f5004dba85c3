"""The habitat-sim driver's pure parts (habitat-sim itself is not installable here): pose and frame
conversions, sensor specs, turn and path arithmetic, observations to frames."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mapping.frame import Intrinsics, base_pose, camera_mount, pose_xy_yaw, rot_y
from sim.config import SimConfig
from sim.env import capture_points, walk_polyline
from sim.habitat_env import (DEPTH_UUID, RGB_UUID, frame_from_observation, path_to_world_xy, sensor_specs,
                             turned_agent_rotation)
from sim.habitat_frame import (R_WORLD_HABITAT, agent_state_to_base_pose, base_pose_to_agent_state,
                               habitat_agent_pose, matrix_quaternion_wxyz, quaternion_wxyz_matrix,
                               sensor_state_to_camera_pose)


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


@pytest.mark.parametrize("angle", [0.0, 0.7, -2.5, math.pi])
def test_agent_states_and_base_poses_convert_both_ways(angle):
    position = np.array([1.5, 0.12, -3.0])
    q = matrix_quaternion_wxyz(rot_y(angle))
    T = agent_state_to_base_pose(position, q)
    assert np.allclose(T, habitat_agent_pose(position, angle))  # the HM-EQA start convention
    back_position, back_q = base_pose_to_agent_state(T)
    assert np.allclose(back_position, position)
    assert np.allclose(quaternion_wxyz_matrix(back_q), rot_y(angle))
    assert np.isclose(T[2, 3], 0.12)  # Habitat's y (up) is our z


def test_a_habitat_agent_facing_minus_z_faces_our_plus_y():
    x, y, yaw = pose_xy_yaw(agent_state_to_base_pose([0, 0, 0], (1.0, 0.0, 0.0, 0.0)))
    assert np.isclose(yaw, math.pi / 2)
    # forward (our base +x) is Habitat's -z
    T = agent_state_to_base_pose([0, 0, 0], (1.0, 0.0, 0.0, 0.0))
    assert np.allclose(R_WORLD_HABITAT.T @ T[:3, 0], [0, 0, -1])


def test_sensor_specs_give_the_simulator_camera_pose():
    """A sensor placed as the spec says (offset and pitch in the agent's frame) has our camera mount."""
    config = SimConfig()
    rgb, depth = sensor_specs(config)
    assert (rgb.uuid, rgb.kind, depth.uuid, depth.kind) == (RGB_UUID, "COLOR", DEPTH_UUID, "DEPTH")
    assert rgb.resolution == (config.camera.height, config.camera.width) and rgb.hfov_deg == config.camera.hfov_deg
    assert rgb.position == depth.position and rgb.orientation == depth.orientation
    angle = 0.9
    agent_position, R_agent = np.array([2.0, 0.1, 1.0]), rot_y(angle)
    sensor_position = agent_position + R_agent @ np.asarray(rgb.position)
    R_sensor = R_agent @ _rot_x(rgb.orientation[0])
    T_world_cam = sensor_state_to_camera_pose(sensor_position, matrix_quaternion_wxyz(R_sensor))
    T_world_base = agent_state_to_base_pose(agent_position, matrix_quaternion_wxyz(R_agent))
    expected = T_world_base @ camera_mount(config.camera.mount_height, math.radians(config.camera.pitch_down_deg))
    assert np.allclose(T_world_cam, expected, atol=1e-9)


def test_turns_are_counter_clockwise_seen_from_above():
    T = base_pose(1.0, 2.0, 0.3)
    q = turned_agent_rotation(T, math.pi / 2)
    _, _, yaw = pose_xy_yaw(agent_state_to_base_pose(base_pose_to_agent_state(T)[0], q))
    assert np.isclose(yaw, 0.3 + math.pi / 2)


def test_paths_are_converted_truncated_and_captured_along():
    path = [[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [2.0, 0.0, -3.0]]  # Habitat: x then -z (our +y)
    xy = path_to_world_xy(path)
    assert np.allclose(xy, [[0, 0], [2, 0], [2, 3]])
    travelled, walked, heading, complete = walk_polyline(xy, 3.0, 0.0)
    assert travelled == 3.0 and not complete and np.allclose(walked[-1], [2, 1]) and np.isclose(heading, math.pi / 2)
    points = capture_points(walked, 1.0)
    assert [p[0] for p in points] == [1.0, 2.0] and np.allclose(points[1][1:3], [2.0, 0.0])


def test_observations_become_frames():
    intr = Intrinsics.from_hfov(4, 3, math.radians(90))
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    depth = np.full((3, 4), 2.0, np.float32)
    depth[0, 0] = np.nan
    T_base = base_pose(0.0, 0.0, 0.0)
    frame = frame_from_observation({RGB_UUID: rgba, DEPTH_UUID: depth}, intr, [0, 1.5, 0], (1, 0, 0, 0), T_base, 4.0)
    assert frame.rgb.shape == (3, 4, 3) and frame.rgb[0, 0].tolist() == [200, 0, 0]
    assert frame.depth[0, 0] == 0.0 and frame.depth[1, 1] == 2.0 and frame.stamp == 4.0
    assert np.allclose(frame.T_world_cam[:3, 3], [0, 0, 1.5])
    assert np.allclose(frame.T_world_cam[:3, 2], [0, 1, 0])  # an unrotated Habitat camera looks along our +y


def test_the_env_says_how_to_get_habitat_sim():
    from sim.habitat_env import HabitatEnv

    try:
        import habitat_sim  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="conda"):
            HabitatEnv("scene.glb")
    else:  # pragma: no cover - only where habitat-sim is installed
        pytest.skip("habitat-sim is installed")
