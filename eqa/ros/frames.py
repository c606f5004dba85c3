"""From ROS messages to posed frames: colour, depth and camera info paired by stamp, each frame posed at its
own stamp from TF or odometry, and whatever cannot be used counted with its reason (never an exception out of a
subscription). Also keeps the robot's recent base positions and odometry twists (travelled distance, whether
the robot stands still at a stamp).

No rclpy here: messages are read by field (eqa.ros.convert), so it is tested with message objects alone.
Frames: T_world_cam of the optical frame, T_world_base (DESIGN.md section 2); stamps in seconds.
"""
from __future__ import annotations

import bisect
import collections
import math
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from eqa.ros.config import EQANodeConfig
from eqa.ros.convert import (camera_info_to_intrinsics, image_to_depth, image_to_rgb, pose_matrix, stamp_seconds,
                             transform_matrix)
from eqa.ros.pairing import StampPairer
from eqa.ros.tf_buffer import PoseNotYet, TransformBuffer
from mapping.frame import R_BASE_OPTICAL_LEVEL, Frame, check_pose, make_pose

STREAMS = ("rgb", "depth", "camera_info")
TIME_JUMP_S = 1.0  # an image this much older than the newest frame: the camera's time jumped back
PAIR_QUEUE_MIN = 8  # messages per stream waiting to be paired, at least (else sync.queue_depth)
MAX_WAITING = 32  # frames waiting for their pose; the oldest gives way (dropped as a stale pose)


def camera_offset_matrix(offset) -> np.ndarray:
    """T_base_optical of a camera body at (x, y, z, roll, pitch, yaw) in the base frame (REP-103 body axes:
    x forward; pitch > 0 looks down); the optical frame: x right, y down, z forward."""
    x, y, z, roll, pitch, yaw = (float(v) for v in offset)
    cr, sr, cp, sp, cy, sy = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch), math.cos(yaw), \
        math.sin(yaw)
    R = np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                  [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                  [-sp, cp * sr, cp * cr]])
    return make_pose(R @ R_BASE_OPTICAL_LEVEL, (x, y, z))


@dataclass
class FrameStats:
    """Counts: messages received per stream, frames built, and frames dropped by reason."""

    received: collections.Counter = field(default_factory=collections.Counter)
    built: int = 0
    dropped: collections.Counter = field(default_factory=collections.Counter)
    time_jumps: int = 0
    last_problem: str = ""

    def to_json(self, unmatched: int) -> dict:
        return {"received": dict(self.received), "frames": self.built, "time_jumps": self.time_jumps,
                "dropped": {**dict(self.dropped), **({"unpaired": unmatched} if unmatched else {})},
                "last_problem": self.last_problem}


