"""Unit tests of the pure modules of the ROS 2 driver (eqa/ros): stamp pairing, the transform buffer, keyframe
selection, message conversions, frame assembly and the node settings. Offline and deterministic: real message
classes, but no DDS traffic, no subprocesses; only the parameter test makes an rclpy node (private context)."""
from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from eqa.config import from_dict
from eqa.episode import EpisodeInterrupted
from eqa.ros.config import EQANodeConfig, FrameConfig, NavigationConfig, SimRobotConfig, SyncConfig, flatten, unflatten
from eqa.ros.convert import (camera_info, camera_info_to_intrinsics, depth_image, fill_pose, image_to_depth,
                             image_to_rgb, matrix_quaternion, pose_matrix, pose_stamped, quaternion_matrix, rgb_image,
                             seconds_stamp, stamp_seconds, transform_matrix)
from eqa.ros.frames import MAX_WAITING, FrameAssembler, camera_offset_matrix
from eqa.ros.keyframes import KeyframeQueue
from eqa.ros.pairing import StampPairer
from eqa.ros.params import declare_config, list_fields, parameter_names
from eqa.ros.ros_env import EpisodeControl, EpisodeError, FrameFeed, NavResult, RosEnv
from eqa.ros.tf_buffer import PoseNotYet, TransformBuffer
from mapping.frame import (R_BASE_OPTICAL_LEVEL, Frame, Intrinsics, base_pose, camera_mount, make_pose, pose_xy_yaw,
                           rot_z)

# the modules under test import no ROS package at module level; the message classes come from the ROS wheels
pytest.importorskip("rclpy")
pytest.importorskip("sensor_msgs")
Time = pytest.importorskip("builtin_interfaces.msg").Time
_geometry = pytest.importorskip("geometry_msgs.msg")
Point, Quaternion, TransformStamped = _geometry.Point, _geometry.Quaternion, _geometry.TransformStamped
Odometry = pytest.importorskip("nav_msgs.msg").Odometry
_sensor = pytest.importorskip("sensor_msgs.msg")
CameraInfo, Image = _sensor.CameraInfo, _sensor.Image

# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------

W, H = 4, 3
INTR = Intrinsics(fx=2.0, fy=2.5, cx=1.5, cy=1.0, width=W, height=H)


def yaw_of(T: np.ndarray) -> float:
    return math.atan2(T[1, 0], T[0, 0])


def image_msg(pixels: np.ndarray, encoding: str, t: float = 0.0, frame_id: str = "cam", pad: int = 0,
              bigendian: bool = False) -> Image:
    """An Image of `pixels` (HxW or HxWxC, any dtype) with `pad` junk bytes at the end of every row."""
    pixels = np.asarray(pixels)
    h, w = pixels.shape[:2]
    typed = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder(">" if bigendian else "<")))
    rows = typed.reshape(h, -1).view(np.uint8)
    rows = np.concatenate([rows, np.full((h, pad), 0xAB, dtype=np.uint8)], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(bigendian), step=rows.shape[1],
                data=rows.tobytes())
    msg.header.stamp, msg.header.frame_id = seconds_stamp(t), frame_id
    return msg


def odom_msg(t: float, x: float = 0.0, y: float = 0.0, yaw: float = 0.0, vx: float = 0.0, wz: float = 0.0,
             frame: str = "map", child: str = "base_link") -> Odometry:
    msg = Odometry()
    msg.header.stamp, msg.header.frame_id, msg.child_frame_id = seconds_stamp(t), frame, child
    fill_pose(msg.pose.pose, base_pose(x, y, yaw))
    msg.twist.twist.linear.x, msg.twist.twist.angular.z = float(vx), float(wz)
    return msg


def tf_stamped(parent: str, child: str, T: np.ndarray, t: float = 0.0) -> TransformStamped:
    msg = TransformStamped()
    msg.header.stamp, msg.header.frame_id, msg.child_frame_id = seconds_stamp(t), parent, child
    tr, rot = msg.transform.translation, msg.transform.rotation
    tr.x, tr.y, tr.z = (float(v) for v in T[:3, 3])
    rot.x, rot.y, rot.z, rot.w = matrix_quaternion(T[:3, :3])
    return msg


