"""Navigation goals to the robot's stack: Nav2's NavigateToPose action (cancel, result codes, timeouts), or a
PoseStamped on /goal_pose for stacks without the action (arrival read from the robot's pose). Both block the
episode thread while the node's executor runs their callbacks on other threads. Poses: T_world_base in the
world frame; seconds."""
from __future__ import annotations

import math
import threading
import time
from typing import Callable, Optional

import numpy as np

from eqa.ros.convert import pose_stamped
from eqa.ros.ros_env import NavResult
from mapping.frame import pose_xy_yaw, wrap_angle

_POLL_S = 0.02


def _wait(event: threading.Event, deadline: float, interrupted: Callable[[], bool]) -> str:
    """'done' when event is set, 'interrupted' or 'timeout' first."""
    while not event.wait(_POLL_S):
        if interrupted():
            return "interrupted"
        if time.monotonic() > deadline:
            return "timeout"
    return "done"


def _cancel_if_accepted(future) -> None:
    """Done callback of a goal given up before the server answered: cancel it if it was accepted after all."""
    handle = future.result()
    if handle is not None and handle.accepted:
        handle.cancel_goal_async()


class Nav2Navigator:
    """Goals through a NavigateToPose action client (nav2_msgs, or the compatible interface built here)."""

    def __init__(self, node, action_name: str, world_frame: str, server_timeout_s: float, callback_group=None):
        from nav2_msgs.action import NavigateToPose
        from rclpy.action import ActionClient

        self._action = NavigateToPose
        self._client = ActionClient(node, NavigateToPose, action_name, callback_group=callback_group)
        self._node, self._world, self._name = node, world_frame, action_name
        self._server_timeout_s = server_timeout_s
        self._handle = None
        self._lock = threading.Lock()

    def go(self, T_world_base: np.ndarray, timeout_s: float, interrupted: Callable[[], bool]) -> NavResult:
        from action_msgs.msg import GoalStatus

        if not self._client.wait_for_server(timeout_sec=self._server_timeout_s):
            return NavResult("unavailable", f"no NavigateToPose action server at {self._name!r} "
                                            f"within {self._server_timeout_s:g} s")
        goal = self._action.Goal()
        goal.pose = pose_stamped(T_world_base, self._world, self._node.get_clock().now().nanoseconds * 1e-9)
        deadline = time.monotonic() + timeout_s
        sent = threading.Event()
        future = self._client.send_goal_async(goal)
        future.add_done_callback(lambda _: sent.set())
        how = _wait(sent, deadline, interrupted)
        if how != "done":
            future.add_done_callback(_cancel_if_accepted)
            return NavResult("canceled" if how == "interrupted" else "timeout", "the goal was not yet accepted")
        handle = future.result()
        if handle is None or not handle.accepted:
            return NavResult("failed", "the navigation server rejected the goal")
        with self._lock:
            self._handle = handle
        done = threading.Event()
        result_future = handle.get_result_async()
        result_future.add_done_callback(lambda _: done.set())
        how = _wait(done, deadline, interrupted)
        if how != "done":
            self.cancel()
            done.wait(2.0)  # the server reports the cancel; the robot has stopped when it does
            return NavResult("canceled" if how == "interrupted" else "timeout",
                             f"goal canceled after {timeout_s:g} s" if how == "timeout" else "goal canceled")
        with self._lock:
            self._handle = None
        response = result_future.result()
        status = response.status if response is not None else GoalStatus.STATUS_UNKNOWN
        if status == GoalStatus.STATUS_SUCCEEDED:
            return NavResult("succeeded")
        if status == GoalStatus.STATUS_CANCELED:
            return NavResult("canceled", "the navigation server canceled the goal")
        error = getattr(response.result, "error_msg", "") if response is not None else ""
        return NavResult("failed", error or f"the navigation server ended the goal with status {status}")

    def cancel(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel_goal_async()


class GoalPoseNavigator:
    """Goals as PoseStamped on a topic (Nav2's bt_navigator subscribes to /goal_pose; so do simpler stacks);
    arrival when the robot's pose (robot_pose(), from odometry or TF) is within arrival_distance metres and
    arrival_angle radians of the goal; a robot whose pose has not changed for stall_s seconds has stopped short
    of it ("stopped"). Cancel sends the current pose as the goal."""

    def __init__(self, node, topic: str, world_frame: str, robot_pose: Callable[[], Optional[np.ndarray]],
                 arrival_distance: float, arrival_angle: float, stall_s: float):
        from geometry_msgs.msg import PoseStamped

        self._pub = node.create_publisher(PoseStamped, topic, 10)
        self._node, self._world, self._robot_pose = node, world_frame, robot_pose
        self._distance, self._angle, self._stall_s = arrival_distance, arrival_angle, stall_s

    def go(self, T_world_base: np.ndarray, timeout_s: float, interrupted: Callable[[], bool]) -> NavResult:
        self._publish(T_world_base)
        gx, gy, gyaw = pose_xy_yaw(T_world_base)
        start = time.monotonic()
        deadline = start + timeout_s
        last, changed = None, start  # the last pose seen and when it last changed
        while time.monotonic() < deadline:
            if interrupted():
                self.cancel()
                return NavResult("canceled", "goal canceled")
            pose = self._robot_pose()
            now = time.monotonic()
            if pose is not None:
                x, y, yaw = pose_xy_yaw(pose)
                if math.hypot(gx - x, gy - y) <= self._distance and abs(float(wrap_angle(gyaw - yaw))) <= self._angle:
                    return NavResult("succeeded")
                if last is None or math.hypot(x - last[0], y - last[1]) > 1e-3 or \
                        abs(float(wrap_angle(yaw - last[2]))) > 1e-3:
                    last, changed = (x, y, yaw), now
                elif now - changed >= self._stall_s:
                    self.cancel()  # the stack may still hold the goal: it must not start again later
                    return NavResult("stopped", f"the robot stood still for {self._stall_s:g} s short of the goal")
            time.sleep(_POLL_S)
        self.cancel()
        return NavResult("timeout", f"not at the goal after {timeout_s:g} s")

    def cancel(self) -> None:
        pose = self._robot_pose()
        if pose is not None:
            self._publish(pose)

    def _publish(self, T: np.ndarray) -> None:
        self._pub.publish(pose_stamped(T, self._world, self._node.get_clock().now().nanoseconds * 1e-9))
