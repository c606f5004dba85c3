"""Conversions between ROS 2 messages and the project's arrays and poses. Readers take any object with the
message's fields (rclpy messages, rosbags messages); writers build rclpy messages (imported inside).

Images: sensor_msgs/Image rgb8, bgr8, rgba8, bgra8 -> RGB uint8 HxWx3; depth 32FC1 (metres) and 16UC1
(millimetres) -> float32 metres, 0 / NaN / inf invalid. Poses: 4x4 float64 T_a_b (DESIGN.md section 2),
quaternions (x, y, z, w). Stamps: seconds as float.
"""
from __future__ import annotations

import math

import numpy as np

from mapping.frame import Intrinsics, matrix_quaternion, quaternion_matrix  # noqa: F401 (re-exported)

_COLOUR = {"rgb8": (3, (0, 1, 2)), "bgr8": (3, (2, 1, 0)), "rgba8": (4, (0, 1, 2)), "bgra8": (4, (2, 1, 0))}
_DEPTH = {"32FC1": (np.float32, 1.0), "16UC1": (np.uint16, 0.001), "mono16": (np.uint16, 0.001)}


def stamp_seconds(stamp) -> float:
    """A builtin_interfaces/Time as seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def seconds_stamp(t: float):
    """builtin_interfaces/Time of t seconds (t >= 0)."""
    from builtin_interfaces.msg import Time

    if not (math.isfinite(t) and t >= 0):
        raise ValueError(f"a stamp must be a finite time >= 0 s, got {t}")
    sec = int(math.floor(t))
    nanosec = min(int(round((t - sec) * 1e9)), 999_999_999)
    return Time(sec=sec, nanosec=nanosec)


def _pixels(msg, dtype, channels: int) -> np.ndarray:
    """The image's pixels as an (height, width, channels) array of dtype, honouring step and endianness."""
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    item = np.dtype(dtype).itemsize * channels
    if h <= 0 or w <= 0:
        raise ValueError(f"image of {w}x{h} pixels")
    if step < w * item:
        raise ValueError(f"image step {step} is shorter than a row of {w} x {item} bytes")
    try:
        data = np.frombuffer(msg.data, dtype=np.uint8)  # bytes, array.array('B') (rclpy), uint8 arrays: no copy
    except (TypeError, ValueError):
        data = np.asarray(msg.data, dtype=np.uint8)  # a list of ints
    if data.size < h * step:
        raise ValueError(f"image data holds {data.size} bytes, {w}x{h} with step {step} needs {h * step}")
    rows = data[: h * step].reshape(h, step)[:, : w * item]
    order = ">" if msg.is_bigendian else "<"
    typed = np.dtype(dtype).newbyteorder(order) if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
    return rows.copy().view(typed).reshape(h, w, channels).astype(dtype, copy=False)


def image_to_rgb(msg) -> np.ndarray:
    """RGB uint8 HxWx3 from a colour sensor_msgs/Image; ValueError naming an unsupported encoding."""
    if msg.encoding not in _COLOUR:
        raise ValueError(f"colour image encoding {msg.encoding!r} is not supported; use one of {sorted(_COLOUR)}")
    channels, order = _COLOUR[msg.encoding]
    return np.ascontiguousarray(_pixels(msg, np.uint8, channels)[:, :, list(order)])


def image_to_depth(msg) -> np.ndarray:
    """float32 z-depth in metres (HxW) from a 32FC1 (m) or 16UC1 (mm) sensor_msgs/Image; invalid pixels are 0."""
    if msg.encoding not in _DEPTH:
        raise ValueError(f"depth image encoding {msg.encoding!r} is not supported; use 32FC1 (m) or 16UC1 (mm)")
    dtype, scale = _DEPTH[msg.encoding]
    depth = _pixels(msg, dtype, 1)[:, :, 0].astype(np.float32) * np.float32(scale)
    depth[~np.isfinite(depth) | (depth < 0)] = 0.0
    return depth