def scene_rgb(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def scene_depth(h: int = H, w: int = W) -> np.ndarray:
    return np.linspace(0.5, 4.0, h * w, dtype=np.float32).reshape(h, w)


class Clock:
    """An injectable monotonic clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def assembler(pose_source: str = "odom", offset=(0.1, 0.0, 1.2, 0.0, 0.3, 0.0), clock=None,
              **sync) -> FrameAssembler:
    config = EQANodeConfig(frames=FrameConfig(pose_source=pose_source, camera_offset=list(offset)),
                           sync=SyncConfig(**sync))
    return FrameAssembler(config, clock=clock or Clock())


def feed_images(asm: FrameAssembler, t: float, frame_id: str = "cam", rgb=None, depth=None, info=True) -> list:
    """Colour, depth (and camera info) at stamp t; the frames they complete."""
    out = asm.add_image("rgb", image_msg(scene_rgb() if rgb is None else rgb, "rgb8", t, frame_id))
    out += asm.add_image("depth", image_msg(scene_depth() if depth is None else depth, "32FC1", t, frame_id))
    if info:
        out += asm.add_image("camera_info", camera_info(INTR, t, frame_id))
    return out


# ---------------------------------------------------------------------------------------------------------------
# pairing
# ---------------------------------------------------------------------------------------------------------------

def test_pairer_pairs_within_tolerance_whatever_the_arrival_order():
    pairer = StampPairer(("rgb", "depth", "info"), tolerance=0.02)
    assert pairer.add("depth", 1.01, "d1") == []
    assert pairer.add("info", 0.99, "i1") == []
    sets = pairer.add("rgb", 1.0, "c1")
    assert sets == [{"rgb": "c1", "depth": "d1", "info": "i1", "stamp": 1.0}]
    assert (pairer.stats.paired, pairer.stats.unmatched, pairer.stats.overflow) == (1, 0, 0)
    # the anchor first this time, the set completes with the last stream
    assert pairer.add("rgb", 2.0, "c2") == [] and pairer.add("info", 2.0, "i2") == []
    assert pairer.add("depth", 2.015, "d2") == [{"rgb": "c2", "depth": "d2", "info": "i2", "stamp": 2.0}]


def test_pairer_takes_the_nearest_message_and_discards_older_ones():
    pairer = StampPairer(("a", "b"), tolerance=0.05)
    pairer.add("b", 0.96, "b-far")
    pairer.add("b", 1.01, "b-near")
    pairer.add("b", 1.04, "b-next")
    assert pairer.add("a", 1.0, "a1") == [{"a": "a1", "b": "b-near", "stamp": 1.0}]
    # b-far went with the match; b-next is still there for the next anchor
    assert pairer.add("a", 1.05, "a2") == [{"a": "a2", "b": "b-next", "stamp": 1.05}]


def test_pairer_drops_an_anchor_the_other_streams_moved_past():
    pairer = StampPairer(("rgb", "depth"), tolerance=0.02)
    pairer.add("rgb", 1.0, "c1")
    pairer.add("rgb", 1.1, "c2")
    sets = pairer.add("depth", 1.1, "d2")  # depth never had 1.0: c1 is lost, c2 pairs
    assert sets == [{"rgb": "c2", "depth": "d2", "stamp": 1.1}]
    assert pairer.stats.unmatched == 1 and pairer.stats.paired == 1


def test_pairer_waits_while_a_stream_may_still_match():
    pairer = StampPairer(("rgb", "depth"), tolerance=0.02)
    pairer.add("rgb", 1.0, "c1")
    assert pairer.add("depth", 0.9, "old") == []  # older than the tolerance, but newer depth may come
    assert pairer.stats.unmatched == 0
    assert pairer.add("depth", 1.019, "d1") == [{"rgb": "c1", "depth": "d1", "stamp": 1.0}]


def test_pairer_queues_are_bounded_and_count_overflow():
    pairer = StampPairer(("rgb", "depth"), tolerance=0.01, queue_size=3)
    for i in range(5):
        pairer.add("rgb", float(i), f"c{i}")
    assert pairer.stats.overflow == 2 and pairer.stats.unmatched == 2  # anchors lost to overflow are unmatched
    for i in range(4):
        pairer.add("depth", 10.0 + i, f"d{i}")  # pushes every anchor out as unmatched, overflows once
    assert pairer.stats.overflow == 3
    assert pairer.stats.unmatched == 5
    assert pairer.stats.paired == 0


def test_pairer_repeats_of_a_stamp_take_one_place_while_a_late_stream_catches_up():
    """The sim robot repeats its frame once a second while standing; a camera info delayed for seconds (seen
    over Fast DDS under load) must still find the colour and depth of its frames."""
    pairer = StampPairer(("rgb", "depth", "info"), tolerance=0.0, queue_size=3)
    for stamp in (1.0, 2.0):
        pairer.add("rgb", stamp, f"c{stamp}")
        pairer.add("depth", stamp, f"d{stamp}")
    for repeat in range(20):  # the newest frame again and again, stamped alike
        assert pairer.add("rgb", 2.0, f"c2-{repeat}") == [] and pairer.add("depth", 2.0, f"d2-{repeat}") == []
    assert pairer.stats.overflow == 0 and pairer.stats.replaced == 40
    assert pairer.add("info", 1.0, "i1") == [{"rgb": "c1.0", "depth": "d1.0", "info": "i1", "stamp": 1.0}]
    # the repeat that came last stands for its stamp
    assert pairer.add("info", 2.0, "i2") == [{"rgb": "c2-19", "depth": "d2-19", "info": "i2", "stamp": 2.0}]
    assert pairer.stats.unmatched == 0


def test_pairer_clear_and_bad_arguments():
    pairer = StampPairer(("a", "b"), tolerance=0.0)
    pairer.add("a", 1.0, "a1")
    pairer.clear()
    assert pairer.add("b", 1.0, "b1") == []
    assert pairer.add("a", 1.0, "a2") == [{"a": "a2", "b": "b1", "stamp": 1.0}]  # tolerance 0: exact stamps pair
    for streams, tolerance, size in ((("a",), 0.1, 1), (("a", "a"), 0.1, 1), (("a", "b"), -0.1, 1),
                                     (("a", "b"), float("nan"), 1), (("a", "b"), 0.1, 0)):
        with pytest.raises(ValueError):
            StampPairer(streams, tolerance, queue_size=size)


# ---------------------------------------------------------------------------------------------------------------
# transform buffer
# ---------------------------------------------------------------------------------------------------------------

def test_tf_static_chain_and_inverse_direction():
    tf = TransformBuffer()
    T_map_odom = make_pose(rot_z(0.3), (1.0, 2.0, 0.0))
    T_odom_base = make_pose(rot_z(-1.0), (0.5, 0.0, 0.0))
    T_base_cam = camera_mount(1.2, 0.4)
    tf.set_transform("map", "odom", T_map_odom)
    tf.set_transform("odom", "base", T_odom_base)
    tf.set_transform("base", "cam", T_base_cam)
    expected = T_map_odom @ T_odom_base @ T_base_cam
    assert_allclose(tf.lookup("map", "cam", 123.0), expected, atol=1e-12)
    assert_allclose(tf.lookup("cam", "map", 0.0), np.linalg.inv(expected), atol=1e-12)
    assert_array_equal(tf.lookup("cam", "cam", 0.0), np.eye(4))
    assert tf.frames() == {"map", "odom", "base", "cam"}


def test_tf_interpolates_translation_linearly_and_rotation_by_slerp():
    tf = TransformBuffer(max_extrapolation_s=0.0)
    tf.set_transform("map", "base", base_pose(0.0, 0.0, 0.0), stamp=10.0)
    tf.set_transform("map", "base", base_pose(2.0, -4.0, math.pi / 2), stamp=12.0)
    T = tf.lookup("map", "base", 10.5)
    assert_allclose(T[:3, 3], [0.5, -1.0, 0.0], atol=1e-12)
    assert yaw_of(T) == pytest.approx(math.pi / 8)
    assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-12)
    assert_allclose(tf.lookup("map", "base", 12.0), base_pose(2.0, -4.0, math.pi / 2), atol=1e-12)


def test_tf_slerp_takes_the_short_way_round():
    tf = TransformBuffer()
    tf.set_transform("map", "base", base_pose(0, 0, math.radians(170)), stamp=0.0)
    tf.set_transform("map", "base", base_pose(0, 0, math.radians(-170)), stamp=1.0)
    yaw = yaw_of(tf.lookup("map", "base", 0.5))
    assert abs(abs(yaw) - math.pi) < 1e-9  # through 180 degrees, not through 0


def test_tf_chain_of_static_and_timed_edges():
    tf = TransformBuffer()
    tf.set_transform("map", "odom", make_pose(rot_z(0.5), (1.0, 0.0, 0.0)), stamp=0.0)
    tf.set_transform("map", "odom", make_pose(rot_z(0.5), (1.0, 0.0, 0.0)), stamp=2.0)
    tf.set_transform("odom", "base", base_pose(0.0, 0.0, 0.0), stamp=0.0)
    tf.set_transform("odom", "base", base_pose(2.0, 0.0, 0.0), stamp=2.0)
    tf.set_transform("base", "cam", camera_mount(1.0, 0.0))
    T = tf.lookup("map", "cam", 1.0)
    assert_allclose(T, make_pose(rot_z(0.5), (1.0, 0.0, 0.0)) @ base_pose(1.0, 0.0, 0.0) @ camera_mount(1.0, 0.0),
                    atol=1e-12)
    assert tf.latest_stamp("odom", "base") == 2.0
    assert tf.latest_stamp("base", "odom") is None and tf.latest_stamp("base", "cam") is None


def test_tf_before_the_oldest_sample():
    tf = TransformBuffer(max_extrapolation_s=0.1)
    tf.set_transform("map", "base", base_pose(1.0, 0.0, 0.0), stamp=5.0)
    tf.set_transform("map", "base", base_pose(2.0, 0.0, 0.0), stamp=6.0)
    assert_allclose(tf.lookup("map", "base", 4.95)[:3, 3], [1.0, 0.0, 0.0])  # within the tolerance: the oldest
    with pytest.raises(LookupError, match="oldest") as info:
        tf.lookup("map", "base", 4.8)
    assert not isinstance(info.value, PoseNotYet)  # it will never come


def test_tf_after_the_newest_sample_is_pose_not_yet():
    tf = TransformBuffer(max_extrapolation_s=0.1)
    tf.set_transform("map", "base", base_pose(1.0, 0.0, 0.0), stamp=5.0)
    assert_allclose(tf.lookup("map", "base", 5.05, ahead=True)[:3, 3], [1.0, 0.0, 0.0])
    with pytest.raises(PoseNotYet):
        tf.lookup("map", "base", 5.05, ahead=False)  # however close
    with pytest.raises(PoseNotYet, match="stale"):
        tf.lookup("map", "base", 5.5, ahead=True)
    assert_allclose(tf.lookup("map", "base", 5.0, ahead=False)[:3, 3], [1.0, 0.0, 0.0])  # exactly the newest


def test_tf_unknown_and_disconnected_frames():
    tf = TransformBuffer()
    tf.set_transform("map", "base", np.eye(4))
    tf.set_transform("odom", "wheel", np.eye(4))
    with pytest.raises(LookupError, match="ghost"):
        tf.lookup("map", "ghost", 0.0)
    with pytest.raises(LookupError, match="not connected"):
        tf.lookup("map", "wheel", 0.0)


def test_tf_cache_expiry_and_replacement():
    tf = TransformBuffer(cache_s=1.0, max_extrapolation_s=0.0)
    for i in range(6):
        tf.set_transform("map", "base", base_pose(float(i), 0.0, 0.0), stamp=float(i))
    with pytest.raises(LookupError):
        tf.lookup("map", "base", 3.5)  # expired: only 4 s .. 5 s are kept
    assert_allclose(tf.lookup("map", "base", 4.5)[:3, 3], [4.5, 0.0, 0.0])
    tf.set_transform("map", "base", base_pose(9.0, 0.0, 0.0), stamp=5.0)  # same stamp: the later one wins
    assert_allclose(tf.lookup("map", "base", 5.0)[:3, 3], [9.0, 0.0, 0.0])


def test_tf_rejects_bad_transforms():
    tf = TransformBuffer()
    with pytest.raises(ValueError):
        tf.set_transform("map", "map", np.eye(4))
    with pytest.raises(ValueError):
        tf.set_transform("", "base", np.eye(4))
    with pytest.raises(ValueError):
        tf.set_transform("map", "base", np.eye(3))
    bad = np.eye(4)
    bad[0, 3] = np.nan
    with pytest.raises(ValueError):
        tf.set_transform("map", "base", bad, stamp=1.0)
    with pytest.raises(ValueError):
        tf.set_transform("map", "base", np.diag([2.0, 2.0, 2.0, 1.0]))  # finite but not rigid
    assert tf.frames() == set()


# ---------------------------------------------------------------------------------------------------------------
# keyframes
# ---------------------------------------------------------------------------------------------------------------

def frame_at(x: float, y: float = 0.0, yaw: float = 0.0, stamp: float = 0.0) -> Frame:
    T = base_pose(x, y, yaw)
    return Frame(rgb=scene_rgb(), depth=scene_depth(), intrinsics=INTR, T_world_cam=T @ camera_mount(1.0, 0.0),
                 stamp=stamp, T_world_base=T)


def test_keyframes_keep_frames_spaced_by_distance_or_angle():
    queue = KeyframeQueue(min_distance=1.0, min_angle=0.5, capacity=10)
    assert queue.offer(frame_at(0.0))  # the first is always kept
    assert not queue.offer(frame_at(0.6, yaw=0.3))
    assert queue.offer(frame_at(0.0, 1.0))  # moved 1 m
    assert not queue.offer(frame_at(0.0, 1.5, yaw=0.45))
    assert queue.offer(frame_at(0.0, 1.0, yaw=-0.5))  # turned 0.5 rad
    assert queue.offer(frame_at(0.0, 1.0, yaw=math.pi - 0.1))
    assert not queue.offer(frame_at(0.0, 1.0, yaw=-math.pi + 0.2))  # 0.3 rad across the +-pi seam
    assert not queue.offer(frame_at(0.0, 1.0, yaw=math.pi - 0.1 + 2 * math.pi))  # the same heading
    assert queue.offer(frame_at(0.0, 1.0, yaw=-math.pi + 0.45))  # 0.55 rad across the seam
    assert len(queue) == 5


def test_keyframes_take_newest_and_clear():
    queue = KeyframeQueue(min_distance=1.0, min_angle=1.0)
    assert queue.newest() is None
    frames = [frame_at(float(i), stamp=float(i)) for i in range(3)]
    for f in frames:
        assert queue.offer(f)
    assert queue.newest() is frames[-1]
    assert queue.take() == frames  # oldest first
    assert len(queue) == 0 and queue.take() == []
    assert not queue.offer(frame_at(2.2))  # take keeps the last pose: still too close
    queue.clear()
    assert queue.offer(frame_at(2.2))  # clear forgets it


def test_keyframes_capacity_force_and_zero_spacing():
    queue = KeyframeQueue(min_distance=5.0, min_angle=3.0, capacity=2)
    kept = [frame_at(0.0, stamp=float(i)) for i in range(4)]
    assert queue.offer(kept[0])
    assert not queue.offer(kept[1])
    assert all(queue.offer(f, force=True) for f in kept[1:])
    assert queue.dropped == 2
    assert [f.stamp for f in queue.take()] == [2.0, 3.0]
    every = KeyframeQueue(min_distance=0.0, min_angle=0.0)
    assert all(every.offer(frame_at(0.0)) for _ in range(3)) and len(every) == 3


# ---------------------------------------------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------------------------------------------

def test_stamps_to_and_from_seconds():
    t = seconds_stamp(12.25)
    assert isinstance(t, Time) and (t.sec, t.nanosec) == (12, 250_000_000)
    assert stamp_seconds(Time(sec=3, nanosec=5)) == pytest.approx(3.000000005, abs=1e-12)
    assert seconds_stamp(1.0000000004).nanosec == 0  # rounded to the nearest ns
    assert seconds_stamp(1.0000000006).nanosec == 1
    near = seconds_stamp(1.9999999999)
    assert near.nanosec <= 999_999_999 and stamp_seconds(near) == pytest.approx(2.0, abs=2e-9)
    for t in (1_700_000_000.123456, 0.0, 42.5):
        assert stamp_seconds(seconds_stamp(t)) == pytest.approx(t, abs=1e-6)
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="stamp"):
            seconds_stamp(bad)


@pytest.mark.parametrize("encoding, channels, order", [("rgb8", 3, (0, 1, 2)), ("bgr8", 3, (2, 1, 0)),
                                                       ("rgba8", 4, (0, 1, 2)), ("bgra8", 4, (2, 1, 0))])
@pytest.mark.parametrize("pad", [0, 5])
def test_colour_images_of_every_encoding_and_row_padding(encoding, channels, order, pad):
    rgb = scene_rgb(seed=3, h=5, w=7)
    raw = np.zeros((5, 7, channels), dtype=np.uint8)
    raw[:, :, list(order)] = rgb
    if channels == 4:
        raw[:, :, 3] = 77
    out = image_to_rgb(image_msg(raw, encoding, pad=pad))
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    assert_array_equal(out, rgb)


def test_rgb_image_round_trip():
    rgb = scene_rgb(seed=1, h=6, w=9)
    msg = rgb_image(rgb, 3.5, "cam_optical")
    assert (msg.encoding, msg.step, msg.header.frame_id) == ("rgb8", 27, "cam_optical")
    assert stamp_seconds(msg.header.stamp) == 3.5
    assert_array_equal(image_to_rgb(msg), rgb)


@pytest.mark.parametrize("pad, bigendian", [(0, False), (6, False), (4, True)])
def test_depth_32fc1_metres_with_invalid_pixels(pad, bigendian):
    depth = scene_depth(3, 5)
    depth[0, 0], depth[0, 1], depth[1, 0], depth[2, 4] = np.nan, np.inf, -1.0, 0.0
    out = image_to_depth(image_msg(depth, "32FC1", pad=pad, bigendian=bigendian))
    expected = depth.copy()
    expected[0, 0] = expected[0, 1] = expected[1, 0] = 0.0
    assert out.dtype == np.float32
    assert_array_equal(out, expected)


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_depth_image_round_trip(encoding):
    depth = np.round(scene_depth(4, 6), 3)
    depth[1, 2] = 0.0
    msg = depth_image(depth, 1.0, "cam", encoding=encoding)
    assert msg.encoding == encoding
    out = image_to_depth(msg)
    assert_allclose(out, depth, atol=1e-6)
    assert out[1, 2] == 0.0


@pytest.mark.parametrize("pad, bigendian", [(0, False), (2, False), (2, True)])
def test_depth_16uc1_millimetres_to_metres(pad, bigendian):
    mm = np.array([[0, 1, 1500], [65535, 250, 0]], dtype=np.uint16)
    out = image_to_depth(image_msg(mm, "16UC1", pad=pad, bigendian=bigendian))
    assert out.dtype == np.float32
    assert_allclose(out, [[0.0, 0.001, 1.5], [65.535, 0.25, 0.0]], rtol=1e-6)


def test_bad_images_give_a_clear_value_error():
    with pytest.raises(ValueError, match="'mono8'"):
        image_to_rgb(image_msg(np.zeros((2, 2), np.uint8), "mono8"))
    with pytest.raises(ValueError, match="'rgb8'.*32FC1"):
        image_to_depth(image_msg(scene_rgb(), "rgb8"))
    with pytest.raises(ValueError, match="8UC1"):
        depth_image(scene_depth(), 0.0, "cam", encoding="8UC1")
    short = image_msg(scene_rgb(), "rgb8")
    short.step = W * 3 - 1
    with pytest.raises(ValueError, match="step"):
        image_to_rgb(short)
    truncated = image_msg(scene_rgb(), "rgb8")
    truncated.data = truncated.data[:-1]
    with pytest.raises(ValueError, match="bytes"):
        image_to_rgb(truncated)
    empty = Image(height=0, width=4, encoding="32FC1", step=16)
    with pytest.raises(ValueError, match="0 pixels"):
        image_to_depth(empty)


def test_camera_info_round_trip():
    intr = Intrinsics(fx=525.0, fy=524.5, cx=319.5, cy=239.25, width=640, height=480)
    msg = camera_info(intr, 7.0, "cam_optical")
    assert isinstance(msg, CameraInfo) and msg.header.frame_id == "cam_optical"
    assert_allclose(msg.k, intr.matrix().ravel())
    assert camera_info_to_intrinsics(msg) == intr
    msg.k = [0.0] * 9  # focal length 0: not a camera
    with pytest.raises(ValueError, match="focal"):
        camera_info_to_intrinsics(msg)


def test_quaternion_matrix_round_trips():
    rng = np.random.default_rng(7)
    quats = [q / np.linalg.norm(q) for q in rng.normal(size=(50, 4))]
    # half turns (trace -1) and near half turns exercise every branch of matrix_quaternion
    quats += [np.array(q, dtype=float) for q in ([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0.7, 0.7, 0.1, 0.01])]
    for q in quats:
        R = quaternion_matrix(*q)
        assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        back = np.array(matrix_quaternion(R))
        assert back[3] >= 0
        q = q / np.linalg.norm(q)
        assert_allclose(back, q if q[3] >= 0 else -q, atol=1e-9)
        assert_allclose(quaternion_matrix(*back), R, atol=1e-12)
    assert_allclose(quaternion_matrix(0, 0, math.sin(0.25), math.cos(0.25)), rot_z(0.5), atol=1e-12)


def test_non_unit_and_invalid_quaternions():
    assert_allclose(quaternion_matrix(0, 0, 2 * math.sin(0.5), 2 * math.cos(0.5)), rot_z(1.0), atol=1e-12)
    for bad in ((0, 0, 0, 0), (float("nan"), 0, 0, 1), (0, 0, float("inf"), 1)):
        with pytest.raises(ValueError, match="quaternion"):
            quaternion_matrix(*bad)


def test_pose_matrix_and_pose_messages():
    T = make_pose(rot_z(-2.0), (1.0, -2.0, 0.5))
    msg = pose_stamped(T, "map", 4.0)
    assert msg.header.frame_id == "map" and stamp_seconds(msg.header.stamp) == 4.0
    assert_allclose(pose_matrix(msg.pose.position, msg.pose.orientation), T, atol=1e-12)
    assert_allclose(transform_matrix(tf_stamped("map", "base", T).transform), T, atol=1e-12)
    with pytest.raises(ValueError, match="position"):
        pose_matrix(Point(x=float("nan")), Quaternion())
    with pytest.raises(ValueError, match="quaternion"):
        pose_matrix(Point(), Quaternion(x=0.0, y=0.0, z=0.0, w=0.0))


# ---------------------------------------------------------------------------------------------------------------
# frames
# ---------------------------------------------------------------------------------------------------------------

def test_camera_offset_matrix():
    assert_allclose(camera_offset_matrix([0] * 6), make_pose(R_BASE_OPTICAL_LEVEL, (0, 0, 0)), atol=1e-12)
    T = camera_offset_matrix([0.2, -0.1, 1.5, 0.0, 0.4, 0.0])
    assert_allclose(T[:3, 3], [0.2, -0.1, 1.5])
    forward = T[:3, 2]  # the optical z axis in the base frame
    assert forward[2] < 0 and forward[2] == pytest.approx(-math.sin(0.4))  # pitch > 0 looks down
    assert_allclose(camera_offset_matrix([0, 0, 1.5, 0, 0.4, 0]), camera_mount(1.5, 0.4), atol=1e-12)
    assert_allclose(camera_offset_matrix([0, 0, 0, 0, 0, 0.5])[:3, 2], [math.cos(0.5), math.sin(0.5), 0.0],
                    atol=1e-12)  # yaw > 0 looks left
    assert_allclose(camera_offset_matrix([0, 0, 0, 0.3, 0, 0])[:3, 2], [1.0, 0.0, 0.0], atol=1e-12)  # roll


def test_frame_from_odometry_and_camera_offset():
    offset = (0.1, 0.0, 1.2, 0.0, 0.3, 0.0)
    asm = assembler("odom", offset)
    assert asm.add_odometry(odom_msg(0.0, 0.0, 0.0, 0.0)) == []
    assert asm.add_odometry(odom_msg(2.0, 2.0, 1.0, 0.4)) == []
    rgb, depth = scene_rgb(5), scene_depth()
    frames = feed_images(asm, 1.0, rgb=rgb, depth=depth)
    assert len(frames) == 1
    frame = frames[0]
    frame.validate()
    assert frame.stamp == 1.0 and frame.intrinsics == INTR
    assert_array_equal(frame.rgb, rgb)
    assert_array_equal(frame.depth, depth)
    assert_allclose(frame.T_world_base, base_pose(1.0, 0.5, 0.2), atol=1e-12)  # interpolated at the stamp
    assert_allclose(frame.T_world_cam, base_pose(1.0, 0.5, 0.2) @ camera_offset_matrix(offset), atol=1e-12)
    assert asm.stats.built == 1 and asm.stats.received["odom"] == 2


def test_frame_waits_for_odometry_at_or_after_its_stamp():
    asm = assembler("odom")
    asm.add_odometry(odom_msg(0.0, 0.0))
    assert feed_images(asm, 1.0) == []  # no pose at 1.0 yet
    assert feed_images(asm, 1.5) == []
    frames = asm.add_odometry(odom_msg(2.0, 4.0))
    assert [f.stamp for f in frames] == [1.0, 1.5]  # oldest first
    assert_allclose(frames[0].T_world_base[:3, 3], [2.0, 0.0, 0.0], atol=1e-12)
    assert_allclose(frames[1].T_world_base[:3, 3], [3.0, 0.0, 0.0], atol=1e-12)
    assert asm.stats.built == 2 and not asm.stats.dropped


def test_waiting_frame_takes_a_slightly_older_pose_after_the_pose_tolerance():
    clock = Clock()
    asm = assembler("odom", clock=clock, pose_tolerance_s=0.1)
    asm.add_odometry(odom_msg(0.95, 1.0))
    assert feed_images(asm, 1.0) == []
    clock.now = 0.05  # not waited long enough: still waiting
    assert asm.add_odometry(odom_msg(0.96, 1.0)) == []
    clock.now = 0.5
    frames = asm.add_odometry(odom_msg(0.97, 1.5))
    assert len(frames) == 1 and frames[0].stamp == 1.0
    assert_allclose(frames[0].T_world_base[:3, 3], [1.5, 0.0, 0.0])  # the newest, 30 ms older


def test_waiting_frame_is_dropped_as_stale_after_the_frame_timeout():
    clock = Clock()
    asm = assembler("odom", clock=clock, pose_tolerance_s=0.1, frame_timeout_s=2.0)
    asm.add_odometry(odom_msg(0.0))
    assert feed_images(asm, 1.0) == []
    clock.now = 1.9
    assert asm.add_odometry(odom_msg(0.5)) == [] and not asm.stats.dropped  # still waiting
    clock.now = 2.5
    assert asm.add_odometry(odom_msg(0.6)) == []
    assert asm.stats.dropped["stale pose"] == 1
    assert asm.add_odometry(odom_msg(1.2, 1.0)) == []  # too late: the frame is gone
    assert asm.stats.built == 0


def test_frames_that_overflow_the_pose_queue_are_counted():
    asm = assembler("odom")
    asm.add_odometry(odom_msg(0.0))
    n = MAX_WAITING + 3
    for i in range(n):
        assert feed_images(asm, 1.0 + 0.1 * i) == []
    assert asm.stats.dropped["stale pose"] == 3  # the oldest gave way, counted
    frames = asm.add_odometry(odom_msg(10.0, 3.0))
    assert len(frames) == MAX_WAITING
    assert asm.stats.built + sum(asm.stats.dropped.values()) == n  # every paired set is accounted for


def test_frame_from_tf_and_tf_static():
    tf2_msgs = pytest.importorskip("tf2_msgs.msg")
    asm = assembler("tf")
    T_base_link = make_pose(np.eye(3), (0.2, 0.0, 1.0))
    T_link_opt = make_pose(R_BASE_OPTICAL_LEVEL, (0.0, 0.0, 0.0))
    asm.add_tf(tf2_msgs.TFMessage(transforms=[tf_stamped("base_link", "camera_link", T_base_link),
                                              tf_stamped("camera_link", "camera_optical", T_link_opt)]),
               static=True)
    T_map_odom = make_pose(rot_z(0.2), (1.0, 1.0, 0.0))
    for t, x in ((0.0, 0.0), (2.0, 2.0)):
        asm.add_tf(tf2_msgs.TFMessage(transforms=[tf_stamped("map", "odom", T_map_odom, t),
                                                  tf_stamped("odom", "base_link", base_pose(x, 0.0, 0.0), t)]))
    frames = feed_images(asm, 1.0, frame_id="camera_optical")
    assert len(frames) == 1
    T_world_base = T_map_odom @ base_pose(1.0, 0.0, 0.0)
    assert_allclose(frames[0].T_world_base, T_world_base, atol=1e-12)
    assert_allclose(frames[0].T_world_cam, T_world_base @ T_base_link @ T_link_opt, atol=1e-12)
    assert asm.stats.received["tf_static"] == 1 and asm.stats.received["tf"] == 2
    assert asm.newest_pose_stamp() == 2.0
    # a camera frame TF does not know is dropped, with its reason
    assert feed_images(asm, 1.5, frame_id="mystery_cam") == []
    assert asm.stats.dropped["no pose"] == 1 and "mystery_cam" in asm.stats.last_problem
    bad = tf_stamped("odom", "base_link", np.eye(4), 3.0)
    bad.transform.rotation.w = 0.0
    asm.add_tf(tf2_msgs.TFMessage(transforms=[bad]))
    assert asm.stats.dropped["bad transform"] == 1


def test_size_mismatch_and_bad_encoding_are_dropped_with_a_reason():
    asm = assembler("odom")
    asm.add_odometry(odom_msg(0.0))
    asm.add_odometry(odom_msg(5.0))
    assert feed_images(asm, 1.0, depth=scene_depth(H, W + 1)) == []
    assert asm.stats.dropped["size mismatch"] == 1 and "depth 5x3" in asm.stats.last_problem
    asm.add_image("rgb", image_msg(np.zeros((H, W), np.uint8), "mono8", 2.0))
    asm.add_image("depth", image_msg(scene_depth(), "32FC1", 2.0))
    assert asm.add_image("camera_info", camera_info(INTR, 2.0, "cam")) == []
    assert asm.stats.dropped["bad image"] == 1 and "mono8" in asm.stats.last_problem
    assert len(feed_images(asm, 3.0)) == 1  # a good set still goes through


def test_without_camera_info_no_frame_is_built():
    asm = assembler("odom")
    asm.add_odometry(odom_msg(0.0))
    asm.add_odometry(odom_msg(100.0))
    for i in range(12):
        assert feed_images(asm, 1.0 + i, info=False) == []
    assert asm.stats.built == 0 and asm.unmatched() >= 4  # the bounded queues let the anchors go
    stats = asm.stats.to_json(asm.unmatched())
    assert stats["dropped"]["unpaired"] == asm.unmatched()
    assert stats["received"] == {"odom": 2, "rgb": 12, "depth": 12}


def test_bad_odometry_is_counted_and_ignored():
    asm = assembler("odom")
    nan_pose = odom_msg(1.0)
    nan_pose.pose.pose.position.x = float("nan")
    nan_twist = odom_msg(1.0)
    nan_twist.twist.twist.linear.x = float("nan")
    zero_quat = odom_msg(1.0)
    zero_quat.pose.pose.orientation.w = 0.0
    for msg in (nan_pose, nan_twist, zero_quat):
        assert asm.add_odometry(msg) == []
    assert asm.stats.dropped["bad odometry"] == 3 and "odometry" in asm.stats.last_problem
    with pytest.raises(LookupError):
        asm.base_pose(1.0)
    assert asm.stationary(1.0) is None and asm.newest_pose_stamp() is None


def test_stationary_from_odometry_twists():
    asm = assembler("odom", pose_tolerance_s=0.1, stationary_speed=0.05, stationary_turn_rate=0.1)
    assert asm.stationary(1.0) is None
    asm.add_odometry(odom_msg(1.0, vx=0.0, wz=0.0))
    asm.add_odometry(odom_msg(2.0, vx=0.5))
    asm.add_odometry(odom_msg(3.0, wz=0.3))
    asm.add_odometry(odom_msg(4.0, vx=0.04, wz=-0.09))
    assert asm.stationary(1.05) is True
    assert asm.stationary(1.95) is False  # moving
    assert asm.stationary(3.0) is False  # turning
    assert asm.stationary(4.0) is True  # below both thresholds
    assert asm.stationary(2.5) is None  # no twist within the pose tolerance
    asm.add_odometry(odom_msg(2.0, vx=0.0))  # same stamp: the later message wins
    assert asm.stationary(2.0) is True


def test_travelled_distance_and_stats_json():
    asm = assembler("odom")
    for t, (x, y) in enumerate([(0, 0), (3, 0), (3, 4), (3, 4), (0, 0)]):
        asm.add_odometry(odom_msg(float(t), float(x), float(y)))
    assert asm.travelled(0.0, 4.0) == pytest.approx(12.0)
    assert asm.travelled(1.0, 2.0) == pytest.approx(4.0)
    assert asm.travelled(0.5, 1.5) == 0.0  # fewer than two positions
    assert asm.newest_pose_stamp() == 4.0
    feed_images(asm, 2.5)
    stats = asm.stats.to_json(asm.unmatched())
    assert json.loads(json.dumps(stats)) == stats
    assert stats == {"received": {"odom": 5, "rgb": 1, "depth": 1, "camera_info": 1}, "frames": 1, "time_jumps": 0, "dropped": {},
                     "last_problem": ""}


def test_repeated_stamps_are_dropped():
    asm = assembler("odom")
    asm.add_odometry(odom_msg(0.0))
    asm.add_odometry(odom_msg(5.0))
    assert len(feed_images(asm, 2.0)) == 1
    assert feed_images(asm, 2.0) == [] and feed_images(asm, 1.0) == []
    assert asm.stats.dropped["repeated"] == 2


def test_time_jumping_back_starts_afresh():
    """A restarted simulator or a looped bag: images from long before the newest frame reset the timed poses
    and the stamp order, so frames are built again (and the jump is reported)."""
    asm = assembler("odom")
    asm.add_odometry(odom_msg(100.0, x=5.0))
    asm.add_odometry(odom_msg(101.0, x=5.0))
    assert len(feed_images(asm, 100.5)) == 1
    frames = feed_images(asm, 0.0)  # the new run: its frame waits for a pose of the new time
    assert asm.stats.time_jumps == 1 and "time jumped back" in asm.stats.last_problem and frames == []
    frames += asm.add_odometry(odom_msg(0.0, x=1.0)) + asm.add_odometry(odom_msg(0.5, x=1.0))
    assert len(frames) == 1 and frames[0].stamp == 0.0
    assert_allclose(frames[0].T_world_base[:2, 3], [1.0, 0.0])
    assert asm.stats.dropped["repeated"] == 0


# ---------------------------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------------------------

def test_node_config_flatten_unflatten_round_trip():
    config = EQANodeConfig(method_overrides=["agent.x=1"], eps=0.2, seed=3, autostart=False,
                           frames=FrameConfig(pose_source="odom", camera_offset=[0.1, 0, 1, 0, 0.2, 0]),
                           navigation=NavigationConfig(mode="goal_pose", timeout_s=5.0))
    flat = flatten(config)
    assert flat["frames.pose_source"] == "odom" and flat["navigation.mode"] == "goal_pose"
    assert flat["sync.pose_tolerance_s"] == 0.1 and flat["topics.rgb"] == config.topics.rgb
    assert all(not isinstance(v, dict) for v in flat.values())
    assert set(flat) == parameter_names(EQANodeConfig)
    assert unflatten(flat)["frames"]["camera_offset"] == [0.1, 0, 1, 0, 0.2, 0]
    assert from_dict(EQANodeConfig, unflatten(flat)) == config
    flat["camera_offset_copy"] = flat["frames.camera_offset"]
    flat["frames.camera_offset"].append(9.0)
    assert len(config.frames.camera_offset) == 6  # flatten copies lists


def test_sim_robot_config_round_trip():
    config = SimRobotConfig(seed=4, start=[1.0, 2.0, 0.5], rate_hz=10.0, depth_encoding="16UC1",
                            overrides=["sim.x=1"])
    assert from_dict(SimRobotConfig, unflatten(flatten(config))) == config
    assert list_fields(SimRobotConfig) == {"start": float, "overrides": str}
    assert list_fields(EQANodeConfig) == {"method_overrides": str, "frames.camera_offset": float}


@pytest.mark.parametrize("cls, key, value, message", [
    (EQANodeConfig, "frames.pose_source", "gps", "pose_source"),
    (EQANodeConfig, "navigation.mode", "teleport", "navigation.mode"),
    (EQANodeConfig, "frames.camera_offset", [0.0, 0.0, 1.0], "camera_offset"),
    (EQANodeConfig, "eps", 1.0, "eps"),
    (EQANodeConfig, "eps", 0.0, "eps"),
    (EQANodeConfig, "sync.pair_tolerance_s", -0.1, "pair_tolerance_s"),
    (EQANodeConfig, "keyframes.capacity", 0, "capacity"),
    (SimRobotConfig, "start", [1.0, 2.0], "start"),
    (SimRobotConfig, "depth_encoding", "8UC1", "depth_encoding"),
])
def test_bad_settings_raise_value_error(cls, key, value, message):
    flat = flatten(cls())
    assert key in flat
    flat[key] = value
    with pytest.raises(ValueError, match=message):
        from_dict(cls, unflatten(flat))


def test_declare_config_reads_ros_parameters(monkeypatch):
    import rclpy
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=73)
    try:
        overrides = [Parameter("frames.pose_source", value="odom"),
                     Parameter("frames.camera_offset", value=[0.1, 0.0, 1.0, 0.0, 0.2, 0.0]),
                     Parameter("method_overrides", value=["agent.x=1"]), Parameter("seed", value=5)]
        node = Node("eqa_params_test", context=ctx, parameter_overrides=overrides)
        try:
            config = declare_config(node, EQANodeConfig)
            assert config.frames.pose_source == "odom" and config.seed == 5
            assert config.frames.camera_offset == [0.1, 0.0, 1.0, 0.0, 0.2, 0.0]
            assert config.method_overrides == ["agent.x=1"]
            assert config.sync == SyncConfig()  # defaults where nothing was set
            assert set(node._parameters) >= parameter_names(EQANodeConfig)
        finally:
            node.destroy_node()
        bad = Node("eqa_params_bad", context=ctx, parameter_overrides=[Parameter("navigation.mode", value="fly")])
        try:
            with pytest.raises(ValueError, match="navigation.mode"):
                declare_config(bad, EQANodeConfig)
        finally:
            bad.destroy_node()
        sim = Node("eqa_params_sim", context=ctx)
        try:
            assert declare_config(sim, SimRobotConfig) == SimRobotConfig()  # empty list defaults stay lists
        finally:
            sim.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


def test_with_poses_from_tf_odometry_gives_only_the_twist():
    """pose_source tf: /odom (raw wheel odometry, say) must not mix into the TF tree a localiser publishes."""
    tf2_msgs = pytest.importorskip("tf2_msgs.msg")
    asm = assembler("tf")
    for t in (0.0, 2.0):
        asm.add_tf(tf2_msgs.TFMessage(transforms=[tf_stamped("map", "base_link", base_pose(1.0, 0.0, 0.0), t)]))
    asm.add_odometry(odom_msg(1.0, x=1.1, vx=0.5))  # 10 cm off the localised pose
    assert_allclose(asm.base_pose(1.0)[:2, 3], [1.0, 0.0])
    assert asm.travelled(0.0, 2.0) == 0.0 and asm.stationary(1.0) is False


# ---------------------------------------------------------------------------------------------------------------
# the episode's view of the robot (RosEnv over a FrameFeed and a navigator)
# ---------------------------------------------------------------------------------------------------------------

def test_feed_clear_keeps_only_the_newest_frame():
    feed = FrameFeed(KeyframeQueue(0.0, 0.0, 8))
    for i in range(3):
        feed.put(frame_at(float(i), stamp=float(i)))
    feed.clear()
    assert len(feed.keyframes) == 0
    control = EpisodeControl()
    assert feed.wait_for(lambda f, still: True, 0.1, control, "frame").stamp == 2.0


def test_feed_wait_times_out_in_wall_time_however_many_frames_arrive():
    feed, control = FrameFeed(KeyframeQueue(0.0, 0.0, 8)), EpisodeControl()
    stop = threading.Event()

    def camera() -> None:
        i = 0
        while not stop.is_set():
            feed.put(frame_at(0.0, stamp=float(i)))
            i += 1
            time.sleep(0.005)

    thread = threading.Thread(target=camera)
    thread.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(EpisodeError, match="no frame after the motion for 0.5 s"):
            feed.wait_for(lambda f, still: False, 0.5, control, "frame after the motion")
    finally:
        stop.set()
        thread.join()
    assert time.monotonic() - t0 >= 0.5


class PausingNavigator:
    """Goals end 'canceled' while the control is paused (as a navigator canceled by ~/pause), else succeed
    with the robot at the goal (the feed gets its frame)."""

    def __init__(self, feed: FrameFeed, control: EpisodeControl, clock: list) -> None:
        self.feed, self.control, self.clock, self.goals = feed, control, clock, []

    def go(self, T, timeout_s, interrupted):
        self.goals.append(np.asarray(T))
        if len(self.goals) == 1:  # the first goal: paused on the way, resumed shortly after
            self.control.pause(True)
            threading.Timer(0.2, self.control.pause, args=(False,)).start()
            return NavResult("canceled", "paused")
        self.clock[0] += 1.0
        self.feed.put(frame_at(*pose_xy_yaw(T), stamp=self.clock[0]))
        return NavResult("succeeded")

    def cancel(self) -> None:
        pass


def test_a_goal_interrupted_by_a_pause_is_sent_again_once_resumed():
    feed, control, clock = FrameFeed(KeyframeQueue(0.0, 0.0, 8)), EpisodeControl(), [0.0]
    nav = PausingNavigator(feed, control, clock)
    env = RosEnv(feed, nav, control, lambda: clock[0], lambda t0, t1: 2.0, lambda: None, 2.0, 2.0, 5.0, 0.01, 0.01)
    feed.put(frame_at(0.0, stamp=0.0))
    assert env.reset().stamp == 0.0
    outcome = env.move_to(base_pose(2.0, 0.0, 0.0), 2.5)
    assert len(nav.goals) == 2
    assert_allclose(nav.goals[0], nav.goals[1])
    assert outcome.reached and not outcome.blocked and outcome.distance == 2.0
    assert [f.stamp for f in env.observe()] == [1.0]
    control.canceled.set()
    with pytest.raises(EpisodeInterrupted):
        env.move_to(base_pose(3.0, 0.0, 0.0), 2.5)


def test_the_nodes_default_to_the_realsense_camera_and_its_calibration():
    from eqa.sim_driver import load_sim_run
    from eqa.sim_driver import shipped_calibration_path

    node, robot = EQANodeConfig(), SimRobotConfig()
    assert node.camera_preset == robot.camera_preset == "realsense"
    run = load_sim_run(node.method, node.method_overrides_all())
    assert run.sim.camera.preset == "realsense" and run.sim.camera.hfov_deg == 69.0
    assert shipped_calibration_path("semantic", node.eps, node.camera_preset).name == "semantic-realsense-eps0.1.json"
    # The preset comes first: overrides given beside it win over its values.
    sim = load_sim_run(robot.method, SimRobotConfig(overrides=["sim.camera.width=160"]).run_overrides()).sim
    assert (sim.camera.preset, sim.camera.width, sim.camera.depth_max_m) == ("realsense", 160, 5.0)
    hm = load_sim_run("semantic", EQANodeConfig(camera_preset="hm-eqa").method_overrides_all()).sim.camera
    assert (hm.preset, hm.hfov_deg) == ("hm-eqa", 120.0)
    with pytest.raises(ValueError, match="camera_preset must be one of"):
        EQANodeConfig(camera_preset="kinect")
    with pytest.raises(ValueError, match="camera_preset must be one of"):
        SimRobotConfig(camera_preset="kinect")
