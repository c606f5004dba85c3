"""Real bags for the bag tests: frames rendered by the built-in simulator, written with rosbags in the layouts
robots record (RealSense topic names, /tf or odometry poses, raw or compressed images)."""
from __future__ import annotations

import io
import math
import struct

import numpy as np
from PIL import Image

from eqa.bag import messages as m
from mapping.frame import base_pose
from sim.config import CameraConfig, SimConfig
from sim.env import SimEnv, SimEpisode
from sim.testing import room_scene

CAMERA = "camera_color_optical_frame"


def sim_frames(n_moves: int = 6, width: int = 160, height: int = 120):
    """Frames of a short drive through a two-room scene (160x120, 90 deg): a turn, then moves toward the door."""
    config = SimConfig(camera=CameraConfig(width=width, height=height, hfov_deg=90.0), capture_spacing=0.25)
    env = SimEnv(room_scene(door=True, table=True), config)
    frames = [env.reset(SimEpisode(start=(-1.5, -0.9, 0.0)))]
    frames.append(env.turn(0.6))
    env.observe()
    for i in range(n_moves):
        env.move_to(base_pose(1.2 + 0.5 * i, 0.8, 0.0), 0.6)
        frames.extend(env.observe())
    return frames


def _t(ns: int) -> float:
    return ns * 1e-9


def compressed_colour(rgb: np.ndarray, ns: int, codec: str = "jpeg"):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG" if codec == "jpeg" else "PNG", quality=95)
    return m.typestore().types[m.COMPRESSED_IMAGE](header=m.header(ns, CAMERA), format=f"rgb8; {codec} compressed bgr8",
                                                   data=np.frombuffer(buf.getvalue(), dtype=np.uint8))


def compressed_depth(depth: np.ndarray, ns: int):
    """image_transport's compressedDepth PNG of 16UC1 millimetres (a 12-byte config header, then the PNG)."""
    mm = np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(mm).save(buf, format="PNG")
    data = struct.pack("<iff", 1, 0.0, 0.0) + buf.getvalue()
    return m.typestore().types[m.COMPRESSED_IMAGE](header=m.header(ns, CAMERA), format="16UC1; compressedDepth png",
                                                   data=np.frombuffer(data, dtype=np.uint8))


def bgr_image(rgb: np.ndarray, ns: int):
    msg = m.rgb_msg(rgb[:, :, ::-1].copy(), ns, CAMERA)
    msg.encoding = "bgr8"
    return msg


def write_robot_bag(path, frames, storage: str = "mcap", poses: str = "tf", colour: str = "raw", depth: str = "32FC1",
                    rgb_topic: str = "/camera/color/image_raw",
                    depth_topic: str = "/camera/aligned_depth_to_color/image_raw", info: bool = True,
                    pose_rate_hz: float = 50.0, stamp_offset_ns: int = 1_000_000_000, order=None,
                    depth_size=None) -> None:
    """A bag of `frames` as a robot records it. poses: 'tf' (map -> odom -> base_link at pose_rate_hz, the
    camera in /tf_static) or 'odom' (nav_msgs/Odometry odom -> base_link at pose_rate_hz); the poses are sampled
    between the frames' poses (linear position, yaw) so a frame's pose must be interpolated. colour: raw (rgb8),
    bgr8, jpeg, png; depth: 32FC1, 16UC1, compressed (compressedDepth PNG). order: the frame indices in writing
    order (default in order; repeats give duplicate stamps). depth_size: (w, h) to write depth of another size."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    ts = m.typestore()
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    conns = {}

    def write(w, topic, msgtype, msg, ns):
        if topic not in conns:
            conns[topic] = w.add_connection(topic, msgtype, typestore=ts)
        w.write(conns[topic], ns, m.serialize(msg, msgtype))

    stamps = [stamp_offset_ns + m.stamp_ns(f.stamp) for f in frames]
    T_base_cam = np.linalg.inv(frames[0].T_world_base) @ frames[0].T_world_cam
    with Writer(path, version=9, storage_plugin=plugin) as w:
        if poses == "tf":
            write(w, "/tf_static", m.TF_MESSAGE, m.tf_msg([("base_link", CAMERA, T_base_cam),
                                                           ("map", "odom", np.eye(4))], stamps[0]), stamps[0])
        pose_times = np.arange(stamps[0] - 200_000_000, stamps[-1] + 200_000_000, int(1e9 / pose_rate_hz))
        events = [(int(t), "pose", None) for t in pose_times]
        for k, i in enumerate(order if order is not None else range(len(frames))):
            events.append((stamps[min(k, len(frames) - 1)] + 1000 * max(0, k - len(frames) + 1), "frame", i))
        events.sort(key=lambda e: (e[0], e[1] == "frame"))
        for log_ns, kind, i in events:
            ns = log_ns if kind == "pose" else stamps[i]
            if kind == "pose":
                T = _pose_at(frames, stamps, ns)
                if poses == "tf":
                    write(w, "/tf", m.TF_MESSAGE, m.tf_msg([("odom", "base_link", T)], ns), log_ns)
                else:
                    write(w, "/odom", m.ODOMETRY, m.odometry_msg(T, ns, "odom", "base_link"), log_ns)
                continue
            f = frames[i]
            rgb_msg = {"raw": lambda: m.rgb_msg(f.rgb, ns, CAMERA), "bgr8": lambda: bgr_image(f.rgb, ns),
                       "jpeg": lambda: compressed_colour(f.rgb, ns, "jpeg"),
                       "png": lambda: compressed_colour(f.rgb, ns, "png")}[colour]()
            write(w, rgb_topic, m.COMPRESSED_IMAGE if colour in ("jpeg", "png") else m.IMAGE, rgb_msg, log_ns)
            d = f.depth if depth_size is None else np.asarray(Image.fromarray(f.depth).resize(depth_size))
            if depth == "compressed":
                write(w, depth_topic, m.COMPRESSED_IMAGE, compressed_depth(d, ns), log_ns)
            else:
                write(w, depth_topic, m.IMAGE, m.depth_msg(d, ns, CAMERA, depth), log_ns)
            if info:
                write(w, "/camera/color/camera_info", m.CAMERA_INFO, m.camera_info_msg(f.intrinsics, ns, CAMERA),
                      log_ns)


def _pose_at(frames, stamps, ns) -> np.ndarray:
    """The base pose at ns: linear between the frames' poses (position and yaw), held before and after."""
    xs = np.array([f.T_world_base[0, 3] for f in frames])
    ys = np.array([f.T_world_base[1, 3] for f in frames])
    yaws = np.unwrap([math.atan2(f.T_world_base[1, 0], f.T_world_base[0, 0]) for f in frames])
    t = np.asarray(stamps, dtype=float)
    return base_pose(float(np.interp(ns, t, xs)), float(np.interp(ns, t, ys)), float(np.interp(ns, t, yaws)))
