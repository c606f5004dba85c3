"""The ROS 2 robot as an `eqa.episode.Env`: frames come from the node's subscriptions (a `FrameFeed`), motion
goes to a navigator (Nav2's NavigateToPose action or /goal_pose). It converts and waits; it decides nothing.

After a move or turn, the decision waits for the frame that shows where the robot ended: the first new frame
stamped at or after the navigator's result whose odometry says the robot stands still (any such frame when
there is no odometry). The frames kept while driving (keyframes) come with it. A pause cancels the goal and
waits; a cancel ends the episode (EpisodeInterrupted). Poses: T_world_base; stamps in seconds (ROS time).
"""
from __future__ import annotations

import collections
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import numpy as np

from eqa.episode import EpisodeInterrupted
from eqa.ros.keyframes import KeyframeQueue
from mapping.frame import Frame, base_pose, pose_xy_yaw, wrap_angle


class EpisodeError(RuntimeError):
    """The robot cannot go on with the episode (no frames, no navigation server); the question ends with it."""


@dataclass
class NavResult:
    """How a navigation goal ended: succeeded, failed (aborted or rejected), canceled, timeout, stopped (the
    robot stood still short of it), unavailable."""

    status: str
    message: str = ""


class Navigator(Protocol):
    def go(self, T_world_base: np.ndarray, timeout_s: float, interrupted: Callable[[], bool]) -> NavResult: ...

    def cancel(self) -> None: ...


class EpisodeControl:
    """Pause and cancel requests from the node's services and action (thread-safe)."""

    def __init__(self) -> None:
        self.canceled = threading.Event()
        self._running = threading.Event()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self, on: bool) -> None:
        if on:
            self._running.clear()
        else:
            self._running.set()

    def interrupted(self) -> bool:
        return self.canceled.is_set() or self.paused

    def wait_running(self) -> None:
        """Block while paused; EpisodeInterrupted when canceled."""
        while not self._running.wait(0.05):
            if self.canceled.is_set():
                break
        if self.canceled.is_set():
            raise EpisodeInterrupted("canceled")


class FrameFeed:
    """Frames from the node's callbacks: keyframes for the next decision and the recent frames (thread-safe;
    `put` is called by subscriptions, the waits by the episode thread). stationary(stamp): whether the robot
    stood still then (None: unknown), asked when a wait looks at a frame, as odometry may come after it."""

    def __init__(self, keyframes: KeyframeQueue, stationary: Callable[[float], Optional[bool]] = lambda t: None,
                 recent: int = 64) -> None:
        self.keyframes, self.stationary = keyframes, stationary
        self._recent: collections.deque = collections.deque(maxlen=recent)
        self._cond = threading.Condition()

    def put(self, frame: Frame) -> None:
        with self._cond:
            self.keyframes.offer(frame)
            self._recent.append(frame)
            self._cond.notify_all()

    def wait_for(self, accept: Callable[[Frame, Optional[bool]], bool], timeout_s: float, control: EpisodeControl,
                 what: str, newest: bool = False) -> Frame:
        """The oldest (newest: the newest) recent frame `accept` takes, waiting up to timeout_s seconds of wall
        time (EpisodeError after that; time paused does not count); it and the keyframes before it are what the
        next `take` returns."""
        waited, last = 0.0, time.monotonic()
        with self._cond:
            while True:
                for frame in (reversed(self._recent) if newest else self._recent):
                    if accept(frame, self.stationary(frame.stamp)):
                        return frame
                if control.canceled.is_set():
                    raise EpisodeInterrupted("canceled")
                now = time.monotonic()
                if not control.paused:
                    waited += now - last
                last = now
                if waited > timeout_s:
                    raise EpisodeError(f"no {what} for {timeout_s:g} s")
                self._cond.wait(0.05)

    def take(self, until: Frame) -> list[Frame]:
        """The keyframes stamped before `until`, then `until` itself (oldest first); later ones stay queued."""
        with self._cond:
            kept = self.keyframes.take()
            before = [f for f in kept if f.stamp < until.stamp]
            for f in kept:
                if f.stamp > until.stamp:
                    self.keyframes.offer(f, force=True)
            return before + [until]

    def clear(self) -> None:
        """Forget the keyframes and all recent frames but the newest (a robot standing still may not send
        another: the next question can start from it while it is fresh)."""
        with self._cond:
            self.keyframes.clear()
            newest = self._recent[-1] if self._recent else None
            self._recent.clear()
            if newest is not None:
                self._recent.append(newest)


