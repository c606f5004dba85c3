"""Camera presets of the built-in simulator and its depth-sensor model (range, noise, holes)."""
import numpy as np
import pytest

from eqa.config import load_config
from eqa.sim_driver import load_sim_run
from sim.config import CAMERA_PRESETS, CameraConfig, SimConfig
from sim.depth_sensor import sensor_depth, view_rng
from sim.env import SimEnv, SimEpisode


def test_a_preset_sets_the_camera_and_keys_beside_it_win():
    hm = load_sim_run("semantic").sim.camera
    assert (hm.preset, hm.width, hm.height, hm.hfov_deg) == ("hm-eqa", 640, 480, 120.0) and hm.exact_depth
    rs = load_sim_run("semantic", ["sim.camera.preset=realsense"]).sim.camera
    assert rs.hfov_deg == 69.0 and (rs.depth_min_m, rs.depth_max_m) == (0.3, 5.0) and not rs.exact_depth
    assert rs.mount_height == hm.mount_height  # the mounting is the robot's, not the camera's
    mine = load_sim_run("semantic", ["sim.camera.preset=realsense", "sim.camera.width=848",
                                     "sim.camera.depth_noise=0"]).sim.camera
    assert (mine.width, mine.hfov_deg, mine.depth_noise, mine.depth_max_m) == (848, 69.0, 0.0, 5.0)
    with pytest.raises(ValueError, match="camera.preset must be one of .*realsense"):
        load_sim_run("semantic", ["sim.camera.preset=kinect"])
    with pytest.raises(ValueError, match="depth_max_m"):
        CameraConfig(depth_min_m=2.0, depth_max_m=1.0)
    assert set(CAMERA_PRESETS) == {"hm-eqa", "realsense"}


def _camera(**depth) -> CameraConfig:
    return CameraConfig(**{**CAMERA_PRESETS["hm-eqa"], **depth})


def test_exact_depth_is_left_alone():
    depth = np.full((4, 6), 2.0, np.float32)
    assert sensor_depth(depth, np.zeros((4, 6, 3), np.uint8), _camera(), np.random.default_rng(0)) is depth


def test_range_limits_and_noise_growing_with_the_square_of_the_depth():
    rgb = np.full((200, 200, 3), 200, np.uint8)
    cam = _camera(depth_noise=0.01, depth_min_m=0.3, depth_max_m=5.0)
    for z in (1.0, 3.0):
        out = sensor_depth(np.full((200, 200), z, np.float32), rgb, cam, np.random.default_rng(1))
        assert out.mean() == pytest.approx(z, abs=0.002 * z * z)
        assert out.std() == pytest.approx(0.01 * z * z, rel=0.05)
    near_far = np.array([[0.2, 0.5, 4.9, 6.0, 0.0, np.nan]], np.float32)
    out = sensor_depth(near_far, np.full((1, 6, 3), 200, np.uint8), _camera(depth_min_m=0.3, depth_max_m=5.0),
                       np.random.default_rng(0))
    np.testing.assert_array_equal(out, np.array([[0.0, 0.5, 4.9, 0.0, 0.0, 0.0]], np.float32))


def test_holes_at_occlusion_edges_on_dark_surfaces_and_at_random():
    depth = np.full((100, 100), 4.0, np.float32)
    depth[:, :50] = 1.0  # a near object's edge at column 50
    rgb = np.full((100, 100, 3), 200, np.uint8)
    rgb[60:, :] = 10  # a dark surface in the bottom rows
    out = sensor_depth(depth, rgb, _camera(depth_edge_holes=True), np.random.default_rng(0))
    assert (out[:, 48:52] == 0).all() and (out[:, :47] == 1.0).all() and (out[:, 53:] == 4.0).all()
    out = sensor_depth(depth, rgb, _camera(depth_dark_dropout=0.5), np.random.default_rng(0))
    assert (out[:60] > 0).all() and 0.4 < (out[60:] == 0).mean() < 0.6
    out = sensor_depth(depth, rgb, _camera(depth_dropout=0.01), np.random.default_rng(0))
    assert 0.005 < (out == 0).mean() < 0.015


def test_the_same_view_gives_the_same_depth():
    config = load_config(SimConfig, "sim", ["camera.preset=realsense", "camera.width=160", "camera.height=120"])
    env = SimEnv.from_seed(3, config)
    first = env.reset(SimEpisode(start=None, seed=0))
    again = env.view()
    np.testing.assert_array_equal(first.depth, again.depth)
    turned = env.turn(0.3)
    assert not np.array_equal(turned.depth, first.depth)
    a, b = view_rng(first.T_world_cam).random(4), view_rng(first.T_world_cam).random(4)
    np.testing.assert_array_equal(a, b)
    assert (first.depth == 0).mean() > 0.01  # holes
    valid = first.depth[first.depth > 0]
    assert valid.min() >= 0.3 and valid.max() <= 5.0


def test_a_calibration_is_bound_to_its_camera(tmp_path):
    """A calibration records the camera of its episodes; a run with another camera is refused, naming both."""
    from eqa.sim_driver import method_calibration
    from vlm import make_vlm
    from eqa.stopping import SHIPPED_CALIBRATIONS
    from vlm.conformal import Calibration, CalibrationError, calibrate

    hm = load_sim_run("semantic", ["stop.policy=conformal", "stop.eps=0.1"])
    vlm = make_vlm(hm.method.vlm)
    cal = calibrate([1.2] * 40, 0.1, vlm.info.model_id, vlm.info.prompt_version, hm.exploration_hash(),
                    camera=hm.sim.camera.describe())
    path = cal.save(tmp_path / "cal.json")
    assert "hm-eqa 640x480 120 deg, exact depth" in cal.camera
    assert method_calibration(load_sim_run("semantic", ["stop.policy=conformal", f"stop.calibration={path}"]),
                              vlm).camera == cal.camera
    rs = load_sim_run("semantic", ["stop.policy=conformal", f"stop.calibration={path}", "sim.camera.preset=realsense"])
    with pytest.raises(CalibrationError, match=r"camera realsense 640x480 69 deg, depth 0.3-5 m.*calibrated with "
                                               r"camera hm-eqa 640x480 120 deg"):
        method_calibration(rs, vlm)
    for eps in ("0.05", "0.1", "0.2"):  # the shipped ones say their camera
        shipped = Calibration.load(SHIPPED_CALIBRATIONS / f"semantic-eps{eps}.json")
        assert shipped.camera == hm.sim.camera.describe(), eps
    # Each preset picks its own shipped calibration, made with its camera.
    rs_shipped = load_sim_run("semantic", ["stop.policy=conformal", "stop.eps=0.1", "sim.camera.preset=realsense"])
    picked = method_calibration(rs_shipped, vlm)
    assert picked.camera == rs_shipped.sim.camera.describe() and picked.camera.startswith("realsense 640x480 69 deg")
    assert method_calibration(load_sim_run("semantic", ["stop.policy=conformal", "stop.eps=0.1"]), vlm).camera \
        == hm.sim.camera.describe()
    # A camera of neither preset's values (a preset with a key changed) has no shipped calibration that fits.
    with pytest.raises(CalibrationError, match=r"camera realsense 848x480 69 deg.*calibrated with camera realsense "
                                               r"640x480 69 deg"):
        method_calibration(load_sim_run("semantic", ["stop.policy=conformal", "sim.camera.preset=realsense",
                                                     "sim.camera.width=848"]), vlm)