def camera_info_to_intrinsics(msg) -> Intrinsics:
    """Pinhole intrinsics from a sensor_msgs/CameraInfo (K of the rectified image)."""
    k = [float(v) for v in msg.k]
    if len(k) != 9:
        raise ValueError(f"CameraInfo K must have 9 values, got {len(k)}")
    return Intrinsics(fx=k[0], fy=k[4], cx=k[2], cy=k[5], width=int(msg.width), height=int(msg.height))


def pose_matrix(position, orientation) -> np.ndarray:
    """4x4 T from a geometry_msgs Point (or Vector3) and Quaternion; ValueError for non-finite values."""
    t = np.array([position.x, position.y, position.z], dtype=float)
    if not np.all(np.isfinite(t)):
        raise ValueError(f"position is not finite: {t.tolist()}")
    T = np.eye(4)
    T[:3, :3] = quaternion_matrix(orientation.x, orientation.y, orientation.z, orientation.w)
    T[:3, 3] = t
    return T


def transform_matrix(transform) -> np.ndarray:
    """4x4 T of a geometry_msgs/Transform (translation, rotation)."""
    return pose_matrix(transform.translation, transform.rotation)


def pose_stamped(T: np.ndarray, frame_id: str, stamp: float):
    """geometry_msgs/PoseStamped of pose T in frame_id at stamp seconds."""
    from geometry_msgs.msg import PoseStamped

    msg = PoseStamped()
    msg.header.frame_id = frame_id
    msg.header.stamp = seconds_stamp(stamp)
    fill_pose(msg.pose, T)
    return msg


def fill_pose(pose, T: np.ndarray) -> None:
    """Write 4x4 T into a geometry_msgs/Pose in place."""
    _fill(pose.position, pose.orientation, T)


def fill_transform(transform, T: np.ndarray) -> None:
    """Write 4x4 T into a geometry_msgs/Transform in place."""
    _fill(transform.translation, transform.rotation, T)


def _fill(vector, quaternion, T: np.ndarray) -> None:
    T = np.asarray(T, dtype=float)
    vector.x, vector.y, vector.z = (float(v) for v in T[:3, 3])
    quaternion.x, quaternion.y, quaternion.z, quaternion.w = matrix_quaternion(T[:3, :3])


def rgb_image(rgb: np.ndarray, stamp: float, frame_id: str):
    """sensor_msgs/Image rgb8 of an RGB uint8 HxWx3 array."""
    from sensor_msgs.msg import Image

    h, w = rgb.shape[:2]
    msg = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3)
    msg.header.stamp, msg.header.frame_id = seconds_stamp(stamp), frame_id
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    return msg


def depth_image(depth: np.ndarray, stamp: float, frame_id: str, encoding: str = "32FC1"):
    """sensor_msgs/Image of float32 metres: 32FC1 (m, invalid NaN) or 16UC1 (mm, invalid 0)."""
    from sensor_msgs.msg import Image

    h, w = depth.shape
    depth = np.asarray(depth, dtype=np.float32)
    if encoding == "32FC1":
        data = np.where(depth > 0, depth, np.nan).astype("<f4")
    elif encoding == "16UC1":
        data = np.clip(np.round(np.nan_to_num(depth, nan=0.0, posinf=0.0) * 1000.0), 0, 65535).astype("<u2")
    else:
        raise ValueError(f"depth encoding must be 32FC1 or 16UC1, got {encoding!r}")
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=w * data.itemsize)
    msg.header.stamp, msg.header.frame_id = seconds_stamp(stamp), frame_id
    msg.data = np.ascontiguousarray(data).tobytes()
    return msg


def camera_info(intrinsics: Intrinsics, stamp: float, frame_id: str):
    """sensor_msgs/CameraInfo of pinhole intrinsics (no distortion)."""
    from sensor_msgs.msg import CameraInfo

    k = intrinsics
    msg = CameraInfo(width=k.width, height=k.height, distortion_model="plumb_bob")
    msg.header.stamp, msg.header.frame_id = seconds_stamp(stamp), frame_id
    msg.d = [0.0] * 5
    msg.k = [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg
