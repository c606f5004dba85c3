"""Standard ROS 2 messages for bags, built with rosbags' typestore (no rclpy): images, camera info, odometry,
TF, strings and occupancy grids, and their CDR bytes. Readers of these messages are in eqa.ros.convert (they
read fields, so rosbags messages work). Stamps: seconds as float <-> builtin_interfaces/Time; poses: 4x4 T_a_b.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np

from eqa.ros.convert import matrix_quaternion
from mapping.frame import Intrinsics
from mapping.grid import GridSpec

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
ODOMETRY = "nav_msgs/msg/Odometry"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
STRING = "std_msgs/msg/String"
OCCUPANCY_GRID = "nav_msgs/msg/OccupancyGrid"


@functools.lru_cache(maxsize=1)
def typestore():
    """The ROS 2 Jazzy message types (rosbags' built-in store)."""
    try:
        from rosbags.typesys import Stores, get_typestore
    except ImportError as err:
        raise ImportError("bags need the rosbags package: pip install 'confident_eqa[bag]'") from err
    return get_typestore(Stores.ROS2_JAZZY)


def serialize(msg, msgtype: str) -> bytes:
    """CDR bytes of a message."""
    return bytes(typestore().serialize_cdr(msg, msgtype))


def deserialize(data: bytes, msgtype: str):
    """A message from its CDR bytes."""
    return typestore().deserialize_cdr(data, msgtype)


def stamp_ns(t: float) -> int:
    """Integer nanoseconds of t seconds (t >= 0)."""
    if not (math.isfinite(t) and t >= 0):
        raise ValueError(f"a stamp must be a finite time >= 0 s, got {t}")
    return int(round(t * 1e9))


def _time(ns: int):
    Time = typestore().types["builtin_interfaces/msg/Time"]
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def header(ns: int, frame_id: str):
    """std_msgs/Header at ns nanoseconds."""
    return typestore().types["std_msgs/msg/Header"](stamp=_time(ns), frame_id=frame_id)


def _pose_fields(T: np.ndarray):
    types = typestore().types
    T = np.asarray(T, dtype=float)
    x, y, z, w = matrix_quaternion(T[:3, :3])
    return (types["geometry_msgs/msg/Point"](x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])),
            types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w))


def rgb_msg(rgb: np.ndarray, ns: int, frame_id: str):
    """sensor_msgs/Image rgb8 of an RGB uint8 HxWx3 array."""
    h, w = rgb.shape[:2]
    data = np.ascontiguousarray(rgb, dtype=np.uint8).reshape(-1)
    return typestore().types[IMAGE](header=header(ns, frame_id), height=h, width=w, encoding="rgb8",
                                    is_bigendian=0, step=w * 3, data=data)


def depth_msg(depth: np.ndarray, ns: int, frame_id: str, encoding: str = "32FC1"):
    """sensor_msgs/Image of float32 metres: 32FC1 (m, invalid NaN; valid values exact) or 16UC1 (mm, invalid 0)."""
    h, w = depth.shape
    depth = np.asarray(depth, dtype=np.float32)
    if encoding == "32FC1":
        pixels = np.where(depth > 0, depth, np.float32(np.nan)).astype("<f4")
    elif encoding == "16UC1":
        pixels = np.clip(np.round(np.nan_to_num(depth, nan=0.0, posinf=0.0) * 1000.0), 0, 65535).astype("<u2")
    else:
        raise ValueError(f"depth encoding must be 32FC1 or 16UC1, got {encoding!r}")
    data = np.ascontiguousarray(pixels).view(np.uint8).reshape(-1)
    return typestore().types[IMAGE](header=header(ns, frame_id), height=h, width=w, encoding=encoding,
                                    is_bigendian=0, step=w * pixels.itemsize, data=data)


def camera_info_msg(k: Intrinsics, ns: int, frame_id: str):
    """sensor_msgs/CameraInfo of pinhole intrinsics (no distortion)."""
    types = typestore().types
    roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return types[CAMERA_INFO](
        header=header(ns, frame_id), height=k.height, width=k.width, distortion_model="plumb_bob",
        d=np.zeros(5), k=np.array([k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]),
        r=np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]),
        p=np.array([k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]),
        binning_x=0, binning_y=0, roi=roi)


def odometry_msg(T_world_base: np.ndarray, ns: int, world: str, base: str,
                 velocity: Sequence[float] = (0.0, 0.0)):
    """nav_msgs/Odometry: the base pose in `world` and its twist (forward m/s, turn rad/s) in the base frame."""
    types = typestore().types
    position, orientation = _pose_fields(T_world_base)
    cov = np.zeros(36)
    pose = types["geometry_msgs/msg/PoseWithCovariance"](
        pose=types["geometry_msgs/msg/Pose"](position=position, orientation=orientation), covariance=cov)
    vec = types["geometry_msgs/msg/Vector3"]
    twist = types["geometry_msgs/msg/TwistWithCovariance"](
        twist=types["geometry_msgs/msg/Twist"](linear=vec(x=float(velocity[0]), y=0.0, z=0.0),
                                               angular=vec(x=0.0, y=0.0, z=float(velocity[1]))), covariance=cov)
    return types[ODOMETRY](header=header(ns, world), child_frame_id=base, pose=pose, twist=twist)


def tf_msg(transforms: Sequence[tuple[str, str, np.ndarray]], ns: int):
    """tf2_msgs/TFMessage of (parent, child, T_parent_child) transforms, all at ns."""
    types = typestore().types
    out = []
    for parent, child, T in transforms:
        p, q = _pose_fields(T)
        tr = types["geometry_msgs/msg/Transform"](translation=types["geometry_msgs/msg/Vector3"](x=p.x, y=p.y, z=p.z),
                                                  rotation=q)
        out.append(types["geometry_msgs/msg/TransformStamped"](header=header(ns, parent), child_frame_id=child,
                                                               transform=tr))
    return types[TF_MESSAGE](transforms=out)


def string_msg(text: str):
    return typestore().types[STRING](data=text)


def occupancy_grid_msg(cells: np.ndarray, spec: GridSpec, ns: int, frame_id: str):
    """nav_msgs/OccupancyGrid of int8 cells (rows along y; origin at cell (0, 0)'s corner)."""
    types = typestore().types
    position, orientation = _pose_fields(np.array([[1.0, 0, 0, spec.origin[0]], [0, 1.0, 0, spec.origin[1]],
                                                   [0, 0, 1.0, 0], [0, 0, 0, 1.0]]))
    info = types["nav_msgs/msg/MapMetaData"](
        map_load_time=_time(ns), resolution=float(spec.resolution), width=int(cells.shape[1]),
        height=int(cells.shape[0]), origin=types["geometry_msgs/msg/Pose"](position=position, orientation=orientation))
    return types[OCCUPANCY_GRID](header=header(ns, frame_id), info=info,
                                 data=np.ascontiguousarray(cells, dtype=np.int8).reshape(-1))