class FrameAssembler:
    """Builds posed frames from the node's subscriptions (config: EQANodeConfig). Not thread-safe: the node
    calls it under one lock."""

    def __init__(self, config: EQANodeConfig, clock=time.monotonic) -> None:
        self.config = config
        sync = config.sync
        self.tf = TransformBuffer(cache_s=60.0, max_extrapolation_s=sync.pose_tolerance_s)
        self.pairer = StampPairer(STREAMS, sync.pair_tolerance_s, queue_size=max(PAIR_QUEUE_MIN, sync.queue_depth))
        self.T_base_cam = camera_offset_matrix(config.frames.camera_offset)
        self.stats = FrameStats()
        self._clock = clock
        self._waiting: collections.deque = collections.deque(maxlen=MAX_WAITING)  # (wall time, set)
        self._last_stamp = -math.inf
        self._twist_stamps: list[float] = []
        self._twists: list[tuple[float, float]] = []  # (speed m/s, turn rate rad/s) at _twist_stamps
        self._positions: collections.deque = collections.deque(maxlen=20000)  # (stamp, x, y) of the base

    # -- input ------------------------------------------------------------------------------------------
    def add_image(self, stream: str, msg) -> list[Frame]:
        """A colour, depth or camera info message; returns the frames it completes, and frames that waited
        for a pose long enough to take the newest one (oldest first)."""
        self.stats.received[stream] += 1
        try:
            stamp = stamp_seconds(msg.header.stamp)
        except (AttributeError, TypeError, ValueError) as err:
            self._drop("bad header", f"{stream}: {err}")
            return []
        self._check_time(stamp)
        sets = self.pairer.add(stream, stamp, msg)
        return self._retry() + [f for s in sets if (f := self._build(s)) is not None]

    def add_odometry(self, msg) -> list[Frame]:
        """A nav_msgs/Odometry: its twist (whether the robot stands still) and, with pose_source 'odom', the
        base pose (a timed transform header.frame_id -> child_frame_id; with 'tf' the poses come from /tf only,
        which may fuse this odometry with other sources); returns frames that were waiting for this pose."""
        self.stats.received["odom"] += 1
        from_odom = self.config.frames.pose_source == "odom"
        try:
            stamp = stamp_seconds(msg.header.stamp)
            T = pose_matrix(msg.pose.pose.position, msg.pose.pose.orientation) if from_odom else None
            v = msg.twist.twist
            speed, rate = math.hypot(v.linear.x, v.linear.y), abs(v.angular.z)
            if not (math.isfinite(speed) and math.isfinite(rate)):
                raise ValueError("twist is not finite")
            if from_odom:
                self.tf.set_transform(msg.header.frame_id, msg.child_frame_id, T, stamp)
        except (ValueError, AttributeError) as err:
            self._drop("bad odometry", f"odometry: {err}")
            return []
        i = bisect.bisect_left(self._twist_stamps, stamp)
        if i < len(self._twist_stamps) and self._twist_stamps[i] == stamp:
            self._twists[i] = (speed, rate)  # a later message of the same stamp wins, as for the pose
        else:
            self._twist_stamps.insert(i, stamp)
            self._twists.insert(i, (speed, rate))
        if len(self._twist_stamps) > 20000:
            del self._twist_stamps[:10000], self._twists[:10000]
        if not from_odom:
            return []
        self._note_position(stamp)
        return self._retry()

    def add_tf(self, msg, static: bool = False) -> list[Frame]:
        """A tf2_msgs/TFMessage from /tf (timed) or /tf_static; returns frames that were waiting for it."""
        self.stats.received["tf_static" if static else "tf"] += 1
        newest = None
        for t in msg.transforms:
            try:
                stamp = stamp_seconds(t.header.stamp)
                self.tf.set_transform(t.header.frame_id, t.child_frame_id, transform_matrix(t.transform),
                                      None if static else stamp)
                newest = stamp if newest is None else max(newest, stamp)
            except (ValueError, AttributeError) as err:
                self._drop("bad transform", f"transform {getattr(t, 'child_frame_id', '?')}: {err}")
        if newest is not None and not static:
            self._note_position(newest)
        return self._retry()

    # -- queries ----------------------------------------------------------------------------------------
    def base_pose(self, stamp: float, ahead: bool = True) -> np.ndarray:
        """T_world_base at stamp (LookupError if unknown or stale; ahead: see TransformBuffer.lookup)."""
        f = self.config.frames
        return self.tf.lookup(f.world, f.base, stamp, ahead)

    def stationary(self, stamp: float) -> Optional[bool]:
        """Whether odometry says the robot stands still at stamp (the twist sample nearest it, within the pose
        tolerance); None without one."""
        i = bisect.bisect_left(self._twist_stamps, stamp)
        best = min((j for j in (i - 1, i) if 0 <= j < len(self._twist_stamps)),
                   key=lambda j: abs(self._twist_stamps[j] - stamp), default=None)
        if best is None or abs(self._twist_stamps[best] - stamp) > self.config.sync.pose_tolerance_s:
            return None
        speed, rate = self._twists[best]
        return speed <= self.config.sync.stationary_speed and rate <= self.config.sync.stationary_turn_rate

    def travelled(self, t0: float, t1: float) -> float:
        """Metres the base travelled between stamps t0 and t1 (the polyline of its known positions)."""
        pts = [(x, y) for s, x, y in self._positions if t0 <= s <= t1]
        if len(pts) < 2:
            return 0.0
        p = np.asarray(pts)
        return float(np.hypot(*np.diff(p, axis=0).T).sum())

    def newest_pose_stamp(self) -> Optional[float]:
        return self._positions[-1][0] if self._positions else None

    def unmatched(self) -> int:
        return self.pairer.stats.unmatched

    def flush(self) -> list[Frame]:
        """The input has ended (a bag's last message): build every frame still waiting for a pose from the
        newest pose within pose_tolerance_s, and drop the others as stale."""
        clock, self._clock = self._clock, (lambda: math.inf)
        try:
            return self._retry()
        finally:
            self._clock = clock

    # -- helpers ----------------------------------------------------------------------------------------
    def _check_time(self, stamp: float) -> bool:
        """An image stamped more than TIME_JUMP_S before the newest frame means the camera's time jumped back (a
        restarted simulator, a looped bag): start afresh (timed poses, twists, positions, waiting and paired
        messages; static transforms stay). Returns whether it did."""
        newest = self._last_stamp
        if stamp >= newest - TIME_JUMP_S:
            return False
        self.tf.clear_timed()
        self.pairer.clear()
        self._waiting.clear()
        self._twist_stamps, self._twists = [], []
        self._positions.clear()
        self._last_stamp = -math.inf
        self.stats.time_jumps += 1
        self.stats.last_problem = f"time jumped back from {newest:.3f} s to {stamp:.3f} s: started afresh"
        return True

    def _note_position(self, stamp: float) -> None:
        try:
            T = self.base_pose(stamp)
        except LookupError:
            return
        if not self._positions or stamp > self._positions[-1][0]:
            self._positions.append((stamp, float(T[0, 3]), float(T[1, 3])))

    def _retry(self) -> list[Frame]:
        out = []
        for _ in range(len(self._waiting)):
            since, paired = self._waiting.popleft()
            frame = self._build(paired, since)
            if frame is not None:
                out.append(frame)
        return out

    def _build(self, paired: dict, since: Optional[float] = None) -> Optional[Frame]:
        """The frame of a paired set posed at its stamp: from TF or odometry samples at or after it (waiting
        for them, as tf2's message filter does); after pose_tolerance_s of waiting, from the newest sample if
        it is at most pose_tolerance_s older; dropped after frame_timeout_s."""
        stamp = paired["stamp"]
        if stamp <= self._last_stamp:
            self.stats.dropped["repeated"] += 1
            return None
        try:
            intrinsics = camera_info_to_intrinsics(paired["camera_info"])
            rgb = image_to_rgb(paired["rgb"])
            depth = image_to_depth(paired["depth"])
        except ValueError as err:
            return self._drop("bad image", str(err))
        size = (intrinsics.height, intrinsics.width)
        if rgb.shape[:2] != size or depth.shape != size:
            return self._drop("size mismatch", f"colour {rgb.shape[1]}x{rgb.shape[0]} and depth {depth.shape[1]}x"
                                               f"{depth.shape[0]} must both be the camera's {size[1]}x{size[0]}")
        sync, now = self.config.sync, self._clock()
        ahead = since is not None and now - since > sync.pose_tolerance_s
        try:
            T_world_base = self.base_pose(stamp, ahead)
            if self.config.frames.pose_source == "tf":
                f = self.config.frames
                T_world_cam = self.tf.lookup(f.world, paired["rgb"].header.frame_id, stamp, ahead)
            else:
                T_world_cam = T_world_base @ self.T_base_cam
            check_pose(T_world_base, "base pose")
            check_pose(T_world_cam, "camera pose")
        except PoseNotYet as err:
            if since is None or now - since <= sync.frame_timeout_s:
                if len(self._waiting) == self._waiting.maxlen:  # the oldest waiting frame gives way
                    self._waiting.popleft()
                    self._drop("stale pose", f"frames wait for a pose: {err}")
                self._waiting.append((now if since is None else since, paired))
                return None
            return self._drop("stale pose", f"no pose within {sync.frame_timeout_s:g} s: {err}")
        except (LookupError, ValueError) as err:
            return self._drop("no pose", str(err))
        self._last_stamp = stamp
        self.stats.built += 1
        return Frame(rgb=rgb, depth=depth, intrinsics=intrinsics, T_world_cam=T_world_cam, stamp=stamp,
                     T_world_base=T_world_base)

    def _drop(self, reason: str, problem: str) -> None:
        """Count a dropped input under `reason`; `problem` says what was wrong (the node's status shows it)."""
        self.stats.dropped[reason] += 1
        self.stats.last_problem = problem