@dataclass
class MoveOutcome:
    """eqa.episode.MoveResult: metres travelled, whether the goal was out of reach, whether it was reached."""

    distance: float
    blocked: bool
    reached: bool


class RosEnv:
    """eqa.episode.Env over a FrameFeed and a Navigator. clock(): ROS time now (s); travelled(t0, t1): metres
    the base drove between two stamps; robot_pose(): the newest T_world_base (None before any)."""

    def __init__(self, feed: FrameFeed, navigator: Navigator, control: EpisodeControl, clock: Callable[[], float],
                 travelled: Callable[[float, float], float], robot_pose: Callable[[], Optional[np.ndarray]],
                 frame_timeout_s: float, max_frame_age_s: float, nav_timeout_s: float,
                 arrival_distance: float = 0.3, arrival_angle: float = 0.3) -> None:
        self.feed, self.navigator, self.control = feed, navigator, control
        self.arrival_distance, self.arrival_angle = arrival_distance, arrival_angle
        self.clock, self.travelled, self.robot_pose = clock, travelled, robot_pose
        self.frame_timeout_s, self.max_frame_age_s, self.nav_timeout_s = frame_timeout_s, max_frame_age_s, \
            nav_timeout_s
        self._last: Optional[Frame] = None  # the frame the agent saw last
        self._settled: Optional[Frame] = None  # the frame showing where the last motion ended

    def reset(self, episode=None) -> Frame:
        """The first frame: the newest fresh one (at most max_frame_age_s old) with the robot standing still."""
        self.control.wait_running()
        now = self.clock()
        frame = self.feed.wait_for(lambda f, still: f.stamp >= now - self.max_frame_age_s and still is not False,
                                   self.frame_timeout_s, self.control, "camera frame with a pose", newest=True)
        self.feed.take(frame)
        self._last, self._settled = frame, None
        return frame

    def observe(self) -> list[Frame]:
        """The keyframes since the last decision, ending with the frame showing where the last motion ended."""
        if self._settled is None:
            return []
        last = self._last.stamp
        frames = [f for f in self.feed.take(self._settled) if f.stamp > last]
        self._last, self._settled = self._settled, None
        return frames

    def move_to(self, T_world_base: np.ndarray, max_distance: float) -> MoveOutcome:
        """Send the goal (the navigator drives; max_distance is the agent's step length, which its goals
        already respect) and wait for it to end; canceled on pause, timeout or cancel."""
        return self._go(np.asarray(T_world_base, dtype=float))

    def turn(self, angle: float) -> Frame:
        """Turn in place by angle radians (counter-clockwise), as a goal at the current position."""
        if not math.isfinite(angle):
            raise ValueError(f"turn angle must be finite, got {angle}")
        x, y, yaw = pose_xy_yaw(self._last.T_world_base)
        self._go(base_pose(x, y, float(wrap_angle(yaw + angle))))
        return self._settled

    def _go(self, goal: np.ndarray) -> MoveOutcome:
        """Drive to `goal` (paused on the way: sent again once resumed), then wait for the frame showing where
        the robot ended; the distance is what the base travelled from the last frame the agent saw to that
        frame. Reached: the
        navigator succeeded and that frame's base pose is within the arrival distance and angle of the goal
        (a navigator may end a goal short of it); blocked: the navigator failed."""
        while True:  # a pause cancels the goal; once resumed, the same goal is sent again
            self.control.wait_running()
            result = self.navigator.go(goal, self.nav_timeout_s, self.control.interrupted)
            if self.control.canceled.is_set():
                raise EpisodeInterrupted("canceled")
            if not (result.status == "canceled" and self.control.paused):
                break
        if result.status == "unavailable":
            raise EpisodeError(result.message)
        self.control.wait_running()
        end, last = self.clock(), self._last.stamp

        def settled(f: Frame, still: Optional[bool]) -> bool:  # stamps: 1 us slack for nanosecond rounding
            return f.stamp > last and f.stamp >= end - 1e-6 and still is not False

        self._settled = self.feed.wait_for(settled, self.frame_timeout_s, self.control, "frame after the motion")
        distance = self.travelled(last, self._settled.stamp)
        x, y, yaw = pose_xy_yaw(self._settled.T_world_base)
        gx, gy, gyaw = pose_xy_yaw(goal)
        arrived = math.hypot(gx - x, gy - y) <= self.arrival_distance \
            and abs(float(wrap_angle(gyaw - yaw))) <= self.arrival_angle
        return MoveOutcome(distance, blocked=result.status == "failed",
                           reached=result.status == "succeeded" and arrived)
